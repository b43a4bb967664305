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
///
/// # Delaying instead of refusing
///
/// With [`queue`](Gcra::queue), a request beyond the burst is not refused
/// while at most `queue` requests' worth of the bucket is reserved ahead of
/// it: it is admitted with a [`delay`](Outcome::delay) (its `retry_after`), the wait until it
/// conforms, and its place is taken at once (the arrival time advances), so
/// waiters are ordered and the combined rate is exact. This is nginx's
/// `limit_req` without `nodelay`: `rate=5r/s burst=10` is `5/second burst 1`
/// with a queue of 10; `burst=12 delay=8` (the first 8 excess pass at once) is
/// `5/second burst 9` with a queue of 4. [`max_wait`](Gcra::max_wait) caps
/// any wait.
///
/// ```
/// use tollgate::algorithm::{Algorithm, Gcra};
/// use tollgate::quota::Quota;
///
/// // nginx `rate=5r/s burst=10`: one at a time, ten waiting.
/// let quota: Quota = "5/second burst 1".parse().unwrap();
/// let gcra = Gcra::new(&quota).queue(10);
/// let state = gcra.new_state();
/// let now = 1_000_000_000;
/// let delays: Vec<_> = (0..12).map(|_| gcra.acquire(&state, now, 1)).collect();
/// assert_eq!(delays[0].delay(), 0); // the first passes at once
/// assert_eq!(delays[1].delay(), 200_000_000); // then one every 200 ms
/// assert_eq!(delays[10].delay(), 2_000_000_000); // the tenth waiter
/// assert!(!delays[11].allowed); // the eleventh is refused
/// assert_eq!(delays[11].retry_after, 200_000_000);
/// ```
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
    /// The longest a request may wait before it conforms: the lesser of
    /// `queue·T` and `max_wait`; 0 when the limit refuses instead.
    max_delay: u64,
    /// Requests' worth of waiting ([`Gcra::queue`]).
    queue: u64,
    /// The cap on any wait ([`Gcra::max_wait`]); `u64::MAX` when none.
    max_wait: u64,
}

impl Gcra {
    /// The GCRA for a rate quota, with the quota's
    /// [queue](Quota::with_queue) and [cap on the wait](Quota::with_max_wait).
    pub fn new(quota: &Quota) -> Self {
        let interval = quota.emission_interval_nanos().max(1);
        let burst = quota.burst().max(1);
        let gcra = Self {
            interval,
            per_interval: Divisor::new(interval),
            capacity: interval.saturating_mul(burst),
            limit: quota.count(),
            burst,
            max_delay: 0,
            queue: 0,
            max_wait: u64::MAX,
        };
        let gcra = gcra.queue(quota.queue());
        match quota.max_wait() {
            Some(wait) => gcra.max_wait(wait),
            None => gcra,
        }
    }

    /// Delays instead of refusing while at most `waiting` requests of cost
    /// 1 wait ahead (nginx's `burst`): a request beyond the bucket's burst
    /// is admitted with a [`delay`](Outcome::delay) of up to `waiting·T`,
    /// and refused beyond that. 0 (the default, unless the quota has a
    /// queue) refuses at once.
    #[must_use]
    pub fn queue(mut self, waiting: u64) -> Self {
        self.queue = waiting;
        self.max_delay = self.delay_bound();
        self
    }

    /// Caps any wait at `wait`, whatever the queue allows; a request that
    /// would wait longer is refused.
    #[must_use]
    pub fn max_wait(mut self, wait: std::time::Duration) -> Self {
        self.max_wait = crate::clock::nanos_saturating(wait);
        self.max_delay = self.delay_bound();
        self
    }

