//! [`PackedSlidingWindow`]: the sliding window counter on one 64-bit word.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{Counts, SlidingWindow};
use crate::algorithm::cell::update_u64;
use crate::algorithm::{Algorithm, Outcome};
use crate::clock::Nanos;
use crate::quota::Quota;

/// The sliding window counter of [`SlidingWindow`], with its state in one
/// 64-bit word instead of two: half the memory per key, and a plain 64-bit
/// compare-and-swap.
///
/// Not an approximation of the 128-bit form: it answers exactly what
/// [`SlidingWindow`] answers, and exists only for quotas whose numbers fit.
/// Each count takes as many bits as the limit needs; the window number takes
/// the rest, and must hold the number of every window a 64-bit nanosecond
/// clock can reach, so it never wraps. [`new`](Self::new) checks both. That
/// covers, for example, up to 511 per millisecond, 16,383 per second,
/// 131,071 per minute and 1,048,575 per hour; the in-memory store uses this
/// form whenever it fits and [`SlidingWindow`] otherwise.
///
/// ```
/// use tollgate::algorithm::{Algorithm, PackedSlidingWindow};
/// use tollgate::quota::Quota;
///
/// let window = PackedSlidingWindow::new(&Quota::per_second(2).unwrap()).unwrap();
/// let state = window.new_state();
/// let now = 1_000_000_000;
/// assert!(window.acquire(&state, now, 2).allowed);
/// assert!(!window.acquire(&state, now, 1).allowed);
///
/// // Too many requests per millisecond for 64 bits: use `SlidingWindow`.
/// let busy = Quota::new(512, std::time::Duration::from_millis(1)).unwrap();
/// assert!(PackedSlidingWindow::new(&busy).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedSlidingWindow {
    window: SlidingWindow,
    /// Bits per count: the previous count in the lowest, the current count
    /// above it, the window number above both.
    bits: u32,
}

impl PackedSlidingWindow {
    /// The packed counter for a rate quota, when its counts and window
    /// numbers fit 64 bits; `None` otherwise.
    pub fn new(quota: &Quota) -> Option<Self> {
        let window = SlidingWindow::new(quota);
        let bits = (u64::BITS - window.limit.leading_zeros()).max(1);
        let last_window = u64::MAX / window.period;
        let window_bits = (u64::BITS - last_window.leading_zeros()).max(1);
        (2 * bits + window_bits <= u64::BITS).then_some(Self { window, bits })
    }

    fn unpack(&self, word: u64) -> Counts {
        let mask = (1u64 << self.bits) - 1;
        Counts {
            index: word >> (2 * self.bits),
            current: (word >> self.bits) & mask,
            previous: word & mask,
        }
    }

    /// Counts never exceed the limit and window numbers never exceed the
    /// last one, so each field stays within its bits.
    fn pack(&self, c: Counts) -> u64 {
        (c.index << (2 * self.bits)) | (c.current << self.bits) | c.previous
    }
}

impl Algorithm for PackedSlidingWindow {
    type State = AtomicU64;

    fn new_state(&self) -> AtomicU64 {
        AtomicU64::new(0)
    }

