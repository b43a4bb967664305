//! [`ShedReason`]: why a request was shed.

use std::fmt;

/// Why a request was shed (answered 503 without reaching the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShedReason {
    /// Every permit was in use and the queue was full of requests of the
    /// same or a higher priority (or there is no queue).
    QueueFull,
    /// The request waited in the queue longer than `max_queue_wait`.
    QueueTimeout,
    /// A standing queue had formed (CoDel) and the request waited longer
    /// than the target queue delay.
    Overloaded,
    /// The request was waiting when the queue was full and a request of a
    /// higher priority (or, under a standing queue, a newer one) took its place.
    Displaced,
}

impl ShedReason {
    /// Every reason.
    pub const ALL: [ShedReason; 4] = [
        ShedReason::QueueFull,
        ShedReason::QueueTimeout,
        ShedReason::Overloaded,
        ShedReason::Displaced,
    ];

    /// How many reasons there are.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// The name used in answers: `queue_full`, `queue_timeout`,
    /// `overloaded`, `displaced`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShedReason::QueueFull => "queue_full",
            ShedReason::QueueTimeout => "queue_timeout",
            ShedReason::Overloaded => "overloaded",
            ShedReason::Displaced => "displaced",
        }
    }

    /// A sentence for people, used as the problem's `detail`.
    pub fn detail(self) -> &'static str {
        match self {
            ShedReason::QueueFull => "The server is at capacity and its queue is full.",
            ShedReason::QueueTimeout => {
                "The request waited in the queue longer than the server allows."
            }
            ShedReason::Overloaded => {
                "The server is overloaded: a standing queue has formed and stale requests are shed."
            }
            ShedReason::Displaced => {
                "The request was waiting in a full queue and gave its place to a more urgent one."
            }
        }
    }

    /// The position in [`ShedReason::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            ShedReason::QueueFull => 0,
            ShedReason::QueueTimeout => 1,
            ShedReason::Overloaded => 2,
            ShedReason::Displaced => 3,
        }
    }
}

impl fmt::Display for ShedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
