//! Deadlines for charging scripts: the instant on Redis's clock after
//! which a check's script must charge nothing, because the check has given
//! up on it.
//!
//! A check that times out has still written its script to the connection:
//! Redis runs it when it gets to it (after a pause, a `DEBUG SLEEP`, a
//! stall of the network), and without a deadline it would charge a request
//! that was answered without it (by the local fallback, or a store error).
//! So every charging check sends its script the Redis instant past which
//! it gave up, `sent + timeout + MARGIN` converted to Redis's clock; a
//! script that starts later (`TIME` above it) writes nothing and answers
//! "late".
//!
//! The conversion needs the offset between this instance's monotonic clock
//! and Redis's `TIME`. Each charging answer carries the `TIME` its script
//! read; `TIME - sent` (`sent` read just before the call) is the true
//! offset plus the time from sending to the script's start. The smallest
//! such sample is the closest estimate, never below the true offset, so a
//! deadline is never earlier than the real one: a script that starts in
//! time is never refused by it. The estimate is the smallest sample of the
//! last two one-second epochs that saw an answer (an outage keeps the last
//! one), so it follows Redis's clock when it jumps forward (a failover to a
//! node whose clock is ahead, an NTP step) within two epochs of answers;
//! until then checks on that node may be answered "late" (as timeouts, so
//! by the fallback), never charged late. Backward jumps lower the estimate
//! at once.
//!
//! Until the first charging answer there is no estimate and checks carry
//! no deadline. The clock is a real monotonic one ([`Instant`]), whatever
//! [`clock`](super::RedisStoreBuilder::clock) the store was given: the
//! deadline is about real time passing between a call and its script.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::reply::RedisTime;

/// Added to a check's timeout before its deadline: covers the delay
/// between sending and the script's start that the estimate does not see,
/// and small differences between the clocks of a cluster's nodes.
pub(super) const MARGIN: Duration = Duration::from_millis(2);

/// The length of one epoch of samples.
const EPOCH: Duration = Duration::from_secs(1);

/// The offset estimate; see the [module docs](self).
pub(super) struct Deadlines {
    origin: Instant,
    samples: Mutex<Samples>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Samples {
    /// The epoch of `current`.
    epoch: u64,
    /// The smallest offset (ns, Redis's clock less ours) seen in `epoch`.
    current: Option<i128>,
    /// The smallest of the last epoch before it that saw an answer.
    previous: Option<i128>,
}

/// A local instant: nanoseconds since the [`Deadlines`]' origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Sent(u64);

impl Default for Deadlines {
    fn default() -> Self {
        Self::new()
    }
}

impl Deadlines {
    pub(super) fn new() -> Self {
        Self {
            origin: Instant::now(),
            samples: Mutex::new(Samples::default()),
        }
    }

    /// Now on the local clock, read just before a call.
    pub(super) fn now(&self) -> Sent {
        Sent(crate::clock::nanos_saturating(self.origin.elapsed()))
    }

    /// The deadline of a call sent at `sent` with `timeout`, in
    /// microseconds since the Unix epoch on Redis's clock (rounded up);
    /// `None` before the first answer.
    pub(super) fn deadline(&self, sent: Sent, timeout: Duration) -> Option<u64> {
        let s = *self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let offset = match (s.current, s.previous) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        let after = i128::from(crate::clock::nanos_saturating(timeout + MARGIN));
        let at = i128::from(sent.0) + after + offset;
        u64::try_from((at + 999) / 1_000).ok()
    }

    /// A charging answer from a call sent at `sent`, whose script read
    /// `time`.
    pub(super) fn observe(&self, sent: Sent, time: RedisTime) {
        let sample = i128::from(time.nanos()) - i128::from(sent.0);
        let epoch = sent.0 / crate::clock::nanos_saturating(EPOCH);
        let mut s = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if epoch > s.epoch {
            s.previous = s.current.or(s.previous);
            s.current = None;
            s.epoch = epoch;
        }
        s.current = Some(s.current.map_or(sample, |c| c.min(sample)));
    }

