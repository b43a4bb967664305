//! The admission state machine: limit, requests in flight, the queue and
//! CoDel, all behind the one lock of the [`Gate`](super::gate::Gate).
//!
//! Every method runs under that lock and takes the time as an argument, so
//! each decision (the partition check included) is atomic and the whole
//! machine is tested without a clock. Wakers are collected into [`Effects`]
//! and woken once the lock is released.
//!
//! Invariant, restored by every method that frees capacity: no waiter could
//! be admitted (the highest waiting priority has reached its cap). Hence an
//! arrival under its cap may run at once without passing anyone waiting.

use std::time::Duration;

use super::adaptive::{Adaptive, Controller, Outcome};
use super::codel::{Codel, CodelState};
use super::priority::Priority;
use super::queue::{Left, Queue, Resolution, Waiter, WaiterId, Wakers};
use super::reason::ShedReason;
use super::snapshot::{ShedCounts, Snapshot};
use crate::clock::Nanos;

/// The settings the machine runs by.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) max_queue: usize,
    pub(crate) max_queue_wait: Nanos,
    pub(crate) codel: Option<Codel>,
    /// The percentage of the limit requests of each priority may not use.
    pub(crate) withheld: [u8; Priority::COUNT],
    pub(crate) adaptive: Option<Adaptive>,
}

/// What happens to an arriving request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It runs now.
    Admitted,
    /// It waits under this id.
    Queued(WaiterId),
    /// It is shed.
    Shed(ShedReason),
}

/// What to do once the lock is released.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub(crate) wakers: Wakers,
    /// Start the timer thread (the machine has marked it running).
    pub(crate) start_timer: bool,
    /// Deadlines moved earlier: wake the timer thread.
    pub(crate) notify_timer: bool,
}

/// The state; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Core {
    limit: usize,
    in_flight: usize,
    queue: Queue,
    codel: CodelState,
    admitted: u64,
    cancelled: u64,
    shed: ShedCounts,
    timer_running: bool,
    /// The adaptive limit, if any.
    controller: Option<Controller>,
}

impl Core {
    pub(crate) fn new(limit: usize, now: Nanos, config: &Config) -> Self {
        let (controller, limit) = match &config.adaptive {
            Some(adaptive) => {
                let (controller, limit) = adaptive.start(limit, now);
                (Some(controller), limit)
            }
            None => (None, limit),
        };
        Self {
            limit,
            in_flight: 0,
            queue: Queue::default(),
            codel: CodelState::new(now, config.codel.as_ref()),
            admitted: 0,
            cancelled: 0,
            shed: ShedCounts::default(),
            timer_running: false,
            controller,
        }
    }

    /// How many requests may be in flight when one of `priority` is
    /// admitted: the limit less what is reserved for higher priorities,
    /// rounded up, leaving at least one when the limit is above one.
    fn cap(&self, config: &Config, priority: Priority) -> usize {
        let percent = usize::from(config.withheld[priority.index()]);
        let reserved = self
            .limit
            .saturating_mul(percent)
            .div_ceil(100)
            .min(self.limit.saturating_sub(1));
        self.limit - reserved
    }

    /// The longest a request may wait now.
    fn wait_limit(&self, config: &Config) -> Nanos {
        match &config.codel {
            Some(codel) if self.codel.overloaded() => {
                codel.target_nanos().min(config.max_queue_wait)
            }
            _ => config.max_queue_wait,
        }
    }

    /// A request of `priority` arrives.
    pub(crate) fn arrive(
        &mut self,
        config: &Config,
        priority: Priority,
        now: Nanos,
        fx: &mut Effects,
    ) -> Arrival {
        self.tick(config, now, fx);
        if self.in_flight < self.cap(config, priority) {
            self.in_flight += 1;
            self.admitted += 1;
            return Arrival::Admitted;
        }
        if self.queue.len() >= config.max_queue {
            // A full queue gives a place to a more urgent request; under a
            // standing queue, to a newer one of the same priority too.
            let lifo = self.codel.overloaded();
            let victim = self
                .queue
                .lowest_oldest(priority)
                .filter(|w| lifo || w.priority < priority);
            match victim {
                Some(victim) => self.shed_waiter(victim, ShedReason::Displaced, fx),
                None => {
                    self.shed.add(ShedReason::QueueFull, priority);
                    return Arrival::Shed(ShedReason::QueueFull);
                }
            }
        }
        let was_empty = self.queue.is_empty();
        let id = self.queue.push(priority, now);
        if was_empty {
            self.wake_timer(fx);
        }
        Arrival::Queued(id)
    }

