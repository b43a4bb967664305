//! [`ShedMetrics`]: the shed counters of one load-shedding layer.

use ::metrics::{counter, Counter};

use super::REQUESTS_SHED;
use crate::shed::{Priority, ShedReason};

/// Requests shed, by reason then priority. Registered when the layer is built.
pub(crate) struct ShedMetrics {
    shed: [[Counter; Priority::COUNT]; ShedReason::COUNT],
}

impl ShedMetrics {
    /// Registers a counter per (reason, priority).
    pub(crate) fn new() -> Self {
        Self {
            shed: ShedReason::ALL.map(|reason| {
                Priority::ALL.map(|priority| {
                    counter!(
                        REQUESTS_SHED,
                        "reason" => reason.as_str(),
                        "priority" => priority.as_str(),
                    )
                })
            }),
        }
    }

    /// A request of `priority` was shed for `reason`.
    #[inline]
    pub(crate) fn shed(&self, reason: ShedReason, priority: Priority) {
        self.shed[reason.index()][priority.index()].increment(1);
    }
}

impl std::fmt::Debug for ShedMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShedMetrics").finish_non_exhaustive()
    }
}
