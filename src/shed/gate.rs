//! [`Gate`]: the state every clone of the layer, service, future and
//! response body shares, and the lock around the [`Core`].
//!
//! One lock, held for a few comparisons and never across a call, a poll or
//! a wake: the clock is read and the request's priority computed before it
//! is taken, wakers are woken after it is released.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::Response;

use super::adaptive::Outcome;
use super::answer::Answers;
use super::core::{Arrival, Config, Core, Effects};
use super::priority::{Priority, PriorityFn};
use super::queue::{Resolution, WaiterId};
use super::reason::ShedReason;
use super::snapshot::Snapshot;
use super::ticket::Ticket;
use super::wait::Wait;
use crate::clock::{Clock, Nanos};
use crate::key::RequestInfo;

/// What the gate does with a request.
pub(crate) enum Admit {
    /// It runs now, holding this ticket.
    Now(Ticket),
    /// It waits for a ticket.
    Queued(Wait),
    /// It is shed.
    Shed(ShedReason),
}

pub(crate) struct Gate {
    pub(super) config: Config,
    pub(super) clock: Arc<dyn Clock>,
    priority: Option<PriorityFn>,
    default_priority: Priority,
    answers: Answers,
    pub(super) core: Mutex<Core>,
    /// Wakes the timer thread when a deadline moves earlier.
    pub(super) timer: Condvar,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::ShedMetrics,
}

impl Gate {
    pub(crate) fn new(
        config: Config,
        limit: usize,
        clock: Arc<dyn Clock>,
        priority: Option<PriorityFn>,
        default_priority: Priority,
        answers: Answers,
    ) -> Self {
        let core = Core::new(limit, clock.now(), &config);
        Self {
            config,
            clock,
            priority,
            default_priority,
            answers,
            core: Mutex::new(core),
            timer: Condvar::new(),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ShedMetrics::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        // No code of the user's runs under the lock, so a poisoned lock
        // holds consistent state.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acts on what a locked step asked for; call with the lock released.
    fn apply(self: &Arc<Self>, fx: Effects) {
        if fx.start_timer {
            self.start_timer();
        } else if fx.notify_timer {
            self.timer.notify_one();
        }
        fx.wakers.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// The priority of a request.
    pub(crate) fn priority_of(&self, request: &RequestInfo<'_>) -> Priority {
        self.priority
            .as_ref()
            .map_or(self.default_priority, |f| f(request))
    }

    /// Admits, queues or sheds a request of `priority`.
    pub(crate) fn admit(self: &Arc<Self>, priority: Priority) -> Admit {
        let now = self.now();
        let mut fx = Effects::default();
        let arrival = self.lock().arrive(&self.config, priority, now, &mut fx);
        self.apply(fx);
        match arrival {
            Arrival::Admitted => Admit::Now(Ticket::new(Arc::clone(self), now)),
            Arrival::Queued(id) => Admit::Queued(Wait::new(Arc::clone(self), id)),
            Arrival::Shed(reason) => Admit::Shed(reason),
        }
    }

    /// Polls the waiter `id`.
    pub(crate) fn poll_wait(
        self: &Arc<Self>,
        id: WaiterId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Ticket, ShedReason>> {
        let now = self.now();
        let mut fx = Effects::default();
        let resolution = self
            .lock()
            .poll_waiter(&self.config, id, now, cx.waker(), &mut fx);
        self.apply(fx);
        match resolution {
            None => Poll::Pending,
            Some(Resolution::Granted) => Poll::Ready(Ok(Ticket::new(Arc::clone(self), now))),
            Some(Resolution::Shed(reason)) => Poll::Ready(Err(reason)),
        }
    }

    /// The waiter `id` went away.
    pub(crate) fn cancel_wait(self: &Arc<Self>, id: WaiterId) {
        let now = self.now();
        let mut fx = Effects::default();
        self.lock().cancel(&self.config, id, now, &mut fx);
        self.apply(fx);
    }

    /// An admitted request ended.
    pub(crate) fn release(self: &Arc<Self>, outcome: Option<Outcome>) {
        let now = self.now();
        let mut fx = Effects::default();
        self.lock().release(&self.config, outcome, now, &mut fx);
        self.apply(fx);
    }

    /// Whether outcomes are wanted (an adaptive limit is configured).
    pub(crate) fn adaptive(&self) -> bool {
        self.config.adaptive.is_some()
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = self.now();
        self.lock().snapshot(now)
    }

    /// The answer to a request of `priority` shed for `reason`.
    pub(crate) fn answer(&self, reason: ShedReason, priority: Priority) -> Response<Bytes> {
        tracing::debug!(
            reason = reason.as_str(),
            priority = priority.as_str(),
            "request shed"
        );
        #[cfg(feature = "metrics")]
        self.metrics.shed(reason, priority);
        self.answers.response(reason, priority)
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate")
            .field("config", &self.config)
            .field("core", &*self.lock())
            .finish_non_exhaustive()
    }
}
