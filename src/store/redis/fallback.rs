//! The local fallback: while Redis cannot answer, checks are answered by a
//! private [`MemoryStore`] holding, for each bound limit, this instance's
//! share of its quota. See the [module docs](super#fallback).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::LocalClock;
use crate::error::StoreError;
use crate::key::Key;
use crate::limit::Limit;
use crate::quota::{Quota, QuotaKind};
use crate::store::{Charge, Checked, MemoryHandle, MemoryStore, Store, Verdict};

/// What the local fallback of a [`RedisStore`](super::RedisStore) has done
/// since the store was built; all zero when it is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FallbackStats {
    /// Checks answered by the local limiter instead of Redis.
    pub answers: u64,
    /// Switches to the local limiter (outages seen).
    pub entered: u64,
    /// Switches back to Redis (recoveries).
    pub left: u64,
}

/// One charge of a check, owned, for a future that may fall back.
pub(super) struct LocalCharge {
    pub(super) handle: MemoryHandle,
    pub(super) key: Key<'static>,
    pub(super) cost: u64,
}

/// The local limiter and its counters.
pub(super) struct Fallback {
    instances: u32,
    store: MemoryStore<LocalClock>,
    /// Whether the last answer came from the local limiter.
    active: AtomicBool,
    answers: AtomicU64,
    entered: AtomicU64,
    left: AtomicU64,
}

impl Fallback {
    /// `instances` at least 1 (the builder checks); the local limiter
    /// counts on `clock`.
    pub(super) fn new(instances: u32, clock: LocalClock) -> Self {
        Self {
            instances: instances.max(1),
            store: MemoryStore::builder().clock(clock).build(),
            active: AtomicBool::new(false),
            answers: AtomicU64::new(0),
            entered: AtomicU64::new(0),
            left: AtomicU64::new(0),
        }
    }

    pub(super) fn instances(&self) -> u32 {
        self.instances
    }

    /// Binds this instance's share of `limit` in the local store.
    pub(super) fn bind(&self, limit: &Limit) -> MemoryHandle {
        self.store.bind(&share(limit, self.instances))
    }

