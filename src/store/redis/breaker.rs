//! The circuit breaker in front of Redis: when most recent calls fail it
//! answers at once, without Redis, and lets one probe through after a
//! backoff.
//!
//! - **Closed**: every check calls Redis. The breaker counts calls and
//!   failed calls (timeouts or errors of the call itself) over a sliding
//!   window ([`BreakerSettings::window`], two halves); it opens when, in
//!   that window, at least [`BreakerSettings::min_calls`] calls were made
//!   and at least [`BreakerSettings::failure_rate`] of them failed. A
//!   moment in which every call in flight times out together (one stall of
//!   a loaded host) is a handful of failures among the window's calls, not
//!   an outage; a Redis that is really away fails every call and opens it
//!   within about half a window.
//! - **Open**: checks fail at once with [`CircuitOpen`]. Once the backoff
//!   has passed (the initial backoff, doubled after each failed probe up to
//!   the cap, plus up to an eighth of it as jitter, so instances do not
//!   probe in step), the next check becomes the probe.
//! - **Half-open**: that one probe calls Redis; other checks still fail at
//!   once. Its success closes the breaker, resets the backoff and empties
//!   the window; its failure opens it again with the doubled backoff. A
//!   probe dropped before its answer (its request cancelled) lets the next
//!   check probe.
//!
//! Closed costs one atomic load per check and, per answer, a clock reading
//! and one compare-and-swap on the window's current half; the other states
//! take a small mutex. Each transition is logged once (`tracing::warn!`)
//! and counted.

use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::LocalClock;
use crate::clock::{Clock, Nanos};
use crate::jitter::Jitter;

/// The default window over which the circuit breaker counts calls: 1 s.
pub const DEFAULT_BREAKER_WINDOW: Duration = Duration::from_secs(1);

/// The default least number of calls in the window before the circuit
/// breaker may open: 20.
pub const DEFAULT_BREAKER_MIN_CALLS: u32 = 20;

/// The default share of failed calls in the window that opens the circuit
/// breaker: one half.
pub const DEFAULT_BREAKER_FAILURE_RATE: f64 = 0.5;

/// The default first backoff of an open circuit breaker: 50 ms.
pub const DEFAULT_BREAKER_INITIAL_BACKOFF: Duration = Duration::from_millis(50);

/// The default longest backoff of an open circuit breaker: 250 ms, so a
/// probe reaches Redis at most about 280 ms after it answers again.
pub const DEFAULT_BREAKER_MAX_BACKOFF: Duration = Duration::from_millis(250);

/// When a [`RedisStore`](super::RedisStore)'s circuit breaker opens and how
/// it probes; see the [module docs](super#circuit-breaker).
///
/// ```
/// use std::time::Duration;
/// use tollgate::store::redis::BreakerSettings;
///
/// // Open when 80% of at least 50 calls in the last 2 s failed.
/// let settings = BreakerSettings::new()
///     .window(Duration::from_secs(2))
///     .min_calls(50)
///     .failure_rate(0.8)
///     .backoff(Duration::from_millis(20), Duration::from_millis(500));
/// assert_eq!(settings.min_calls_in_window(), 50);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerSettings {
    window: Duration,
    min_calls: u32,
    failure_rate: f64,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl BreakerSettings {
    /// The defaults: [`DEFAULT_BREAKER_WINDOW`],
    /// [`DEFAULT_BREAKER_MIN_CALLS`], [`DEFAULT_BREAKER_FAILURE_RATE`],
    /// [`DEFAULT_BREAKER_INITIAL_BACKOFF`] and
    /// [`DEFAULT_BREAKER_MAX_BACKOFF`].
    pub const fn new() -> Self {
        Self {
            window: DEFAULT_BREAKER_WINDOW,
            min_calls: DEFAULT_BREAKER_MIN_CALLS,
            failure_rate: DEFAULT_BREAKER_FAILURE_RATE,
            initial_backoff: DEFAULT_BREAKER_INITIAL_BACKOFF,
            max_backoff: DEFAULT_BREAKER_MAX_BACKOFF,
        }
    }

    /// The sliding window over which calls are counted (at least 2 ms).
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The least number of calls in the window before it may open (at
    /// least 1). Below it (a quiet service), failed calls never open the
    /// breaker: each waits its timeout, then gets the store's failure
    /// answer.
    #[must_use]
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = calls;
        self
    }

    /// The share of the window's calls that must have failed for it to
    /// open: above 0, at most 1.
    #[must_use]
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// The backoff before the first probe (above zero), doubled after each
    /// failed probe up to `max` (at least `initial`).
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// The least number of calls in the window before it may open.
    pub fn min_calls_in_window(&self) -> u32 {
        self.min_calls
    }

    /// What makes these settings unusable, if anything.
    pub(super) fn invalid(&self) -> Option<&'static str> {
        if self.window < Duration::from_millis(2) {
            return Some("the breaker's window must be at least 2 ms");
        }
        if self.min_calls == 0 {
            return Some("the breaker's least number of calls must be at least 1");
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Some("the breaker's failure rate must be above 0 and at most 1");
        }
        if self.initial_backoff.is_zero() {
            return Some("the breaker's initial backoff must be above zero");
        }
        if self.max_backoff < self.initial_backoff {
            return Some("the breaker's maximum backoff must be at least its initial one");
        }
        None
    }
}

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

