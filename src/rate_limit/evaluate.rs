//! The state every clone of the layer and service shares, and the decision
//! taken for each request.

use std::sync::{Arc, Mutex};

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use smallvec::SmallVec;

use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::{Key, KeyError, RequestInfo};
use crate::limit::Limit;
use crate::plan::mode::Mode;
use crate::rate_limit::peek::Peeked;
use crate::rate_limit::refund::{After, Owned, Refund, RefundFn, Ticket};
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::{RuleSet, Rules};
use crate::response::answer;
use crate::response::{RateLimited, Rejection};
use crate::store::{Charge, Checked, Permits, Store, Verdict};

/// What to do when the store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Refuse the request with 503 and `Retry-After` (the default): no
    /// request passes unchecked.
    #[default]
    FailClosed,
    /// Let the request through unchecked.
    FailOpen,
}

pub(crate) type CostFn = Arc<dyn Fn(&RequestInfo<'_>) -> u64 + Send + Sync>;
pub(crate) type RejectFn = Arc<dyn Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync>;

/// Rules skipped by a recheck, by position: those whose tier is in shadow
/// mode and would have refused.
type Skip = u32;

pub(crate) struct Shared<St: Store> {
    pub(crate) store: St,
    pub(crate) rules: RuleSet<St::Handle>,
    /// Serialises reloads, so two never interleave their rebinding.
    pub(crate) reloading: Mutex<()>,
    pub(crate) cost: Option<CostFn>,
    pub(crate) headers_on_allowed: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) shadow: bool,
    pub(crate) on_store_error: OnStoreError,
    pub(crate) on_reject: Option<RejectFn>,
    pub(crate) refund: Option<RefundFn>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::LayerMetrics,
}

/// The tier chosen under each rule, by position.
pub(crate) type Tiers = SmallVec<[usize; 2]>;

/// What the layer does with a request.
pub(crate) enum Conclusion {
    /// Call the inner service; hold the permits; then add the fields and
    /// settle the refund, when there are any.
    Admit {
        permits: Permits,
        after: Option<Box<After>>,
    },
    /// Answer this instead.
    Answer(Response<Bytes>),
}

impl Conclusion {
    /// Admits a request no limit applies to (every tier charged is off).
    fn unchecked() -> Self {
        Conclusion::Admit {
            permits: Permits::none(),
            after: None,
        }
    }
}

/// What a check took: the store's answer, the tier under each rule, and
/// the owned charges when a refund may follow.
type Charged<St> = (
    Checked<<St as Store>::Future>,
    Tiers,
    Option<Box<Owned<<St as Store>::Handle>>>,
);

pub(crate) enum Evaluation<St: Store> {
    Done(Conclusion),
    Pending(Pending<St>),
}

/// A check the store answers later, and what concluding it needs.
pub(crate) struct Pending<St: Store> {
    pub(crate) future: St::Future,
    tiers: Tiers,
    rules: Arc<Rules<St::Handle>>,
    skip: Skip,
    owned: Option<Box<Owned<St::Handle>>>,
}

/// A peek under way: the store's answer, now or later, and what reading
/// it needs.
pub(crate) struct Looked<St: Store> {
    /// `None` when no limit applies.
    pub(crate) checked: Option<Checked<St::Future>>,
    tiers: Tiers,
    rules: Arc<Rules<St::Handle>>,
}

/// What a store's answer leads to.
enum Step {
    Done(Conclusion),
    /// A rule in shadow mode would refuse: check again without these rules.
    Recheck(Skip),
}

impl<St: Store> Shared<St> {
    /// Reads the request's keys and tiers and runs the check.
    #[inline]
    pub(crate) fn evaluate<B>(&self, request: &Request<B>) -> Evaluation<St> {
        let info = RequestInfo::new(request);
        let rules = self.rules.load();
        let mut skip: Skip = 0;
        loop {
            let (checked, tiers, owned) = match self.charge(&rules, &info, skip) {
                Ok(charged) => charged,
                Err(conclusion) => return Evaluation::Done(conclusion),
            };
            match checked {
                Checked::Ready(result) => match self.step(&rules, result, &tiers, skip, owned) {
                    Step::Done(conclusion) => return Evaluation::Done(conclusion),
                    Step::Recheck(more) => skip |= more,
                },
                Checked::Pending(future) => {
                    return Evaluation::Pending(Pending {
                        future,
                        tiers,
                        rules: rules.into_arc(),
                        skip,
                        owned,
                    })
                }
            }
        }
    }

