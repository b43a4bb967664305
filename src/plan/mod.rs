//! Tiers and their limits: [`Plans`].
//!
//! A plan set maps tier names (`anonymous`, `basic`, `premium`, ...) to the
//! limits each tier's requests charge. A request whose tier is unknown, or
//! not named by the key extractor, gets the default tier.
//!
//! ```
//! use tollgate::Plans;
//!
//! let plans = Plans::builder()
//!     .tier("anonymous", "3/minute")
//!     .tier("basic", "10/minute; 1000/day")
//!     .tier("premium", "20/minute")
//!     .default_tier("anonymous")
//!     .build()?;
//! assert_eq!(plans.tier("basic").limits().len(), 2);
//! assert_eq!(plans.tier("basic").limits()[1].name(), "basic-day");
//! assert_eq!(plans.tier("no-such-tier").name(), "anonymous");
//! # Ok::<(), tollgate::ConfigError>(())
//! ```

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod config;
pub(crate) mod mix;
pub(crate) mod mode;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::algorithm::AlgorithmKind;
use crate::error::ConfigError;
use crate::limit::{validate_name, Limit, LimitKind};
use crate::plan::mode::Mode;
use crate::quota::{Quota, QuotaKind, Quotas};
use crate::store::MAX_CHARGES;

/// One tier: a name and the limits its requests charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    name: Arc<str>,
    limits: Vec<Limit>,
    mode: Mode,
}

impl Tier {
    /// The tier's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tier's limits, in the order given.
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Whether the tier's limits refuse, only observe, or are off.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

/// Tiers and their limits; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans {
    tiers: Vec<Tier>,
    default: usize,
}

impl Plans {
    /// Starts a plan set.
    pub fn builder() -> PlansBuilder {
        PlansBuilder {
            entries: Vec::new(),
            default: None,
            algorithm: AlgorithmKind::Gcra,
            modes: Vec::new(),
            default_mode: Mode::Enforce,
        }
    }

    /// A plan set of one tier, for a limit that is the same for everyone
    /// (`Plans::single("per-ip", "20/second burst 40")`).
    pub fn single(name: &str, quotas: &str) -> Result<Plans, ConfigError> {
        Plans::builder().tier(name, quotas).build()
    }

    /// The tier named `name`, or the default tier.
    pub fn tier(&self, name: &str) -> &Tier {
        &self.tiers[self.index_of(Some(name))]
    }

    /// The default tier.
    pub fn default_tier(&self) -> &Tier {
        &self.tiers[self.default]
    }

    /// Every tier, in the order given.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The position of the tier named `name`, or of the default tier.
    pub(crate) fn index_of(&self, name: Option<&str>) -> usize {
        name.and_then(|name| self.tiers.iter().position(|t| &*t.name == name))
            .unwrap_or(self.default)
    }
}

impl fmt::Display for Plans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, tier) in self.tiers.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let default = if i == self.default { " (default)" } else { "" };
            write!(f, "{}{default}:", tier.name)?;
            if tier.mode != Mode::Enforce {
                write!(f, " [{}]", tier.mode)?;
            }
            for (j, limit) in tier.limits.iter().enumerate() {
                let sep = if j == 0 { " " } else { "; " };
                write!(f, "{sep}{limit}")?;
            }
        }
        Ok(())
    }
}

enum Spec {
    Text(String),
    Quotas(Vec<Quota>),
    Limits(Vec<Limit>),
}

/// Builds [`Plans`]; errors are reported by [`PlansBuilder::build`].
pub struct PlansBuilder {
    entries: Vec<(String, Spec, Option<AlgorithmKind>)>,
    default: Option<String>,
    algorithm: AlgorithmKind,
    modes: Vec<(String, Mode)>,
    default_mode: Mode,
}

impl fmt::Debug for PlansBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlansBuilder")
            .field(
                "tiers",
                &self.entries.iter().map(|e| &e.0).collect::<Vec<_>>(),
            )
            .field("default", &self.default)
            .finish()
    }
}

