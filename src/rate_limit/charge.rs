//! Charging: the keys and tiers a request's rules read, and the charges
//! they make, handed to the store in one check.

use smallvec::SmallVec;

use crate::key::{Key, KeyError, RequestInfo};
use crate::rate_limit::evaluate::Conclusion;
use crate::rate_limit::refund::Owned;
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::{skipped, Skip, Tiers};
use crate::rate_limit::state::Shared;
use crate::store::{Charge, Checked, Store};

/// What a check took: the store's answer, the tier under each rule, and
/// the owned charges when a refund may follow.
type Charged<St> = (
    Checked<<St as Store>::Future>,
    Tiers,
    Option<Box<Owned<<St as Store>::Handle>>>,
);

impl<St: Store> Shared<St> {
    /// Reads keys and tiers under every rule not in `skip` and asks the
    /// store to take their charges.
    #[inline]
    #[expect(
        clippy::result_large_err,
        reason = "a refusal's answer moves unboxed into the response future: one allocation fewer per 429, measured"
    )]
    pub(super) fn charge(
        &self,
        rules: &[Rule<St::Handle>],
        info: &RequestInfo<'_>,
        skip: Skip,
    ) -> Result<Charged<St>, Conclusion> {
        if let ([rule], 0, None) = (rules, skip, &self.refund) {
            return self.charge_one(rule, info);
        }
        let gathered = self.gather(rules, info, skip, |charges, tiers, keys, cost| {
            if charges.is_empty() {
                return Err(Conclusion::unchecked());
            }
            let owned = self
                .refund
                .as_ref()
                .map(|_| Owned::of(rules, tiers, keys, cost));
            Ok((self.store.check(charges), tiers.clone(), owned))
        });
        gathered.map_err(|error| self.refuse_key(&error))?
    }

    /// Reads the key and tier under every rule not in `skip` and the
    /// request's cost, and hands `then` the charges they make (with the
    /// tiers and keys they were made from).
    pub(super) fn gather<R>(
        &self,
        rules: &[Rule<St::Handle>],
        info: &RequestInfo<'_>,
        skip: Skip,
        then: impl FnOnce(&[Charge<'_, St::Handle>], &Tiers, &[Key<'_>], u64) -> R,
    ) -> Result<R, KeyError> {
        let mut keys: SmallVec<[Key<'_>; 2]> = SmallVec::new();
        let mut tiers: Tiers = SmallVec::new();
        for (position, rule) in rules.iter().enumerate() {
            if skipped(skip, position) {
                // Keep positions aligned; a skipped rule charges nothing.
                tiers.push(usize::MAX);
                keys.push(Key::ip(std::net::Ipv4Addr::UNSPECIFIED.into()));
                continue;
            }
            let (key, tier) = rule.extractor.extract(info)?.into_parts();
            tiers.push(rule.plans.index_of(tier.as_ref().map(|t| t.as_str())));
            keys.push(key);
        }
        let cost = self.cost.as_ref().map_or(1, |cost| cost(info)).max(1);
        let mut charges: SmallVec<[Charge<'_, St::Handle>; 8]> = SmallVec::new();
        for ((rule, tier), key) in rules.iter().zip(&tiers).zip(&keys) {
            for handle in rule.handles.get(*tier).into_iter().flatten() {
                charges.push(Charge::new(handle, key, cost));
            }
        }
        Ok(then(&charges, &tiers, &keys, cost))
    }

    /// [`charge`](Self::charge) for the common layer of one rule: no
    /// staging of keys, and a single limit charged straight from the stack.
    #[inline]
    #[expect(
        clippy::result_large_err,
        reason = "a refusal's answer moves unboxed into the response future: one allocation fewer per 429, measured"
    )]
    pub(super) fn charge_one(
        &self,
        rule: &Rule<St::Handle>,
        info: &RequestInfo<'_>,
    ) -> Result<Charged<St>, Conclusion> {
        let (key, tier) = match rule.extractor.extract(info) {
            Ok(identity) => identity.into_parts(),
            Err(error) => return Err(self.refuse_key(&error)),
        };
        let tier = rule.plans.index_of(tier.as_ref().map(|t| t.as_str()));
        let cost = self.cost.as_ref().map_or(1, |cost| cost(info)).max(1);
        let handles = &rule.handles[tier];
        let checked = match handles.as_slice() {
            [handle] => self.store.check(&[Charge::new(handle, &key, cost)]),
            [] => return Err(Conclusion::unchecked()),
            _ => {
                let charges: SmallVec<[Charge<'_, St::Handle>; 8]> =
                    handles.iter().map(|h| Charge::new(h, &key, cost)).collect();
                self.store.check(&charges)
            }
        };
        Ok((checked, smallvec::smallvec![tier], None))
    }
}
