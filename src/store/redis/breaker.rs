//! The circuit breaker in front of Redis: after a run of failed calls it
//! answers at once, without Redis, and lets one probe through after a
//! backoff.
//!
//! - **Closed**: every check calls Redis. `threshold` consecutive failures
//!   (timeouts or errors of the call itself) open the breaker.
//! - **Open**: checks fail at once with [`CircuitOpen`]. Once the backoff
//!   has passed (the initial backoff, doubled after each failed probe up to
//!   the cap, plus up to an eighth of it as jitter, so instances do not
//!   probe in step), the next check becomes the probe.
//! - **Half-open**: that one probe calls Redis; other checks still fail at
//!   once. Its success closes the breaker and resets the backoff; its
//!   failure opens it again with the doubled backoff. A probe dropped
//!   before its answer (its request cancelled) lets the next check probe.
//!
//! Closed costs one atomic load per check, plus one atomic write after a
//! failure or the first success after one; the other states take a small
//! mutex. Each transition is logged once (`tracing::warn!`) and counted.

use std::error::Error;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::LocalClock;
use crate::clock::{Clock, Nanos};

/// Where a [`RedisStore`](super::RedisStore)'s circuit breaker stands; see
/// the [module docs](super#circuit-breaker).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Checks call Redis (also the state of a store without a breaker).
    Closed,
    /// Checks fail at once, without Redis, until the backoff has passed.
    Open,
    /// One probe is calling Redis (or may); other checks fail at once.
    HalfOpen,
}

/// Transitions of a [`RedisStore`](super::RedisStore)'s circuit breaker
/// since the store was built, and its backoff now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStats {
    /// Closed → open: outages seen.
    pub opened: u64,
    /// Open → half-open: probes started.
    pub half_opened: u64,
    /// Half-open → open: probes failed.
    pub reopened: u64,
    /// Half-open → closed: recoveries.
    pub closed: u64,
    /// Checks answered [`CircuitOpen`] without calling Redis.
    pub rejected: u64,
    /// The backoff of the current (or, once closed, the next) open period,
    /// jitter aside.
    pub backoff: Duration,
}

/// The error inside [`StoreError::Unavailable`](crate::StoreError::Unavailable)
/// when the circuit breaker is open and the check did not call Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CircuitOpen;

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redis circuit breaker open: not calling Redis until a probe succeeds")
    }
}

impl Error for CircuitOpen {}

/// What a check may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admit {
    /// Call Redis (breaker closed).
    Call,
    /// Call Redis as the one probe; report with `probe = true`.
    Probe,
    /// Do not call Redis.
    Reject,
}

/// The breaker; see the [module docs](self).
pub(super) struct Breaker<C = LocalClock> {
    threshold: u32,
    initial: Nanos,
    max: Nanos,
    clock: C,
    /// `true` while closed: the lock-free fast path.
    closed: AtomicBool,
    /// Consecutive failures while closed.
    failures: AtomicU32,
    machine: Mutex<Machine>,
    opened: AtomicU64,
    half_opened: AtomicU64,
    reopened: AtomicU64,
    recovered: AtomicU64,
    rejected: AtomicU64,
}

struct Machine {
    state: BreakerState,
    /// The backoff of the current open period (jitter aside).
    backoff: Nanos,
    /// While open: the instant the next probe may start.
    probe_at: Nanos,
    /// While half-open: a probe is under way.
    probing: bool,
    /// xorshift state for the jitter; never 0.
    seed: u64,
}

/// A transition to log once, outside the lock.
enum Transition {
    Opened { failures: u32, backoff: Nanos },
    HalfOpened,
    Reopened { backoff: Nanos },
    Closed,
}

