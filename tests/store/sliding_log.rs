//! The sliding log against a list of (time, cost).

use proptest::prelude::*;
use tollgate::algorithm::{Algorithm, LogState, Outcome, SlidingLog};
use tollgate::clock::Nanos;
use tollgate::quota::Quota;

use crate::support::{ops, rate_quota, run_model, start, Reference};

/// Every admitted request as (time, cost). An entry counts at `t` while
/// `time + P > t`; a request of cost `n` fits iff the live costs plus `n`
/// stay within the limit.
#[derive(Debug, Clone)]
struct Log {
    period: Nanos,
    limit: u64,
    entries: Vec<(Nanos, u64)>,
}

impl Log {
    fn new(quota: &Quota) -> Self {
        Self {
            period: quota.period_nanos(),
            limit: quota.count(),
            entries: Vec::new(),
        }
    }

    fn live(&self, now: Nanos) -> impl Iterator<Item = &(Nanos, u64)> {
        self.entries
            .iter()
            .filter(move |(at, _)| at + self.period > now)
    }

    fn used(&self, now: Nanos) -> u64 {
        self.live(now).map(|(_, cost)| cost).sum()
    }
}

impl Reference for Log {
    fn capacity(&self) -> u64 {
        self.limit
    }

    fn horizon(&self) -> Nanos {
        self.period
    }

    fn fits(&self, now: Nanos, cost: u64) -> bool {
        self.used(now) + cost <= self.limit
    }

    fn units_left(&self, now: Nanos) -> u64 {
        self.limit - self.used(now)
    }

    fn charge(&mut self, now: Nanos, cost: u64) {
        self.entries.push((now, cost));
    }
}

/// A sliding log's peek drops the entries expired at the instant asked, so
/// the runner asks about the future on a copy rebuilt from the model's
/// entries (each was admitted at its time, so each is admitted again).
fn probe_rebuilt(log: &SlidingLog, _: &LogState, model: &Log, at: Nanos, cost: u64) -> Outcome {
    let copy = log.new_state();
    for &(time, c) in &model.entries {
        assert!(log.acquire(&copy, time, c).allowed, "replaying {model:?}");
    }
    log.peek(&copy, at, cost)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sliding_log_matches_a_list_of_entries(
        quota in rate_quota(),
        start in start(),
        ops in ops(60),
    ) {
        let log = SlidingLog::new(&quota);
        let model = Log::new(&quota);
        run_model(&log, model, quota.count(), quota.period_nanos(), start, &ops, &probe_rebuilt)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The sliding log against its definition alone, on random traces:
    /// never more than the count in any half-open interval `[t, t + P)`,
    /// and never a refusal while the interval ending at the request,
    /// `(now - P, now]`, has room for it.
    #[test]
    fn sliding_log_keeps_its_definition(
        count in 1u64..=8,
        period_ms in 1u64..=50,
        trace in prop::collection::vec((0u64..30_000_000, 1u64..=4), 1..150),
    ) {
        let quota = Quota::new(count, std::time::Duration::from_millis(period_ms)).expect("quota");
        let period = quota.period_nanos();
        let log = SlidingLog::new(&quota);
        let state = log.new_state();
        let mut now: Nanos = 1_000_000_000;
        let mut admitted: Vec<(Nanos, u64)> = Vec::new();
        let (mut yes, mut no) = (0, 0);
        for (by, cost) in trace {
            now += by;
            let outcome = log.acquire(&state, now, cost);
            let in_window: u64 = admitted
                .iter()
                .filter(|(t, _)| *t + period > now)
                .map(|(_, c)| c)
                .sum();
            if outcome.allowed {
                admitted.push((now, cost));
                yes += 1;
            } else {
                no += 1;
                prop_assert!(
                    in_window + cost > count,
                    "refused {} at {} with {} of {} used in the period ending there",
                    cost, now, in_window, count
                );
            }
        }
        for &(t, _) in &admitted {
            let within: u64 = admitted
                .iter()
                .filter(|(u, _)| *u >= t && *u < t + period)
                .map(|(_, c)| c)
                .sum();
            prop_assert!(within <= count, "{} admitted in [{}, {} + P)", within, t, t);
        }
        prop_assert!(yes + no > 0);
    }
}