impl PlansBuilder {
    /// Adds a tier whose limits are written as quotas, such as
    /// `"10/minute; 1000/day"` (parsed by [`build`](PlansBuilder::build)).
    #[must_use]
    pub fn tier(mut self, name: impl Into<String>, quotas: &str) -> Self {
        self.entries
            .push((name.into(), Spec::Text(quotas.to_owned()), None));
        self
    }

    /// Adds a tier whose quotas are enforced with `algorithm` instead of the
    /// plan set's default.
    #[must_use]
    pub fn tier_with(
        mut self,
        name: impl Into<String>,
        quotas: &str,
        algorithm: AlgorithmKind,
    ) -> Self {
        self.entries
            .push((name.into(), Spec::Text(quotas.to_owned()), Some(algorithm)));
        self
    }

    /// Adds a tier from quotas built in code.
    #[must_use]
    pub fn tier_quotas(
        mut self,
        name: impl Into<String>,
        quotas: impl IntoIterator<Item = Quota>,
    ) -> Self {
        self.entries.push((
            name.into(),
            Spec::Quotas(quotas.into_iter().collect()),
            None,
        ));
        self
    }

    /// Adds a tier from fully specified limits (own names and algorithms).
    #[must_use]
    pub fn tier_limits(
        mut self,
        name: impl Into<String>,
        limits: impl IntoIterator<Item = Limit>,
    ) -> Self {
        self.entries.push((
            name.into(),
            Spec::Limits(limits.into_iter().collect()),
            None,
        ));
        self
    }

    /// The tier for requests whose tier is unknown or not named
    /// (default: the first tier added).
    #[must_use]
    pub fn default_tier(mut self, name: impl Into<String>) -> Self {
        self.default = Some(name.into());
        self
    }

    /// Sets the mode of the tier named `tier` (default
    /// [`Mode::Enforce`]); [`build`](PlansBuilder::build) refuses a name
    /// that is no tier.
    #[must_use]
    pub fn mode(mut self, tier: impl Into<String>, mode: Mode) -> Self {
        self.modes.push((tier.into(), mode));
        self
    }

    /// Sets the mode of every tier not given one by
    /// [`mode`](PlansBuilder::mode) (default [`Mode::Enforce`]).
    #[must_use]
    pub fn default_mode(mut self, mode: Mode) -> Self {
        self.default_mode = mode;
        self
    }

    /// The algorithm for quotas given without one (default GCRA).
    #[must_use]
    pub fn algorithm(mut self, algorithm: AlgorithmKind) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Checks and builds the plan set.
    pub fn build(self) -> Result<Plans, ConfigError> {
        if self.entries.is_empty() {
            return Err(ConfigError::NoTiers);
        }
        let mut tiers: Vec<Tier> = Vec::with_capacity(self.entries.len());
        for (name, spec, algorithm) in self.entries {
            validate_name(&name)?;
            if tiers.iter().any(|t| *t.name == *name) {
                return Err(ConfigError::Duplicate { name });
            }
            let algorithm = algorithm.unwrap_or(self.algorithm);
            let limits = match spec {
                Spec::Text(text) => {
                    let quotas: Quotas = text.parse().map_err(|source| ConfigError::Quota {
                        tier: name.clone(),
                        source,
                    })?;
                    name_limits(&name, quotas.iter().copied(), algorithm)?
                }
                Spec::Quotas(quotas) => name_limits(&name, quotas, algorithm)?,
                Spec::Limits(limits) => limits,
            };
            if limits.is_empty() {
                return Err(ConfigError::EmptyTier { tier: name });
            }
            if limits.len() > MAX_CHARGES {
                return Err(ConfigError::TooManyLimits {
                    count: limits.len(),
                    max: MAX_CHARGES,
                });
            }
            for (i, limit) in limits.iter().enumerate() {
                if limits[..i].iter().any(|l| l.name() == limit.name()) {
                    return Err(ConfigError::Duplicate {
                        name: limit.name().to_owned(),
                    });
                }
            }
            tiers.push(Tier {
                name: Arc::from(name.as_str()),
                limits,
                mode: self.default_mode,
            });
        }
        for (name, mode) in self.modes {
            let tier = tiers
                .iter_mut()
                .find(|t| *t.name == *name)
                .ok_or(ConfigError::UnknownTier { tier: name })?;
            tier.mode = mode;
        }
        let default = match self.default {
            None => 0,
            Some(name) => tiers
                .iter()
                .position(|t| *t.name == *name)
                .ok_or(ConfigError::UnknownDefault { tier: name })?,
        };
        let plans = Plans { tiers, default };
        mix::check_delay_mix([&plans])?;
        Ok(plans)
    }
}

