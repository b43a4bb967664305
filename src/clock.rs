//! Time sources: a cheap monotonic clock for production and a manual clock for tests.
//!
//! Stores count time as [`Nanos`]: nanoseconds since the clock's own origin.
//! Only differences between readings matter, so the origin is arbitrary.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let before = clock.now();
//! clock.advance(Duration::from_millis(250));
//! assert_eq!(clock.now() - before, 250_000_000);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Nanoseconds since a clock's origin.
pub type Nanos = u64;

/// A monotonic time source.
///
/// `now` is called once per admission decision, so it must be cheap and must
/// not allocate. Readings never go backwards.
pub trait Clock: Send + Sync + 'static {
    /// The current reading.
    fn now(&self) -> Nanos;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Nanos {
        (**self).now()
    }
}

/// The real clock: `Instant` elapsed since the clock was made.
///
/// Made once per store and shared; a reading is one `Instant::now()` call
/// (a vDSO `clock_gettime` on Linux, about 20 ns), the same on the allow
/// path and the deny path.
#[derive(Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            // Start one second past the origin so that no reading is 0, which
            // the algorithms use for "never seen".
            origin: Instant::now()
                .checked_sub(Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MonotonicClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonotonicClock").finish_non_exhaustive()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now(&self) -> Nanos {
        // u64 nanoseconds cover 584 years of uptime.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to. Clones share one reading.
///
/// Starts at one second past its origin.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading one second.
    pub fn new() -> Self {
        Self {
            now: Arc::new(AtomicU64::new(1_000_000_000)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.fetch_add(by, Ordering::SeqCst);
    }

    /// Moves the clock forward by `nanos` nanoseconds.
    pub fn advance_nanos(&self, nanos: Nanos) {
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the reading; a value below the current one is ignored, so the
    /// clock stays monotonic.
    pub fn set(&self, now: Nanos) {
        self.now.fetch_max(now, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Nanos {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_clock_moves_forward_and_is_never_zero() {
        let clock = MonotonicClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(a > 0);
        assert!(b >= a);
    }

    #[test]
    fn manual_clock_is_shared_by_clones_and_never_goes_back() {
        let clock = ManualClock::new();
        let other = clock.clone();
        clock.advance(Duration::from_secs(2));
        assert_eq!(other.now(), 3_000_000_000);
        other.set(10);
        assert_eq!(clock.now(), 3_000_000_000);
        other.advance_nanos(5);
        assert_eq!(clock.now(), 3_000_000_005);
    }
}
