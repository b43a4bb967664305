//! The timer thread: sheds waiters when their wait is over.
//!
//! Waiters also check their own deadline whenever they are polled, and
//! every arrival and release sheds whoever has waited too long, so the
//! queue works on any runtime (or none). What those cannot do is shed a
//! waiter at its deadline while nothing else happens; a small thread per
//! layer does, started when the first request queues and ended once the
//! queue has stayed empty for a second. It sleeps until the next deadline
//! (on the real clock: with a manual clock, deadlines are met when a
//! waiter is polled or something arrives or ends).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::core::Effects;
use super::gate::Gate;

/// How long the thread stays once the queue is empty.
const LINGER: Duration = Duration::from_secs(1);

impl Gate {
    /// Starts the timer thread (the core has marked it running).
    pub(super) fn start_timer(self: &Arc<Self>) {
        let gate = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("tollgate-shed".into())
            .spawn(move || gate.run_timer());
        if let Err(error) = spawned {
            // Waiters are still shed when polled or when requests come and
            // go; only the timely shed of an idle queue is lost.
            tracing::error!(%error, "tollgate: cannot start the load-shedding timer thread");
            self.lock().timer_stopped();
        }
    }

    fn run_timer(self: Arc<Self>) {
        let mut core = self.lock();
        loop {
            let now = self.now();
            let mut fx = Effects::default();
            core.tick(&self.config, now, &mut fx);
            if !fx.wakers.is_empty() {
                drop(core);
                fx.wakers.into_iter().for_each(std::task::Waker::wake);
                core = self.lock();
                continue;
            }
            match core.next_deadline(&self.config) {
                Some(deadline) => {
                    let wait = Duration::from_nanos(deadline.saturating_sub(now).max(1));
                    core = self
                        .timer
                        .wait_timeout(core, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None => {
                    let (guard, waited) = self
                        .timer
                        .wait_timeout(core, LINGER)
                        .unwrap_or_else(PoisonError::into_inner);
                    core = guard;
                    if waited.timed_out() && core.queue_is_empty() {
                        core.timer_stopped();
                        return;
                    }
                }
            }
        }
    }
}
