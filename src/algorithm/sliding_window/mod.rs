mod packed;

use portable_atomic::{AtomicU128, Ordering};

use super::cell::update_u128;
use super::{Algorithm, Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::quota::Quota;

pub use packed::PackedSlidingWindow;

/// Sliding window counter: the two-window weighted estimate.
///
/// Counts units in the current fixed window and the one before it; the
/// estimate of the last `period` is `previous · (remaining share of the
/// current window) + current`, with the weighted part rounded up so the
/// estimate never undercounts. State: one 128-bit word (window number,
/// current count, previous count), updated by compare-and-swap. When the
/// window numbers and counts of a quota fit 64 bits,
/// [`PackedSlidingWindow`] runs the same steps on one 64-bit word.
///
/// Because the weighted part is rounded up, the estimate never admits more
/// than `count` in a period, and it is pessimistic: under constant demand
/// (a request waiting whenever one may pass) it settles at **`count - 1`
/// admitted per period**. With a full previous window, the weighted part is
/// at least 1 until the very end of the current one; for `count = 1` no
/// request passes in the window after an admitted one, so `1/hour` admits
/// one request every two hours. Pick GCRA or the [`SlidingLog`](super::SlidingLog)
/// where one unit matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    period: u64,
    limit: u64,
    /// The effective window's tail when nothing of the previous window
    /// weighs: a full current window, as the previous one, first lets a
    /// unit through this far into the next window.
    first_fade: u64,
}

/// The counts as a check at one instant reads them.
#[derive(Clone, Copy)]
struct Position {
    counts: Counts,
    elapsed: u64,
    weight: u64,
    used: u64,
}

/// An admission's new counts and figures.
#[derive(Clone, Copy)]
struct Admitted {
    next: Counts,
    remaining: u64,
    window: u64,
}

impl Admitted {
    #[inline]
    fn outcome(&self, limit: u64) -> Outcome {
        Outcome::allow(limit, self.remaining, self.window)
    }
}

#[derive(Clone, Copy)]
struct Counts {
    index: u64,
    current: u64,
    previous: u64,
}

fn unpack(word: u128) -> Counts {
    Counts {
        index: (word >> 64) as u64,
        current: ((word >> 32) as u64) & 0xFFFF_FFFF,
        previous: (word as u64) & 0xFFFF_FFFF,
    }
}

fn pack(c: Counts) -> u128 {
    (u128::from(c.index) << 64)
        | (u128::from(c.current & 0xFFFF_FFFF) << 32)
        | u128::from(c.previous & 0xFFFF_FFFF)
}

impl SlidingWindow {
    /// The sliding window counter for a rate quota (its burst is not used).
    pub fn new(quota: &Quota) -> Self {
        let mut window = Self {
            period: quota.period_nanos().max(1),
            limit: quota.count().min(u64::from(u32::MAX)),
            first_fade: 0,
        };
        window.first_fade = window.offset_for(window.limit, window.limit.saturating_sub(1));
        window
    }

    /// The counts as seen in window `index`.
    fn rolled(stored: Counts, index: u64) -> Counts {
        if stored.index >= index {
            // Same window, or a concurrent caller already moved it forward.
            stored
        } else if stored.index + 1 == index {
            Counts {
                index,
                current: 0,
                previous: stored.current,
            }
        } else {
            Counts {
                index,
                current: 0,
                previous: 0,
            }
        }
    }

    /// `ceil(previous · weight / period)`: in 64 bits while the product
    /// fits (a 128-bit division is a library call several times dearer),
    /// in 128 bits otherwise.
    #[inline]
    fn weighted(&self, previous: u64, weight: u64) -> u64 {
        match previous.checked_mul(weight) {
            Some(product) => product.div_ceil(self.period),
            None => {
                let product = u128::from(previous) * u128::from(weight);
                product.div_ceil(u128::from(self.period)) as u64
            }
        }
    }

