//! [`Codel`]: controlled-delay queue management with adaptive LIFO.

use std::time::Duration;

use crate::clock::{nanos_saturating, Nanos};

/// Controlled-delay queue management with adaptive LIFO.
///
/// The scheme of Facebook's "Fail at Scale" (Ben Maurer, ACM Queue 13(8),
/// 2015), after CoDel (Nichols and Jacobson, "Controlling Queue Delay", ACM
/// Queue 10(5), 2012):
///
/// - time is cut in intervals (default **100 ms**, "Fail at Scale"'s N);
/// - if the queue was never empty during an interval and no request left it
///   after waiting less than the target delay (default **5 ms**, its M), a
///   *standing queue* has formed: the queue is overloaded;
/// - while overloaded, the newest waiter is served first (adaptive LIFO:
///   fresh requests can still meet their callers' deadlines, stale ones
///   would not) and waiters that have waited longer than the target are
///   shed ([`ShedReason::Overloaded`](super::ShedReason::Overloaded)); a full
///   queue lets a new request displace the oldest waiter of its priority;
/// - once the queue has been empty at some point of an interval, the
///   standing queue is gone: back to FIFO and to `max_queue_wait`.
///
/// Facebook's own implementation (wangle's `Codel`) sheds at twice the
/// target; here the target itself is the bound, so the configured number is
/// the longest wait an overloaded queue allows.
///
/// ```
/// use std::time::Duration;
/// use tollgate::shed::Codel;
///
/// let codel = Codel::new()
///     .target(Duration::from_millis(10))
///     .interval(Duration::from_millis(200));
/// assert_eq!(codel.target_delay(), Duration::from_millis(10));
/// assert_eq!(Codel::default().interval_length(), Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codel {
    target: Duration,
    interval: Duration,
}

impl Codel {
    /// The defaults of "Fail at Scale": a target of 5 ms over intervals of 100 ms.
    pub const fn new() -> Self {
        Self {
            target: Duration::from_millis(5),
            interval: Duration::from_millis(100),
        }
    }

    /// The queue delay a standing queue must exceed (default 5 ms), and the
    /// longest wait while overloaded. Must be above zero and below the interval.
    #[must_use]
    pub const fn target(mut self, target: Duration) -> Self {
        self.target = target;
        self
    }

    /// The length of an observation interval (default 100 ms).
    #[must_use]
    pub const fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The target queue delay.
    pub const fn target_delay(&self) -> Duration {
        self.target
    }

    /// The interval length.
    pub const fn interval_length(&self) -> Duration {
        self.interval
    }

    pub(crate) fn target_nanos(&self) -> Nanos {
        nanos_saturating(self.target)
    }

    pub(crate) fn interval_nanos(&self) -> Nanos {
        nanos_saturating(self.interval)
    }
}

impl Default for Codel {
    fn default() -> Self {
        Self::new()
    }
}

/// What CoDel has seen of the queue.
#[derive(Debug)]
pub(crate) struct CodelState {
    /// When the current interval ends.
    interval_end: Nanos,
    /// The least delay of a request that left the queue this interval.
    min_delay: Option<Nanos>,
    /// The same over the last complete interval.
    last_min_delay: Option<Nanos>,
    /// Whether the queue was empty at some point this interval.
    empty_seen: bool,
    /// Whether a standing queue has formed (serve LIFO, shed past target).
    overloaded: bool,
}

impl CodelState {
    pub(crate) fn new(now: Nanos, codel: Option<&Codel>) -> Self {
        Self {
            interval_end: codel.map_or(Nanos::MAX, |c| now.saturating_add(c.interval_nanos())),
            min_delay: None,
            last_min_delay: None,
            empty_seen: true,
            overloaded: false,
        }
    }

    /// Whether a standing queue has formed.
    pub(crate) fn overloaded(&self) -> bool {
        self.overloaded
    }

    /// The least queue delay of the last complete interval.
    pub(crate) fn last_min_delay(&self) -> Option<Nanos> {
        self.last_min_delay
    }

    /// When the current interval ends.
    pub(crate) fn interval_end(&self) -> Nanos {
        self.interval_end
    }

    /// Ends the interval if it is over. Answers true when the queue has just
    /// become overloaded.
    pub(crate) fn tick(&mut self, codel: &Codel, now: Nanos, queue_empty: bool) -> bool {
        if now < self.interval_end {
            return false;
        }
        let was = self.overloaded;
        let standing = !self.empty_seen
            && self
                .min_delay
                .is_none_or(|delay| delay > codel.target_nanos());
        // Once overloaded, stay so until the queue has been empty: serving
        // LIFO makes the delays of served requests small without the queue
        // having drained.
        self.overloaded = !self.empty_seen && (was || standing);
        self.last_min_delay = self.min_delay.take();
        self.empty_seen = queue_empty;
        self.interval_end = now.saturating_add(codel.interval_nanos());
        self.overloaded && !was
    }

    /// A request left the queue after waiting `delay`.
    pub(crate) fn sample(&mut self, delay: Nanos) {
        self.min_delay = Some(self.min_delay.map_or(delay, |m| m.min(delay)));
    }

    /// The queue has become empty.
    pub(crate) fn emptied(&mut self) {
        self.empty_seen = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    #[test]
    fn a_standing_queue_needs_a_whole_interval_without_an_empty_queue() {
        let codel = Codel::new();
        let mut s = CodelState::new(0, Some(&codel));
        // First interval: the queue started empty.
        assert!(!s.tick(&codel, 100 * MS, false));
        assert!(!s.overloaded());
        // Second: never empty, only slow departures.
        s.sample(20 * MS);
        assert!(s.tick(&codel, 200 * MS, false));
        assert!(s.overloaded());
        assert_eq!(s.last_min_delay(), Some(20 * MS));
        // Fast departures under LIFO do not end it; an empty queue does.
        s.sample(MS);
        assert!(!s.tick(&codel, 300 * MS, false));
        assert!(s.overloaded());
        s.emptied();
        assert!(!s.tick(&codel, 400 * MS, true));
        assert!(!s.overloaded());
    }

    #[test]
    fn a_fast_departure_means_no_standing_queue() {
        let codel = Codel::new();
        let mut s = CodelState::new(0, Some(&codel));
        s.tick(&codel, 100 * MS, false);
        s.sample(4 * MS);
        s.sample(30 * MS);
        assert!(!s.tick(&codel, 200 * MS, false));
        assert!(!s.overloaded());
    }

    #[test]
    fn without_codel_the_interval_never_ends() {
        let s = CodelState::new(5, None);
        assert_eq!(s.interval_end(), Nanos::MAX);
    }
}