/// Bits of a half-window's count of calls, and of failed calls; the rest
/// of the word numbers the half-window.
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;

/// One half of the window: `(number, calls, failures)` in one word, so a
/// call is counted with one compare-and-swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Half {
    number: u64,
    calls: u64,
    failures: u64,
}

impl Half {
    const NUMBER_MASK: u64 = (1 << (64 - 2 * COUNT_BITS)) - 1;

    fn unpack(word: u64) -> Half {
        Half {
            number: word >> (2 * COUNT_BITS),
            calls: (word >> COUNT_BITS) & COUNT_MAX,
            failures: word & COUNT_MAX,
        }
    }

    fn pack(self) -> u64 {
        ((self.number & Self::NUMBER_MASK) << (2 * COUNT_BITS))
            | (self.calls.min(COUNT_MAX) << COUNT_BITS)
            | self.failures.min(COUNT_MAX)
    }
}

/// The breaker; see the [module docs](self).
pub(super) struct Breaker<C = LocalClock> {
    /// Half the window, in ns (at least 1).
    half: Nanos,
    min_calls: u64,
    failure_rate: f64,
    initial: Nanos,
    max: Nanos,
    clock: C,
    /// `true` while closed: the lock-free fast path.
    closed: AtomicBool,
    /// The window's two halves, by the parity of their number.
    halves: [AtomicU64; 2],
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
    /// Draws for the jitter.
    seed: Jitter,
}

/// A transition to log once, outside the lock.
enum Transition {
    Opened {
        calls: u64,
        failures: u64,
        backoff: Nanos,
    },
    HalfOpened,
    Reopened {
        backoff: Nanos,
    },
    Closed,
}

impl<C: Clock> Breaker<C> {
    /// `settings` valid (the builder checks).
    pub(super) fn with_clock(settings: &BreakerSettings, clock: C) -> Self {
        let initial = crate::clock::nanos_saturating(settings.initial_backoff).max(1);
        let seed = Jitter::per_process();
        Self {
            half: (crate::clock::nanos_saturating(settings.window) / 2).max(1),
            min_calls: u64::from(settings.min_calls.max(1)),
            failure_rate: settings.failure_rate,
            initial,
            max: crate::clock::nanos_saturating(settings.max_backoff).max(initial),
            clock,
            closed: AtomicBool::new(true),
            halves: [AtomicU64::new(0), AtomicU64::new(0)],
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
            return;
        }
        if !self.closed.load(Ordering::Acquire) {
            // A call made before the breaker opened: the window starts
            // empty when it closes again.
            return;
        }
        let (calls, failures) = self.count(ok);
        if !ok && calls >= self.min_calls && failures as f64 >= self.failure_rate * calls as f64 {
            self.trip(calls, failures);
        }
    }

    /// Counts one answer in the current half; the calls and failures of
    /// the whole window (this half and the one before), once counted.
    fn count(&self, ok: bool) -> (u64, u64) {
        let number = self.clock.now() / self.half;
        let slot = &self.halves[(number & 1) as usize];
        let mut word = slot.load(Ordering::Relaxed);
        let this = loop {
            let old = Half::unpack(word);
            let new = if old.number == number & Half::NUMBER_MASK {
                Half {
                    calls: old.calls + 1,
                    failures: old.failures + u64::from(!ok),
                    ..old
                }
            } else {
                Half {
                    number,
                    calls: 1,
                    failures: u64::from(!ok),
                }
            };
            match slot.compare_exchange_weak(word, new.pack(), Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(current) => word = current,
            }
        };
        if ok {
            // Only a failure can open the breaker: no need to add up.
            return (0, 0);
        }
        let before = Half::unpack(self.halves[((number + 1) & 1) as usize].load(Ordering::Relaxed));
        let (calls, failures) = if before.number == number.wrapping_sub(1) & Half::NUMBER_MASK {
            (before.calls, before.failures)
        } else {
            (0, 0)
        };
        (
            (this.calls.min(COUNT_MAX)) + calls,
            (this.failures.min(COUNT_MAX)) + failures,
        )
    }

    /// A probe dropped before its answer: the next check probes instead.
    pub(super) fn abandon_probe(&self) {
        let mut m = self.lock();
        if m.state == BreakerState::HalfOpen {
            m.probing = false;
        }
    }

