//! [`Decision`]: what a check answers.

use std::time::Duration;

use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::clock::Nanos;

/// The answer to one admission check, over every limit the request charged.
///
/// When allowed, the request passes after [`delay`](Decision::delay) (zero
/// unless a limit with a queue delays it: the longest such wait), and the
/// figures are those of the limit closest to running out
/// (the fewest units remaining; of limits tied there, the one with the
/// longest [`window`](Decision::window), so the plan as a whole has no more
/// than [`remaining`](Decision::remaining) units until then); when denied,
/// those of the limit that denied (the one that asks the longest wait when
/// several do). [`Decision::policy`] is that limit's position in the list
/// of charges.
///
/// These are the figures of the `RateLimit` field of
/// `draft-ietf-httpapi-ratelimit-headers`: `r` is
/// [`remaining`](Decision::remaining), `t` is
/// [`window`](Decision::window) in whole seconds rounded up, and
/// `Retry-After` is [`retry_after`](Decision::retry_after) rounded up, never
/// before the end of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    policy: usize,
    limit: u64,
    remaining: u64,
    window: Nanos,
    retry_after: Nanos,
}

impl Decision {
    /// A decision from one limit's outcome; `policy` is its position.
    pub fn from_outcome(policy: usize, outcome: Outcome) -> Self {
        Self {
            allowed: outcome.allowed,
            policy,
            limit: outcome.limit,
            remaining: outcome.remaining,
            window: outcome.window,
            // Allowed: the delay (0 unless a queued limit delays it).
            retry_after: outcome.retry_after,
        }
    }

    /// A decision that lets the request through with no limit charged (for
    /// example, failing open while a store is away).
    pub fn unlimited() -> Self {
        Self {
            allowed: true,
            policy: usize::MAX,
            limit: u64::MAX,
            remaining: u64::MAX,
            window: 0,
            retry_after: 0,
        }
    }

