use std::sync::atomic::{AtomicU64, Ordering};

use super::cell::update_u64;
use super::divisor::Divisor;
use super::{Algorithm, Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::quota::Quota;

mod wide;

pub use wide::WideFixedWindow;

/// Fixed window counter: at most `count` units per window of `period`,
/// windows aligned to the clock's origin.
///
/// The state is one word: the window number (`now / period`, modulo
/// `2^window_bits`) in the high bits, the units used in the low
/// `64 - window_bits`, as many as the limit needs. For every quota where
/// [`FixedWindow::is_exact`] holds (all but those of more than about one
/// unit per two nanoseconds) the clock's whole range (2^64 ns, some 584
/// years) has fewer windows than the field holds, so a window number is
/// never mistaken for another however long a key stays idle; the store
/// keeps the others in a [`WideFixedWindow`] (two words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindow {
    period: u64,
    per_period: Divisor,
    limit: u64,
    /// Bits of the units used; the window number has the others.
    used_bits: u32,
}

impl FixedWindow {
    /// The fixed window for a rate quota (its burst is not used).
    pub fn new(quota: &Quota) -> Self {
        let period = quota.period_nanos().max(1);
        let limit = quota.count();
        Self {
            period,
            per_period: Divisor::new(period),
            limit,
            used_bits: (u64::BITS - limit.leading_zeros()).max(1),
        }
    }

    /// Whether one word holds every window number of the clock's range
    /// for `quota` (else the number wraps after `2^(64 - bits(count))`
    /// windows, and the store uses a [`WideFixedWindow`]).
    pub fn is_exact(quota: &Quota) -> bool {
        Self::new(quota).exact()
    }

    fn exact(&self) -> bool {
        (u64::MAX / self.period) >> (u64::BITS - self.used_bits) == 0
    }

    fn window_mask(&self) -> u64 {
        u64::MAX >> self.used_bits
    }

    fn unpack(&self, word: u64) -> (u64, u64) {
        (
            word >> self.used_bits,
            word & (u64::MAX >> (u64::BITS - self.used_bits)),
        )
    }

    fn pack(&self, window: u64, used: u64) -> u64 {
        (window << self.used_bits) | used
    }

    /// The pure step over the packed state.
    #[inline]
    pub fn step(&self, word: u64, now: Nanos, cost: u64) -> (Outcome, Option<u64>) {
        let (stored, used) = self.unpack(word);
        let (outcome, next) = decide(
            self.period,
            self.per_period.div(now),
            self.window_mask(),
            self.limit,
            (stored, used),
            now,
            cost,
        );
        (outcome, next.map(|(w, u)| self.pack(w, u)))
    }
}