impl<C: Clock> Breaker<C> {
    /// `threshold` at least 1, `initial` above zero and at most `max`
    /// (the builder checks).
    pub(super) fn with_clock(threshold: u32, initial: Duration, max: Duration, clock: C) -> Self {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let initial = nanos(initial);
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        Self {
            threshold: threshold.max(1),
            initial,
            max: nanos(max).max(initial),
            clock,
            closed: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            machine: Mutex::new(Machine {
                state: BreakerState::Closed,
                backoff: initial,
                probe_at: 0,
                probing: false,
                seed,
            }),
            opened: AtomicU64::new(0),
            half_opened: AtomicU64::new(0),
            reopened: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // The machine is consistent after every statement: a panic
        // elsewhere cannot leave it half-changed.
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a check may call Redis now.
    pub(super) fn admit(&self) -> Admit {
        if self.closed.load(Ordering::Acquire) {
            return Admit::Call;
        }
        let mut m = self.lock();
        let admit = match m.state {
            BreakerState::Closed => Admit::Call,
            BreakerState::Open if self.clock.now() >= m.probe_at => {
                m.state = BreakerState::HalfOpen;
                m.probing = true;
                drop(m);
                self.half_opened.fetch_add(1, Ordering::Relaxed);
                log(Transition::HalfOpened);
                return Admit::Probe;
            }
            BreakerState::HalfOpen if !m.probing => {
                m.probing = true;
                Admit::Probe
            }
            BreakerState::Open | BreakerState::HalfOpen => Admit::Reject,
        };
        drop(m);
        if admit == Admit::Reject {
            self.rejected.fetch_add(1, Ordering::Relaxed);
        }
        admit
    }

    /// Reports the answer of a call [`admit`](Self::admit) let through:
    /// `ok` when Redis answered (whatever it answered).
    pub(super) fn record(&self, probe: bool, ok: bool) {
        if probe {
            self.end_probe(ok);
        } else if ok {
            // Only write when there is something to reset.
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
        } else if self.failures.fetch_add(1, Ordering::AcqRel) + 1 == self.threshold {
            self.trip();
        }
    }

    /// A probe dropped before its answer: the next check probes instead.
    pub(super) fn abandon_probe(&self) {
        let mut m = self.lock();
        if m.state == BreakerState::HalfOpen {
            m.probing = false;
        }
    }

    /// Closed → open, once per run of failures.
    fn trip(&self) {
        let mut m = self.lock();
        if m.state != BreakerState::Closed {
            return;
        }
        let now = self.clock.now();
        m.backoff = self.initial;
        m.open(now);
        self.closed.store(false, Ordering::Release);
        let backoff = m.backoff;
        drop(m);
        self.opened.fetch_add(1, Ordering::Relaxed);
        log(Transition::Opened {
            failures: self.threshold,
            backoff,
        });
    }

    fn end_probe(&self, ok: bool) {
        let mut m = self.lock();
        if m.state != BreakerState::HalfOpen {
            return;
        }
        m.probing = false;
        if ok {
            m.state = BreakerState::Closed;
            m.backoff = self.initial;
            self.failures.store(0, Ordering::Relaxed);
            self.closed.store(true, Ordering::Release);
            drop(m);
            self.recovered.fetch_add(1, Ordering::Relaxed);
            log(Transition::Closed);
        } else {
            m.backoff = m.backoff.saturating_mul(2).min(self.max);
            m.open(self.clock.now());
            let backoff = m.backoff;
            drop(m);
            self.reopened.fetch_add(1, Ordering::Relaxed);
            log(Transition::Reopened { backoff });
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        if self.closed.load(Ordering::Acquire) {
            return BreakerState::Closed;
        }
        self.lock().state
    }

    pub(super) fn stats(&self) -> BreakerStats {
        let backoff = self.lock().backoff;
        BreakerStats {
            opened: self.opened.load(Ordering::Relaxed),
            half_opened: self.half_opened.load(Ordering::Relaxed),
            reopened: self.reopened.load(Ordering::Relaxed),
            closed: self.recovered.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            backoff: Duration::from_nanos(backoff),
        }
    }

    pub(super) fn threshold(&self) -> u32 {
        self.threshold
    }
}

impl Machine {
    /// Opens for the current backoff plus up to an eighth of it.
    fn open(&mut self, now: Nanos) {
        // xorshift64: cheap, and only needs to differ between instances.
        let mut x = self.seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed = x;
        let jitter = x % (self.backoff / 8 + 1);
        self.state = BreakerState::Open;
        self.probing = false;
        self.probe_at = now.saturating_add(self.backoff).saturating_add(jitter);
    }
}

fn log(transition: Transition) {
    #[cfg(feature = "metrics")]
    crate::metrics::breaker_transition(match transition {
        Transition::Opened { .. } => "opened",
        Transition::HalfOpened => "half_opened",
        Transition::Reopened { .. } => "reopened",
        Transition::Closed => "closed",
    });
    let ms = |n: Nanos| n / 1_000_000;
    match transition {
        Transition::Opened { failures, backoff } => tracing::warn!(
            failures,
            backoff_ms = ms(backoff),
            "Redis circuit breaker opened: checks fail at once until a probe succeeds"
        ),
        Transition::HalfOpened => {
            tracing::warn!("Redis circuit breaker half-open: probing Redis with one check");
        }
        Transition::Reopened { backoff } => tracing::warn!(
            backoff_ms = ms(backoff),
            "Redis circuit breaker probe failed: open again"
        ),
        Transition::Closed => {
            tracing::warn!("Redis circuit breaker closed: Redis answers again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn breaker(threshold: u32) -> (Breaker<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let b = Breaker::with_clock(threshold, 100 * MS, 1_000 * MS, clock.clone());
        (b, clock)
    }

    fn fail(b: &Breaker<ManualClock>, n: u32) {
        for _ in 0..n {
            assert_eq!(b.admit(), Admit::Call);
            b.record(false, false);
        }
    }

    /// Advances to just before the earliest probe instant, checks that
    /// nothing probes there, then to past the latest (backoff + 1/8).
    fn wait_backoff(b: &Breaker<ManualClock>, clock: &ManualClock, backoff: Duration) {
        clock.advance(backoff - Duration::from_nanos(1));
        assert_eq!(b.admit(), Admit::Reject, "no probe before {backoff:?}");
        clock.advance(backoff / 8 + Duration::from_nanos(1));
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let (b, _) = breaker(3);
        fail(&b, 2);
        b.record(false, true);
        fail(&b, 2);
        assert_eq!(b.state(), BreakerState::Closed, "a success resets the run");
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Open);
        for _ in 0..5 {
            assert_eq!(b.admit(), Admit::Reject);
        }
        let stats = b.stats();
        assert_eq!((stats.opened, stats.rejected), (1, 5));
        assert_eq!(stats.backoff, 100 * MS);
    }

    #[test]
    fn late_failures_after_opening_count_once() {
        let (b, _) = breaker(2);
        for _ in 0..6 {
            b.record(false, false);
        }
        assert_eq!(b.stats().opened, 1);
        // A success of a call made while closed does not close it.
        b.record(false, true);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn one_probe_after_backoff_and_success_closes() {
        let (b, clock) = breaker(1);
        fail(&b, 1);
        wait_backoff(&b, &clock, 100 * MS);
        assert_eq!(b.admit(), Admit::Probe);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(), Admit::Reject, "exactly one probe");
        b.record(true, true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.admit(), Admit::Call);
        let s = b.stats();
        assert_eq!(
            (s.opened, s.half_opened, s.reopened, s.closed),
            (1, 1, 0, 1)
        );
        assert_eq!(s.backoff, 100 * MS);
        // Closed again: a new run of failures is needed.
        assert_eq!(b.failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn failed_probes_double_the_backoff_up_to_the_cap_and_success_resets_it() {
        let (b, clock) = breaker(1);
        fail(&b, 1);
        let mut backoff = 100 * MS;
        for expected in [200, 400, 800, 1_000, 1_000] {
            wait_backoff(&b, &clock, backoff);
            assert_eq!(b.admit(), Admit::Probe);
            b.record(true, false);
            assert_eq!(b.state(), BreakerState::Open);
            backoff = expected * MS;
            assert_eq!(b.stats().backoff, backoff);
        }
        wait_backoff(&b, &clock, backoff);
        assert_eq!(b.admit(), Admit::Probe);
        b.record(true, true);
        let s = b.stats();
        assert_eq!(
            (s.opened, s.half_opened, s.reopened, s.closed),
            (1, 6, 5, 1)
        );
        assert_eq!(s.backoff, 100 * MS);
        // The next outage starts from the initial backoff.
        fail(&b, 1);
        wait_backoff(&b, &clock, 100 * MS);
        assert_eq!(b.admit(), Admit::Probe);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_check_probe() {
        let (b, clock) = breaker(1);
        fail(&b, 1);
        wait_backoff(&b, &clock, 100 * MS);
        assert_eq!(b.admit(), Admit::Probe);
        b.abandon_probe();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(), Admit::Probe);
        assert_eq!(b.admit(), Admit::Reject);
        assert_eq!(b.stats().half_opened, 1, "not a new transition");
    }

    #[test]
    fn stale_probe_answers_are_ignored() {
        let (b, _) = breaker(1);
        b.record(true, true);
        b.record(true, false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            b.stats(),
            BreakerStats {
                backoff: 100 * MS,
                ..BreakerStats::default()
            }
        );
    }
}
