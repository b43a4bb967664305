//! The sliding window counter against the weighted two-window formula.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tollgate::algorithm::{PackedSlidingWindow, SlidingWindow};
use tollgate::clock::Nanos;
use tollgate::quota::Quota;

use crate::support::{ops, peek_live, rate_quota, run_model, start, Reference};

/// Units charged per fixed window `i` (covering `[i·P, (i+1)·P)`); the
/// estimate of the last period at `now`, with `i = now / P` and
/// `elapsed = now - i·P`, is
///
/// ```text
/// used(now) = ceil(count[i-1] · (P - elapsed) / P) + count[i]
/// ```
///
/// (the previous window weighted by the share of it still inside the last
/// period, rounded up so the estimate never undercounts). A request of cost
/// `n` fits iff `used(now) + n <= limit`.
#[derive(Debug, Clone)]
struct Weighted {
    period: Nanos,
    limit: u64,
    counts: BTreeMap<Nanos, u64>,
}

impl Weighted {
    fn new(quota: &Quota) -> Self {
        Self {
            period: quota.period_nanos(),
            limit: quota.count(),
            counts: BTreeMap::new(),
        }
    }

    fn count(&self, window: Nanos) -> u64 {
        self.counts.get(&window).copied().unwrap_or(0)
    }

    /// (previous, current, elapsed) at `now`.
    fn windows(&self, now: Nanos) -> (u64, u64, Nanos) {
        let i = now / self.period;
        let previous = if i == 0 { 0 } else { self.count(i - 1) };
        (previous, self.count(i), now - i * self.period)
    }

    fn used(&self, now: Nanos) -> u64 {
        let (previous, current, elapsed) = self.windows(now);
        let weighted = (u128::from(previous) * u128::from(self.period - elapsed))
            .div_ceil(u128::from(self.period));
        u64::try_from(weighted).expect("weighted count fits") + current
    }
}

impl Reference for Weighted {
    fn capacity(&self) -> u64 {
        self.limit
    }

    fn horizon(&self) -> Nanos {
        2 * self.period
    }

    fn fits(&self, now: Nanos, cost: u64) -> bool {
        self.used(now) + cost <= self.limit
    }

    fn units_left(&self, now: Nanos) -> u64 {
        self.limit.saturating_sub(self.used(now))
    }

    fn charge(&mut self, now: Nanos, cost: u64) {
        *self.counts.entry(now / self.period).or_insert(0) += cost;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sliding_window_matches_the_weighted_formula(
        quota in rate_quota(),
        start in start(),
        ops in ops(60),
    ) {
        let window = SlidingWindow::new(&quota);
        let model = Weighted::new(&quota);
        run_model(&window, model, quota.count(), quota.period_nanos(), start, &ops, &peek_live)?;
    }

    /// The 64-bit form the in-memory store uses for these quotas.
    #[test]
    fn packed_sliding_window_matches_the_weighted_formula(
        quota in rate_quota(),
        start in start(),
        ops in ops(60),
    ) {
        let window = PackedSlidingWindow::new(&quota).expect("the generated quotas fit 64 bits");
        let model = Weighted::new(&quota);
        run_model(&window, model, quota.count(), quota.period_nanos(), start, &ops, &peek_live)?;
    }
}