    /// The counts after giving back `cost` units charged at `charged_at`;
    /// `None` when nothing changes (the window has passed, or holds nothing).
    fn refunded(&self, c: Counts, charged_at: Nanos, cost: u64) -> Option<Counts> {
        if c.index != charged_at / self.period || c.current == 0 {
            return None;
        }
        Some(Counts {
            current: c.current - cost.min(c.current),
            ..c
        })
    }

    /// Whether counts stored earlier weigh nothing at `now`.
    /// The weighted count of the last period at `now`, as a check reads it.
    fn in_use(&self, stored: Counts, now: Nanos) -> u64 {
        let c = Self::rolled(stored, now / self.period);
        let elapsed = now
            .saturating_sub(c.index.saturating_mul(self.period))
            .min(self.period - 1);
        self.weighted(c.previous, self.period - elapsed) + c.current
    }

    fn idle(&self, stored: Counts, now: Nanos) -> bool {
        let c = Self::rolled(stored, now / self.period);
        c.current == 0 && c.previous == 0
    }

    /// The smallest offset into a window at which `ceil(count · (P - e) / P) <= room`.
    #[inline]
    fn offset_for(&self, count: u64, room: u64) -> u64 {
        if count <= room {
            return 0;
        }
        // In 64 bits while the product fits (a 128-bit division is a
        // library call several times dearer).
        let allowed_weight = match room.checked_mul(self.period) {
            Some(product) => product / count,
            None => (u128::from(room) * u128::from(self.period) / u128::from(count)) as u64,
        };
        self.period - allowed_weight
    }

    /// The pure step over the packed state.
    pub fn step(&self, word: u128, now: Nanos, cost: u64) -> (Outcome, Option<u128>) {
        let (outcome, next) = self.step_counts(unpack(word), now, cost);
        (outcome, next.map(pack))
    }

    /// The step over unpacked counts, whatever word holds them.
    #[inline]
    fn step_counts(&self, stored: Counts, now: Nanos, cost: u64) -> (Outcome, Option<Counts>) {
        match self.admit(stored, now, cost) {
            Some(admitted) => (admitted.outcome(self.limit), Some(admitted.next)),
            None => (self.refuse(stored, now, cost), None),
        }
    }

    /// Where `now` falls for the stored counts: the counts rolled to its
    /// window, the time into that window and left of it, and the units the
    /// estimate counts.
    #[inline]
    fn position(&self, stored: Counts, now: Nanos) -> Position {
        let counts = Self::rolled(stored, now / self.period);
        let window_start = counts.index * self.period;
        let elapsed = now.saturating_sub(window_start).min(self.period - 1);
        let weight = self.period - elapsed;
        let used = self.weighted(counts.previous, weight) + counts.current;
        Position {
            counts,
            elapsed,
            weight,
            used,
        }
    }

    /// The counts after admitting `cost` at `now`, with the answer's
    /// figures; `None` when it does not fit. Compare-and-swap loops run
    /// this and build the outcome once, after the swap.
    #[inline]
    fn admit(&self, stored: Counts, now: Nanos, cost: u64) -> Option<Admitted> {
        let Position {
            counts,
            elapsed,
            weight,
            used,
        } = self.position(stored, now);
        if cost > self.limit || used + cost > self.limit {
            return None;
        }
        let next = Counts {
            current: counts.current + cost,
            ..counts
        };
        let remaining = self.limit - used - cost;
        // The window with `remaining` spent now, in closed form: the
        // current count is then the limit less the previous window's
        // weighted part, so the next unit comes when that part drops by
        // one, or, when it weighs nothing, a little into the next window
        // (what `window` computes, without its general case).
        let faded = used - counts.current;
        let window = if faded == 0 {
            weight + self.first_fade
        } else {
            self.fading(counts.previous, faded, elapsed)
        };
        debug_assert_eq!(window, self.window(next, elapsed, weight, remaining));
        Some(Admitted {
            next,
            remaining,
            window,
        })
    }

