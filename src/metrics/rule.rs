//! [`RuleMetrics`]: the counters of one rule, per tier and per limit.

use std::time::Duration;

use ::metrics::{counter, histogram, Counter, Histogram};

use super::{
    REQUESTS_ALLOWED, REQUESTS_DELAYED, REQUESTS_REJECTED, REQUESTS_SHADOW_REJECTED, REQUEST_DELAY,
};
use crate::plan::Plans;

/// Requests let through per tier, and refused (or, in shadow mode, that
/// would have been) per tier then per limit of the rule's plans.
/// Registered when the rule is bound, so a reload registers the new plans'.
#[derive(Clone)]
pub(crate) struct RuleMetrics {
    allowed: Vec<Counter>,
    delayed: Vec<(Counter, Histogram)>,
    rejected: Vec<Vec<Counter>>,
    shadow_rejected: Vec<Vec<Counter>>,
}

impl RuleMetrics {
    /// Registers a counter per tier, and two per (limit, tier), of `plans`.
    pub(crate) fn new(plans: &Plans) -> Self {
        let per_limit = |name: &'static str| -> Vec<Vec<Counter>> {
            plans
                .tiers()
                .iter()
                .map(|tier| {
                    tier.limits()
                        .iter()
                        .map(|limit| {
                            counter!(
                                name,
                                "limit" => limit.name().to_owned(),
                                "tier" => tier.name().to_owned(),
                            )
                        })
                        .collect()
                })
                .collect()
        };
        Self {
            allowed: plans
                .tiers()
                .iter()
                .map(|tier| counter!(REQUESTS_ALLOWED, "tier" => tier.name().to_owned()))
                .collect(),
            delayed: plans
                .tiers()
                .iter()
                .map(|tier| {
                    let name = tier.name().to_owned();
                    (
                        counter!(REQUESTS_DELAYED, "tier" => name.clone()),
                        histogram!(REQUEST_DELAY, "tier" => name),
                    )
                })
                .collect(),
            rejected: per_limit(REQUESTS_REJECTED),
            shadow_rejected: per_limit(REQUESTS_SHADOW_REJECTED),
        }
    }

    /// A request this rule counted under `tier` was let through. A tier
    /// out of range (a rule skipped for this request) counts nothing.
    #[inline]
    pub(crate) fn allowed(&self, tier: usize) {
        if let Some(counter) = self.allowed.get(tier) {
            counter.increment(1);
        }
    }

    /// A request this rule counted under `tier` was admitted to pass after
    /// `delay` (it is counted among the allowed too).
    pub(crate) fn delayed(&self, tier: usize, delay: Duration) {
        if let Some((counter, histogram)) = self.delayed.get(tier) {
            counter.increment(1);
            histogram.record(delay.as_secs_f64());
        }
    }

    /// The `index`th limit of `tier` refused a request.
    #[inline]
    pub(crate) fn rejected(&self, tier: usize, index: usize) {
        increment(&self.rejected, tier, index);
    }

    /// The `index`th limit of `tier` would have refused a request (shadow mode).
    #[inline]
    pub(crate) fn shadow_rejected(&self, tier: usize, index: usize) {
        increment(&self.shadow_rejected, tier, index);
    }
}

fn increment(counters: &[Vec<Counter>], tier: usize, index: usize) {
    if let Some(counter) = counters.get(tier).and_then(|limits| limits.get(index)) {
        counter.increment(1);
    }
}
