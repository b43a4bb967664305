//! The store's key budget, automatic eviction of idle keys, and room made
//! under memory pressure by forgetting lightly used keys.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError, Weak};

use super::table::{Swept, Table};
use crate::clock::Nanos;
use crate::error::StoreError;

/// Counts tracked keys against a maximum and sweeps keys out.
///
/// A sweep runs inline, on a request that inserts a new key, one at a time
/// (a caller that finds a sweep running carries on without one); requests
/// for known keys never sweep. Two kinds:
///
/// - every `idle_sweep_every`, keys back to a full allowance are forgotten;
/// - once the store holds `high_water` keys (seven eighths of `max`), a
///   sweep also forgets keys that use at most `light` units of their
///   allowance and still have room for a request: keys seen about once,
///   which is what a flood of new keys is made of. Such a sweep runs again
///   after `pace` more keys were inserted (an eighth of `max`: each insert
///   pays for at most eight keys visited) or `min_full_sweep_gap` passed.
///
/// Sweeping before the store is full leaves room for new keys while a sweep
/// runs. Keys that are limited, or use more than `light` units, are never
/// forgotten before they are idle: when they alone fill the store, a new
/// key gets [`StoreError::Full`].
pub(crate) struct Budget {
    count: AtomicUsize,
    max: usize,
    high_water: usize,
    pace: usize,
    light: u64,
    /// Keys ever inserted, and the figure when the last sweep started.
    inserted: AtomicUsize,
    inserted_at_sweep: AtomicUsize,
    last_sweep: AtomicU64,
    /// Held by the one caller sweeping.
    sweeping: Mutex<()>,
    /// Lightly used keys forgotten for room, over the store's life.
    forgotten_light: AtomicU64,
    /// Least time between two sweeps forced by pressure when fewer than
    /// `pace` keys came in since the last one, so a flood of new keys
    /// against a store full of busy keys is refused fast instead of
    /// sweeping on every request.
    min_full_sweep_gap: Nanos,
    idle_sweep_every: Nanos,
    tables: Mutex<Vec<Weak<Table>>>,
    #[cfg(feature = "metrics")]
    gauge: crate::metrics::KeysGauge,
}

impl Budget {
    pub(crate) fn new(
        max: usize,
        light: u64,
        idle_sweep_every: Nanos,
        min_full_sweep_gap: Nanos,
    ) -> Self {
        let max = max.max(1);
        Self {
            count: AtomicUsize::new(0),
            max,
            high_water: max - max / 8,
            pace: (max / 8).max(1),
            light,
            inserted: AtomicUsize::new(0),
            inserted_at_sweep: AtomicUsize::new(0),
            last_sweep: AtomicU64::new(0),
            sweeping: Mutex::new(()),
            forgotten_light: AtomicU64::new(0),
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

    pub(crate) fn forgotten_light(&self) -> u64 {
        self.forgotten_light.load(Ordering::Relaxed)
    }

    /// Takes room for one new key, sweeping first when due.
    pub(crate) fn reserve(&self, now: Nanos) -> Result<(), StoreError> {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= self.idle_sweep_every {
            self.try_sweep(now);
        }
        let mut swept = false;
        loop {
            let count = self.count.load(Ordering::Relaxed);
            if count >= self.high_water && !swept && self.pressure_sweep_due(now) {
                swept = true;
                if self.try_sweep(now) {
                    continue;
                }
            }
            if count >= self.max {
                return Err(StoreError::Full { max_keys: self.max });
            }
            if self
                .count
                .compare_exchange_weak(count, count + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.inserted.fetch_add(1, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                self.gauge.added();
                return Ok(());
            }
        }
    }

    /// Whether a sweep for room may run: `pace` keys came in since the
    /// last sweep, or `min_full_sweep_gap` passed.
    fn pressure_sweep_due(&self, now: Nanos) -> bool {
        let inserted = self.inserted.load(Ordering::Relaxed);
        let at_sweep = self.inserted_at_sweep.load(Ordering::Relaxed);
        inserted.wrapping_sub(at_sweep) >= self.pace
            || now.saturating_sub(self.last_sweep.load(Ordering::Relaxed))
                >= self.min_full_sweep_gap
    }

    /// Gives back room taken by `reserve` for a key another caller inserted first.
    pub(crate) fn release(&self, n: usize) {
        self.count.fetch_sub(n, Ordering::AcqRel);
        #[cfg(feature = "metrics")]
        self.gauge.removed(n);
    }

    /// Sweeps every table unless another caller is sweeping; forgets
    /// lightly used keys too when the store is past its high-water mark.
    fn try_sweep(&self, now: Nanos) -> bool {
        let _guard = match self.sweeping.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        self.last_sweep.store(now.max(1), Ordering::Relaxed);
        self.inserted_at_sweep
            .store(self.inserted.load(Ordering::Relaxed), Ordering::Relaxed);
        let light = if self.len() >= self.high_water {
            self.light
        } else {
            0
        };
        let swept = self.sweep_tables(now, light);
        self.forgotten_light
            .fetch_add(swept.light as u64, Ordering::Relaxed);
        true
    }

    /// Forgets idle keys in every table now; answers how many.
    pub(crate) fn sweep(&self, now: Nanos) -> usize {
        self.sweep_tables(now, 0).total()
    }

    /// Forgets idle keys, and keys using at most `light` units, in every table.
    fn sweep_tables(&self, now: Nanos, light: u64) -> Swept {
        let tables: Vec<_> = {
            let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
            tables.retain(|t| t.strong_count() > 0);
            tables.iter().filter_map(Weak::upgrade).collect()
        };
        let swept = tables
            .iter()
            .fold(Swept::default(), |sum, t| sum + t.sweep(now, light));
        if swept.total() > 0 {
            self.release(swept.total());
        }
        swept
    }
}
