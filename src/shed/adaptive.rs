//! Adaptive concurrency limits: [`Aimd`], and the one interface it and
//! the [`Gradient`] controller sit behind.
//!
//! The [`Core`](super::core::Core) holds a [`Controller`] and feeds it one
//! sample per admitted request that ends with an [`Outcome`] (a cancelled
//! request gives none), under the lock it takes for that release anyway:
//! the controller costs no lock of its own.

use std::time::Duration;

use http::StatusCode;

use super::error::{LimitSettingError, ShedConfigError};
use super::gradient::{Gradient, GradientState};
use crate::clock::nanos_saturating;
use crate::clock::Nanos;

/// An adaptive limit on requests in flight: additive increase,
/// multiplicative decrease (AIMD, as in TCP congestion control).
///
/// Each admitted request ends in one outcome:
///
/// - **success**: an answer (any status but 503 and 504) within the latency
///   threshold;
/// - **drop**: an answer slower than the threshold (a timeout), a `503
///   Service Unavailable` or `504 Gateway Timeout` (the service, or what it
///   calls, is overloaded), or an error from the inner service;
/// - **ignored**: the caller went away before the answer (a client cancel
///   says nothing about the service).
///
/// Latency is measured from the inner call to the response head; the
/// outcome counts when the response body ends or drops.
///
/// The rule follows Netflix's `concurrency-limits` `AIMDLimit`: a success
/// adds one while the limit is in use (at least half of it in flight, so an
/// idle service does not grow its limit without evidence); a drop
/// multiplies the limit by the backoff ratio (default **0.9**, allowed from
/// 0.5 up to 1, as there) and takes at least one off; slower than the
/// threshold (default **5 s**, as there) counts as a drop. The limit stays
/// within the floor and ceiling given.
///
/// The starting limit is the layer's `max_in_flight`, which must lie
/// between the floor and the ceiling.
///
/// ```
/// use std::time::Duration;
/// use tollgate::shed::{Aimd, LoadShedLayer};
///
/// let layer = LoadShedLayer::builder(20)
///     .aimd(Aimd::new(4, 200).latency_threshold(Duration::from_millis(500)))
///     .build()?;
/// assert_eq!(layer.snapshot().limit, 20);
/// # Ok::<(), tollgate::shed::ShedConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    min: usize,
    max: usize,
    backoff: f64,
    latency_threshold: Duration,
}

impl Aimd {
    /// A limit that moves between `min` (at least 1) and `max`, with a
    /// backoff of 0.9 and a latency threshold of 5 s.
    pub const fn new(min: usize, max: usize) -> Self {
        Self {
            min,
            max,
            backoff: 0.9,
            latency_threshold: Duration::from_secs(5),
        }
    }

    /// What a drop multiplies the limit by (default 0.9; from 0.5 up to,
    /// not including, 1).
    #[must_use]
    pub const fn backoff(mut self, ratio: f64) -> Self {
        self.backoff = ratio;
        self
    }

    /// An answer slower than this counts as a drop (default 5 s).
    #[must_use]
    pub const fn latency_threshold(mut self, threshold: Duration) -> Self {
        self.latency_threshold = threshold;
        self
    }

    /// The floor.
    pub const fn min_limit(&self) -> usize {
        self.min
    }

    /// The ceiling.
    pub const fn max_limit(&self) -> usize {
        self.max
    }

    /// The backoff ratio.
    pub const fn backoff_ratio(&self) -> f64 {
        self.backoff
    }

    /// The latency threshold.
    pub const fn threshold(&self) -> Duration {
        self.latency_threshold
    }

    /// Whether the settings hold together with a starting limit of `initial`.
    pub(crate) fn check(&self, initial: usize) -> Result<(), LimitSettingError> {
        check_bounds(self.min, self.max, initial)?;
        if !(0.5..1.0).contains(&self.backoff) {
            return Err(LimitSettingError::Backoff);
        }
        if self.latency_threshold.is_zero() {
            return Err(LimitSettingError::ZeroLatencyThreshold);
        }
        Ok(())
    }

