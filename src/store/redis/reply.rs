//! Reading a check script's answer: figures per charge, merged into one
//! decision, and the `TIME` the script used; anything else is refused as
//! malformed, never read as an admission.

use super::layout;
use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::decision::Decision;
use crate::error::StoreError;

/// One charge's figures from the script: `allowed, limit, remaining,
/// window (the effective window), retry_after`; `None` when malformed.
pub(super) fn read_outcome(figures: &[i64]) -> Option<Outcome> {
    let &[allowed, limit, remaining, window, retry] = figures else {
        return None;
    };
    let figure = |n: i64| u64::try_from(n).ok();
    Some(Outcome {
        allowed: allowed == 1,
        limit: figure(limit)?,
        remaining: figure(remaining)?,
        window: figure(window)?,
        retry_after: if retry < 0 {
            RETRY_NEVER
        } else {
            figure(retry)?
        },
    })
}

/// Redis's `TIME` as a script read it: seconds and microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct RedisTime {
    pub(super) secs: u64,
    pub(super) micros: u64,
}

impl RedisTime {
    /// Reads the two figures a script answered; `None` unless both are
    /// non-negative and the microseconds below a second.
    pub(super) fn read(secs: i64, micros: i64) -> Option<RedisTime> {
        Some(RedisTime {
            secs: u64::try_from(secs).ok()?,
            micros: u64::try_from(micros).ok().filter(|&us| us < 1_000_000)?,
        })
    }

    /// Nanoseconds since the Unix epoch, as a [`Receipt`] carries them.
    pub(super) fn nanos(self) -> u64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(self.micros * 1_000)
    }

    /// The reading a receipt's nanoseconds stand for (exact for what
    /// [`nanos`](Self::nanos) made).
    pub(super) fn from_nanos(at: u64) -> RedisTime {
        RedisTime {
            secs: at / 1_000_000_000,
            micros: (at % 1_000_000_000) / 1_000,
        }
    }
}

/// Reads the script's answer: `{all_allowed, (allowed, limit, remaining,
/// window, retry_after) per charge}`, into one decision over all charges,
/// followed, for a charging check (`take`, mode "2"), by the seconds and
/// microseconds of the `TIME` the script used. Exactly that many figures,
/// or the answer is refused as malformed.
pub(super) fn read_reply(
    reply: &[i64],
    charges: usize,
    take: bool,
) -> Result<(Decision, Option<RedisTime>), StoreError> {
    let malformed = || StoreError::Unavailable("unexpected answer from the Redis script".into());
    let (reply, clock) = if take {
        let [figures @ .., secs, micros] = reply else {
            return Err(malformed());
        };
        let clock = RedisTime::read(*secs, *micros).ok_or_else(malformed)?;
        (figures, Some(clock))
    } else {
        (reply, None)
    };
    let (&all, outcomes) = reply.split_first().ok_or_else(malformed)?;
    if outcomes.len() != layout::OUTCOME_FIGURES * charges {
        return Err(malformed());
    }
    let mut decision: Option<Decision> = None;
    for (i, figures) in outcomes.chunks_exact(layout::OUTCOME_FIGURES).enumerate() {
        let outcome = read_outcome(figures).ok_or_else(malformed)?;
        decision = Some(match decision {
            None => Decision::from_outcome(i, outcome),
            Some(d) => d.merge(i, outcome),
        });
    }
    let decision = decision.ok_or_else(malformed)?;
    // The script's own verdict must agree with the figures: never admit on
    // a garbled answer.
    if decision.is_allowed() != (all == 1) {
        return Err(malformed());
    }
    Ok((decision, clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(allowed: bool, remaining: i64, retry: i64) -> [i64; 5] {
        [i64::from(allowed), 10, remaining, 1_000, retry]
    }

    #[test]
    fn reply_is_merged_like_the_memory_store() {
        let mut reply = vec![1];
        reply.extend(outcome(true, 5, 0));
        reply.extend(outcome(true, 2, 0));
        let (d, clock) = read_reply(&reply, 2, false).expect("reply");
        assert!(d.is_allowed());
        assert_eq!((d.policy(), d.remaining()), (1, 2));
        assert_eq!(clock, None);

        let mut reply = vec![0];
        reply.extend(outcome(true, 5, 0));
        reply.extend(outcome(false, 0, -1));
        let (d, _) = read_reply(&reply, 2, false).expect("reply");
        assert!(d.is_impossible());
        assert_eq!(d.policy(), 1);
    }

    #[test]
    fn a_charging_reply_ends_with_the_time_the_script_used() {
        let mut reply = vec![1];
        reply.extend(outcome(true, 5, 0));
        reply.extend([1_700_000_000, 999_999]);
        let (d, clock) = read_reply(&reply, 1, true).expect("reply");
        assert!(d.is_allowed());
        let clock = clock.expect("a clock");
        assert_eq!(
            clock,
            RedisTime {
                secs: 1_700_000_000,
                micros: 999_999
            }
        );
        assert_eq!(clock.nanos(), 1_700_000_000_999_999_000);
        assert_eq!(RedisTime::from_nanos(clock.nanos()), clock);

        // A refusal in mode "2" ends with the clock too.
        let mut refused = vec![0];
        refused.extend(outcome(false, 0, 5));
        refused.extend([1_700_000_000, 0]);
        let (d, clock) = read_reply(&refused, 1, true).expect("reply");
        assert!(!d.is_allowed());
        assert!(clock.is_some());
    }

    #[test]
    fn reply_lengths_are_strict_in_each_mode() {
        let mut bare = vec![1];
        bare.extend(outcome(true, 5, 0));
        let mut clocked = bare.clone();
        clocked.extend([1_700_000_000, 5]);
        // A charging check's answer without its clock, or a look's with
        // one, is malformed: never read a clock as figures or the reverse.
        assert!(read_reply(&bare, 1, true).is_err());
        assert!(read_reply(&clocked, 1, false).is_err());
        assert!(read_reply(&clocked, 1, true).is_ok());
        let mut extra = clocked.clone();
        extra.push(0);
        assert!(read_reply(&extra, 1, true).is_err());
        // The clock must be a real reading.
        for (secs, micros) in [(-1, 0), (1_700_000_000, -1), (1_700_000_000, 1_000_000)] {
            let mut bad = bare.clone();
            bad.extend([secs, micros]);
            assert!(read_reply(&bad, 1, true).is_err(), "{secs} s {micros} µs");
        }
    }

    #[test]
    fn garbled_replies_are_errors_never_admissions() {
        for take in [false, true] {
            assert!(read_reply(&[], 1, take).is_err());
            assert!(read_reply(&[1, 1, 10, 5], 1, take).is_err());
            let clock: &[i64] = if take { &[1_700_000_000, 0] } else { &[] };
            let mut disagree = vec![1];
            disagree.extend(outcome(false, 0, 5));
            disagree.extend(clock);
            assert!(read_reply(&disagree, 1, take).is_err());
            let mut negative = vec![1];
            negative.extend(outcome(true, -3, 0));
            negative.extend(clock);
            assert!(read_reply(&negative, 1, take).is_err());
        }
    }
}
