//! The state every clone of the layer and service shares, and the decision
//! taken for each request.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use smallvec::SmallVec;

use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::{Key, KeyError, RequestInfo};
use crate::limit::Limit;
use crate::response::answer;
use crate::response::{RateLimited, Rejection};
use crate::rule::Rule;
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

pub(crate) struct Shared<St: Store> {
    pub(crate) store: St,
    pub(crate) rules: Vec<Rule<St::Handle>>,
    pub(crate) cost: Option<CostFn>,
    pub(crate) headers_on_allowed: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) shadow: bool,
    pub(crate) on_store_error: OnStoreError,
    pub(crate) on_reject: Option<RejectFn>,
}

impl<St: Store> Clone for Shared<St> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            rules: self.rules.clone(),
            cost: self.cost.clone(),
            headers_on_allowed: self.headers_on_allowed,
            legacy_headers: self.legacy_headers,
            shadow: self.shadow,
            on_store_error: self.on_store_error,
            on_reject: self.on_reject.clone(),
        }
    }
}

/// The tier chosen under each rule, by position.
pub(crate) type Tiers = SmallVec<[usize; 2]>;

/// What the layer does with a request.
pub(crate) enum Conclusion {
    /// Call the inner service; hold the permits; add these fields.
    Admit {
        permits: Permits,
        headers: Option<Box<HeaderMap>>,
    },
    /// Answer this instead (boxed, so the admitted path moves small values).
    Answer(Box<Response<Bytes>>),
}

pub(crate) enum Evaluation<F> {
    Done(Conclusion),
    Pending(F, Tiers),
}

