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
use std::time::Duration;

/// Nanoseconds since a clock's origin.
pub type Nanos = u64;

/// `d` in nanoseconds, [`u64::MAX`] past it (some 584 years).
pub(crate) fn nanos_saturating(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

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

/// The real clock: the processor's time-stamp counter where it is invariant
/// (calibrated against the OS clock, through `quanta`), else the OS
/// monotonic clock.
///
/// Made once per store and shared; a reading costs about 12 ns on an x86-64
/// VM (a vDSO `clock_gettime` costs about 35 ns there), the same on the
/// allow path and the deny path.
#[derive(Clone)]
pub struct MonotonicClock {
    clock: quanta::Clock,
    /// The source's raw reading at the origin.
    origin: u64,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Self { clock, origin }
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
        // Start one second past the origin so that no reading is 0, which
        // the algorithms use for "never seen"; u64 nanoseconds cover 584 years.
        // Raw readings scaled straight to nanoseconds: no `Duration` on the
        // way (a reading below the origin, from another core's counter,
        // counts as the origin).
        self.clock
            .delta_as_nanos(self.origin, self.clock.raw())
            .saturating_add(1_000_000_000)
    }
}

/// A cached clock: one atomic load per reading, advanced by a background
/// thread every `resolution` (1 ms by default).
///
/// The cheapest reading there is, for the highest request rates; every
/// request within one tick sees the same instant, so refill and
/// `Retry-After` are exact to within one tick (nginx's `limit_req` works the
/// same way on its cached millisecond clock). The thread ends when the last
/// clone of the clock is dropped.
#[derive(Clone)]
pub struct CoarseClock {
    now: Arc<AtomicU64>,
}

impl CoarseClock {
    /// A clock ticking every millisecond.
    pub fn new() -> Self {
        Self::with_resolution(Duration::from_millis(1))
    }

    /// A clock ticking every `resolution` (at least 100 µs).
    pub fn with_resolution(resolution: Duration) -> Self {
        let resolution = resolution.max(Duration::from_micros(100));
        let source = MonotonicClock::new();
        let now = Arc::new(AtomicU64::new(source.now()));
        let weak = Arc::downgrade(&now);
        let spawned = std::thread::Builder::new()
            .name("tollgate-clock".into())
            .spawn(move || {
                while let Some(now) = weak.upgrade() {
                    now.store(source.now(), Ordering::Release);
                    drop(now);
                    std::thread::sleep(resolution);
                }
            });
        if let Err(error) = spawned {
            // Without the thread the clock would stand still: say so loudly.
            tracing::error!(%error, "tollgate: cannot start the coarse clock thread");
        }
        Self { now }
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CoarseClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoarseClock")
            .field("now", &self.now.load(Ordering::Relaxed))
            .finish()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Nanos {
        self.now.load(Ordering::Acquire)
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
        let by = nanos_saturating(by);
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
        assert!(a >= 1_000_000_000);
        assert!(b >= a);
    }

    #[test]
    fn monotonic_clock_counts_nanoseconds() {
        let clock = MonotonicClock::new();
        let outer = std::time::Instant::now();
        let a = clock.now();
        let inner = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        let inner = inner.elapsed().as_nanos() as u64;
        let ours = clock.now() - a;
        let outer = outer.elapsed().as_nanos() as u64;
        // Our two readings lie between the standard clock's inner and
        // outer pairs, whatever the scheduler did: a wrong scale would not.
        assert!(
            ours >= inner - inner / 10 && ours <= outer + outer / 10,
            "{ours} ns against {inner}..{outer} ns"
        );
    }

    #[test]
    fn coarse_clock_advances_by_itself() {
        let clock = CoarseClock::with_resolution(Duration::from_millis(1));
        let a = clock.now();
        assert!(a >= 1_000_000_000);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while clock.now() == a {
            assert!(
                std::time::Instant::now() < deadline,
                "coarse clock stood still"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(clock.now() > a);
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
