//! [`RedisHandle`]: a limit bound to a [`RedisStore`](super::RedisStore),
//! with the key names and the numbers its script needs.

use std::fmt;
use std::sync::Arc;

use super::scripts::{CONCURRENCY, FIXED_WINDOW, GCRA, QUEUED_GCRA, SLIDING_LOG, SLIDING_WINDOW};
use crate::algorithm::{AlgorithmKind, Concurrency, Gcra, SLIDING_LOG_MAX};
use crate::limit::{Limit, LimitKind};
use crate::store::MemoryHandle;

/// A limit bound to a [`RedisStore`](super::RedisStore): the policy's part of the key names
/// and the numbers the script needs.
#[derive(Clone)]
pub struct RedisHandle {
    pub(super) spec: Arc<Spec>,
}

pub(super) struct Spec {
    /// `<policy>@<algorithm>`.
    pub(super) id: Box<str>,
    /// The script's algorithm code.
    pub(super) code: &'static str,
    /// Unique among the limits bound to one store.
    pub(super) serial: u64,
    pub(super) params: [u64; 4],
    /// This instance's share of the limit in the local fallback, when on.
    pub(super) local: Option<MemoryHandle>,
}

impl fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedisHandle").field(&self.spec.id).finish()
    }
}

impl RedisHandle {
    pub(super) fn new(
        limit: &Limit,
        slot_ttl_ms: u64,
        serial: u64,
        local: Option<MemoryHandle>,
    ) -> Self {
        let quota = limit.quota();
        let period_ms = quota.period_nanos() / 1_000_000;
        let count = quota.count();
        let (name, code, params) = match limit.kind() {
            LimitKind::Rate(AlgorithmKind::FixedWindow) => (
                "fw",
                FIXED_WINDOW,
                [period_ms.max(1), count.min(u64::from(u32::MAX)), 0, 0],
            ),
            LimitKind::Rate(AlgorithmKind::SlidingWindow) => (
                "sw",
                SLIDING_WINDOW,
                [period_ms.max(1), count.min(u64::from(u32::MAX)), 0, 0],
            ),
            LimitKind::Rate(AlgorithmKind::SlidingLog) => (
                "log",
                SLIDING_LOG,
                [period_ms.max(1), count.min(SLIDING_LOG_MAX), 0, 0],
            ),
            // A queue: the same state as a GCRA's, and the longest wait.
            LimitKind::Rate(_) if limit.delays() => {
                let interval = quota.emission_interval_nanos().max(1);
                let max_delay = Gcra::new(quota).max_delay();
                (
                    "gcra",
                    QUEUED_GCRA,
                    [interval, count, quota.burst().max(1), max_delay],
                )
            }
            LimitKind::Rate(_) => {
                let interval = quota.emission_interval_nanos().max(1);
                let burst = quota.burst().max(1);
                (
                    "gcra",
                    GCRA,
                    [interval, interval.saturating_mul(burst), count, burst],
                )
            }
            LimitKind::Concurrency => (
                "conc",
                CONCURRENCY,
                [count, slot_ttl_ms, Concurrency::DEFAULT_RETRY_HINT, 0],
            ),
        };
        Self {
            spec: Arc::new(Spec {
                id: format!("{}@{name}", limit.name()).into_boxed_str(),
                code,
                serial,
                params,
                local,
            }),
        }
    }
}
