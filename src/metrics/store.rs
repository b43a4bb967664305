//! [`KeysGauge`]: the keys an in-memory store tracks.

use std::sync::atomic::{AtomicU64, Ordering};

use ::metrics::{gauge, Gauge};

use super::STORE_KEYS;

/// `tollgate_store_keys{store="memory"}`, moved by one store's key count.
///
/// Several stores add up in the one gauge, so each moves it by its changes
/// only, and takes its remaining keys off when it is dropped.
pub(crate) struct KeysGauge {
    gauge: Gauge,
    /// What this store added to the gauge and has not taken off.
    tracked: AtomicU64,
}

impl KeysGauge {
    /// Registers the gauge.
    pub(crate) fn new() -> Self {
        Self {
            gauge: gauge!(STORE_KEYS, "store" => "memory"),
            tracked: AtomicU64::new(0),
        }
    }

    /// The store tracks one more key.
    #[inline]
    pub(crate) fn added(&self) {
        self.tracked.fetch_add(1, Ordering::Relaxed);
        self.gauge.increment(1.0);
    }

    /// The store forgot `n` keys.
    #[inline]
    pub(crate) fn removed(&self, n: usize) {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        let previous = self
            .tracked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some(t.saturating_sub(n))
            })
            .unwrap_or(0);
        // Never take off more than this store put on.
        self.gauge.decrement(previous.min(n) as f64);
    }
}

impl Drop for KeysGauge {
    fn drop(&mut self) {
        self.gauge.decrement(*self.tracked.get_mut() as f64);
    }
}
