//! [`ShedConfigError`]: a load-shedding configuration refused at build time.

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
    /// AIMD settings that do not hold together.
    #[error("aimd: {0}")]
    Aimd(&'static str),
    /// Gradient controller settings that do not hold together.
    #[error("gradient: {0}")]
    Gradient(&'static str),
}
