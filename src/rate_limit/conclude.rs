//! Concluding: what the store's answer leads to (admit, refuse with the
//! fields, or check again without a rule in shadow mode), and the answers to
//! a request without a usable key or a store that failed.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response};

use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::KeyError;
use crate::plan::mode::Mode;
use crate::rate_limit::delay::{self, Wait};
use crate::rate_limit::evaluate::{Conclusion, Step};
use crate::rate_limit::locate::{locate, policy_field, Located};
use crate::rate_limit::refund::{After, Owned, Refund, Ticket};
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::Skip;
use crate::rate_limit::state::{OnStoreError, Shared};
use crate::response::answer;
use crate::response::{RateLimited, Rejection};
use crate::store::{Permits, Receipt, Store, Verdict};

impl<St: Store> Shared<St> {
    /// Turns the store's answer into what the layer does, or into a
    /// recheck without a rule in shadow mode that would have refused.
    #[inline]
    pub(super) fn step(
        &self,
        rules: &[Rule<St::Handle>],
        result: Result<Verdict, StoreError>,
        tiers: &[usize],
        skip: Skip,
        owned: Option<Box<Owned<St::Handle>>>,
    ) -> Step {
        // The common case, kept small enough to inline: admitted, with no
        // fields to add and no refund to prepare. With metrics on, the
        // admission is counted here too rather than sending every admitted
        // request down the out-of-line path.
        match result {
            Ok(verdict)
                if verdict.decision.passes_now() && !self.headers_on_allowed && owned.is_none() =>
            {
                #[cfg(feature = "metrics")]
                count_allowed(rules, tiers);
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
    pub(super) fn step_in_full(
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
            count_allowed(rules, tiers);
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
            let delay = decision.delay_nanos();
            if delay != 0 {
                return self.delay(rules, &decision, tiers, skip, verdict.receipt, after);
            }
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

    /// An admission to pass after the decision's delay.
    #[cold]
    fn delay(
        &self,
        rules: &[Rule<St::Handle>],
        decision: &Decision,
        tiers: &[usize],
        skip: Skip,
        receipt: Option<Receipt>,
        after: Option<Box<After>>,
    ) -> Step {
        let found = locate(rules, decision.policy(), tiers);
        let policy = found.as_ref().map(|found| found.limit.name());
        let tier_shadow = found
            .as_ref()
            .is_some_and(|found| found.rule.plans.tiers()[found.tier].mode() == Mode::Shadow);
        if self.shadow || tier_shadow {
            // Shadow mode changes no answer: the request passes at once.
            tracing::debug!(
                policy,
                delay_ms = decision.delay().as_millis(),
                "tollgate shadow mode: would delay"
            );
            return Step::Done(Conclusion::Admit {
                permits: Permits::none(),
                after,
            });
        }
        if !delay::can_wait() {
            // No timer to wait on: refuse rather than let it pass early.
            // Its place stays reserved (always safe for the rate).
            let error = StoreError::Unavailable(
                "a limit delays this request, but no Tokio runtime is running to wait on".into(),
            );
            tracing::error!(%error, "tollgate delay mode");
            return Step::Done(Conclusion::Answer(self.answer(&Rejection::Store(&error))));
        }
        tracing::debug!(
            policy,
            delay_ms = decision.delay().as_millis(),
            "request delayed"
        );
        #[cfg(feature = "metrics")]
        for (rule, &tier) in rules.iter().zip(tiers) {
            rule.metrics.delayed(tier, decision.delay());
        }
        Step::Delay(Box::new(Wait {
            delay: decision.delay_nanos(),
            after,
            receipt,
            skip,
            cancel: None,
        }))
    }

    pub(super) fn refuse_key(&self, error: &KeyError) -> Conclusion {
        tracing::debug!(%error, "no usable rate-limit key");
        #[cfg(feature = "metrics")]
        self.metrics.key_rejected(error);
        Conclusion::Answer(self.answer(&Rejection::Key(error)))
    }

    pub(super) fn store_failed(&self, error: &StoreError) -> Conclusion {
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

    pub(super) fn answer(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        match &self.on_reject {
            Some(custom) => custom(rejection),
            None => rejection.to_response(),
        }
    }

    /// The rate-limit fields for a decision.
    pub(super) fn fields(
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

/// Counts an admission on every rule that checked it, in its tier.
#[cfg(feature = "metrics")]
#[inline]
fn count_allowed<H>(rules: &[Rule<H>], tiers: &[usize]) {
    for (rule, &tier) in rules.iter().zip(tiers) {
        rule.metrics.allowed(tier);
    }
}