/// Names a tier's limits `tier` (one limit) or `tier-minute`, `tier-day`,
/// `tier-90s`, `tier-concurrent` (several).
fn name_limits(
    tier: &str,
    quotas: impl IntoIterator<Item = Quota>,
    algorithm: AlgorithmKind,
) -> Result<Vec<Limit>, ConfigError> {
    let quotas: Vec<Quota> = quotas.into_iter().collect();
    let single = quotas.len() == 1;
    let mut limits: Vec<Limit> = Vec::with_capacity(quotas.len());
    for quota in quotas {
        let mut name = if single {
            tier.to_owned()
        } else {
            format!("{tier}-{}", suffix(&quota))
        };
        if limits.iter().any(|l| l.name() == name) {
            name = format!("{name}-{}", limits.len() + 1);
        }
        let limit = Limit::new(&name, quota, algorithm)?;
        debug_assert!(matches!(
            limit.kind(),
            LimitKind::Rate(_) | LimitKind::Concurrency
        ));
        limits.push(limit);
    }
    Ok(limits)
}

fn suffix(quota: &Quota) -> String {
    if quota.kind() == QuotaKind::Concurrent {
        return "concurrent".to_owned();
    }
    let period = quota.period();
    for (unit, secs) in [
        ("second", 1),
        ("minute", 60),
        ("hour", 3600),
        ("day", 86_400),
        ("week", 604_800),
    ] {
        if period == Duration::from_secs(secs) {
            return unit.to_owned();
        }
    }
    if period.subsec_nanos() == 0 {
        format!("{}s", period.as_secs())
    } else {
        format!("{}ms", period.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_limits_and_falls_back_to_the_default_tier() {
        let plans = Plans::builder()
            .tier("free", "5/minute")
            .tier("pro", "10/second burst 20; 1000/day; 4 concurrent")
            .build()
            .expect("plans");
        assert_eq!(plans.tier("free").limits()[0].name(), "free");
        let names: Vec<_> = plans.tier("pro").limits().iter().map(Limit::name).collect();
        assert_eq!(names, ["pro-second", "pro-day", "pro-concurrent"]);
        assert_eq!(plans.tier("gold").name(), "free");
        assert_eq!(plans.index_of(None), 0);
    }

    #[test]
    fn refuses_bad_plans_with_typed_errors() {
        assert!(matches!(
            Plans::builder().build(),
            Err(ConfigError::NoTiers)
        ));
        assert!(matches!(
            Plans::builder().tier("a", "1/s").tier("a", "2/s").build(),
            Err(ConfigError::Duplicate { .. })
        ));
        assert!(matches!(
            Plans::builder().tier("a b", "1/s").build(),
            Err(ConfigError::InvalidName { .. })
        ));
        assert!(matches!(
            Plans::builder().tier("a", "0/s").build(),
            Err(ConfigError::Quota { .. })
        ));
        assert!(matches!(
            Plans::builder().tier("a", "1/s").default_tier("b").build(),
            Err(ConfigError::UnknownDefault { .. })
        ));
        assert!(matches!(
            Plans::builder()
                .tier_with("a", "1/s burst 5", AlgorithmKind::FixedWindow)
                .build(),
            Err(ConfigError::BurstNeedsGcra { .. })
        ));
        assert!(matches!(
            Plans::builder()
                .tier_with("a", "200000/day", AlgorithmKind::SlidingLog)
                .build(),
            Err(ConfigError::SlidingLogTooLarge { .. })
        ));
    }
}
