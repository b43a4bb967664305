use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::cell::update_u64;
use super::{Algorithm, Outcome};
use crate::clock::Nanos;
use crate::quota::Quota;

/// At most `count` units in flight per key.
///
/// A unit is taken when the request is admitted and given back with
/// [`refund`](Algorithm::refund) when its permit ends (the store ties that
/// to the end of the response body). The state is shared through an `Arc`
/// so a permit can release it without looking the key up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    limit: u64,
    retry_hint: u64,
}

impl Concurrency {
    /// The default `Retry-After` hint for a rejected request: 1 second.
    pub const DEFAULT_RETRY_HINT: Nanos = 1_000_000_000;

    /// Gives `cost` units back to a counter (never below zero): what a
    /// dropped permit does. Needs no limit, so a permit holds none.
    pub(crate) fn release(state: &AtomicU64, cost: u64) {
        update_u64(state, |n| ((), (n > 0).then(|| n - cost.min(n))));
    }

    /// Takes `cost` units from a counter if the limit allows, atomically.
    #[inline]
    pub(crate) fn take(&self, state: &AtomicU64, cost: u64) -> Outcome {
        update_u64(state, |n| self.step(n, cost))
    }

    /// A concurrency limit for a concurrent quota.
    pub fn new(quota: &Quota) -> Self {
        Self {
            limit: quota.count(),
            retry_hint: Self::DEFAULT_RETRY_HINT,
        }
    }

    /// Sets the retry hint given to rejected requests (a concurrency limit
    /// cannot know when a slot frees up).
    #[must_use]
    pub fn with_retry_hint(mut self, nanos: Nanos) -> Self {
        self.retry_hint = nanos.max(1);
        self
    }

    /// The pure step over the in-flight count.
    #[inline]
    pub fn step(&self, in_flight: u64, cost: u64) -> (Outcome, Option<u64>) {
        let remaining = self.limit.saturating_sub(in_flight);
        if cost <= remaining {
            (
                Outcome::allow(self.limit, remaining - cost, 0),
                Some(in_flight + cost),
            )
        } else if cost > self.limit {
            (
                Outcome::deny(self.limit, remaining, 0, super::RETRY_NEVER),
                None,
            )
        } else {
            (
                Outcome::deny(self.limit, remaining, self.retry_hint, self.retry_hint),
                None,
            )
        }
    }
}

impl Algorithm for Concurrency {
    type State = Arc<AtomicU64>;

    fn new_state(&self) -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(0))
    }

    fn acquire(&self, state: &Arc<AtomicU64>, _now: Nanos, cost: u64) -> Outcome {
        self.take(state, cost)
    }

    fn peek(&self, state: &Arc<AtomicU64>, _now: Nanos, cost: u64) -> Outcome {
        self.step(state.load(Ordering::Acquire), cost).0
    }

    fn refund(&self, state: &Arc<AtomicU64>, _charged_at: Nanos, cost: u64) {
        Self::release(state, cost);
    }

    /// Idle when nothing is in flight and no permit holds the state.
    fn is_idle(&self, state: &Arc<AtomicU64>, _now: Nanos) -> bool {
        Arc::strong_count(state) == 1 && state.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_in_flight() {
        let c = Concurrency::new(&Quota::concurrent(2).expect("quota"));
        let st = c.new_state();
        assert!(c.acquire(&st, 0, 1).allowed);
        assert!(c.acquire(&st, 0, 1).allowed);
        let denied = c.acquire(&st, 0, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Concurrency::DEFAULT_RETRY_HINT);
        c.refund(&st, 0, 1);
        assert!(c.acquire(&st, 0, 1).allowed);
        c.refund(&st, 0, 1);
        c.refund(&st, 0, 1);
        assert!(c.is_idle(&st, 0));
        let held = Arc::clone(&st);
        assert!(!c.is_idle(&st, 0));
        drop(held);
        c.refund(&st, 0, 1); // never below zero
        assert_eq!(st.load(Ordering::Acquire), 0);
    }
}