    /// Gives back the place of a request admitted at `charged_at` with a
    /// `delay` above 0 that will not be sent (its client went away before
    /// its turn), when no request has reserved a place after it; answers
    /// whether it did.
    ///
    /// A place with reservations behind it is kept: the later waiters'
    /// instants are already fixed, so moving the arrival time back would
    /// let a new request share one of their slots and pass more than the
    /// rate. Waiters that leave in the reverse order of their arrival each
    /// give their place back.
    ///
    /// ```
    /// use tollgate::algorithm::{Algorithm, Gcra};
    ///
    /// let gcra = Gcra::new(&"5/second burst 1".parse().unwrap()).queue(10);
    /// let state = gcra.new_state();
    /// let now = 1_000_000_000;
    /// let first = gcra.acquire(&state, now, 1); // passes at once
    /// let second = gcra.acquire(&state, now, 1); // waits 200 ms
    /// let third = gcra.acquire(&state, now, 1); // waits 400 ms
    /// assert!(!gcra.cancel(&state, now, second.delay(), 1)); // the third is behind it
    /// assert!(gcra.cancel(&state, now, third.delay(), 1));
    /// assert!(gcra.cancel(&state, now, second.delay(), 1));
    /// assert_eq!(gcra.acquire(&state, now, 1).delay(), 200_000_000);
    /// # let _ = first;
    /// ```
    pub fn cancel(&self, state: &AtomicU64, charged_at: Nanos, delay: Nanos, cost: u64) -> bool {
        if delay == 0 || cost == 0 || cost > self.burst {
            return false;
        }
        // A delayed admission set the arrival time to exactly the horizon
        // of its charge plus its delay.
        let reserved = self.horizon(charged_at).saturating_add(delay);
        let charge = cost * self.interval;
        state
            .compare_exchange(
                reserved,
                reserved - charge,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The requests' worth of waiting allowed ([`queue`](Gcra::queue)).
    pub const fn waiting(&self) -> u64 {
        self.queue
    }

    /// The longest wait a request may be given, in nanoseconds.
    pub const fn max_delay(&self) -> Nanos {
        self.max_delay
    }

    /// `min(queue·T, max_wait)`, kept below a quarter of the clock's range
    /// so that arrival times never overflow.
    fn delay_bound(&self) -> u64 {
        self.interval
            .saturating_mul(self.queue)
            .min(self.max_wait)
            .min(u64::MAX / 4)
    }

    /// The latest arrival time a request at `now` may leave without
    /// waiting: `now + burst·T` (saturating; a concurrent caller may have
    /// read a slightly later clock).
    #[inline(always)]
    fn horizon(&self, now: Nanos) -> Nanos {
        now.saturating_add(self.capacity)
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
        let horizon = self.horizon(now);
        let (available, window) = self.available(horizon.saturating_sub(base));
        if cost > self.burst {
            return (
                Outcome::deny(self.limit, available, window, RETRY_NEVER),
                None,
            );
        }
        // cost <= burst, so cost * interval <= capacity; and a stored
        // arrival time is at most a horizon plus max_delay (below a quarter
        // of the range): no overflow.
        let next = base + cost * self.interval;
        if next <= horizon {
            let (remaining, window) = self.available(horizon - next);
            (Outcome::allow(self.limit, remaining, window), Some(next))
        } else if next - horizon > self.max_delay {
            let retry_after = next - horizon - self.max_delay;
            (
                Outcome::deny(self.limit, available, window, retry_after),
                None,
            )
        } else {
            (self.delayed(next - horizon), Some(next))
        }
    }
}

impl Gcra {
    /// A request admitted to pass in `delay` nanoseconds: nothing is left
    /// then, and the next unit comes one interval later.
    #[cold]
    fn delayed(&self, delay: Nanos) -> Outcome {
        Outcome::allow_after(self.limit, 0, self.interval, delay)
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
        let horizon = self.horizon(now);
        let mut tat = state.load(Ordering::Acquire);
        if cost > self.burst {
            return self.step(tat, now, cost).0;
        }
        // cost ≤ burst: the charge is at most the capacity (which
        // saturates), so at most the horizon, and a base up to `latest`
        // takes it without overflow.
        let charge = cost.saturating_mul(self.interval);
        // With a queue, a request may reserve up to `max_delay` beyond the
        // horizon (max_delay < u64::MAX / 4: adding saturates at worst).
        let latest = horizon.saturating_add(self.max_delay) - charge;
        loop {
            let base = tat.max(now);
            if base > latest {
                return self.step(tat, now, cost).0;
            }
            let next = base + charge;
            match state.compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) if next <= horizon => {
                    let (remaining, window) = self.available(horizon - next);
                    return Outcome::allow(self.limit, remaining, window);
                }
                Ok(_) => return self.delayed(next - horizon),
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

    /// nginx `rate=5r/s burst=10` on 30 simultaneous requests: 1 at once,
    /// 10 at 200 ms steps, 19 refused with the wait until a place frees.
    #[test]
    fn a_queue_delays_the_burst_in_order_and_refuses_beyond_it() {
        let g = gcra("5/second burst 1").queue(10);
        assert_eq!((g.waiting(), g.max_delay()), (10, 2 * S));
        let st = g.new_state();
        let outcomes: Vec<Outcome> = (0..30).map(|_| g.acquire(&st, S, 1)).collect();
        for (i, o) in outcomes.iter().enumerate().take(11) {
            assert!(o.allowed, "request {i}");
            assert_eq!(o.delay(), i as u64 * 200_000_000, "request {i}");
            // The figures at admission: the first leaves nothing (burst 1).
            assert_eq!((o.remaining, o.window), (0, 200_000_000));
        }
        for (i, o) in outcomes.iter().enumerate().skip(11) {
            assert!(!o.allowed, "request {i}");
            assert_eq!(o.delay(), 0);
            assert_eq!(o.retry_after, 200_000_000, "request {i}");
        }
        // A client that waits the retry_after is queued, not refused.
        let later = g.acquire(&st, S + 200_000_000, 1);
        assert!(later.allowed);
        assert_eq!(later.delay(), 2 * S);
        // Without a queue the same limit refuses all but the first.
        let plain = gcra("5/second burst 1");
        let st = plain.new_state();
        assert!(plain.acquire(&st, S, 1).allowed);
        assert!(!plain.acquire(&st, S, 1).allowed);
    }

    #[test]
    fn the_first_excess_pass_at_once_like_nginx_delay() {
        // nginx burst=12 delay=8: 1 + 8 at once, 4 delayed, then refused.
        let g = gcra("5/second burst 9").queue(4);
        let st = g.new_state();
        let delays: Vec<Option<u64>> = (0..14)
            .map(|_| {
                let o = g.acquire(&st, S, 1);
                o.allowed.then(|| o.delay())
            })
            .collect();
        let step = 200_000_000;
        let mut expected = vec![Some(0); 9];
        expected.extend((1..=4).map(|k| Some(k * step)));
        expected.push(None);
        assert_eq!(delays, expected);
    }

    #[test]
    fn max_wait_caps_the_queue() {
        let g = gcra("5/second burst 1")
            .queue(10)
            .max_wait(Duration::from_millis(500));
        assert_eq!(g.max_delay(), 500_000_000);
        let st = g.new_state();
        let allowed: Vec<u64> = (0..5)
            .map(|_| g.acquire(&st, S, 1))
            .filter(|o| o.allowed)
            .map(|o| o.delay())
            .collect();
        assert_eq!(allowed, [0, 200_000_000, 400_000_000]);
        // The order of the settings does not matter.
        let h = gcra("5/second burst 1")
            .max_wait(Duration::from_millis(500))
            .queue(10);
        assert_eq!(g, h);
    }

    #[test]
    fn peek_answers_the_delay_without_reserving() {
        let g = gcra("5/second burst 1").queue(2);
        let st = g.new_state();
        assert!(g.acquire(&st, S, 1).allowed);
        let looked = g.peek(&st, S, 1);
        assert_eq!((looked.allowed, looked.delay()), (true, 200_000_000));
        let again = g.peek(&st, S, 1);
        assert_eq!(looked, again);
    }

    /// Threads racing on one key each get a distinct place: the delays are
    /// exactly 0, T, 2T, ... and exactly 1 + queue are admitted.
    #[test]
    fn concurrent_waiters_get_distinct_places() {
        let g = gcra("100/second burst 1").queue(50);
        let st = g.new_state();
        let mut delays: Vec<u64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..40)
                            .filter_map(|_| {
                                let o = g.acquire(&st, S, 1);
                                o.allowed.then(|| o.delay())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("worker"))
                .collect()
        });
        delays.sort_unstable();
        let expected: Vec<u64> = (0..=50).map(|k| k * 10_000_000).collect();
        assert_eq!(delays, expected);
    }

    proptest::proptest! {
        /// Waiters leaving at random: what passes (arrivals + delays, the
        /// cancelled left out) still holds to rate·L + burst in every
        /// interval, and a cancelled place is reused only when it was last.
        #[test]
        fn cancelled_waiters_never_cause_an_over_admission(
            ops in proptest::collection::vec((0u64..150_000_000, 0u8..4), 1..150),
        ) {
            let burst = 2;
            let g = gcra(&format!("10/second burst {burst}")).queue(6);
            let st = g.new_state();
            let mut now = S;
            // (passes at, charged at, delay, still waiting or sent)
            let mut admitted: Vec<(u64, u64, u64, bool)> = Vec::new();
            for (gap, op) in ops {
                now += gap;
                if op == 0 {
                    // The most recent waiter that has not yet passed leaves.
                    if let Some(w) = admitted
                        .iter_mut()
                        .rev()
                        .find(|w| w.3 && w.2 > 0 && w.0 > now)
                    {
                        if g.cancel(&st, w.1, w.2, 1) {
                            w.3 = false;
                        }
                    }
                    continue;
                }
                let o = g.acquire(&st, now, 1);
                if o.allowed {
                    admitted.push((now + o.delay(), now, o.delay(), true));
                }
            }
            let mut passed: Vec<u64> = admitted.iter().filter(|w| w.3).map(|w| w.0).collect();
            passed.sort_unstable();
            let t = 100_000_000u64;
            for (i, &start) in passed.iter().enumerate() {
                for (n, &at) in passed[i..].iter().enumerate() {
                    let bound = (at - start) / t + burst;
                    proptest::prop_assert!((n as u64) < bound, "{} in [{start}, {at}]", n + 1);
                }
            }
        }

        /// Counted at the instant each admitted request passes (arrival +
        /// delay), no interval of length L holds more than rate·L + burst,
        /// and no wait exceeds the bound.
        #[test]
        fn no_interval_passes_more_than_rate_times_length_plus_burst(
            burst in 1u64..5,
            queue in 0u64..8,
            gaps in proptest::collection::vec(0u64..300_000_000, 1..120),
            costs in proptest::collection::vec(1u64..3, 120),
        ) {
            // 10/second: T = 100 ms.
            let g = gcra(&format!("10/second burst {burst}")).queue(queue);
            let st = g.new_state();
            let mut now = S;
            let mut passed: Vec<(u64, u64)> = Vec::new();
            for (gap, cost) in gaps.iter().zip(&costs) {
                now += gap;
                let o = g.acquire(&st, now, *cost);
                if o.allowed {
                    proptest::prop_assert!(o.delay() <= g.max_delay());
                    passed.push((now + o.delay(), *cost));
                }
            }
            passed.sort_unstable();
            let t = 100_000_000u64;
            for (i, &(start, _)) in passed.iter().enumerate() {
                let mut units = 0;
                for &(at, cost) in &passed[i..] {
                    units += cost;
                    // The interval [start, at] has length at - start.
                    let bound = (at - start) / t + burst;
                    proptest::prop_assert!(
                        units <= bound,
                        "{units} units in [{start}, {at}], bound {bound}"
                    );
                }
            }
        }
    }
}
