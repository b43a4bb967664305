//! GCRA against a token bucket with fractional tokens.

use proptest::prelude::*;
use tollgate::algorithm::{Algorithm, Gcra};
use tollgate::clock::Nanos;
use tollgate::quota::Quota;

use crate::support::{ops, peek_live, rate_quota, run_model, start, Reference, S};

/// A token bucket counted in nanoseconds of emission interval, so tokens are
/// exact fractions: `level / interval` tokens. It starts full, gains one
/// nanosecond of level per nanosecond up to `capacity = burst · interval`,
/// and a request of cost `n` needs `n · interval` of level.
///
/// GCRA's "allowed iff `TAT' - now <= capacity`" is this bucket read the other
/// way round: `level = capacity - (max(TAT, now) - now)`.
#[derive(Debug, Clone)]
struct Bucket {
    interval: u128,
    capacity: u128,
    burst: u64,
    level: u128,
    last: u128,
}

impl Bucket {
    fn new(quota: &Quota) -> Self {
        let interval = u128::from(quota.period_nanos()).div_ceil(u128::from(quota.count()));
        let capacity = interval * u128::from(quota.burst());
        Self {
            interval,
            capacity,
            burst: quota.burst(),
            level: capacity,
            last: 0,
        }
    }

    fn level_at(&self, now: Nanos) -> u128 {
        let now = u128::from(now);
        assert!(now >= self.last, "the model never goes back in time");
        (self.level + (now - self.last)).min(self.capacity)
    }
}

impl Reference for Bucket {
    fn capacity(&self) -> u64 {
        self.burst
    }

    fn horizon(&self) -> Nanos {
        u64::try_from(self.capacity).expect("capacity fits u64")
    }

    fn fits(&self, now: Nanos, cost: u64) -> bool {
        u128::from(cost) * self.interval <= self.level_at(now)
    }

    fn units_left(&self, now: Nanos) -> u64 {
        u64::try_from(self.level_at(now) / self.interval).expect("units fit u64")
    }

    fn charge(&mut self, now: Nanos, cost: u64) {
        self.level = self.level_at(now) - u128::from(cost) * self.interval;
        self.last = u128::from(now);
    }
}

fn gcra_quota() -> impl Strategy<Value = Quota> {
    (rate_quota(), prop::option::of(1u64..=20)).prop_map(|(quota, burst)| match burst {
        Some(burst) => quota.with_burst(burst).expect("valid burst"),
        None => quota,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn gcra_matches_a_fractional_token_bucket(
        quota in gcra_quota(),
        start in start(),
        ops in ops(60),
    ) {
        let gcra = Gcra::new(&quota);
        let model = Bucket::new(&quota);
        prop_assert_eq!(model.interval, u128::from(quota.emission_interval_nanos()));
        run_model(&gcra, model, quota.count(), quota.period_nanos(), start, &ops, &peek_live)?;
    }
}

#[test]
fn a_burst_above_the_count_is_spent_at_once_then_refills_at_the_rate() {
    // 2 per second with a burst of 5: T = 500 ms, capacity 2.5 s.
    let quota = "2/second burst 5".parse::<Quota>().expect("quota");
    let gcra = Gcra::new(&quota);
    let state = gcra.new_state();
    for left in (0..5).rev() {
        assert_eq!(gcra.acquire(&state, S, 1).remaining, left);
    }
    let denied = gcra.acquire(&state, S, 1);
    assert!(!denied.allowed);
    assert_eq!(denied.retry_after, 500_000_000);
    // Nothing left: the next unit, as the retry, in one interval.
    assert_eq!(denied.window, 500_000_000);
    assert!(gcra.peek(&state, S + 500_000_000, 1).allowed);
    assert!(!gcra.peek(&state, S + 500_000_000, 2).allowed);
    assert_eq!(
        gcra.peek(&state, S + 500_000_000, 2).retry_after,
        500_000_000
    );
}

/// One step of a trace for the governor oracle.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Advance the clock by this many nanoseconds, then charge `cost`.
    After(u64, u32),
    /// Advance to exactly the last refusal's retry instant (or one
    /// nanosecond before it), then charge `cost`: the boundary.
    AtRetry { early: bool, cost: u32 },
}

fn steps(len: usize) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (0u64..2_000_000_000, 1u32..=12).prop_map(|(d, c)| Step::After(d, c)),
        1 => (0u64..20_000, 1u32..=12).prop_map(|(d, c)| Step::After(d, c)),
        2 => (any::<bool>(), 1u32..=12).prop_map(|(early, cost)| Step::AtRetry { early, cost }),
    ];
    prop::collection::vec(step, 1..len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// An independent oracle: governor's GCRA, on its fake clock, given the
    /// same emission interval and burst, fed the same random trace with
    /// exact boundaries (at a refusal's retry instant and 1 ns before it).
    /// Every decision, every remaining count after an admission and every
    /// retry-after must agree exactly.
    #[test]
    fn gcra_agrees_with_governor_on_random_traces(
        quota in gcra_quota(),
        trace in steps(200),
    ) {
        use std::num::NonZeroU32;
        use std::time::Duration;
        use governor::clock::FakeRelativeClock;
        use governor::middleware::StateInformationMiddleware;

        let ours = Gcra::new(&quota);
        let state = ours.new_state();
        let interval = quota.emission_interval_nanos();
        let burst = u32::try_from(quota.burst()).expect("small burst");
        let theirs_quota = governor::Quota::with_period(Duration::from_nanos(interval))
            .expect("interval above zero")
            .allow_burst(NonZeroU32::new(burst).expect("burst above zero"));
        let clock = FakeRelativeClock::default();
        let theirs = governor::RateLimiter::direct_with_clock(theirs_quota, clock.clone())
            .with_middleware::<StateInformationMiddleware>();
        // Both count from the same origin: governor from its creation, ours
        // from the clock's zero, one second in.
        let mut now: Nanos = S;
        clock.advance(Duration::from_nanos(S));
        let mut last_retry: Option<u64> = None;
        for (i, step) in trace.iter().enumerate() {
            let (by, cost) = match *step {
                Step::After(by, cost) => (by, cost),
                Step::AtRetry { early, cost } => match last_retry {
                    Some(r) if early => (r.saturating_sub(1), cost),
                    Some(r) => (r, cost),
                    None => (0, cost),
                },
            };
            now += by;
            clock.advance(Duration::from_nanos(by));
            let outcome = ours.acquire(&state, now, u64::from(cost));
            let n = NonZeroU32::new(cost).expect("cost above zero");
            match theirs.check_n(n) {
                Err(_insufficient) => {
                    prop_assert!(!outcome.allowed, "step {}: governor can never admit {}", i, cost);
                    prop_assert_eq!(outcome.retry_after, tollgate::algorithm::RETRY_NEVER, "step {}", i);
                    last_retry = None;
                }
                Ok(Ok(snapshot)) => {
                    prop_assert!(outcome.allowed, "step {}: governor admits {} at {}", i, cost, now);
                    prop_assert_eq!(
                        outcome.remaining,
                        u64::from(snapshot.remaining_burst_capacity()),
                        "step {}: remaining", i
                    );
                    last_retry = None;
                }
                Ok(Err(not_until)) => {
                    prop_assert!(!outcome.allowed, "step {}: governor refuses {} at {}", i, cost, now);
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                    prop_assert_eq!(
                        u128::from(outcome.retry_after),
                        wait.as_nanos(),
                        "step {}: retry-after", i
                    );
                    last_retry = Some(outcome.retry_after);
                }
            }
        }
    }
}