    /// Closed → open, once per outage.
    fn trip(&self, calls: u64, failures: u64) {
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
            calls,
            failures,
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
            for half in &self.halves {
                half.store(0, Ordering::Relaxed);
            }
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

    pub(super) fn min_calls(&self) -> u64 {
        self.min_calls
    }
}

impl Machine {
    /// Opens for the current backoff plus up to an eighth of it.
    fn open(&mut self, now: Nanos) {
        // Only needs to differ between instances.
        let jitter = self.seed.up_to(self.backoff / 8);
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
        Transition::Opened {
            calls,
            failures,
            backoff,
        } => tracing::warn!(
            calls,
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

    /// Opens when at least half of at least `min_calls` calls in 1 s
    /// failed; backoff 100 ms to 1 s.
    fn breaker(min_calls: u32) -> (Breaker<ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let settings = BreakerSettings::new()
            .min_calls(min_calls)
            .backoff(100 * MS, 1_000 * MS);
        (Breaker::with_clock(&settings, clock.clone()), clock)
    }

    fn answer(b: &Breaker<ManualClock>, n: u32, ok: bool) {
        for _ in 0..n {
            assert_eq!(b.admit(), Admit::Call);
            b.record(false, ok);
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
    fn the_defaults_are_the_documented_ones_and_bad_settings_are_named() {
        let d = BreakerSettings::default();
        assert_eq!(d, BreakerSettings::new());
        assert_eq!(d.window, Duration::from_secs(1));
        assert_eq!(d.min_calls, 20);
        assert!((d.failure_rate - 0.5).abs() < f64::EPSILON);
        assert_eq!(d.invalid(), None);
        for bad in [
            d.window(MS),
            d.min_calls(0),
            d.failure_rate(0.0),
            d.failure_rate(1.01),
            d.failure_rate(f64::NAN),
            d.backoff(Duration::ZERO, MS),
            d.backoff(2 * MS, MS),
        ] {
            assert!(bad.invalid().is_some(), "{bad:?}");
        }
        assert_eq!(d.failure_rate(1.0).invalid(), None);
    }

    #[test]
    fn opens_when_half_of_at_least_min_calls_in_the_window_failed() {
        let (b, _) = breaker(20);
        answer(&b, 19, false);
        assert_eq!(
            b.state(),
            BreakerState::Closed,
            "19 calls: too few to judge"
        );
        answer(&b, 1, false);
        assert_eq!(b.state(), BreakerState::Open, "20 of 20 failed");
        for _ in 0..5 {
            assert_eq!(b.admit(), Admit::Reject);
        }
        let stats = b.stats();
        assert_eq!((stats.opened, stats.rejected), (1, 5));
        assert_eq!(stats.backoff, 100 * MS);
    }

    #[test]
    fn failures_below_the_rate_never_open_it() {
        let (b, _) = breaker(20);
        // 9 of every 20 fail, over and over: 45% < 50%.
        for _ in 0..100 {
            answer(&b, 11, true);
            answer(&b, 9, false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        // Once one more in the window fails than succeeds, it opens.
        answer(&b, 200, false);
        assert_eq!(b.state(), BreakerState::Open);
    }

    /// The fault the issue measured: one stall of a loaded host makes every
    /// call in flight (64 tasks) time out together. Among the window's
    /// other calls that is no outage.
    #[test]
    fn calls_timing_out_together_on_a_busy_store_do_not_open_it() {
        let (b, clock) = breaker(20);
        for _ in 0..10 {
            answer(&b, 500, true);
            clock.advance(10 * MS);
        }
        answer(&b, 64, false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.stats().opened, 0);
    }

    #[test]
    fn failures_leave_the_window_as_time_passes() {
        let (b, clock) = breaker(20);
        answer(&b, 19, false);
        // A window (two halves) later they no longer count.
        clock.advance(1_000 * MS);
        answer(&b, 19, false);
        assert_eq!(b.state(), BreakerState::Closed);
        // The half before still counts: 19 + 1 = 20 of 20.
        clock.advance(500 * MS);
        answer(&b, 1, false);
        assert_eq!(b.state(), BreakerState::Open);
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
    fn one_probe_after_backoff_and_success_closes_with_an_empty_window() {
        let (b, clock) = breaker(3);
        answer(&b, 3, false);
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
        // Closed again: the failures before the outage are forgotten.
        answer(&b, 2, false);
        assert_eq!(b.state(), BreakerState::Closed);
        answer(&b, 1, false);
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn failed_probes_double_the_backoff_up_to_the_cap_and_success_resets_it() {
        let (b, clock) = breaker(1);
        answer(&b, 1, false);
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
        answer(&b, 1, false);
        wait_backoff(&b, &clock, 100 * MS);
        assert_eq!(b.admit(), Admit::Probe);
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_check_probe() {
        let (b, clock) = breaker(1);
        answer(&b, 1, false);
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

    #[test]
    fn half_counts_saturate_instead_of_spilling_into_the_number() {
        let full = Half {
            number: 7,
            calls: COUNT_MAX + 5,
            failures: COUNT_MAX + 9,
        };
        let read = Half::unpack(full.pack());
        assert_eq!(
            (read.number, read.calls, read.failures),
            (7, COUNT_MAX, COUNT_MAX)
        );
    }
}
