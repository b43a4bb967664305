//! [`Decision`]: what a check answers.

use std::time::Duration;

use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::clock::Nanos;

/// The answer to one admission check, over every limit the request charged.
///
/// When allowed, the figures are those of the limit closest to running out;
/// when denied, those of the limit that denied (the one that asks the longest
/// wait when several do). [`Decision::policy`] is that limit's position in
/// the list of charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    policy: usize,
    limit: u64,
    remaining: u64,
    reset: Nanos,
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
            reset: outcome.reset,
            retry_after: if outcome.allowed {
                0
            } else {
                outcome.retry_after
            },
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
            reset: 0,
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
            (true, true)
                if other.remaining < self.remaining
                    || (other.remaining == self.remaining && other.reset > self.reset) =>
            {
                other
            }
            (true, true) => self,
        }
    }

    /// The same decision naming the limit at `policy` instead (a store
    /// that judged a check's charges in another order).
    #[must_use]
    #[cfg(feature = "redis")]
    pub(crate) fn at_policy(self, policy: usize) -> Self {
        Self { policy, ..self }
    }

    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Position, in the list of charges, of the limit this decision reports;
    /// `usize::MAX` for [`Decision::unlimited`].
    pub fn policy(&self) -> usize {
        self.policy
    }

    /// The reported limit's quota.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Units left (after this request when allowed).
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Time until the reported limit's allowance is full again.
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.reset)
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

    /// Whether the request was denied because its cost exceeds the limit's
    /// whole capacity, so waiting will not help.
    pub fn is_impossible(&self) -> bool {
        !self.allowed && self.retry_after == RETRY_NEVER
    }

    /// `retry_after` in nanoseconds (0 when allowed).
    pub(crate) fn retry_after_nanos(&self) -> Nanos {
        self.retry_after
    }

    /// `reset` in nanoseconds.
    pub(crate) fn reset_nanos(&self) -> Nanos {
        self.reset
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
}
