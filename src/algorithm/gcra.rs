use std::sync::atomic::{AtomicU64, Ordering};

use super::cell::update_u64;
use super::divisor::Divisor;
use super::{Algorithm, Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::quota::Quota;

/// Token bucket as the generic cell rate algorithm (GCRA).
///
/// The state is one number, the theoretical arrival time (TAT): the instant
/// at which the bucket would be full again. A request of cost `n` at `now`
/// moves it to `max(TAT, now) + n·T` (T = period / count, rounded up) and is
/// allowed when that lies at most `burst·T` past `now`. 0 means "never seen",
/// which reads as a full bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Emission interval T in nanoseconds.
    interval: u64,
    /// Divides by T.
    per_interval: Divisor,
    /// Capacity `burst·T` in nanoseconds.
    capacity: u64,
    limit: u64,
    burst: u64,
}

impl Gcra {
    /// The GCRA for a rate quota.
    pub fn new(quota: &Quota) -> Self {
        let interval = quota.emission_interval_nanos().max(1);
        let burst = quota.burst().max(1);
        Self {
            interval,
            per_interval: Divisor::new(interval),
            capacity: interval.saturating_mul(burst),
            limit: quota.count(),
            burst,
        }
    }

    /// The units available with `room` nanoseconds of capacity left
    /// (`now + burst·T - TAT`), and the effective window: the wait, once
    /// they are spent, for the next one, `(r + 1)·T - room` (in `(0, T]`).
    #[inline]
    fn available(&self, room: u64) -> (u64, Nanos) {
        // (r + 1)·T - room = T - (room mod T): nothing can overflow.
        let (r, part) = self.per_interval.div_rem(room);
        (r, self.interval - part)
    }

    /// The pure step: the outcome at `now` for a bucket whose TAT is `tat`,
    /// and the new TAT when the request is allowed.
    #[inline]
    pub fn step(&self, tat: u64, now: Nanos, cost: u64) -> (Outcome, Option<u64>) {
        let base = tat.max(now);
        // A concurrent caller may have read a slightly later clock: saturate.
        let horizon = now.saturating_add(self.capacity);
        let (available, window) = self.available(horizon.saturating_sub(base));
        if cost > self.burst {
            return (
                Outcome::deny(self.limit, available, window, RETRY_NEVER),
                None,
            );
        }
        // cost <= burst, so cost * interval <= capacity: no overflow.
        let next = base + cost * self.interval;
        if next <= horizon {
            let (remaining, window) = self.available(horizon - next);
            (Outcome::allow(self.limit, remaining, window), Some(next))
        } else {
            (
                Outcome::deny(self.limit, available, window, next - horizon),
                None,
            )
        }
    }
}

impl Algorithm for Gcra {
    type State = AtomicU64;

    fn new_state(&self) -> AtomicU64 {
        AtomicU64::new(0)
    }

