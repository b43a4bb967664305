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

    /// Full again when the newest live entry expires.
    fn reset(&self, now: Nanos) -> Nanos {
        self.live(now)
            .map(|(at, _)| at + self.period - now)
            .max()
            .unwrap_or(0)
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
