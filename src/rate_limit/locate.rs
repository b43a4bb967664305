//! Locating: which rule, tier and limit a check's reported charge came
//! from, and the `RateLimit-Policy` field of the tiers charged.

use bytes::{BufMut, BytesMut};
use http::HeaderValue;

use crate::limit::Limit;
use crate::rate_limit::rule::Rule;

/// Where a charge of a check came from.
pub(super) struct Located<'a, H> {
    /// The rule's position.
    pub(super) position: usize,
    pub(super) rule: &'a Rule<H>,
    pub(super) tier: usize,
    /// The limit's position in its tier.
    pub(super) index: usize,
    pub(super) limit: &'a Limit,
}

/// The rule, tier and limit of the charge at `charge`.
pub(super) fn locate<'a, H>(
    rules: &'a [Rule<H>],
    charge: usize,
    tiers: &[usize],
) -> Option<Located<'a, H>> {
    let mut offset = 0;
    for (position, (rule, &tier)) in rules.iter().zip(tiers).enumerate() {
        let Some(handles) = rule.handles.get(tier) else {
            continue;
        };
        if charge < offset + handles.len() {
            let index = charge - offset;
            let limit = rule.plans.tiers().get(tier)?.limits().get(index)?;
            return Some(Located {
                position,
                rule,
                tier,
                index,
                limit,
            });
        }
        offset += handles.len();
    }
    None
}

/// `RateLimit-Policy`: the items of every tier charged.
pub(super) fn policy_field<H>(rules: &[Rule<H>], tiers: &[usize]) -> HeaderValue {
    if let ([rule], [tier]) = (rules, tiers) {
        if let Some(items) = rule.policy_items.get(*tier) {
            return items.clone();
        }
    }
    let mut policy = BytesMut::new();
    for (rule, &tier) in rules.iter().zip(tiers) {
        let Some(items) = rule.policy_items.get(tier) else {
            continue;
        };
        if items.is_empty() {
            continue;
        }
        if !policy.is_empty() {
            policy.put_slice(b", ");
        }
        policy.put_slice(items.as_bytes());
    }
    HeaderValue::from_maybe_shared(policy.freeze()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::key::PeerIp;
    use crate::plan::mode::Mode;
    use crate::store::MemoryStore;
    use crate::Plans;

    fn rule(store: &MemoryStore, name: &str, plans: Plans) -> Rule<crate::store::MemoryHandle> {
        Rule::bind(store, name.into(), plans, Arc::new(PeerIp::new()))
    }

    /// Rules of two limits, an off tier (no charge) and one: a check's
    /// charges are numbered across rules, skipping the off tier.
    #[test]
    fn a_charge_is_located_across_rules_and_tiers() {
        let store = MemoryStore::new();
        let two = Plans::builder()
            .tier("basic", "10/minute; 100/hour")
            .tier("free", "1/minute")
            .build()
            .expect("plans");
        let off = Plans::builder()
            .tier("off", "1/second")
            .mode("off", Mode::Off)
            .build()
            .expect("plans");
        let one = Plans::single("per-ip", "5/second").expect("plans");
        let rules = [
            rule(&store, "a", two),
            rule(&store, "b", off),
            rule(&store, "c", one),
        ];
        let tiers = [0, 0, 0];
        let at = |charge| {
            locate(&rules, charge, &tiers).map(|found| (found.position, found.tier, found.index))
        };
        assert_eq!(at(0), Some((0, 0, 0)));
        assert_eq!(at(1), Some((0, 0, 1)));
        assert_eq!(at(2), Some((2, 0, 0)), "the off tier charged nothing");
        assert_eq!(at(3), None);
        let found = locate(&rules, 1, &tiers).expect("found");
        assert_eq!(found.limit.quota().count(), 100);
        // Under the other tier of the first rule, one charge fewer.
        let found = locate(&rules, 1, &[1, 0, 0]).expect("found");
        assert_eq!((found.position, found.limit.name()), (2, "per-ip"));
        // A skipped rule (tier usize::MAX) has no charge either.
        let found = locate(&rules, 0, &[usize::MAX, 0, 0]).expect("found");
        assert_eq!(found.position, 2);
    }

    #[test]
    fn the_policy_field_joins_the_tiers_charged() {
        let store = MemoryStore::new();
        let a = rule(
            &store,
            "a",
            Plans::single("api", "10/minute").expect("plans"),
        );
        let off = Plans::builder()
            .tier("off", "1/second")
            .mode("off", Mode::Off)
            .build()
            .expect("plans");
        let b = rule(&store, "b", off);
        let c = rule(
            &store,
            "c",
            Plans::single("per-ip", "5/second").expect("plans"),
        );
        let rules = [a, b, c];
        assert_eq!(
            policy_field(&rules, &[0, 0, 0]),
            "\"api\";q=10;w=60, \"per-ip\";q=5;w=1"
        );
        assert_eq!(policy_field(&rules[..1], &[0]), "\"api\";q=10;w=60");
        assert_eq!(policy_field(&rules, &[usize::MAX, 0, usize::MAX]), "");
    }
}