    /// A charging check's mode argument (mode "2"): `"2"` alone, or its
    /// deadline in µs since the epoch, which `deadline.lua` reads as mode
    /// "2" with a deadline (any mode of more than one digit).
    pub(super) fn mode(&self, sent: Sent, timeout: Duration) -> String {
        match self.deadline(sent, timeout) {
            Some(deadline) => deadline.max(10).to_string(),
            None => "2".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    /// Redis's clock: 1.8e18 ns after the epoch at our 0.
    const BASE: u64 = 1_800_000_000_000_000_000;

    fn at(nanos: u64) -> Sent {
        Sent(nanos)
    }

    fn redis(ns: u64) -> RedisTime {
        RedisTime::read(
            (ns / 1_000_000_000) as i64,
            ((ns % 1_000_000_000) / 1_000) as i64,
        )
        .expect("a valid TIME")
    }

    #[test]
    fn no_deadline_before_the_first_answer() {
        let d = Deadlines::new();
        assert_eq!(d.deadline(at(0), Duration::from_millis(50)), None);
        assert_eq!(d.mode(at(0), Duration::from_millis(50)), "2");
    }

    #[test]
    fn the_smallest_sample_sets_the_deadline_and_it_is_never_early() {
        let d = Deadlines::new();
        // Sent at our 10 ms, started at Redis's BASE + 10 ms + 300 µs.
        d.observe(at(10 * MS), redis(BASE + 10 * MS + 300_000));
        // Another with only 100 µs between sending and starting.
        d.observe(at(20 * MS), redis(BASE + 20 * MS + 100_000));
        // A slow one does not raise the estimate.
        d.observe(at(30 * MS), redis(BASE + 30 * MS + 9 * MS));
        let timeout = Duration::from_millis(50);
        let deadline = d.deadline(at(100 * MS), timeout).expect("estimate");
        // 100 ms + 50 ms + 2 ms margin + 100 µs, in µs on Redis's clock.
        assert_eq!(deadline, (BASE + 152 * MS + 100_000) / 1_000);
        assert_eq!(d.mode(at(100 * MS), timeout), deadline.to_string());
        // Never before the true instant the check gave up (the true offset
        // is at most the smallest sample).
        assert!(deadline * 1_000 >= BASE + 150 * MS);
    }

    #[test]
    fn a_forward_jump_of_redis_clock_is_followed_within_two_epochs() {
        let d = Deadlines::new();
        let timeout = Duration::from_millis(50);
        d.observe(at(0), redis(BASE));
        // Redis's clock jumps 1 s ahead (a failover, an NTP step).
        let jump = 1_000 * MS;
        d.observe(at(1_100 * MS), redis(BASE + 1_100 * MS + jump));
        let stale = d.deadline(at(1_200 * MS), timeout).expect("estimate");
        assert_eq!(
            stale * 1_000,
            BASE + 1_252 * MS,
            "the older epoch still counts"
        );
        d.observe(at(2_100 * MS), redis(BASE + 2_100 * MS + jump));
        let followed = d.deadline(at(2_200 * MS), timeout).expect("estimate");
        assert_eq!(followed * 1_000, BASE + 2_252 * MS + jump);
    }

    #[test]
    fn a_backward_jump_lowers_the_estimate_at_once_and_an_outage_keeps_it() {
        let d = Deadlines::new();
        let timeout = Duration::from_millis(50);
        d.observe(at(0), redis(BASE + 5 * MS));
        d.observe(at(MS), redis(BASE));
        let deadline = d.deadline(at(MS), timeout).expect("estimate");
        assert_eq!(deadline * 1_000, BASE + 52 * MS);
        // No answer for a minute: the estimate stays.
        let later = d.deadline(at(60_000 * MS), timeout).expect("estimate");
        assert_eq!(later * 1_000, BASE + 60_051 * MS);
    }
}