    /// Ends a CoDel interval if one is over and sheds the waiters that have
    /// waited too long.
    pub(crate) fn tick(&mut self, config: &Config, now: Nanos, fx: &mut Effects) {
        if let Some(codel) = &config.codel {
            if self.codel.tick(codel, now, self.queue.is_empty()) {
                fx.notify_timer = true;
            }
        }
        let limit = self.wait_limit(config);
        let overloaded = self.codel.overloaded();
        for priority in Priority::ALL {
            while let Some(waiter) = self.queue.oldest_of(priority) {
                let waited = now.saturating_sub(waiter.enqueued);
                if waited <= limit {
                    break;
                }
                let reason = if overloaded && waited <= config.max_queue_wait {
                    ShedReason::Overloaded
                } else {
                    ShedReason::QueueTimeout
                };
                self.shed_waiter(waiter, reason, fx);
            }
        }
        if self.queue.is_empty() {
            self.codel.emptied();
        }
    }

    fn shed_waiter(&mut self, waiter: Waiter, reason: ShedReason, fx: &mut Effects) {
        if self
            .queue
            .resolve(waiter.id, Resolution::Shed(reason), &mut fx.wakers)
        {
            self.shed.add(reason, waiter.priority);
        }
    }

    /// Admits waiters while there is room for them: the highest priority
    /// first, oldest first (newest first under a standing queue).
    fn dispatch(&mut self, config: &Config, now: Nanos, fx: &mut Effects) {
        while let Some(priority) = self.queue.highest() {
            if self.in_flight >= self.cap(config, priority) {
                break;
            }
            let next = if self.codel.overloaded() {
                self.queue.newest_of(priority)
            } else {
                self.queue.oldest_of(priority)
            };
            let Some(waiter) = next else { break };
            self.codel.sample(now.saturating_sub(waiter.enqueued));
            self.in_flight += 1;
            self.admitted += 1;
            self.queue
                .resolve(waiter.id, Resolution::Granted, &mut fx.wakers);
        }
        if self.queue.is_empty() {
            self.codel.emptied();
        }
    }

    /// A waiter polls: what became of it, or `None` (its waker is kept).
    pub(crate) fn poll_waiter(
        &mut self,
        config: &Config,
        id: WaiterId,
        now: Nanos,
        waker: &std::task::Waker,
        fx: &mut Effects,
    ) -> Option<Resolution> {
        self.tick(config, now, fx);
        self.queue.poll(id, waker)
    }

    /// A waiter went away (its caller cancelled).
    pub(crate) fn cancel(&mut self, config: &Config, id: WaiterId, now: Nanos, fx: &mut Effects) {
        match self.queue.cancel(id) {
            Left::Waiting => {
                self.cancelled += 1;
                if self.queue.is_empty() {
                    self.codel.emptied();
                }
            }
            // Granted but never taken: hand the permit on.
            Left::Resolved(Resolution::Granted) => self.release(config, None, now, fx),
            Left::Resolved(Resolution::Shed(_)) | Left::Nothing => {}
        }
    }