    /// The answer to a request that does not fit the stored counts.
    #[cold]
    fn refuse(&self, stored: Counts, now: Nanos, cost: u64) -> Outcome {
        let Position {
            counts,
            elapsed,
            weight,
            used,
        } = self.position(stored, now);
        let remaining = self.limit.saturating_sub(used);
        let window = self.window(counts, elapsed, weight, remaining);
        let retry = if cost > self.limit {
            RETRY_NEVER
        } else {
            self.wait(counts, elapsed, weight, cost)
        };
        Outcome::deny(self.limit, remaining, window, retry)
    }

    /// The admitted request's window while `faded` units of the previous
    /// window (`previous` in all) still weigh: until that part drops by one.
    fn fading(&self, previous: u64, faded: u64, elapsed: u64) -> u64 {
        self.offset_for(previous, faded - 1)
            .saturating_sub(elapsed)
            .max(1)
    }

    /// The effective window: with `remaining` units spent now, the wait
    /// for the next one. (Not the wait for `remaining + 1` units: units
    /// spent now fade in the next window, a request's do not.)
    fn window(&self, counts: Counts, elapsed: u64, weight: u64, remaining: u64) -> u64 {
        let spent = Counts {
            current: counts.current + remaining,
            ..counts
        };
        self.wait(spent, elapsed, weight, 1)
    }

    /// Nanoseconds, from `elapsed` into the window of `counts`, until
    /// `cost` units (at most the limit) fit.
    fn wait(&self, counts: Counts, elapsed: u64, weight: u64, cost: u64) -> u64 {
        let current = counts.current;
        if current + cost <= self.limit {
            // Wait, within this window, for the previous window's weight to fade.
            let room = self.limit - current - cost;
            self.offset_for(counts.previous, room)
                .saturating_sub(elapsed)
                .max(1)
        } else {
            // Only the next window helps: the current count becomes the previous one.
            let room = self.limit.saturating_sub(cost);
            weight + self.offset_for(current, room)
        }
    }
}

impl Algorithm for SlidingWindow {
    type State = AtomicU128;

    fn new_state(&self) -> AtomicU128 {
        AtomicU128::new(0)
    }

    fn acquire(&self, state: &AtomicU128, now: Nanos, cost: u64) -> Outcome {
        // The step written out: the loop carries the counts, and the
        // outcome is built once, after the swap.
        let mut word = state.load(Ordering::Acquire);
        loop {
            let Some(admitted) = self.admit(unpack(word), now, cost) else {
                return self.refuse(unpack(word), now, cost);
            };
            match state.compare_exchange_weak(
                word,
                pack(admitted.next),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return admitted.outcome(self.limit),
                Err(actual) => word = actual,
            }
        }
    }

    fn peek(&self, state: &AtomicU128, now: Nanos, cost: u64) -> Outcome {
        self.step(state.load(Ordering::Acquire), now, cost).0
    }

    fn refund(&self, state: &AtomicU128, charged_at: Nanos, cost: u64) {
        update_u128(state, |word| {
            ((), self.refunded(unpack(word), charged_at, cost).map(pack))
        });
    }

    fn is_idle(&self, state: &AtomicU128, now: Nanos) -> bool {
        self.idle(unpack(state.load(Ordering::Acquire)), now)
    }

