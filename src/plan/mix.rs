//! Which limits may share a layer with a limit that delays.
//!
//! A delayed request is charged on each of its limits for the instant it
//! passes. A GCRA can count a request at an instant still to come (its
//! arrival time simply moves past it); a window cannot (its count belongs
//! to the window it is in now), nor can a concurrency limit (a permit is
//! held from when the request runs). So a limit with a queue shares its
//! layer (every tier of every rule: they are charged together) only with
//! GCRA limits.

use crate::algorithm::AlgorithmKind;
use crate::error::ConfigError;
use crate::limit::LimitKind;
use crate::plan::Plans;

/// Refuses the plans of a layer's rules (one [`Plans`] per rule) when one
/// check could hold a limit that delays and a limit that cannot count a
/// request at the instant it passes: a check charges one tier of each rule,
/// so a queued limit conflicts with such a limit in its own tier or in any
/// tier of another rule.
pub(crate) fn check_delay_mix<'a>(
    plans: impl IntoIterator<Item = &'a Plans>,
) -> Result<(), ConfigError> {
    let plans: smallvec::SmallVec<[&Plans; 4]> = plans.into_iter().collect();
    for (rule, rule_plans) in plans.iter().enumerate() {
        for tier in rule_plans.tiers() {
            let Some(queued) = tier.limits().iter().find(|limit| limit.delays()) else {
                continue;
            };
            let others = plans
                .iter()
                .enumerate()
                .filter(|&(other, _)| other != rule)
                .flat_map(|(_, p)| p.tiers())
                .chain(std::iter::once(tier))
                .flat_map(|tier| tier.limits());
            for other in others {
                let kind = match other.kind() {
                    LimitKind::Rate(AlgorithmKind::Gcra) => continue,
                    LimitKind::Rate(algorithm) => algorithm.as_str(),
                    LimitKind::Concurrency => "concurrency",
                };
                return Err(ConfigError::DelayBeside {
                    queued: queued.name().to_owned(),
                    other: other.name().to_owned(),
                    kind,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(tiers: &[(&str, &str)], algorithm: AlgorithmKind) -> Plans {
        let mut builder = Plans::builder().algorithm(algorithm);
        for (name, quota) in tiers {
            builder = builder.tier(*name, quota);
        }
        builder.build().expect("plans")
    }

    #[test]
    fn a_queue_shares_a_check_only_with_gcra() {
        let gcra = AlgorithmKind::Gcra;
        // GCRA limits beside a queue, in its tier and in other rules: fine.
        let queued = plans(&[("search", "5/second burst 1 queue 10; 100/minute")], gcra);
        let other = plans(&[("global", "1000/second")], gcra);
        assert!(check_delay_mix([&queued, &other]).is_ok());

        // A concurrency limit in the same tier: refused when the plans are built.
        let mixed = Plans::builder()
            .tier("search", "5/second burst 1 queue 10; 2 concurrent")
            .build();
        assert!(matches!(
            mixed,
            Err(ConfigError::DelayBeside { ref other, kind: "concurrency", .. }) if other == "search-concurrent"
        ));

        // Another tier of the same rule is never charged with it: fine.
        let tiers = Plans::builder()
            .tier("anonymous", "5/second burst 1 queue 10")
            .tier_with("premium", "100/minute", AlgorithmKind::FixedWindow)
            .build();
        assert!(tiers.is_ok());

        // A window in any tier of another rule may be: refused.
        let window = plans(&[("global", "1000/minute")], AlgorithmKind::FixedWindow);
        let error = check_delay_mix([&queued, &window]).expect_err("a window beside a queue");
        assert!(matches!(
            error,
            ConfigError::DelayBeside { ref queued, ref other, kind: "fixed-window" }
                if queued == "search-second" && other == "global"
        ));
        assert!(error.to_string().contains("give it a layer of its own"));
        assert!(check_delay_mix([&window, &queued]).is_err());
    }
}