    /// Concludes a check the store answered later, checking again (and
    /// waiting again) when a rule in shadow mode would have refused.
    pub(crate) async fn conclude_pending(
        &self,
        pending: Pending<St>,
        request: &http::request::Parts,
    ) -> Conclusion {
        let Pending {
            mut future,
            mut tiers,
            rules,
            mut skip,
            mut owned,
        } = pending;
        loop {
            let result = future.await;
            match self.step(&rules, result, &tiers, skip, owned.take()) {
                Step::Done(conclusion) => return conclusion,
                Step::Recheck(more) => skip |= more,
            }
            loop {
                let info = RequestInfo::from_parts(request);
                let (checked, next_tiers, next_owned) = match self.charge(&rules, &info, skip) {
                    Ok(charged) => charged,
                    Err(conclusion) => return conclusion,
                };
                tiers = next_tiers;
                match checked {
                    Checked::Ready(result) => {
                        match self.step(&rules, result, &tiers, skip, next_owned) {
                            Step::Done(conclusion) => return conclusion,
                            Step::Recheck(more) => skip |= more,
                        }
                    }
                    Checked::Pending(next) => {
                        future = next;
                        owned = next_owned;
                        break;
                    }
                }
            }
        }
    }

    /// Reads keys and tiers under every rule not in `skip` and asks the
    /// store to take their charges.
    #[inline]
    #[expect(
        clippy::result_large_err,
        reason = "a refusal's answer moves unboxed into the response future: one allocation fewer per 429, measured"
    )]
    fn charge(
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
            let owned = self.refund.as_ref().map(|_| {
                let mut owned = Box::new(Owned::new(cost));
                for ((rule, tier), key) in rules.iter().zip(tiers).zip(keys) {
                    for handle in rule.handles.get(*tier).into_iter().flatten() {
                        owned.push(handle.clone(), key.clone().into_owned());
                    }
                }
                owned
            });
            Ok((self.store.check(charges), tiers.clone(), owned))
        });
        gathered.map_err(|error| self.refuse_key(&error))?
    }

    /// Reads the key and tier under every rule not in `skip` and the
    /// request's cost, and hands `then` the charges they make (with the
    /// tiers and keys they were made from).
    fn gather<R>(
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
    fn charge_one(
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

    /// Turns the store's answer into what the layer does, or into a
    /// recheck without a rule in shadow mode that would have refused.
    #[inline]
    fn step(
        &self,
        rules: &[Rule<St::Handle>],
        result: Result<Verdict, StoreError>,
        tiers: &[usize],
        skip: Skip,
        owned: Option<Box<Owned<St::Handle>>>,
    ) -> Step {
        // The common case, kept small enough to inline: admitted, with no
        // fields to add and no refund to prepare.
        match result {
            Ok(verdict)
                if verdict.decision.is_allowed()
                    && !self.headers_on_allowed
                    && owned.is_none()
                    && !cfg!(feature = "metrics") =>
            {
                Step::Done(Conclusion::Admit {
                    permits: verdict.permits,
                    after: None,
                })
            }
            result => self.step_in_full(rules, result, tiers, skip, owned),
        }
    }

    /// [`step`](Self::step) for every other case.
    #[inline(never)]
    fn step_in_full(
        &self,
        rules: &[Rule<St::Handle>],
        result: Result<Verdict, StoreError>,
        tiers: &[usize],
        skip: Skip,
        owned: Option<Box<Owned<St::Handle>>>,
    ) -> Step {
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(error) => return Step::Done(self.store_failed(&error)),
        };
        let decision = verdict.decision;
        if decision.is_allowed() {
            #[cfg(feature = "metrics")]
            for (rule, &tier) in rules.iter().zip(tiers) {
                rule.metrics.allowed(tier);
            }
            let headers = self
                .headers_on_allowed
                .then(|| self.fields(rules, &decision, tiers));
            let refund = match (&self.refund, owned, verdict.receipt) {
                (Some(when), Some(owned), Some(receipt)) => Some(Box::new(Ticket::new(
                    self.store.clone(),
                    Arc::clone(when),
                    owned,
                    receipt,
                ))
                    as Box<dyn Refund>),
                _ => None,
            };
            let after = (headers.is_some() || refund.is_some())
                .then(|| Box::new(After { headers, refund }));
            return Step::Done(Conclusion::Admit {
                permits: verdict.permits,
                after,
            });
        }
        let Some(found) = locate(rules, decision.policy(), tiers) else {
            // A store answered a policy position that does not exist: refuse
            // rather than guess, with the store failure answer.
            return Step::Done(self.store_failed(&StoreError::Unavailable(
                "store reported an unknown policy".into(),
            )));
        };
        let Located {
            position,
            rule,
            tier,
            index,
            limit,
        } = found;
        let tier_name = rule.plans.tiers()[tier].name();
        let tier_shadow = rule.plans.tiers()[tier].mode() == Mode::Shadow;
        if self.shadow || tier_shadow {
            #[cfg(feature = "metrics")]
            rule.metrics.shadow_rejected(tier, index);
            tracing::debug!(
                policy = limit.name(),
                tier = tier_name,
                retry_after_ms = decision.retry_after().map_or(u128::MAX, |d| d.as_millis()),
                "tollgate shadow mode: would reject"
            );
            if self.shadow {
                return Step::Done(Conclusion::Admit {
                    permits: verdict.permits,
                    after: None,
                });
            }
            return Step::Recheck(skip | (1 << position));
        }
        tracing::debug!(
            policy = limit.name(),
            tier = tier_name,
            "request rate limited"
        );
        #[cfg(feature = "metrics")]
        rule.metrics.rejected(tier, index);
        let text = &rule.texts[tier][index];
        let response = match &self.on_reject {
            None => answer::too_many_requests(
                text,
                policy_field(rules, tiers),
                limit,
                &decision,
                self.legacy_headers,
            ),
            Some(custom) => {
                let headers = self.fields(rules, &decision, tiers);
                custom(&Rejection::RateLimited(RateLimited {
                    decision: &decision,
                    policy: limit,
                    tier: tier_name,
                    headers: &headers,
                    text,
                }))
            }
        };
        Step::Done(Conclusion::Answer(response))
    }

    /// Reads the request's keys and tiers under the rules in force and asks
    /// the store what it would answer, charging nothing.
    pub(crate) fn look<B>(&self, request: &Request<B>) -> Result<Looked<St>, KeyError> {
        let info = RequestInfo::new(request);
        let rules = self.rules.load_full();
        self.gather(&rules, &info, 0, |charges, tiers, _, _| {
            let checked = (!charges.is_empty()).then(|| self.store.peek(charges));
            (checked, tiers.clone())
        })
        .map(|(checked, tiers)| Looked {
            checked,
            tiers,
            rules: Arc::clone(&rules),
        })
    }

    /// What a peek found, with the fields the layer would send.
    pub(crate) fn peeked(&self, looked: &Looked<St>, decision: Decision) -> Peeked {
        let rules: &[Rule<St::Handle>] = &looked.rules;
        let found = locate(rules, decision.policy(), &looked.tiers);
        let mut headers = HeaderMap::new();
        if let Some(found) = &found {
            answer::insert_fields(
                &mut headers,
                policy_field(rules, &looked.tiers),
                Some(found.limit),
                &decision,
                self.legacy_headers,
            );
        }
        Peeked {
            decision,
            policy: found.as_ref().map(|f| f.limit.clone()),
            tier: found.map(|f| f.rule.plans.tiers()[f.tier].name().to_owned()),
            headers,
        }
    }

    fn refuse_key(&self, error: &KeyError) -> Conclusion {
        tracing::debug!(%error, "no usable rate-limit key");
        #[cfg(feature = "metrics")]
        self.metrics.key_rejected(error);
        Conclusion::Answer(self.answer(&Rejection::Key(error)))
    }

    fn store_failed(&self, error: &StoreError) -> Conclusion {
        #[cfg(feature = "metrics")]
        self.metrics.store_error(error);
        match self.on_store_error {
            OnStoreError::FailOpen => {
                tracing::debug!(%error, "rate-limit store failed; failing open");
                Conclusion::Admit {
                    permits: Permits::none(),
                    after: None,
                }
            }
            OnStoreError::FailClosed => {
                tracing::debug!(%error, "rate-limit store failed; failing closed");
                Conclusion::Answer(self.answer(&Rejection::Store(error)))
            }
        }
    }

    fn answer(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        match &self.on_reject {
            Some(custom) => custom(rejection),
            None => rejection.to_response(),
        }
    }

    /// The rate-limit fields for a decision.
    fn fields(
        &self,
        rules: &[Rule<St::Handle>],
        decision: &Decision,
        tiers: &[usize],
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let limit = locate(rules, decision.policy(), tiers).map(|found| found.limit);
        answer::insert_fields(
            &mut headers,
            policy_field(rules, tiers),
            limit,
            decision,
            self.legacy_headers,
        );
        headers
    }
}

/// Whether the rule at `position` is skipped.
fn skipped(skip: Skip, position: usize) -> bool {
    position < Skip::BITS as usize && skip & (1 << position) != 0
}

/// Where a charge of a check came from.
struct Located<'a, H> {
    /// The rule's position.
    position: usize,
    rule: &'a Rule<H>,
    tier: usize,
    /// The limit's position in its tier.
    index: usize,
    limit: &'a Limit,
}

/// The rule, tier and limit of the charge at `charge`.
fn locate<'a, H>(rules: &'a [Rule<H>], charge: usize, tiers: &[usize]) -> Option<Located<'a, H>> {
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
fn policy_field<H>(rules: &[Rule<H>], tiers: &[usize]) -> HeaderValue {
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