    fn used(&self, state: &AtomicU128, now: Nanos) -> u64 {
        self.in_use(unpack(state.load(Ordering::Acquire)), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn window(q: &str) -> SlidingWindow {
        SlidingWindow::new(&q.parse().expect("quota"))
    }

    #[test]
    fn weighting_is_exact_in_64_and_in_128_bits() {
        let exact = |w: &SlidingWindow, previous: u64, weight: u64| {
            (u128::from(previous) * u128::from(weight)).div_ceil(u128::from(w.period)) as u64
        };
        let minute = window("10/minute");
        let day = window("1000000000/day");
        for (w, previous, weight) in [
            (&minute, 0, 60 * S),
            (&minute, 7, 45 * S),
            (&minute, 10, 1),
            // A billion units over most of a day: the product passes 2^64.
            (&day, 1_000_000_000, 86_400 * S - 1),
            (&day, 999_999_999, 43_200 * S + 1),
        ] {
            assert_eq!(w.weighted(previous, weight), exact(w, previous, weight));
        }
        assert!(1_000_000_000u64.checked_mul(86_400 * S - 1).is_none());
    }

    #[test]
    fn weights_the_previous_window() {
        let w = window("10/minute");
        let st = w.new_state();
        let start = 60 * S;
        for _ in 0..10 {
            assert!(w.acquire(&st, start, 1).allowed);
        }
        assert!(!w.acquire(&st, start + 30 * S, 1).allowed);
        // 15 s into the next window the previous 10 weigh ceil(10 * 45/60) = 8.
        let at = 120 * S + 15 * S;
        let o = w.acquire(&st, at, 1);
        assert!(o.allowed);
        assert_eq!(o.remaining, 1);
        assert!(w.acquire(&st, at, 1).allowed);
        let denied = w.acquire(&st, at, 1);
        assert!(!denied.allowed);
        // Needs ceil(10 * (60 - e)/60) <= 7: e >= 18 s, i.e. 3 s from now.
        assert_eq!(denied.retry_after, 3 * S);
        assert!(!w.acquire(&st, at + 3 * S - 1, 1).allowed);
        assert!(w.acquire(&st, at + 3 * S, 1).allowed);
    }

    #[test]
    fn retry_after_spans_into_the_next_window_when_the_current_one_is_full() {
        let w = window("4/second");
        let st = w.new_state();
        assert!(w.acquire(&st, S, 4).allowed);
        let denied = w.acquire(&st, S + S / 2, 1);
        // Next window starts in 0.5 s; there ceil(4 (1 - e)) <= 3 needs e >= 0.25 s.
        assert_eq!(denied.retry_after, S / 2 + S / 4);
        assert!(w.acquire(&st, 2 * S + S / 4, 1).allowed);
        assert!(w.is_idle(&st, 4 * S));
    }

    #[test]
    fn refund_returns_units_of_the_same_window() {
        let w = window("2/second");
        let st = w.new_state();
        assert!(w.acquire(&st, S, 2).allowed);
        w.refund(&st, S, 2);
        assert!(w.is_idle(&st, S));
        assert_eq!(w.peek(&st, S, 3).retry_after, RETRY_NEVER);
    }

    /// What the docs say it admits under constant demand: `count - 1` per
    /// period once settled, and for `count = 1` one per two periods; never
    /// more than `count` in any period.
    #[test]
    fn constant_demand_settles_at_one_below_the_count() {
        for (text, count) in [("1/hour", 1u64), ("3/second", 3), ("10/minute", 10)] {
            let quota: Quota = text.parse().expect("quota");
            let w = SlidingWindow::new(&quota);
            let period = quota.period_nanos();
            let st = w.new_state();
            let step = period / 1_000;
            let mut per_window = vec![0u64; 12];
            let mut admitted_at = Vec::new();
            let mut now = 0;
            while now < 12 * period {
                if w.acquire(&st, now, 1).allowed {
                    per_window[(now / period) as usize] += 1;
                    admitted_at.push(now);
                }
                now += step;
            }
            // Settled (after the first two windows): count - 1 each window,
            // or for count = 1 one in every other window.
            let settled = &per_window[2..];
            if count == 1 {
                assert_eq!(settled.iter().sum::<u64>(), 5, "{text}: {per_window:?}");
                assert!(settled.iter().all(|&n| n <= 1), "{text}: {per_window:?}");
            } else {
                assert!(
                    settled.iter().all(|&n| n == count - 1),
                    "{text}: {per_window:?}"
                );
            }
            // Never more than the count in any period-long interval.
            for (i, &t) in admitted_at.iter().enumerate() {
                let within = admitted_at[i..]
                    .iter()
                    .take_while(|&&u| u < t + period)
                    .count();
                assert!(
                    within as u64 <= count,
                    "{text}: {within} within a period from {t}"
                );
            }
        }
    }
}
