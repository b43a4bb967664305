use std::fmt;
use std::ops::Range;
use std::time::Duration;

use super::unit::PeriodText;

/// Why a [`Quota`](super::Quota) or [`Quotas`](super::Quotas) value was refused.
///
/// Returned by the constructors ([`Quota::new`](super::Quota::new),
/// [`Quota::with_burst`](super::Quota::with_burst), ...) and carried by
/// [`QuotaParseErrorKind::Value`] when parsed text names such a value.
/// Out-of-range values are always refused, never clamped or wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// A rate quota admits zero requests per period.
    #[error("count must be at least 1")]
    CountZero,
    /// A rate quota's count is above [`Quota::MAX_COUNT`](super::Quota::MAX_COUNT).
    #[error("count {count} is too large (at most {max})")]
    CountTooLarge {
        /// The count asked for.
        count: u64,
        /// The largest count accepted.
        max: u64,
    },
    /// A burst of zero was asked for.
    #[error("burst must be at least 1")]
    BurstZero,
    /// The burst is above [`Quota::MAX_BURST`](super::Quota::MAX_BURST).
    #[error("burst {burst} is too large (at most {max})")]
    BurstTooLarge {
        /// The burst asked for.
        burst: u64,
        /// The largest burst accepted.
        max: u64,
    },
    /// A concurrency quota admits zero requests in flight.
    #[error("concurrency limit must be at least 1")]
    ConcurrencyZero,
    /// A concurrency quota is above
    /// [`Quota::MAX_CONCURRENCY`](super::Quota::MAX_CONCURRENCY).
    #[error("concurrency limit {max_in_flight} is too large (at most {max})")]
    ConcurrencyTooLarge {
        /// The number of requests in flight asked for.
        max_in_flight: u64,
        /// The largest number accepted.
        max: u64,
    },
    /// The period is shorter than [`Quota::MIN_PERIOD`](super::Quota::MIN_PERIOD).
    #[error("period {} is too short (at least {})", PeriodText(*period), PeriodText(*min))]
    PeriodTooShort {
        /// The period asked for.
        period: Duration,
        /// The shortest period accepted.
        min: Duration,
    },
    /// The period is longer than [`Quota::MAX_PERIOD`](super::Quota::MAX_PERIOD).
    #[error("period {} is too long (at most {})", PeriodText(*period), PeriodText(*max))]
    PeriodTooLong {
        /// The period asked for.
        period: Duration,
        /// The longest period accepted.
        max: Duration,
    },
    /// The period is not a whole number of milliseconds, so it has no
    /// textual form (the grammar's smallest unit is the millisecond).
    #[error("period {period:?} is not a whole number of milliseconds")]
    PeriodNotWholeMilliseconds {
        /// The period asked for.
        period: Duration,
    },
    /// More than one request per nanosecond: the emission interval
    /// (period / count) would be below 1 ns.
    #[error(
        "rate {count} per {} is too fast (more than one request per nanosecond)",
        PeriodText(*period)
    )]
    RateTooFast {
        /// The count asked for.
        count: u64,
        /// The period asked for.
        period: Duration,
    },
    /// `burst * emission_interval_nanos` does not fit in
    /// [`Quota::MAX_BURST_WINDOW_NANOS`](super::Quota::MAX_BURST_WINDOW_NANOS).
    #[error(
        "burst {burst} times the emission interval of {emission_interval_nanos} ns exceeds 2^62 ns"
    )]
    BurstWindowTooLong {
        /// The burst asked for.
        burst: u64,
        /// The quota's emission interval in nanoseconds.
        emission_interval_nanos: u64,
    },
    /// A burst was asked for on a concurrency quota, which has none.
    #[error("burst applies only to rate quotas, not to a concurrency limit of {max_in_flight}")]
    BurstOnConcurrent {
        /// The concurrency quota's limit.
        max_in_flight: u64,
    },
    /// A queue was asked for on a concurrency quota: only a rate can say
    /// when a waiting request may pass.
    #[error("a queue applies only to rate quotas, not to a concurrency limit of {max_in_flight}")]
    QueueOnConcurrent {
        /// The concurrency quota's limit.
        max_in_flight: u64,
    },
    /// The queue is above [`Quota::MAX_QUEUE`](super::Quota::MAX_QUEUE).
    #[error("queue {queue} is too large (at most {max})")]
    QueueTooLarge {
        /// The queue asked for.
        queue: u64,
        /// The largest queue accepted.
        max: u64,
    },
    /// `queue * emission_interval_nanos` does not fit in
    /// [`Quota::MAX_BURST_WINDOW_NANOS`](super::Quota::MAX_BURST_WINDOW_NANOS).
    #[error(
        "queue {queue} times the emission interval of {emission_interval_nanos} ns exceeds 2^62 ns"
    )]
    QueueWindowTooLong {
        /// The queue asked for.
        queue: u64,
        /// The quota's emission interval in nanoseconds.
        emission_interval_nanos: u64,
    },
    /// A cap on the wait was asked for on a quota with no queue.
    #[error("wait applies only to a quota with a queue")]
    WaitWithoutQueue,
    /// The cap on the wait is shorter than 1 ms or longer than
    /// [`Quota::MAX_PERIOD`](super::Quota::MAX_PERIOD).
    #[error("wait {} is out of range ({} to {})", PeriodText(*wait), PeriodText(*min), PeriodText(*max))]
    WaitOutOfRange {
        /// The wait asked for.
        wait: Duration,
        /// The shortest wait accepted.
        min: Duration,
        /// The longest wait accepted.
        max: Duration,
    },
    /// The cap on the wait is not a whole number of milliseconds.
    #[error("wait {wait:?} is not a whole number of milliseconds")]
    WaitNotWholeMilliseconds {
        /// The wait asked for.
        wait: Duration,
    },
    /// A [`Quotas`](super::Quotas) list was built from no quota at all.
    #[error("at least one quota is required")]
    NoQuotas,
}

