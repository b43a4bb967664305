//! The store's key budget and automatic eviction of idle keys.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, Weak};

use super::table::Table;
use crate::clock::Nanos;
use crate::error::StoreError;

/// Counts tracked keys against a maximum and sweeps idle keys out.
///
/// A sweep runs inline, on the request that inserts a new key, when the
/// store is full or when `idle_sweep_every` has passed since the last one;
/// one caller sweeps at a time and the others carry on. Requests for known
/// keys never sweep.
pub(crate) struct Budget {
    count: AtomicUsize,
    max: usize,
    last_sweep: AtomicU64,
    /// Least time between two sweeps forced by a full store, so a flood of
    /// new keys against a store full of busy keys is refused fast instead of
    /// sweeping on every request.
    min_full_sweep_gap: Nanos,
    idle_sweep_every: Nanos,
    tables: Mutex<Vec<Weak<Table>>>,
    #[cfg(feature = "metrics")]
    gauge: crate::metrics::KeysGauge,
}

impl Budget {
    pub(crate) fn new(max: usize, idle_sweep_every: Nanos, min_full_sweep_gap: Nanos) -> Self {
        Self {
            count: AtomicUsize::new(0),
            max,
            last_sweep: AtomicU64::new(0),
            min_full_sweep_gap,
            idle_sweep_every,
            tables: Mutex::new(Vec::new()),
            #[cfg(feature = "metrics")]
            gauge: crate::metrics::KeysGauge::new(),
        }
    }

    pub(crate) fn register(&self, table: Weak<Table>) {
        self.tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(table);
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Takes room for one new key, sweeping first when due.
    pub(crate) fn reserve(&self, now: Nanos) -> Result<(), StoreError> {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.idle_sweep_every {
            self.try_sweep(last, now);
        }
        let mut swept = false;
        loop {
            let count = self.count.load(Ordering::Relaxed);
            if count < self.max {
                if self
                    .count
                    .compare_exchange_weak(count, count + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    #[cfg(feature = "metrics")]
                    self.gauge.added();
                    return Ok(());
                }
                continue;
            }
            let last = self.last_sweep.load(Ordering::Relaxed);
            if swept
                || now.saturating_sub(last) < self.min_full_sweep_gap
                || !self.try_sweep(last, now)
            {
                return Err(StoreError::Full { max_keys: self.max });
            }
            swept = true;
        }
    }

    /// Gives back room taken by `reserve` for a key another caller inserted first.
    pub(crate) fn release(&self, n: usize) {
        self.count.fetch_sub(n, Ordering::AcqRel);
        #[cfg(feature = "metrics")]
        self.gauge.removed(n);
    }

    /// Sweeps every table if no other caller claimed the sweep since `last`.
    fn try_sweep(&self, last: Nanos, now: Nanos) -> bool {
        if self
            .last_sweep
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.sweep(now);
        true
    }

    /// Forgets idle keys in every table now; answers how many.
    pub(crate) fn sweep(&self, now: Nanos) -> usize {
        let tables: Vec<_> = {
            let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            tables.retain(|t| t.strong_count() > 0);
            tables.iter().filter_map(Weak::upgrade).collect()
        };
        let removed: usize = tables.iter().map(|t| t.sweep(now)).sum();
        if removed > 0 {
            self.release(removed);
        }
        removed
    }
}