impl<St: Store> Shared<St> {
    /// Reads the request's keys and tiers and runs the check.
    #[inline]
    pub(crate) fn evaluate<B>(&self, request: &Request<B>) -> Evaluation<St::Future> {
        let info = RequestInfo::new(request);
        if let [rule] = self.rules.as_slice() {
            return self.evaluate_one(rule, &info);
        }
        let mut keys: SmallVec<[Key<'_>; 2]> = SmallVec::new();
        let mut tiers: Tiers = SmallVec::new();
        for rule in &self.rules {
            match rule.extractor.extract(&info) {
                Ok(identity) => {
                    let (key, tier) = identity.into_parts();
                    tiers.push(rule.plans.index_of(tier.as_ref().map(|t| t.as_str())));
                    keys.push(key);
                }
                Err(error) => return Evaluation::Done(self.refuse_key(&error)),
            }
        }
        let cost = self.cost.as_ref().map_or(1, |cost| cost(&info)).max(1);
        let mut charges: SmallVec<[Charge<'_, St::Handle>; 8]> = SmallVec::new();
        for ((rule, tier), key) in self.rules.iter().zip(&tiers).zip(&keys) {
            for handle in &rule.handles[*tier] {
                charges.push(Charge::new(handle, key, cost));
            }
        }
        self.settle(self.store.check(&charges), tiers)
    }

    /// [`evaluate`](Self::evaluate) for the common layer of one rule: no
    /// staging of keys, and a single limit charged straight from the stack.
    #[inline]
    fn evaluate_one(
        &self,
        rule: &Rule<St::Handle>,
        info: &RequestInfo<'_>,
    ) -> Evaluation<St::Future> {
        let (key, tier) = match rule.extractor.extract(info) {
            Ok(identity) => identity.into_parts(),
            Err(error) => return Evaluation::Done(self.refuse_key(&error)),
        };
        let tier = rule.plans.index_of(tier.as_ref().map(|t| t.as_str()));
        let cost = self.cost.as_ref().map_or(1, |cost| cost(info)).max(1);
        let handles = &rule.handles[tier];
        let checked = if let [handle] = handles.as_slice() {
            self.store.check(&[Charge::new(handle, &key, cost)])
        } else {
            let charges: SmallVec<[Charge<'_, St::Handle>; 8]> =
                handles.iter().map(|h| Charge::new(h, &key, cost)).collect();
            self.store.check(&charges)
        };
        self.settle(checked, smallvec::smallvec![tier])
    }

    /// Concludes an answer known now, or carries the pending one with the
    /// tiers needed to conclude it later.
    #[inline]
    fn settle(&self, checked: Checked<St::Future>, tiers: Tiers) -> Evaluation<St::Future> {
        match checked {
            Checked::Ready(result) => Evaluation::Done(self.conclude(result, &tiers)),
            Checked::Pending(future) => Evaluation::Pending(future, tiers),
        }
    }

    /// Turns the store's answer into what the layer does.
    pub(crate) fn conclude(
        &self,
        result: Result<Verdict, StoreError>,
        tiers: &[usize],
    ) -> Conclusion {
        let verdict = match result {
            Ok(verdict) => verdict,
            Err(error) => return self.store_failed(&error),
        };
        let decision = verdict.decision;
        if decision.is_allowed() {
            let headers = if self.headers_on_allowed {
                Some(Box::new(self.fields(&decision, tiers)))
            } else {
                None
            };
            return Conclusion::Admit {
                permits: verdict.permits,
                headers,
            };
        }
        let Some((rule, tier, index, limit)) = self.locate(decision.policy(), tiers) else {
            // A store answered a policy position that does not exist: refuse
            // rather than guess, with the store failure answer.
            return self.store_failed(&StoreError::Unavailable(
                "store reported an unknown policy".into(),
            ));
        };
        let tier_name = rule.plans.tiers()[tier].name();
        if self.shadow {
            tracing::info!(
                policy = limit.name(),
                tier = tier_name,
                retry_after_ms = decision.retry_after().map_or(u128::MAX, |d| d.as_millis()),
                "tollgate shadow mode: would reject"
            );
            return Conclusion::Admit {
                permits: verdict.permits,
                headers: None,
            };
        }
        tracing::debug!(
            policy = limit.name(),
            tier = tier_name,
            "request rate limited"
        );
        let text = &rule.texts[tier][index];
        let response = match &self.on_reject {
            None => answer::too_many_requests(
                text,
                self.policy_field(tiers),
                limit,
                &decision,
                self.legacy_headers,
            ),
            Some(custom) => {
                let headers = self.fields(&decision, tiers);
                custom(&Rejection::RateLimited(RateLimited {
                    decision: &decision,
                    policy: limit,
                    tier: tier_name,
                    headers: &headers,
                    text,
                }))
            }
        };
        Conclusion::Answer(Box::new(response))
    }

    fn refuse_key(&self, error: &KeyError) -> Conclusion {
        tracing::debug!(%error, "no usable rate-limit key");
        Conclusion::Answer(self.answer(&Rejection::Key(error)))
    }

    fn store_failed(&self, error: &StoreError) -> Conclusion {
        match self.on_store_error {
            OnStoreError::FailOpen => {
                tracing::debug!(%error, "rate-limit store failed; failing open");
                Conclusion::Admit {
                    permits: Permits::none(),
                    headers: None,
                }
            }
            OnStoreError::FailClosed => {
                tracing::debug!(%error, "rate-limit store failed; failing closed");
                Conclusion::Answer(self.answer(&Rejection::Store(error)))
            }
        }
    }

    fn answer(&self, rejection: &Rejection<'_>) -> Box<Response<Bytes>> {
        Box::new(match &self.on_reject {
            Some(custom) => custom(rejection),
            None => rejection.to_response(),
        })
    }

    /// The rule, tier and limit of the charge at `position`.
    fn locate(
        &self,
        position: usize,
        tiers: &[usize],
    ) -> Option<(&Rule<St::Handle>, usize, usize, &Limit)> {
        let mut offset = 0;
        for (rule, &tier) in self.rules.iter().zip(tiers) {
            let limits = rule.plans.tiers()[tier].limits();
            if position < offset + limits.len() {
                let index = position - offset;
                return Some((rule, tier, index, &limits[index]));
            }
            offset += limits.len();
        }
        None
    }

    /// `RateLimit-Policy`: the items of every tier charged.
    fn policy_field(&self, tiers: &[usize]) -> HeaderValue {
        if let ([rule], [tier]) = (self.rules.as_slice(), tiers) {
            return rule.policy_items[*tier].clone();
        }
        let mut policy = BytesMut::new();
        for (rule, &tier) in self.rules.iter().zip(tiers) {
            if !policy.is_empty() {
                policy.put_slice(b", ");
            }
            policy.put_slice(rule.policy_items[tier].as_bytes());
        }
        HeaderValue::from_maybe_shared(policy.freeze())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The rate-limit fields for a decision.
    fn fields(&self, decision: &Decision, tiers: &[usize]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let limit = self
            .locate(decision.policy(), tiers)
            .map(|(_, _, _, limit)| limit);
        answer::insert_fields(
            &mut headers,
            self.policy_field(tiers),
            limit,
            decision,
            self.legacy_headers,
        );
        headers
    }
}
