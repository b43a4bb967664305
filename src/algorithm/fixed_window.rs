use std::sync::atomic::{AtomicU64, Ordering};

use super::cell::update_u64;
use super::divisor::Divisor;
use super::{Algorithm, Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::quota::Quota;

/// Fixed window counter: at most `count` units per window of `period`,
/// windows aligned to the clock's origin.
///
/// The state is one word: the window number (low 32 bits of
/// `now / period`) in the high half, the units used in the low half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    period: u64,
    per_period: Divisor,
    limit: u64,
}

fn unpack(word: u64) -> (u32, u64) {
    ((word >> 32) as u32, word & 0xFFFF_FFFF)
}

fn pack(window: u32, used: u64) -> u64 {
    (u64::from(window) << 32) | (used & 0xFFFF_FFFF)
}

impl FixedWindow {
    /// The fixed window for a rate quota (its burst is not used).
    pub fn new(quota: &Quota) -> Self {
        let period = quota.period_nanos().max(1);
        Self {
            period,
            per_period: Divisor::new(period),
            limit: quota.count().min(u64::from(u32::MAX)),
        }
    }

    /// The pure step over the packed state.
    #[inline]
    pub fn step(&self, word: u64, now: Nanos, cost: u64) -> (Outcome, Option<u64>) {
        let mut index = self.per_period.div(now);
        let mut window = index as u32;
        let (stored, used) = unpack(word);
        // A concurrent caller that read a later clock may already have moved
        // the state to the next window: count this request there too rather
        // than overwrite it.
        // Only the very next window can be seen that way; any other stored
        // window is an older one (the number wraps after 2^32 windows).
        if stored == window.wrapping_add(1) && (word & 0xFFFF_FFFF) != 0 {
            index += 1;
            window = stored;
        }
        let used = if stored == window {
            used.min(self.limit)
        } else {
            0
        };
        let reset = ((index + 1) * self.period).saturating_sub(now);
        if cost > self.limit {
            return (
                Outcome::deny(self.limit, self.limit - used, reset, RETRY_NEVER),
                None,
            );
        }
        if used + cost <= self.limit {
            let used = used + cost;
            (
                Outcome::allow(self.limit, self.limit - used, reset),
                Some(pack(window, used)),
            )
        } else {
            (
                Outcome::deny(self.limit, self.limit - used, reset, reset),
                None,
            )
        }
    }
}

impl Algorithm for FixedWindow {
    type State = AtomicU64;

    fn new_state(&self) -> AtomicU64 {
        AtomicU64::new(0)
    }

    #[inline]
    fn acquire(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        update_u64(state, |word| self.step(word, now, cost))
    }

    fn peek(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        self.step(state.load(Ordering::Acquire), now, cost).0
    }

    fn refund(&self, state: &AtomicU64, charged_at: Nanos, cost: u64) {
        let window = self.per_period.div(charged_at) as u32;
        update_u64(state, |word| {
            let (stored, used) = unpack(word);
            if stored != window || used == 0 {
                return ((), None);
            }
            ((), Some(pack(window, used - cost.min(used))))
        });
    }

    fn is_idle(&self, state: &AtomicU64, now: Nanos) -> bool {
        let (stored, used) = unpack(state.load(Ordering::Acquire));
        used == 0 || stored != self.per_period.div(now) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn admits_the_quota_per_window_and_resets_at_the_boundary() {
        let w = FixedWindow::new(&"3/minute".parse().expect("quota"));
        let st = w.new_state();
        let start = 60 * S; // a window boundary
        for i in 0..3 {
            assert_eq!(w.acquire(&st, start + i, 1).remaining, 2 - i);
        }
        let denied = w.acquire(&st, start + 10 * S, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, 50 * S);
        assert!(!w.acquire(&st, 120 * S - 1, 1).allowed);
        assert!(w.acquire(&st, 120 * S, 1).allowed);
        assert!(!w.is_idle(&st, 120 * S));
        assert!(w.is_idle(&st, 180 * S));
    }

    #[test]
    fn refund_only_touches_the_window_charged() {
        let w = FixedWindow::new(&"2/second".parse().expect("quota"));
        let st = w.new_state();
        assert!(w.acquire(&st, S, 2).allowed);
        w.refund(&st, S, 1);
        assert!(w.acquire(&st, S, 1).allowed);
        assert!(!w.acquire(&st, S, 1).allowed);
        assert!(w.acquire(&st, 2 * S, 2).allowed);
        w.refund(&st, S, 2); // old window: ignored
        assert!(!w.acquire(&st, 2 * S, 1).allowed);
        assert_eq!(w.acquire(&st, 2 * S, 3).retry_after, RETRY_NEVER);
    }
}