    /// An admitted request ended, with `outcome` for the adaptive limit.
    pub(crate) fn release(
        &mut self,
        config: &Config,
        outcome: Option<Outcome>,
        now: Nanos,
        fx: &mut Effects,
    ) {
        if let (Some(controller), Some(outcome)) = (&mut self.controller, outcome) {
            self.limit = controller.sample(self.limit, self.in_flight, outcome, now);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        if !self.queue.is_empty() {
            self.tick(config, now, fx);
            self.dispatch(config, now, fx);
        }
    }

    /// When the timer must look again: the next waiter to time out, or the
    /// end of the CoDel interval while a standing queue may be forming.
    /// `None` when nobody waits.
    pub(crate) fn next_deadline(&self, config: &Config) -> Option<Nanos> {
        let oldest = self.queue.oldest()?;
        let expiry = oldest
            .enqueued
            .saturating_add(self.wait_limit(config))
            .saturating_add(1);
        let interval_end = if config.codel.is_some() && !self.codel.overloaded() {
            self.codel.interval_end()
        } else {
            Nanos::MAX
        };
        Some(expiry.min(interval_end))
    }

    /// Whether nobody waits.
    pub(crate) fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Marks the timer thread stopped (it is about to end).
    pub(crate) fn timer_stopped(&mut self) {
        self.timer_running = false;
    }

    fn wake_timer(&mut self, fx: &mut Effects) {
        if self.timer_running {
            fx.notify_timer = true;
        } else {
            self.timer_running = true;
            fx.start_timer = true;
        }
    }

    pub(crate) fn snapshot(&self, now: Nanos) -> Snapshot {
        let latencies = self
            .controller
            .as_ref()
            .map(Controller::latencies)
            .unwrap_or_default();
        Snapshot {
            limit: self.limit,
            in_flight: self.in_flight,
            queued: self.queue.len(),
            queue_delay: Duration::from_nanos(
                self.queue
                    .oldest()
                    .map_or(0, |w| now.saturating_sub(w.enqueued)),
            ),
            min_queue_delay: self.codel.last_min_delay().map(Duration::from_nanos),
            lifo: self.codel.overloaded(),
            admitted: self.admitted,
            cancelled: self.cancelled,
            shed: self.shed.clone(),
            baseline_latency: latencies.baseline.map(Duration::from_nanos),
            window_latency: latencies.window.map(Duration::from_nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    const MS: Nanos = 1_000_000;

    fn config(max_queue: usize) -> Config {
        Config {
            max_queue,
            max_queue_wait: 100 * MS,
            codel: Some(Codel::new()),
            withheld: [0; Priority::COUNT],
            adaptive: None,
        }
    }

    fn queued(arrival: Arrival) -> WaiterId {
        match arrival {
            Arrival::Queued(id) => id,
            other => panic!("expected to queue, got {other:?}"),
        }
    }

    #[test]
    fn admits_queues_then_sheds() {
        let cfg = config(1);
        let mut core = Core::new(1, 0, &cfg);
        let mut fx = Effects::default();
        assert_eq!(
            core.arrive(&cfg, Priority::Normal, 0, &mut fx),
            Arrival::Admitted
        );
        let id = queued(core.arrive(&cfg, Priority::Normal, 0, &mut fx));
        assert!(fx.start_timer);
        assert_eq!(
            core.arrive(&cfg, Priority::Normal, 0, &mut fx),
            Arrival::Shed(ShedReason::QueueFull)
        );
        core.release(&cfg, None, MS, &mut fx);
        assert_eq!(
            core.poll_waiter(&cfg, id, MS, Waker::noop(), &mut fx),
            Some(Resolution::Granted)
        );
        assert_eq!(core.snapshot(MS).in_flight, 1);
    }

    #[test]
    fn reservation_rounds_up_and_leaves_one() {
        let mut cfg = config(0);
        cfg.withheld = [20, 20, 0, 0];
        let core = Core::new(10, 0, &cfg);
        assert_eq!(core.cap(&cfg, Priority::Low), 8);
        assert_eq!(core.cap(&cfg, Priority::High), 10);
        let core = Core::new(3, 0, &cfg);
        assert_eq!(core.cap(&cfg, Priority::Low), 2);
        let core = Core::new(1, 0, &cfg);
        assert_eq!(core.cap(&cfg, Priority::Low), 1);
    }

    #[test]
    fn the_timer_deadline_follows_the_oldest_waiter() {
        let cfg = config(4);
        let mut core = Core::new(1, 0, &cfg);
        let mut fx = Effects::default();
        assert_eq!(core.next_deadline(&cfg), None);
        core.arrive(&cfg, Priority::Normal, 0, &mut fx);
        core.arrive(&cfg, Priority::Normal, 10 * MS, &mut fx);
        // The CoDel interval (ends at 100 ms) comes before the expiry (110 ms + 1 ns).
        assert_eq!(core.next_deadline(&cfg), Some(100 * MS));
        core.tick(&cfg, 100 * MS, &mut fx);
        assert_eq!(core.next_deadline(&cfg), Some(110 * MS + 1));
    }
}