/// What is wrong in a quota string; the kind of a [`QuotaParseError`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaParseErrorKind {
    /// The text (or one `;`-separated segment of it) is empty or blank.
    #[error("empty quota (expected e.g. \"100/minute\" or \"10 concurrent\")")]
    Empty,
    /// The text is longer than [`MAX_QUOTA_TEXT_LEN`](super::MAX_QUOTA_TEXT_LEN) bytes.
    #[error("text is {len} bytes long (at most {max})")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The longest text accepted.
        max: usize,
    },
    /// The text holds a character outside ASCII (the span covers the first one).
    #[error("non-ASCII character {character:?}")]
    NotAscii {
        /// The first non-ASCII character.
        character: char,
    },
    /// A count, a period multiplier or a burst was expected.
    #[error("expected a number, found {}", Found(found))]
    ExpectedNumber {
        /// The token found instead; empty when the quota ended.
        found: String,
    },
    /// A number does not fit in 64 bits (or, as a period multiplier, in a
    /// [`Duration`] once multiplied by its unit).
    #[error("number is too large")]
    NumberTooLarge,
    /// The quota ended where a unit was expected, as in `10/` or `10/5`.
    #[error("missing unit (expected {})", super::unit::EXPECTED_UNITS)]
    MissingUnit,
    /// A word stands where a unit was expected but names none.
    #[error("unknown unit {unit:?} (expected {})", super::unit::EXPECTED_UNITS)]
    UnknownUnit {
        /// The word found, as written.
        unit: String,
    },
    /// A token stands where something else was expected.
    #[error("unexpected {} (expected {expected})", Found(found))]
    UnexpectedToken {
        /// The token found; empty when the quota ended.
        found: String,
        /// What would have been accepted there.
        expected: &'static str,
    },
    /// The text is well formed but names a refused value (the span covers it).
    #[error(transparent)]
    Value(QuotaError),
}

/// Formats a found token, or "end of quota" for an empty one.
struct Found<'a>(&'a str);

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("end of quota")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// A quota string that does not parse: which part is wrong and why.
///
/// Carries the whole input, the 0-based index of the `;`-separated segment
/// at fault (always 0 for a single [`Quota`](super::Quota)), the byte span of
/// the offending token within the whole input, and the
/// [`kind`](QuotaParseErrorKind) of problem. Spans always fall on character
/// boundaries; a span that is empty points at where something was missing.
///
/// ```
/// use tollgate::quota::{Quota, QuotaParseErrorKind};
///
/// let err = "10/fortnight".parse::<Quota>().unwrap_err();
/// assert_eq!(err.span(), 3..12);
/// assert!(matches!(err.kind(), QuotaParseErrorKind::UnknownUnit { .. }));
/// assert_eq!(
///     err.to_string(),
///     "invalid quota \"10/fortnight\" at bytes 3..12: unknown unit \"fortnight\" \
///      (expected second, minute, hour, day, week or millisecond)",
/// );
/// ```
///
/// The message quotes the input (escaped, and shortened when very long);
/// the kind's own message is part of it, so [`source`](std::error::Error::source)
/// is `None`. Use [`kind`](Self::kind) to reach a [`QuotaError`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub struct QuotaParseError {
    input: String,
    segment: usize,
    start: usize,
    end: usize,
    kind: QuotaParseErrorKind,
}

/// How much of the input a message quotes before shortening it.
const QUOTED_INPUT_LEN: usize = 80;

impl QuotaParseError {
    pub(super) fn new(
        input: &str,
        segment: usize,
        span: Range<usize>,
        kind: QuotaParseErrorKind,
    ) -> Self {
        QuotaParseError {
            input: input.to_owned(),
            segment,
            start: span.start,
            end: span.end,
            kind,
        }
    }

    /// The whole text that was parsed.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The 0-based index of the `;`-separated segment at fault.
    pub fn segment(&self) -> usize {
        self.segment
    }

    /// The byte range of the offending token within [`input`](Self::input).
    pub fn span(&self) -> Range<usize> {
        self.start..self.end
    }

    /// The offending text (empty when something was missing).
    pub fn token(&self) -> &str {
        self.input.get(self.start..self.end).unwrap_or("")
    }

    /// What is wrong.
    pub fn kind(&self) -> &QuotaParseErrorKind {
        &self.kind
    }
}

impl fmt::Display for QuotaParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid quota ")?;
        if self.input.len() <= QUOTED_INPUT_LEN {
            write!(f, "{:?}", self.input)?;
        } else {
            let mut cut = QUOTED_INPUT_LEN;
            while !self.input.is_char_boundary(cut) {
                cut -= 1;
            }
            write!(f, "{:?}...", self.input.get(..cut).unwrap_or(""))?;
        }
        write!(f, " at bytes {}..{}", self.start, self.end)?;
        if self.segment > 0 {
            write!(f, " (quota #{})", self.segment.saturating_add(1))?;
        }
        write!(f, ": {}", self.kind)
    }
}