    /// The limit after `outcome`, with `in_flight` requests running
    /// (counting the one that ended).
    pub(crate) fn next(&self, limit: usize, in_flight: usize, outcome: Outcome) -> usize {
        let outcome = match outcome {
            Outcome::Success { latency, .. }
                if latency > nanos_saturating(self.latency_threshold) =>
            {
                Outcome::Drop
            }
            other => other,
        };
        let next = match outcome {
            Outcome::Success { .. } if in_flight.saturating_mul(2) >= limit => {
                limit.saturating_add(1)
            }
            Outcome::Success { .. } => limit,
            Outcome::Drop => {
                // Truncated, and at least one less.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let scaled = (limit as f64 * self.backoff) as usize;
                scaled.min(limit.saturating_sub(1))
            }
        };
        next.clamp(self.min, self.max)
    }
}

/// Which adaptive controller a layer runs, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Adaptive {
    /// Additive increase, multiplicative decrease.
    Aimd(Aimd),
    /// Latency gradient against a periodically measured baseline.
    Gradient(Gradient),
}

impl Adaptive {
    /// Whether the settings hold together with a starting limit of `initial`.
    pub(crate) fn check(&self, initial: usize) -> Result<(), ShedConfigError> {
        match self {
            Adaptive::Aimd(aimd) => aimd.check(initial).map_err(ShedConfigError::Aimd),
            Adaptive::Gradient(gradient) => {
                gradient.check(initial).map_err(ShedConfigError::Gradient)
            }
        }
    }

    /// The controller, started at `now` from the layer's `max_in_flight`
    /// (`initial`), and the limit it starts with.
    pub(crate) fn start(&self, initial: usize, now: Nanos) -> (Controller, usize) {
        match self {
            Adaptive::Aimd(aimd) => (Controller::Aimd(*aimd), initial),
            Adaptive::Gradient(gradient) => {
                let state = GradientState::start(*gradient, initial, now);
                let limit = state.limit();
                (Controller::Gradient(state), limit)
            }
        }
    }
}

/// The running state of an adaptive limit.
#[derive(Debug)]
pub(crate) enum Controller {
    /// AIMD keeps no state but the limit itself.
    Aimd(Aimd),
    /// The gradient controller's windows, baseline and probe.
    Gradient(GradientState),
}

impl Controller {
    /// The limit after a request ended at `now` with `outcome`, when the
    /// limit was `limit` and `in_flight` requests ran (counting that one).
    pub(crate) fn sample(
        &mut self,
        limit: usize,
        in_flight: usize,
        outcome: Outcome,
        now: Nanos,
    ) -> usize {
        match self {
            Controller::Aimd(aimd) => aimd.next(limit, in_flight, outcome),
            Controller::Gradient(state) => state.sample(in_flight, outcome, now),
        }
    }

    /// The latencies the controller steers by, for the snapshot.
    pub(crate) fn latencies(&self) -> Latencies {
        match self {
            Controller::Aimd(_) => Latencies::default(),
            Controller::Gradient(state) => state.latencies(),
        }
    }
}

/// The latencies a controller steers by, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Latencies {
    /// The long-term baseline (the gradient controller's min RTT).
    pub(crate) baseline: Option<Nanos>,
    /// The short-term measure (the last window's percentile).
    pub(crate) window: Option<Nanos>,
}

/// How an admitted request ended, for the adaptive limit; a request the
/// caller cancelled has no outcome (it is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered, `latency` nanoseconds after it was admitted at `started`.
    Success { latency: Nanos, started: Nanos },
    /// Timed out, overloaded or failed.
    Drop,
}

impl Outcome {
    /// The outcome of an answer with `status` at `now`, to a request
    /// admitted at `started`.
    pub(crate) fn of(status: StatusCode, started: Nanos, now: Nanos) -> Self {
        match status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => Outcome::Drop,
            _ => Outcome::Success {
                latency: now.saturating_sub(started),
                started,
            },
        }
    }
}

