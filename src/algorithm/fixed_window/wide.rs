//! [`WideFixedWindow`]: the fixed window counter on two words, for the
//! quotas whose window numbers do not fit [`FixedWindow`](super::FixedWindow)'s
//! one word over the clock's whole range.

use portable_atomic::{AtomicU128, Ordering};

use super::decide;
use crate::algorithm::cell::update_u128;
use crate::algorithm::divisor::Divisor;
use crate::algorithm::{Algorithm, Outcome};
use crate::clock::Nanos;
use crate::quota::Quota;

/// Fixed window counter whose state keeps the whole window number (64
/// bits) beside the units used (64 bits): never mistaken for another
/// window, whatever the quota. Answers as [`FixedWindow`](super::FixedWindow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideFixedWindow {
    period: u64,
    per_period: Divisor,
    limit: u64,
}

fn unpack(word: u128) -> (u64, u64) {
    ((word >> 64) as u64, word as u64)
}

fn pack(window: u64, used: u64) -> u128 {
    (u128::from(window) << 64) | u128::from(used)
}

impl WideFixedWindow {
    /// The fixed window for a rate quota (its burst is not used).
    pub fn new(quota: &Quota) -> Self {
        let period = quota.period_nanos().max(1);
        Self {
            period,
            per_period: Divisor::new(period),
            limit: quota.count(),
        }
    }

    /// The pure step over the state.
    #[inline]
    pub fn step(&self, word: u128, now: Nanos, cost: u64) -> (Outcome, Option<u128>) {
        let (outcome, next) = decide(
            self.period,
            self.per_period.div(now),
            u64::MAX,
            self.limit,
            unpack(word),
            now,
            cost,
        );
        (outcome, next.map(|(w, u)| pack(w, u)))
    }
}

impl Algorithm for WideFixedWindow {
    type State = AtomicU128;

    fn new_state(&self) -> AtomicU128 {
        AtomicU128::new(0)
    }

    #[inline]
    fn acquire(&self, state: &AtomicU128, now: Nanos, cost: u64) -> Outcome {
        update_u128(state, |word| self.step(word, now, cost))
    }

    fn peek(&self, state: &AtomicU128, now: Nanos, cost: u64) -> Outcome {
        self.step(state.load(Ordering::Acquire), now, cost).0
    }

    fn refund(&self, state: &AtomicU128, charged_at: Nanos, cost: u64) {
        let window = self.per_period.div(charged_at);
        update_u128(state, |word| {
            let (stored, used) = unpack(word);
            if stored != window || used == 0 {
                return ((), None);
            }
            ((), Some(pack(window, used - cost.min(used))))
        });
    }

    fn is_idle(&self, state: &AtomicU128, now: Nanos) -> bool {
        let (stored, used) = unpack(state.load(Ordering::Acquire));
        used == 0 || stored != self.per_period.div(now)
    }

    fn used(&self, state: &AtomicU128, now: Nanos) -> u64 {
        let (stored, used) = unpack(state.load(Ordering::Acquire));
        let window = self.per_period.div(now);
        // A concurrent caller may have moved the key to the next window.
        if stored == window || stored == window.wrapping_add(1) {
            used
        } else {
            0
        }
    }
}
