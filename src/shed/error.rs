//! [`ShedConfigError`]: a load-shedding configuration refused at build time,
//! and [`LimitSettingError`]: which setting of an adaptive limit it was.

use super::priority::Priority;

/// A configuration [`LoadShedBuilder::build`](super::LoadShedBuilder::build)
/// refuses. Nothing here is ever raised per request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ShedConfigError {
    /// `max_in_flight` is zero: nothing could ever run.
    #[error("max_in_flight must be at least 1")]
    ZeroInFlight,
    /// A queue is configured but requests may not wait in it.
    #[error("max_queue_wait must be above zero when max_queue is")]
    ZeroQueueWait,
    /// A reservation of 100% or more, which would starve every lower priority.
    #[error("cannot reserve {percent}% of capacity for {priority}: at most 99%")]
    ReserveTooLarge {
        /// The priority the capacity is reserved for.
        priority: Priority,
        /// The share asked for, in percent.
        percent: u8,
    },
    /// A reservation for the lowest priority, which every request has.
    #[error("a reservation for the lowest priority reserves nothing")]
    ReserveForLowest,
    /// CoDel settings that do not hold together.
    #[error("codel: the target delay must be above zero and below the interval")]
    Codel,
    /// AIMD settings that do not hold together; the source says which.
    #[error("the AIMD limit's settings do not hold together")]
    Aimd(#[source] LimitSettingError),
    /// Gradient controller settings that do not hold together; the source
    /// says which.
    #[error("the gradient limit's settings do not hold together")]
    Gradient(#[source] LimitSettingError),
}

/// The setting of an adaptive limit ([`Aimd`](super::Aimd) or
/// [`Gradient`](super::Gradient)) that
/// [`LoadShedBuilder::build`](super::LoadShedBuilder::build) refused, the
/// source of [`ShedConfigError::Aimd`] or [`ShedConfigError::Gradient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitSettingError {
    /// The floor is zero: the limit could close to nothing.
    #[error("the floor must be at least 1")]
    ZeroFloor,
    /// The floor is above the ceiling.
    #[error("the floor {floor} is above the ceiling {ceiling}")]
    FloorAboveCeiling {
        /// The floor asked for.
        floor: usize,
        /// The ceiling asked for.
        ceiling: usize,
    },
    /// The builder's `max_in_flight`, where the limit starts, lies outside
    /// the floor and ceiling.
    #[error("max_in_flight {initial} lies outside the floor {floor} and the ceiling {ceiling}")]
    StartOutsideBounds {
        /// The starting limit (`max_in_flight`).
        initial: usize,
        /// The floor.
        floor: usize,
        /// The ceiling.
        ceiling: usize,
    },
    /// AIMD: the backoff ratio is not in `[0.5, 1)`.
    #[error("the backoff ratio must be at least 0.5 and below 1")]
    Backoff,
    /// AIMD: the latency threshold is zero.
    #[error("the latency threshold must be above zero")]
    ZeroLatencyThreshold,
    /// Gradient: the tolerance is below 1 or not finite.
    #[error("the tolerance must be a finite ratio of at least 1")]
    Tolerance,
    /// Gradient: the smoothing is not in `(0, 1]`.
    #[error("the smoothing must be above 0 and at most 1")]
    Smoothing,
    /// Gradient: the window is zero.
    #[error("the window must be above zero")]
    ZeroWindow,
    /// Gradient: a window needs no sample.
    #[error("a window needs at least one sample")]
    ZeroWindowSamples,
    /// Gradient: the percentile is not in `(0, 100]`.
    #[error("the percentile must be above 0 and at most 100")]
    Percentile,
    /// Gradient: the probe interval is zero.
    #[error("the probe interval must be above zero")]
    ZeroProbeInterval,
    /// Gradient: the probe jitter is not in `[0, 100]` percent.
    #[error("the probe jitter must be from 0 to 100 percent")]
    ProbeJitter,
    /// Gradient: the probe limit is zero or above the ceiling.
    #[error("the probe limit {limit} must be at least 1 and at most the ceiling {ceiling}")]
    ProbeLimit {
        /// The probe limit asked for.
        limit: usize,
        /// The ceiling.
        ceiling: usize,
    },
    /// Gradient: a probe needs no sample or more than the most allowed.
    #[error("a probe needs from 1 to {max} samples, not {samples}")]
    ProbeSamples {
        /// The samples asked for.
        samples: usize,
        /// The most a probe may need.
        max: usize,
    },
}
