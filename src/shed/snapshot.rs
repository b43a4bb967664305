//! [`Snapshot`]: what the layer is doing right now.

use std::time::Duration;

use super::priority::Priority;
use super::reason::ShedReason;

/// The state of a [`LoadShedLayer`](super::LoadShedLayer) at one instant,
/// from [`LoadShedLayer::snapshot`](super::LoadShedLayer::snapshot).
///
/// Counts are totals since the layer was built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The current limit on requests in flight (moves under AIMD and the
    /// gradient controller; the probe limit while the gradient controller
    /// measures its baseline).
    pub limit: usize,
    /// Requests admitted whose response body has not ended yet.
    pub in_flight: usize,
    /// Requests waiting in the queue.
    pub queued: usize,
    /// How long the oldest waiting request has waited: the current queue
    /// delay estimate (zero when nobody waits).
    pub queue_delay: Duration,
    /// The least queue delay of a request served during the last complete
    /// CoDel interval; `None` if none was served then (or CoDel is off).
    pub min_queue_delay: Option<Duration>,
    /// Whether a standing queue has formed: the queue serves newest first
    /// and sheds past the target delay.
    pub lifo: bool,
    /// Requests admitted (at once or from the queue).
    pub admitted: u64,
    /// Requests that went away while waiting (client cancel).
    pub cancelled: u64,
    /// Requests shed, by reason and priority.
    pub shed: ShedCounts,
    /// The gradient controller's baseline: the latency percentile of its
    /// last min-RTT probe, what the service answers in unloaded. `None`
    /// without the gradient controller or before its first probe ends.
    pub baseline_latency: Option<Duration>,
    /// The gradient controller's short-term latency: the percentile of the
    /// successes of its last complete window. `None` without the gradient
    /// controller, before its first window ends, or when that window had
    /// drops only.
    pub window_latency: Option<Duration>,
}

/// Requests shed, by reason and by priority.
///
/// ```
/// use tollgate::shed::{Priority, ShedCounts, ShedReason};
///
/// let counts = ShedCounts::default();
/// assert_eq!(counts.total(), 0);
/// assert_eq!(counts.reason(ShedReason::QueueFull), 0);
/// assert_eq!(counts.priority(Priority::Low), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShedCounts {
    by_reason: [u64; ShedReason::COUNT],
    by_priority: [u64; Priority::COUNT],
}

impl ShedCounts {
    /// Requests shed for `reason`.
    pub fn reason(&self, reason: ShedReason) -> u64 {
        self.by_reason[reason.index()]
    }

    /// Requests of `priority` shed.
    pub fn priority(&self, priority: Priority) -> u64 {
        self.by_priority[priority.index()]
    }

    /// Requests shed in all.
    pub fn total(&self) -> u64 {
        self.by_reason.iter().sum()
    }

    pub(crate) fn add(&mut self, reason: ShedReason, priority: Priority) {
        self.by_reason[reason.index()] += 1;
        self.by_priority[priority.index()] += 1;
    }
}