/// Whether a floor `min` and ceiling `max` hold together with a starting
/// limit of `initial`: the bounds every adaptive controller shares.
pub(super) fn check_bounds(
    min: usize,
    max: usize,
    initial: usize,
) -> Result<(), LimitSettingError> {
    if min == 0 {
        return Err(LimitSettingError::ZeroFloor);
    }
    if min > max {
        return Err(LimitSettingError::FloorAboveCeiling {
            floor: min,
            ceiling: max,
        });
    }
    if initial < min || initial > max {
        return Err(LimitSettingError::StartOutsideBounds {
            initial,
            floor: min,
            ceiling: max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn ok(latency: Nanos) -> Outcome {
        Outcome::Success {
            latency,
            started: 0,
        }
    }

    #[test]
    fn success_adds_one_only_while_the_limit_is_used() {
        let aimd = Aimd::new(2, 12);
        assert_eq!(aimd.next(10, 5, ok(MS)), 11);
        assert_eq!(aimd.next(10, 4, ok(MS)), 10);
        assert_eq!(aimd.next(12, 12, ok(MS)), 12);
    }

    #[test]
    fn drop_multiplies_and_takes_at_least_one() {
        let aimd = Aimd::new(2, 100);
        assert_eq!(aimd.next(100, 1, Outcome::Drop), 90);
        assert_eq!(aimd.next(5, 1, Outcome::Drop), 4);
        assert_eq!(aimd.next(2, 1, Outcome::Drop), 2);
        let slow = ok(6_000 * MS);
        assert_eq!(aimd.next(50, 50, slow), 45);
    }

    #[test]
    fn statuses_classify() {
        assert_eq!(
            Outcome::of(StatusCode::SERVICE_UNAVAILABLE, 1, 2),
            Outcome::Drop
        );
        assert_eq!(
            Outcome::of(StatusCode::GATEWAY_TIMEOUT, 1, 2),
            Outcome::Drop
        );
        assert_eq!(
            Outcome::of(StatusCode::INTERNAL_SERVER_ERROR, 5, 7),
            Outcome::Success {
                latency: 2,
                started: 5
            }
        );
    }

    #[test]
    fn aimd_behind_the_controller_interface_is_unchanged() {
        let aimd = Aimd::new(2, 100);
        let (mut controller, limit) = Adaptive::Aimd(aimd).start(10, 0);
        assert_eq!(limit, 10);
        let success = ok(MS);
        assert_eq!(
            controller.sample(10, 5, success, MS),
            aimd.next(10, 5, success)
        );
        assert_eq!(controller.sample(10, 5, Outcome::Drop, MS), 9);
        assert_eq!(controller.latencies(), Latencies::default());
        assert_eq!(
            Adaptive::Aimd(Aimd::new(0, 4)).check(2),
            Err(ShedConfigError::Aimd(LimitSettingError::ZeroFloor))
        );
    }

    #[test]
    fn settings_are_checked() {
        use LimitSettingError as E;
        assert_eq!(Aimd::new(1, 10).check(5), Ok(()));
        assert_eq!(Aimd::new(0, 10).check(5), Err(E::ZeroFloor));
        assert_eq!(
            Aimd::new(6, 5).check(5),
            Err(E::FloorAboveCeiling {
                floor: 6,
                ceiling: 5
            })
        );
        assert_eq!(
            Aimd::new(1, 4).check(5),
            Err(E::StartOutsideBounds {
                initial: 5,
                floor: 1,
                ceiling: 4
            })
        );
        assert_eq!(Aimd::new(1, 10).backoff(1.0).check(5), Err(E::Backoff));
        assert_eq!(Aimd::new(1, 10).backoff(0.4).check(5), Err(E::Backoff));
        assert_eq!(
            Aimd::new(1, 10).latency_threshold(Duration::ZERO).check(5),
            Err(E::ZeroLatencyThreshold)
        );
    }
}