    /// Answers `charges` locally, charging them when `take`; `why` is
    /// Redis's failure, logged on the switch.
    pub(super) fn answer(
        &self,
        charges: &[Charge<'_, MemoryHandle>],
        take: bool,
        why: &dyn std::fmt::Display,
    ) -> Result<Verdict, StoreError> {
        if !self.active.load(Ordering::Relaxed) && !self.active.swap(true, Ordering::AcqRel) {
            self.entered.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            crate::metrics::fallback_switched(true);
            tracing::warn!(
                instances = self.instances,
                error = %why,
                "Redis cannot answer: checks answered by the local fallback limiter, \
                 this instance's share of each quota"
            );
        }
        self.answers.fetch_add(1, Ordering::Relaxed);
        let checked = if take {
            self.store.check(charges)
        } else {
            self.store.peek(charges)
        };
        let result = match checked {
            Checked::Ready(result) => result,
            Checked::Pending(never) => match never {},
        };
        // The local store's receipt is on its own clock and names none of
        // Redis's checks: a refund given it would undo the wrong charge.
        // Local answers are not refunded.
        result.map(|verdict| Verdict {
            receipt: None,
            ..verdict
        })
    }

    /// [`answer`](Self::answer) for owned charges.
    pub(super) fn answer_owned(
        &self,
        local: &[LocalCharge],
        take: bool,
        why: &dyn std::fmt::Display,
    ) -> Result<Verdict, StoreError> {
        let charges: Vec<_> = local
            .iter()
            .map(|c| Charge::new(&c.handle, &c.key, c.cost))
            .collect();
        self.answer(&charges, take, why)
    }

    /// Redis answered a call: leaves the fallback if it was on.
    pub(super) fn redis_answered(&self) {
        if self.active.load(Ordering::Relaxed) && self.active.swap(false, Ordering::AcqRel) {
            self.left.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            crate::metrics::fallback_switched(false);
            tracing::warn!("Redis answers again: the local fallback limiter is off");
        }
    }

    pub(super) fn stats(&self) -> FallbackStats {
        FallbackStats {
            answers: self.answers.load(Ordering::Relaxed),
            entered: self.entered.load(Ordering::Relaxed),
            left: self.left.load(Ordering::Relaxed),
        }
    }
}

/// `n / instances`, rounded down, at least 1.
fn part(n: u64, instances: u32) -> u64 {
    (n / u64::from(instances.max(1))).max(1)
}

/// `shared` with its share of `quota`'s queue (divided as the count, at
/// least 1) and the same cap on the wait; without them if they no longer
/// fit (the limit then refuses its excess rather than delaying it).
fn queue_share(shared: Quota, quota: &Quota, instances: u32) -> Quota {
    if quota.queue() == 0 {
        return shared;
    }
    let queued = shared.with_queue(part(quota.queue(), instances));
    let capped = queued.and_then(|q| match quota.max_wait() {
        Some(wait) => q.with_max_wait(wait),
        None => Ok(q),
    });
    capped.unwrap_or(shared)
}

/// This instance's share of `limit`: count, burst and queue (or the most
/// in flight) divided by `instances`, rounded down but at least 1; the
/// same name, period, algorithm and cap on the wait.
pub(super) fn share(limit: &Limit, instances: u32) -> Limit {
    let quota = limit.quota();
    let shared = match quota.kind() {
        QuotaKind::Concurrent => Quota::concurrent(part(quota.count(), instances)),
        QuotaKind::Rate => {
            Quota::new(part(quota.count(), instances), quota.period())
                .and_then(|q| {
                    // A burst window that no longer fits (rounding of the
                    // longer emission interval) keeps the count as burst.
                    q.with_burst(part(quota.burst(), instances)).or(Ok(q))
                })
                .map(|q| queue_share(q, quota, instances))
        }
    };
    // A smaller count than a valid limit's is valid under the same rules
    // (non-GCRA bursts stay equal to the count: both scale the same way);
    // the original limit is only a guard that cannot be reached.
    shared
        .ok()
        .and_then(|q| Limit::new(limit.name(), q, limit.algorithm()).ok())
        .unwrap_or_else(|| limit.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::AlgorithmKind;

    fn limit(quota: &str, kind: AlgorithmKind) -> Limit {
        Limit::new("p", quota.parse().expect("quota"), kind).expect("limit")
    }

    #[test]
    fn share_divides_the_queue_and_keeps_the_wait() {
        let s = share(
            &limit("10/second burst 2 queue 9 wait 1s", AlgorithmKind::Gcra),
            2,
        );
        let q = s.quota();
        assert_eq!((q.count(), q.burst(), q.queue()), (5, 1, 4));
        assert_eq!(q.max_wait(), Some(std::time::Duration::from_secs(1)));
        let one = share(&limit("10/second queue 1", AlgorithmKind::Gcra), 4);
        assert_eq!(one.quota().queue(), 1);
    }

    #[test]
    fn share_divides_count_and_burst_rounding_down_to_at_least_one() {
        let s = share(&limit("10/minute", AlgorithmKind::Gcra), 2);
        assert_eq!((s.quota().count(), s.quota().burst()), (5, 5));
        assert_eq!(s.quota().period(), std::time::Duration::from_secs(60));
        assert_eq!(s.algorithm(), AlgorithmKind::Gcra);
        assert_eq!(s.name(), "p");

        let s = share(&limit("10/minute", AlgorithmKind::FixedWindow), 3);
        assert_eq!((s.quota().count(), s.quota().burst()), (3, 3));
        assert_eq!(s.algorithm(), AlgorithmKind::FixedWindow);

        let s = share(&limit("2/second", AlgorithmKind::SlidingLog), 5);
        assert_eq!((s.quota().count(), s.quota().burst()), (1, 1));

        let burst = Limit::new(
            "b",
            Quota::per_second(100)
                .and_then(|q| q.with_burst(9))
                .expect("quota"),
            AlgorithmKind::Gcra,
        )
        .expect("limit");
        let s = share(&burst, 4);
        assert_eq!((s.quota().count(), s.quota().burst()), (25, 2));

        let c = Limit::new(
            "c",
            Quota::concurrent(5).expect("quota"),
            AlgorithmKind::Gcra,
        )
        .expect("limit");
        let s = share(&c, 2);
        assert_eq!(
            (s.quota().kind(), s.quota().count()),
            (QuotaKind::Concurrent, 2)
        );

        let s = share(&limit("10/minute", AlgorithmKind::Gcra), 1);
        assert_eq!(s, limit("10/minute", AlgorithmKind::Gcra));
    }
}