    /// Folds the outcome of the limit at `policy` into the decision over
    /// several limits (see the type's docs for which one is reported).
    #[must_use]
    pub fn merge(self, policy: usize, outcome: Outcome) -> Self {
        let other = Self::from_outcome(policy, outcome);
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) if other.retry_after > self.retry_after => other,
            (false, false) => self,
            (true, true) => {
                // The request passes when its latest limit lets it.
                let delay = self.retry_after.max(other.retry_after);
                let tightest = if other.remaining < self.remaining
                    || (other.remaining == self.remaining && other.window > self.window)
                {
                    other
                } else {
                    self
                };
                Self {
                    retry_after: delay,
                    ..tightest
                }
            }
        }
    }

    /// The same allowed decision passing `delay` nanoseconds after the
    /// check (its charges were taken for then).
    #[must_use]
    pub(crate) fn delayed_by(self, delay: Nanos) -> Self {
        if self.allowed {
            Self {
                retry_after: delay,
                ..self
            }
        } else {
            self
        }
    }

    /// The same decision naming the limit at `policy` instead (a store
    /// that judged a check's charges in another order).
    #[must_use]
    #[cfg(feature = "redis")]
    pub(crate) fn at_policy(self, policy: usize) -> Self {
        Self { policy, ..self }
    }

    /// Whether the request may proceed (now, or after its
    /// [`delay`](Self::delay)).
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Whether the request may proceed at once: allowed, with no delay.
    #[inline]
    pub(crate) fn passes_now(&self) -> bool {
        self.allowed && self.retry_after == 0
    }

    /// Position, in the list of charges, of the limit this decision reports;
    /// `usize::MAX` for [`Decision::unlimited`].
    pub fn policy(&self) -> usize {
        self.policy
    }

    /// The reported limit's quota count (the `count` of its [`Quota`](crate::Quota)).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Units that can be spent now (after this request when allowed): the
    /// `r` of the `RateLimit` field. Never more than the limit's capacity
    /// (a GCRA's burst, a window's count).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The effective window: the time until more than
    /// [`remaining`](Decision::remaining) units can be spent. A client that
    /// spends the remaining units now gets the next one this long from now;
    /// on a refusal it is the wait for one unit more than remains, at most
    /// [`retry_after`](Decision::retry_after). The `t` of the `RateLimit`
    /// field (`draft-ietf-httpapi-ratelimit-headers`, section 4.1.2).
    ///
    /// | algorithm | window |
    /// |---|---|
    /// | GCRA | until the bucket gains its next whole unit (at most one emission interval) |
    /// | fixed window | until the window ends |
    /// | sliding window counter | until the estimate has room for one unit more than remains |
    /// | sliding log | until the oldest logged request leaves the window (a period for an empty log) |
    /// | concurrency | zero: room comes back when requests finish |
    ///
    /// Replaces `reset()` (the time until the allowance was full again).
    pub fn window(&self) -> Duration {
        Duration::from_nanos(self.window)
    }

    /// Time until the same request would pass, to the nanosecond: `None`
    /// when allowed, and also when it can never pass because its cost
    /// exceeds the limit's capacity (see [`Decision::is_impossible`]).
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed || self.retry_after == RETRY_NEVER {
            None
        } else {
            Some(Duration::from_nanos(self.retry_after))
        }
    }

    /// How long an allowed request waits before it passes: zero unless a
    /// limit with a [queue](crate::Quota::with_queue) delays it (the longest
    /// wait over the request's limits); zero when refused.
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos())
    }

    /// [`delay`](Self::delay) in nanoseconds.
    #[inline]
    pub(crate) fn delay_nanos(&self) -> Nanos {
        if self.allowed {
            self.retry_after
        } else {
            0
        }
    }

    /// Whether the request was denied because its cost exceeds the limit's
    /// whole capacity, so waiting will not help.
    pub fn is_impossible(&self) -> bool {
        !self.allowed && self.retry_after == RETRY_NEVER
    }

    /// `retry_after` in nanoseconds (0 when allowed).
    pub(crate) fn retry_after_nanos(&self) -> Nanos {
        if self.allowed {
            0
        } else {
            self.retry_after
        }
    }

    /// `window` in nanoseconds.
    pub(crate) fn window_nanos(&self) -> Nanos {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_reports_the_tightest_allow_and_the_longest_denial() {
        let a = Outcome::allow(10, 5, 100);
        let b = Outcome::allow(1000, 2, 50);
        let d = Decision::from_outcome(0, a).merge(1, b);
        assert!(d.is_allowed());
        assert_eq!((d.policy(), d.remaining()), (1, 2));

        let short = Outcome::deny(10, 0, 10, 5);
        let long = Outcome::deny(1000, 0, 90, 80);
        let d = Decision::from_outcome(0, a).merge(1, short).merge(2, long);
        assert!(!d.is_allowed());
        assert_eq!(d.policy(), 2);
        assert_eq!(d.retry_after(), Some(Duration::from_nanos(80)));
        assert!(!d.is_impossible());
    }

    #[test]
    fn merge_keeps_the_longest_delay_and_a_refusal_has_none() {
        let soon = Outcome::allow_after(5, 0, 200, 200);
        let later = Outcome::allow_after(10, 3, 100, 600);
        let at_once = Outcome::allow(10, 1, 100);
        let d = Decision::from_outcome(0, later)
            .merge(1, at_once)
            .merge(2, soon);
        assert!(d.is_allowed());
        // The figures are the tightest limit's; the delay is the longest.
        assert_eq!((d.policy(), d.remaining()), (2, 0));
        assert_eq!(d.delay(), Duration::from_nanos(600));
        assert_eq!(d.retry_after(), None);
        let refused = d.merge(3, Outcome::deny(1, 0, 10, 70));
        assert_eq!(refused.delay(), Duration::ZERO);
        assert_eq!(refused.retry_after(), Some(Duration::from_nanos(70)));
        assert_eq!(Decision::from_outcome(0, at_once).delay(), Duration::ZERO);
    }
}