    #[inline]
    fn acquire(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        // As `SlidingWindow::acquire`: the outcome is built after the swap.
        let mut word = state.load(Ordering::Acquire);
        loop {
            let Some(admitted) = self.window.admit(self.unpack(word), now, cost) else {
                return self.window.refuse(self.unpack(word), now, cost);
            };
            let next = self.pack(admitted.next);
            match state.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return admitted.outcome(self.window.limit),
                Err(actual) => word = actual,
            }
        }
    }

    fn peek(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        let word = state.load(Ordering::Acquire);
        self.window.step_counts(self.unpack(word), now, cost).0
    }

    fn refund(&self, state: &AtomicU64, charged_at: Nanos, cost: u64) {
        update_u64(state, |word| {
            let next = self.window.refunded(self.unpack(word), charged_at, cost);
            ((), next.map(|c| self.pack(c)))
        });
    }

    fn is_idle(&self, state: &AtomicU64, now: Nanos) -> bool {
        self.window
            .idle(self.unpack(state.load(Ordering::Acquire)), now)
    }

    fn used(&self, state: &AtomicU64, now: Nanos) -> u64 {
        self.window
            .in_use(self.unpack(state.load(Ordering::Acquire)), now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const S: u64 = 1_000_000_000;

    fn quota(count: u64, period: Duration) -> Quota {
        Quota::new(count, period).expect("valid quota")
    }

    #[test]
    fn fits_when_counts_and_window_numbers_share_64_bits() {
        let ms = Duration::from_millis(1);
        // 2^64 ns / 1 ms needs 45 bits of window number: 9 bits per count.
        assert!(PackedSlidingWindow::new(&quota(511, ms)).is_some());
        assert!(PackedSlidingWindow::new(&quota(512, ms)).is_none());
        let second = Duration::from_secs(1);
        assert!(PackedSlidingWindow::new(&quota(16_383, second)).is_some());
        assert!(PackedSlidingWindow::new(&quota(16_384, second)).is_none());
        let hour = Duration::from_secs(3600);
        assert!(PackedSlidingWindow::new(&quota(1_048_575, hour)).is_some());
        assert!(PackedSlidingWindow::new(&quota(1_048_576, hour)).is_none());
    }

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Steps(u64);

    impl Steps {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Runs the same requests, refunds and idle checks through both forms
    /// and compares every answer.
    fn same_answers(q: &Quota, start: Nanos, seed: u64) {
        let packed = PackedSlidingWindow::new(q).expect("quota fits 64 bits");
        let wide = SlidingWindow::new(q);
        let (p, w) = (packed.new_state(), wide.new_state());
        let period = q.period_nanos();
        let mut steps = Steps(seed);
        let mut now = start;
        for i in 0..2_000 {
            // Mostly small steps, sometimes a window or several at once.
            now = now.saturating_add(match steps.next() % 10 {
                0 => period * (1 + steps.next() % 3),
                _ => steps.next() % (period / 4).max(1),
            });
            let cost = 1 + steps.next() % (q.count() + 1);
            let context = || format!("quota {q:?}, step {i}, now {now}, cost {cost}");
            match steps.next() % 8 {
                0 => assert_eq!(
                    packed.peek(&p, now, cost),
                    wide.peek(&w, now, cost),
                    "{}",
                    context()
                ),
                1 => {
                    packed.refund(&p, now, cost);
                    wide.refund(&w, now, cost);
                }
                _ => {
                    let (a, b) = (packed.acquire(&p, now, cost), wide.acquire(&w, now, cost));
                    assert_eq!(a, b, "{}", context());
                }
            }
            assert_eq!(
                packed.is_idle(&p, now),
                wide.is_idle(&w, now),
                "{}",
                context()
            );
        }
    }

    #[test]
    fn answers_as_the_wide_form_does() {
        let cases = [
            quota(1, Duration::from_millis(1)),
            quota(511, Duration::from_millis(1)),
            quota(10, Duration::from_secs(1)),
            quota(16_383, Duration::from_secs(1)),
            quota(7, Duration::from_secs(60)),
            quota(1_048_575, Duration::from_secs(3600)),
        ];
        for (n, q) in cases.iter().enumerate() {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
            same_answers(q, S, seed);
            // Near the end of the clock: the highest window numbers.
            same_answers(q, u64::MAX - 3000 * q.period_nanos(), seed);
        }
    }

    #[test]
    fn the_last_window_of_the_clock_keeps_its_counts() {
        let q = quota(511, Duration::from_millis(1));
        let packed = PackedSlidingWindow::new(&q).expect("fits");
        let state = packed.new_state();
        let now = u64::MAX;
        for _ in 0..511 {
            assert!(packed.acquire(&state, now, 1).allowed);
        }
        assert!(!packed.acquire(&state, now, 1).allowed);
        let counts = packed.unpack(state.load(Ordering::Acquire));
        assert_eq!(counts.index, u64::MAX / q.period_nanos());
        assert_eq!(counts.current, 511);
    }
}