    #[inline]
    fn acquire(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        // The step, written out so the loop carries two words and the
        // outcome is built once, after the swap.
        let horizon = now.saturating_add(self.capacity);
        let mut tat = state.load(Ordering::Acquire);
        if cost > self.burst {
            return self.step(tat, now, cost).0;
        }
        // cost ≤ burst: the charge is at most the capacity (which
        // saturates), so at most the horizon, and a base up to `latest`
        // takes it without overflow.
        let charge = cost.saturating_mul(self.interval);
        let latest = horizon - charge;
        loop {
            let base = tat.max(now);
            if base > latest {
                return self.step(tat, now, cost).0;
            }
            let next = base + charge;
            match state.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let (remaining, window) = self.available(horizon - next);
                    return Outcome::allow(self.limit, remaining, window);
                }
                Err(actual) => tat = actual,
            }
        }
    }

    fn peek(&self, state: &AtomicU64, now: Nanos, cost: u64) -> Outcome {
        self.step(state.load(Ordering::Acquire), now, cost).0
    }

    /// The charge moved the arrival time by `cost·T`; by `now`, time may have
    /// absorbed up to `now - charged_at` of that (and later requests may have
    /// been admitted on the room it freed), so only the rest comes back.
    fn refund_later(&self, state: &AtomicU64, charged_at: Nanos, now: Nanos, cost: u64) {
        let elapsed = now.saturating_sub(charged_at);
        let give = cost.saturating_mul(self.interval).saturating_sub(elapsed);
        if give == 0 {
            return;
        }
        update_u64(state, |tat| {
            if tat <= now {
                return ((), None);
            }
            ((), Some(tat.saturating_sub(give).max(now)))
        });
    }

    fn refund(&self, state: &AtomicU64, charged_at: Nanos, cost: u64) {
        let amount = cost.saturating_mul(self.interval);
        update_u64(state, |tat| {
            if tat <= charged_at {
                return ((), None);
            }
            // Never below the instant of the charge: a refund cannot make the
            // bucket fuller than it was when the charge was taken.
            ((), Some(tat.saturating_sub(amount).max(charged_at)))
        });
    }

    fn is_idle(&self, state: &AtomicU64, now: Nanos) -> bool {
        state.load(Ordering::Acquire) <= now
    }

    /// The arrival time lies `used·T` (rounded up) past `now`.
    fn used(&self, state: &AtomicU64, now: Nanos) -> u64 {
        let ahead = state.load(Ordering::Acquire).saturating_sub(now);
        self.per_interval
            .div(ahead.saturating_add(self.interval - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    fn gcra(q: &str) -> Gcra {
        Gcra::new(&q.parse().expect("quota"))
    }

    #[test]
    fn admits_the_burst_then_one_per_interval() {
        let g = gcra("10/second burst 20");
        let st = g.new_state();
        let now = S;
        for i in 0..20 {
            let o = g.acquire(&st, now, 1);
            assert!(o.allowed, "request {i}");
            assert_eq!(o.remaining, 19 - i);
        }
        let denied = g.acquire(&st, now, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, 100_000_000);
        // Nothing left: the next unit comes when the refusal's would pass.
        assert_eq!(denied.window, 100_000_000);
        // Exactly at the retry instant it passes, a nanosecond before it does not.
        assert!(!g.acquire(&st, now + 100_000_000 - 1, 1).allowed);
        assert!(g.acquire(&st, now + 100_000_000, 1).allowed);
    }

    #[test]
    fn the_window_is_the_wait_for_one_more_unit_than_remains() {
        let g = gcra("10/second burst 20");
        let st = g.new_state();
        // A full bucket: after spending the 19 left, one more comes in T.
        let o = g.acquire(&st, S, 1);
        assert_eq!((o.remaining, o.window), (19, 100_000_000));
        // 30 ms later a peek for one: 18 whole units would be left and 0.3
        // of the next, due in 70 ms.
        let o = g.peek(&st, S + 30_000_000, 1);
        assert_eq!((o.remaining, o.window), (18, 70_000_000));
        // Spending nothing on a full bucket: spend all 20, then T.
        let full = g.new_state();
        let o = g.peek(&full, S, 0);
        assert_eq!((o.remaining, o.window), (20, 100_000_000));
        // A refusal for 3 with 2 left: the third unit comes first (window),
        // the request passes later (retry_after).
        let g = gcra("5/second");
        let st = g.new_state();
        assert!(g.acquire(&st, S, 3).allowed);
        let o = g.acquire(&st, S, 3);
        assert_eq!(
            (o.remaining, o.window, o.retry_after),
            (2, 200_000_000, 200_000_000)
        );
        let o = g.acquire(&st, S, 4);
        assert_eq!(
            (o.remaining, o.window, o.retry_after),
            (2, 200_000_000, 400_000_000)
        );
    }

    #[test]
    fn cost_counts_as_many_tokens_and_oversized_cost_never_passes() {
        let g = gcra("5/second");
        let st = g.new_state();
        assert!(g.acquire(&st, S, 3).allowed);
        let o = g.acquire(&st, S, 3);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 2);
        assert_eq!(o.retry_after, 200_000_000);
        assert!(g.acquire(&st, S, 2).allowed);
        let huge = g.acquire(&st, S, 6);
        assert_eq!(huge.retry_after, RETRY_NEVER);
    }

    #[test]
    fn a_late_refund_never_hands_over_room_a_later_request_took() {
        // 1/second burst 1: A at 0 s, B at 1.2 s; A's refund at 1.5 s must
        // not let C in at 1.5 s, which A's absence would have refused.
        let g = gcra("1/second");
        let ms = |n: u64| S + n * 1_000_000;
        let with_refund = g.new_state();
        assert!(g.acquire(&with_refund, ms(0), 1).allowed);
        assert!(g.acquire(&with_refund, ms(1200), 1).allowed);
        g.refund_later(&with_refund, ms(0), ms(1500), 1);
        assert!(!g.acquire(&with_refund, ms(1500), 1).allowed);
        // A refund soon after the charge gives back what time has not.
        let soon = g.new_state();
        assert!(g.acquire(&soon, ms(0), 1).allowed);
        assert!(!g.acquire(&soon, ms(100), 1).allowed);
        g.refund_later(&soon, ms(0), ms(100), 1);
        assert!(g.acquire(&soon, ms(100), 1).allowed);
    }

    #[test]
    fn refund_restores_the_charge_and_idle_means_full() {
        let g = gcra("3/minute");
        let st = g.new_state();
        assert!(g.is_idle(&st, S));
        assert!(g.acquire(&st, S, 1).allowed);
        assert!(!g.is_idle(&st, S));
        g.refund(&st, S, 1);
        assert!(g.is_idle(&st, S));
        for _ in 0..3 {
            assert!(g.acquire(&st, S, 1).allowed);
        }
        assert!(!g.acquire(&st, S, 1).allowed);
        let later = S + Duration::from_secs(60).as_nanos() as u64;
        assert!(g.is_idle(&st, later));
    }

    #[test]
    fn peek_does_not_charge() {
        let g = gcra("1/second");
        let st = g.new_state();
        assert!(g.peek(&st, S, 1).allowed);
        assert!(g.peek(&st, S, 1).allowed);
        assert!(g.acquire(&st, S, 1).allowed);
        assert!(!g.peek(&st, S, 1).allowed);
    }
}
