use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::{Algorithm, Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::quota::Quota;

/// The largest count a sliding log accepts: its memory per key grows with
/// the count (16 bytes per logged request), so it is bounded.
pub const SLIDING_LOG_MAX: u64 = 100_000;

/// Sliding window log: exact over any `period`-long interval.
///
/// Keeps the time and cost of each admitted request of the last `period`
/// under a per-key mutex: O(requests in the period) memory, at most
/// [`SLIDING_LOG_MAX`] entries, and O(1) amortised work per check.
///
/// Window edges: an admission at instant `t` counts from `t` until just
/// before `t + period` (at `t + period` it has left the log). So at any
/// `now` the log holds the admissions of the half-open `(now - period,
/// now]`, no half-open interval `[t, t + period)` ever holds more than the
/// count, and a request is refused only when the one ending at it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingLog {
    period: u64,
    limit: u64,
}

/// The per-key state of a [`SlidingLog`].
#[derive(Debug, Default)]
pub struct LogState {
    inner: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<(Nanos, u64)>,
    used: u64,
}

impl Log {
    fn expire(&mut self, now: Nanos, period: u64) {
        while let Some(&(at, cost)) = self.entries.front() {
            if at.saturating_add(period) > now {
                break;
            }
            self.used -= cost;
            self.entries.pop_front();
        }
    }
}

impl SlidingLog {
    /// The sliding log for a rate quota; the count is capped at [`SLIDING_LOG_MAX`]
    /// (configuration refuses larger ones before this is built).
    pub fn new(quota: &Quota) -> Self {
        Self {
            period: quota.period_nanos().max(1),
            limit: quota.count().min(SLIDING_LOG_MAX),
        }
    }

    fn decide(&self, log: &Log, now: Nanos, cost: u64) -> Outcome {
        // The effective window: nothing is freed before the oldest entry
        // leaves the window, and its leaving frees at least one unit; an
        // empty log filled now frees its first unit a period from now.
        let window = log.entries.front().map_or(self.period, |&(at, _)| {
            (at + self.period).saturating_sub(now).max(1)
        });
        let remaining = self.limit.saturating_sub(log.used);
        if cost > self.limit {
            return Outcome::deny(self.limit, remaining, window, RETRY_NEVER);
        }
        if log.used + cost <= self.limit {
            return Outcome::allow(self.limit, remaining - cost, window);
        }
        // The request fits once enough of the oldest entries have expired.
        let mut freed = 0;
        let mut retry = RETRY_NEVER;
        for &(at, c) in &log.entries {
            freed += c;
            if log.used - freed + cost <= self.limit {
                retry = (at + self.period).saturating_sub(now);
                break;
            }
        }
        Outcome::deny(self.limit, remaining, window, retry)
    }
}

impl Algorithm for SlidingLog {
    type State = LogState;

    fn new_state(&self) -> LogState {
        LogState::default()
    }

    fn acquire(&self, state: &LogState, now: Nanos, cost: u64) -> Outcome {
        let mut log = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        log.expire(now, self.period);
        let outcome = self.decide(&log, now, cost);
        if outcome.allowed {
            if log.entries.capacity() == 0 {
                // Room for one entry, not the default four: most keys log
                // few requests, and a million of them would hold 48 bytes
                // each for nothing. Busier keys grow by doubling as before.
                log.entries.reserve_exact(1);
            }
            log.entries.push_back((now, cost));
            log.used += cost;
        }
        outcome
    }

    fn peek(&self, state: &LogState, now: Nanos, cost: u64) -> Outcome {
        let mut log = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        log.expire(now, self.period);
        self.decide(&log, now, cost)
    }

    fn refund(&self, state: &LogState, charged_at: Nanos, cost: u64) {
        let mut log = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pos) = log
            .entries
            .iter()
            .rposition(|&(at, c)| at == charged_at && c == cost)
        {
            log.entries.remove(pos);
            log.used -= cost;
        }
    }

    fn is_idle(&self, state: &LogState, now: Nanos) -> bool {
        let mut log = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        log.expire(now, self.period);
        log.entries.is_empty()
    }

    fn used(&self, state: &LogState, now: Nanos) -> u64 {
        let mut log = state.inner.lock().unwrap_or_else(PoisonError::into_inner);
        log.expire(now, self.period);
        log.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn exact_over_any_period_long_interval() {
        let l = SlidingLog::new(&"3/10 seconds".parse().expect("quota"));
        let st = l.new_state();
        assert!(l.acquire(&st, S, 1).allowed);
        assert!(l.acquire(&st, 4 * S, 1).allowed);
        assert!(l.acquire(&st, 8 * S, 1).allowed);
        let denied = l.acquire(&st, 9 * S, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, 2 * S); // the first entry expires at 11 s
        assert!(!l.acquire(&st, 11 * S - 1, 1).allowed);
        assert!(l.acquire(&st, 11 * S, 1).allowed);
        assert!(!l.is_idle(&st, 20 * S));
        assert!(l.is_idle(&st, 21 * S));
    }

    #[test]
    fn a_new_key_holds_room_for_one_entry() {
        let l = SlidingLog::new(&"100/minute".parse().expect("quota"));
        let st = l.new_state();
        let entries = |st: &LogState| st.inner.lock().expect("unpoisoned").entries.capacity();
        assert_eq!(entries(&st), 0);
        assert!(l.acquire(&st, S, 1).allowed);
        assert_eq!(entries(&st), 1);
        for i in 1..10 {
            assert!(l.acquire(&st, S + i, 1).allowed);
        }
        assert!(entries(&st) >= 10);
    }

    #[test]
    fn costs_and_refunds() {
        let l = SlidingLog::new(&"5/second".parse().expect("quota"));
        let st = l.new_state();
        assert!(l.acquire(&st, S, 3).allowed);
        assert!(l.acquire(&st, S + 10, 2).allowed);
        let denied = l.acquire(&st, S + 20, 3);
        assert_eq!(denied.retry_after, S - 20);
        l.refund(&st, S + 10, 2);
        assert!(l.acquire(&st, S + 30, 2).allowed);
        assert_eq!(l.peek(&st, S + 40, 6).retry_after, RETRY_NEVER);
    }
}