/// The rule of both forms: the state `(stored, used)` holds a window
/// number modulo `mask + 1` and its units; `index` is `now / period`.
/// Answers the outcome and, when admitted, the new state.
#[inline]
pub(super) fn decide(
    period: u64,
    index: u64,
    mask: u64,
    limit: u64,
    (stored, used): (u64, u64),
    now: Nanos,
    cost: u64,
) -> (Outcome, Option<(u64, u64)>) {
    let mut index = index;
    let mut window = index & mask;
    // A concurrent caller that read a later clock may already have moved
    // the state to the next window: count this request there too rather
    // than overwrite it. Only the very next window can be seen that way;
    // any other stored window is an older one.
    if stored == (window.wrapping_add(1) & mask) && used != 0 {
        index += 1;
        window = stored;
    }
    let used = if stored == window { used.min(limit) } else { 0 };
    // The effective window: the window's end, where the whole count
    // comes back (and not one unit sooner).
    let until_end = index
        .saturating_add(1)
        .saturating_mul(period)
        .saturating_sub(now);
    if cost > limit {
        return (
            Outcome::deny(limit, limit - used, until_end, RETRY_NEVER),
            None,
        );
    }
    if used + cost <= limit {
        let used = used + cost;
        (
            Outcome::allow(limit, limit - used, until_end),
            Some((window, used)),
        )
    } else {
        (
            Outcome::deny(limit, limit - used, until_end, until_end),
            None,
        )
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
        let window = self.per_period.div(charged_at) & self.window_mask();
        update_u64(state, |word| {
            let (stored, used) = self.unpack(word);
            if stored != window || used == 0 {
                return ((), None);
            }
            ((), Some(self.pack(window, used - cost.min(used))))
        });
    }

    fn is_idle(&self, state: &AtomicU64, now: Nanos) -> bool {
        let (stored, used) = self.unpack(state.load(Ordering::Acquire));
        used == 0 || stored != self.per_period.div(now) & self.window_mask()
    }

    fn used(&self, state: &AtomicU64, now: Nanos) -> u64 {
        let (stored, used) = self.unpack(state.load(Ordering::Acquire));
        let window = self.per_period.div(now) & self.window_mask();
        // A concurrent caller may have moved the key to the next window.
        if stored == window || stored == (window.wrapping_add(1) & self.window_mask()) {
            used
        } else {
            0
        }
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

    /// The defect an outside differential check found: with the window
    /// number in 32 bits, a key filled in one window and idle exactly
    /// 2^32 - 1 or 2^32 windows was refused in a window it never used.
    #[test]
    fn a_key_idle_for_two_to_the_32_windows_is_not_mistaken_for_a_full_one() {
        let quota: Quota = "2/ms".parse().expect("quota");
        assert!(FixedWindow::is_exact(&quota));
        let w = FixedWindow::new(&quota);
        let period = 1_000_000;
        for idle in [(1u64 << 32) - 1, 1 << 32, (1 << 32) + 1, 1 << 40] {
            let st = w.new_state();
            let start = 7 * period;
            assert!(w.acquire(&st, start, 2).allowed);
            assert!(!w.acquire(&st, start, 1).allowed, "full");
            let later = start + idle * period;
            let first = w.acquire(&st, later, 2);
            assert!(first.allowed, "idle {idle} windows: a window never used");
            assert_eq!(first.remaining, 0);
            assert!(!w.acquire(&st, later, 1).allowed);
            // The window after the one idle keys land in also starts empty
            // (the 'next window' rule must not see it as one in use).
            let st = w.new_state();
            assert!(w.acquire(&st, start, 2).allowed);
            assert!(w.acquire(&st, start + (idle + 1) * period, 2).allowed);
        }
    }

    #[test]
    fn every_quota_the_parser_accepts_is_exact_in_one_word_or_two() {
        // Fits one word: up to about one unit per two nanoseconds.
        for text in [
            "1/ms",
            "1000000/second",
            "500000000/second",
            "1000000000/day",
            "1/366 days",
        ] {
            let q: Quota = text.parse().expect("quota");
            assert!(FixedWindow::is_exact(&q), "{text}");
        }
        // Does not: the store keeps these in a WideFixedWindow.
        for text in ["1000000000/second", "1000000/ms", "600000000/second"] {
            let q: Quota = text.parse().expect("quota");
            assert!(!FixedWindow::is_exact(&q), "{text}");
        }
    }

    /// The wide form answers as the packed one wherever the packed one is
    /// exact, and stays exact past the packed one's wrap where it is not.
    #[test]
    fn the_wide_form_answers_as_the_packed_one() {
        let quota: Quota = "3/second".parse().expect("quota");
        let (p, w) = (FixedWindow::new(&quota), WideFixedWindow::new(&quota));
        let (sp, sw) = (p.new_state(), w.new_state());
        let mut now = 5 * S;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += x % (S / 2);
            let cost = 1 + x % 3;
            assert_eq!(p.acquire(&sp, now, cost), w.acquire(&sw, now, cost));
            if x.is_multiple_of(7) {
                p.refund(&sp, now, 1);
                w.refund(&sw, now, 1);
            }
            assert_eq!(p.is_idle(&sp, now), w.is_idle(&sw, now));
        }
        let big: Quota = "1000000/ms".parse().expect("quota");
        let w = WideFixedWindow::new(&big);
        let st = w.new_state();
        assert!(w.acquire(&st, 0, 1_000_000).allowed);
        assert!(!w.acquire(&st, 0, 1).allowed);
        // 2^44 windows later, where a one-word state (20 bits of count, 44
        // of window number) would have wrapped onto the full window.
        let later = (1u64 << 44) * 1_000_000;
        assert!(w.acquire(&st, later, 1_000_000).allowed);
    }
}
