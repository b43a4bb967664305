//! How much is allowed: [`Quota`] (a rate or a concurrency limit), [`Quotas`]
//! (several at once), and their text form.
//!
//! ```
//! use std::time::Duration;
//! use tollgate::quota::{Quota, QuotaKind, Quotas};
//!
//! // Built in code...
//! let api = Quota::per_minute(100)?.with_burst(20)?;
//! assert_eq!(api.count(), 100);
//! assert_eq!(api.burst(), 20);
//! assert_eq!(api.period(), Duration::from_secs(60));
//! assert_eq!(api.emission_interval_nanos(), 600_000_000);
//!
//! // ...or parsed from configuration; both forms agree.
//! let parsed: Quota = "100 per minute burst 20".parse()?;
//! assert_eq!(parsed, api);
//! assert_eq!(api.to_string(), "100/minute burst 20");
//!
//! let uploads: Quota = "2 concurrent".parse()?;
//! assert_eq!(uploads.kind(), QuotaKind::Concurrent);
//!
//! let tiers: Quotas = "100/minute; 1000/day".parse()?;
//! assert_eq!(tiers.len(), 2);
//! assert_eq!(tiers[1], Quota::per_day(1000)?);
//!
//! // Mistakes are located precisely.
//! let err = "10/fortnight".parse::<Quota>().unwrap_err();
//! assert_eq!(err.span(), 3..12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rate quotas
//!
//! A rate quota admits `count` cost units per `period`, smoothly: one unit
//! every [emission interval](Quota::emission_interval_nanos), with up to
//! `burst` units at once after an idle spell. The burst defaults to the count,
//! so `100/minute` may spend its 100 units at once and then earns one back
//! every 600 ms. The emission interval is `period / count` rounded **up** to
//! a whole nanosecond, so the enforced rate never exceeds the quota (it may
//! fall short of it by less than one nanosecond per unit).
//!
//! # Concurrency quotas
//!
//! A concurrency quota (`10 concurrent`) caps the requests in flight at once;
//! its [`period`](Quota::period) is zero and its burst equals its limit.
//!
//! # Text form
//!
//! The grammar is ASCII only, case-insensitive, and tolerates whitespace
//! between tokens:
//!
//! | form | example |
//! |---|---|
//! | `<count>/<unit>` | `10/s`, `1000/day` |
//! | `<count>/<n> <unit>` | `100/5 minutes` |
//! | `<count> per <unit>` | `10 per second` |
//! | `<count> per <n> <unit>` | `100 per 15 min` |
//! | any of the above, then `burst <n>` | `10/second burst 20` |
//! | a rate, then `queue <n>` (after any burst) | `5/second burst 1 queue 10` |
//! | a queue, then `wait <n> <unit>` | `5/s burst 1 queue 10 wait 1s` |
//! | `<n> concurrent` | `2 concurrent` |
//!
//! Units: `ms`, `millisecond(s)`; `s`, `sec`, `second(s)`; `m`, `min`,
//! `minute(s)` (`m` is a minute, never a month); `h`, `hr`, `hour(s)`; `d`,
//! `day(s)`; `w`, `week(s)`. Numbers are plain decimal digits: no sign, no
//! `_` separator, no fraction. [`Quotas`] separates quotas with `;` and
//! tolerates one trailing `;`. Text longer than [`MAX_QUOTA_TEXT_LEN`] bytes
//! is refused before it is read.
//!
//! [`Display`](std::fmt::Display) writes the canonical form, which parses back
//! to an equal value: the largest unit dividing the period, singular for one
//! unit (`1000/day`, `100/5 minutes`, `1/week`), and the burst only when it
//! differs from the count (`10/second burst 20`), then the queue and the
//! wait when set (`5/second burst 1 queue 10 wait 1 second`).
//!
//! # Delaying instead of refusing
//!
//! A rate quota with a `queue` delays the requests beyond its burst rather
//! than refusing them, like nginx's `limit_req` without `nodelay`; see
//! [`Quota::with_queue`]. nginx's `rate=5r/s burst=10` is
//! `5/second burst 1 queue 10`: one request passes at once, ten more wait
//! their turn 200 ms apart, and the rest are refused. `wait` caps any wait.
//!
//! # Limits
//!
//! Values out of range are refused with a [`QuotaError`], never clamped:
//! count and burst from 1 to [`Quota::MAX_COUNT`] and [`Quota::MAX_BURST`],
//! concurrency from 1 to [`Quota::MAX_CONCURRENCY`], period from
//! [`Quota::MIN_PERIOD`] to [`Quota::MAX_PERIOD`] in whole milliseconds, at
//! most one unit per nanosecond, and `burst * emission_interval_nanos` at
//! most [`Quota::MAX_BURST_WINDOW_NANOS`]. A parse failure is a
//! [`QuotaParseError`] naming the segment, the byte span and the
//! [kind](QuotaParseErrorKind) of mistake.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

mod error;
mod parse;
mod unit;

#[cfg(test)]
mod tests;

pub use error::{QuotaError, QuotaParseError, QuotaParseErrorKind};

/// The longest quota text accepted, in bytes (1 KiB), for [`Quota`] and
/// [`Quotas`] alike.
pub const MAX_QUOTA_TEXT_LEN: usize = 1024;

const NANOS_PER_MILLI: u64 = 1_000_000;

/// What a [`Quota`] limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// Cost units per period (GCRA or a window algorithm).
    Rate,
    /// Requests in flight at once.
    Concurrent,
}

/// One limit: `count` cost units per `period` with a `burst`, or at most
/// `count` requests in flight.
///
/// Every `Quota` is valid: the constructors and the parser check the
/// [limits](self#limits) and answer a [`QuotaError`] otherwise.
///
/// ```
/// use std::time::Duration;
/// use tollgate::quota::{Quota, QuotaError};
///
/// let q = Quota::new(100, Duration::from_secs(300))?;
/// assert_eq!(q.to_string(), "100/5 minutes");
/// assert_eq!(q.emission_interval_nanos(), 3_000_000_000);
///
/// assert_eq!(Quota::per_second(0), Err(QuotaError::CountZero));
/// # Ok::<(), QuotaError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u64,
    period_nanos: u64,
    burst: u64,
    kind: QuotaKind,
    /// Requests' worth of waiting (nginx `burst`); 0 refuses at once.
    queue: u64,
    /// The cap on any wait, in milliseconds; 0 for none.
    max_wait_millis: u64,
}

impl Quota {
    /// The largest count of a rate quota.
    pub const MAX_COUNT: u64 = 1_000_000_000;
    /// The largest burst of a rate quota.
    pub const MAX_BURST: u64 = 1_000_000_000;
    /// The largest queue of a rate quota ([`with_queue`](Self::with_queue)).
    pub const MAX_QUEUE: u64 = 1_000_000_000;
    /// The largest limit of a concurrency quota.
    pub const MAX_CONCURRENCY: u64 = 1_000_000;
    /// The shortest period of a rate quota: 1 ms.
    pub const MIN_PERIOD: Duration = Duration::from_millis(1);
    /// The longest period of a rate quota: 366 days.
    pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);
    /// The most `burst * emission_interval_nanos` may reach: 2^62 ns (about
    /// 146 years), so algorithms can add it to a timestamp without overflow.
    pub const MAX_BURST_WINDOW_NANOS: u64 = 1 << 62;

    /// A rate quota of `count` cost units per `period`, with a burst of `count`.
    ///
    /// # Errors
    ///
    /// [`QuotaError::CountZero`], [`QuotaError::CountTooLarge`] (above
    /// [`MAX_COUNT`](Self::MAX_COUNT)), [`QuotaError::PeriodTooShort`],
    /// [`QuotaError::PeriodTooLong`], [`QuotaError::PeriodNotWholeMilliseconds`],
    /// and [`QuotaError::RateTooFast`] when `count` exceeds the period in
    /// nanoseconds.
    pub fn new(count: u64, period: Duration) -> Result<Quota, QuotaError> {
        if count == 0 {
            return Err(QuotaError::CountZero);
        }
        if count > Self::MAX_COUNT {
            return Err(QuotaError::CountTooLarge {
                count,
                max: Self::MAX_COUNT,
            });
        }
        if period < Self::MIN_PERIOD {
            return Err(QuotaError::PeriodTooShort {
                period,
                min: Self::MIN_PERIOD,
            });
        }
        let too_long = QuotaError::PeriodTooLong {
            period,
            max: Self::MAX_PERIOD,
        };
        if period > Self::MAX_PERIOD {
            return Err(too_long);
        }
        if u64::from(period.subsec_nanos()) % NANOS_PER_MILLI != 0 {
            return Err(QuotaError::PeriodNotWholeMilliseconds { period });
        }
        let period_nanos = u64::try_from(period.as_nanos()).map_err(|_| too_long)?;
        if count > period_nanos {
            return Err(QuotaError::RateTooFast { count, period });
        }
        let quota = Quota {
            count,
            period_nanos,
            burst: count,
            kind: QuotaKind::Rate,
            queue: 0,
            max_wait_millis: 0,
        };
        quota.check_burst_window(count)?;
        Ok(quota)
    }

    /// `count` cost units per second; see [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn per_second(count: u64) -> Result<Quota, QuotaError> {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` cost units per minute; see [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn per_minute(count: u64) -> Result<Quota, QuotaError> {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` cost units per hour; see [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn per_hour(count: u64) -> Result<Quota, QuotaError> {
        Self::new(count, Duration::from_secs(3_600))
    }

    /// `count` cost units per day; see [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn per_day(count: u64) -> Result<Quota, QuotaError> {
        Self::new(count, Duration::from_secs(86_400))
    }

    /// A concurrency quota: at most `max_in_flight` requests at once.
    ///
    /// # Errors
    ///
    /// [`QuotaError::ConcurrencyZero`], or [`QuotaError::ConcurrencyTooLarge`]
    /// above [`MAX_CONCURRENCY`](Self::MAX_CONCURRENCY).
    pub fn concurrent(max_in_flight: u64) -> Result<Quota, QuotaError> {
        if max_in_flight == 0 {
            return Err(QuotaError::ConcurrencyZero);
        }
        if max_in_flight > Self::MAX_CONCURRENCY {
            return Err(QuotaError::ConcurrencyTooLarge {
                max_in_flight,
                max: Self::MAX_CONCURRENCY,
            });
        }
        Ok(Quota {
            count: max_in_flight,
            period_nanos: 0,
            burst: max_in_flight,
            kind: QuotaKind::Concurrent,
            queue: 0,
            max_wait_millis: 0,
        })
    }

    /// The same rate quota with another burst: how many cost units may be
    /// spent at once after an idle spell. It may be below or above the count.
    ///
    /// # Errors
    ///
    /// [`QuotaError::BurstOnConcurrent`] for a concurrency quota,
    /// [`QuotaError::BurstZero`], [`QuotaError::BurstTooLarge`] (above
    /// [`MAX_BURST`](Self::MAX_BURST)), and [`QuotaError::BurstWindowTooLong`]
    /// when `burst * emission_interval_nanos` exceeds
    /// [`MAX_BURST_WINDOW_NANOS`](Self::MAX_BURST_WINDOW_NANOS).
    pub fn with_burst(self, burst: u64) -> Result<Quota, QuotaError> {
        if self.kind == QuotaKind::Concurrent {
            return Err(QuotaError::BurstOnConcurrent {
                max_in_flight: self.count,
            });
        }
        if burst == 0 {
            return Err(QuotaError::BurstZero);
        }
        if burst > Self::MAX_BURST {
            return Err(QuotaError::BurstTooLarge {
                burst,
                max: Self::MAX_BURST,
            });
        }
        self.check_burst_window(burst)?;
        Ok(Quota { burst, ..self })
    }

    /// The same rate quota delaying instead of refusing: a request beyond
    /// the burst waits until it conforms while at most `waiting` requests
    /// of cost 1 wait ahead of it, and is refused beyond that. This is
    /// nginx's `limit_req burst=N` without `nodelay`: `rate=5r/s burst=10`
    /// is `Quota::per_second(5)?.with_burst(1)?.with_queue(10)?`
    /// (`"5/second burst 1 queue 10"`), and `burst=12 delay=8` (the first 8
    /// excess pass at once) is a burst of 9 with a queue of 4. 0 (the
    /// default) refuses at once, and clears [`with_max_wait`](Self::with_max_wait).
    ///
    /// Only GCRA can say when a request will conform, so a
    /// [`Limit`](crate::Limit) with a queue must use it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tollgate::quota::Quota;
    ///
    /// let search = Quota::per_second(5)?.with_burst(1)?.with_queue(10)?;
    /// assert_eq!(search.to_string(), "5/second burst 1 queue 10");
    /// assert_eq!(search, "5 per second burst 1 queue 10".parse()?);
    ///
    /// let capped = search.with_max_wait(Duration::from_secs(1))?;
    /// assert_eq!(capped.to_string(), "5/second burst 1 queue 10 wait 1 second");
    /// assert_eq!(capped.max_wait(), Some(Duration::from_secs(1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`QuotaError::QueueOnConcurrent`] for a concurrency quota,
    /// [`QuotaError::QueueTooLarge`] above [`MAX_QUEUE`](Self::MAX_QUEUE), and
    /// [`QuotaError::QueueWindowTooLong`] when `waiting * emission_interval_nanos`
    /// exceeds [`MAX_BURST_WINDOW_NANOS`](Self::MAX_BURST_WINDOW_NANOS).
    pub fn with_queue(self, waiting: u64) -> Result<Quota, QuotaError> {
        if self.kind == QuotaKind::Concurrent {
            return Err(QuotaError::QueueOnConcurrent {
                max_in_flight: self.count,
            });
        }
        if waiting > Self::MAX_QUEUE {
            return Err(QuotaError::QueueTooLarge {
                queue: waiting,
                max: Self::MAX_QUEUE,
            });
        }
        let emission_interval_nanos = self.emission_interval_nanos();
        match waiting.checked_mul(emission_interval_nanos) {
            Some(window) if window <= Self::MAX_BURST_WINDOW_NANOS => {}
            _ => {
                return Err(QuotaError::QueueWindowTooLong {
                    queue: waiting,
                    emission_interval_nanos,
                })
            }
        }
        let max_wait_millis = if waiting == 0 {
            0
        } else {
            self.max_wait_millis
        };
        Ok(Quota {
            queue: waiting,
            max_wait_millis,
            ..self
        })
    }

    /// The same queued quota with a cap on any wait: a request that would
    /// wait longer than `wait` is refused, whatever room the queue has.
    ///
    /// # Errors
    ///
    /// [`QuotaError::WaitWithoutQueue`] when the quota has no
    /// [queue](Self::with_queue), [`QuotaError::WaitOutOfRange`] below 1 ms or
    /// above [`MAX_PERIOD`](Self::MAX_PERIOD), and
    /// [`QuotaError::WaitNotWholeMilliseconds`].
    pub fn with_max_wait(self, wait: Duration) -> Result<Quota, QuotaError> {
        if self.queue == 0 {
            return Err(QuotaError::WaitWithoutQueue);
        }
        if wait < Self::MIN_PERIOD || wait > Self::MAX_PERIOD {
            return Err(QuotaError::WaitOutOfRange {
                wait,
                min: Self::MIN_PERIOD,
                max: Self::MAX_PERIOD,
            });
        }
        if u64::from(wait.subsec_nanos()) % NANOS_PER_MILLI != 0 {
            return Err(QuotaError::WaitNotWholeMilliseconds { wait });
        }
        // At most 366 days: the milliseconds fit.
        let max_wait_millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        Ok(Quota {
            max_wait_millis,
            ..self
        })
    }

    /// Requests' worth of waiting a request beyond the burst may join
    /// ([`with_queue`](Self::with_queue)); 0 when the quota refuses at once.
    pub const fn queue(&self) -> u64 {
        self.queue
    }

    /// The cap on any wait ([`with_max_wait`](Self::with_max_wait)), if set.
    pub const fn max_wait(&self) -> Option<Duration> {
        if self.max_wait_millis == 0 {
            None
        } else {
            Some(Duration::from_millis(self.max_wait_millis))
        }
    }

    fn check_burst_window(&self, burst: u64) -> Result<(), QuotaError> {
        let emission_interval_nanos = self.emission_interval_nanos();
        match burst.checked_mul(emission_interval_nanos) {
            Some(window) if window <= Self::MAX_BURST_WINDOW_NANOS => Ok(()),
            _ => Err(QuotaError::BurstWindowTooLong {
                burst,
                emission_interval_nanos,
            }),
        }
    }

    /// Cost units admitted per period, or the most requests in flight.
    pub const fn count(&self) -> u64 {
        self.count
    }

    /// The period of a rate quota; [`Duration::ZERO`] for a concurrency quota.
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_nanos)
    }

    /// The period in nanoseconds; 0 for a concurrency quota.
    pub const fn period_nanos(&self) -> u64 {
        self.period_nanos
    }

    /// Cost units that may be spent at once; the count unless set with
    /// [`with_burst`](Self::with_burst).
    pub const fn burst(&self) -> u64 {
        self.burst
    }

    /// Whether this is a rate or a concurrency quota.
    pub const fn kind(&self) -> QuotaKind {
        self.kind
    }

    /// Nanoseconds between two cost units at the sustained rate:
    /// `period_nanos / count` rounded up, so at least 1 and never faster than
    /// the quota; 0 for a concurrency quota.
    pub const fn emission_interval_nanos(&self) -> u64 {
        match self.kind {
            QuotaKind::Rate => self.period_nanos.div_ceil(self.count),
            QuotaKind::Concurrent => 0,
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            QuotaKind::Concurrent => write!(f, "{} concurrent", self.count),
            QuotaKind::Rate => {
                write!(f, "{}/", self.count)?;
                unit::write_period(f, self.period_nanos / NANOS_PER_MILLI)?;
                if self.burst != self.count {
                    write!(f, " burst {}", self.burst)?;
                }
                if self.queue != 0 {
                    write!(f, " queue {}", self.queue)?;
                }
                if let Some(wait) = self.max_wait() {
                    write!(f, " wait {}", unit::PeriodText(wait))?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Quota {
    type Err = QuotaParseError;

    /// Parses exactly one quota; see the [grammar](self#text-form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::parse_quota(s)
    }
}

/// Several quotas that all apply at once, such as `100/minute; 1000/day`;
/// never empty.
///
/// Dereferences to `[Quota]`. Duplicates are kept as given. The text form
/// joins the quotas' canonical forms with `"; "`; it parses back to an equal
/// value as long as it stays within [`MAX_QUOTA_TEXT_LEN`] bytes (a list
/// built in code may be longer).
///
/// ```
/// use tollgate::quota::{Quota, Quotas};
///
/// let quotas: Quotas = "100/minute; 1000/day; 5 concurrent;".parse()?;
/// assert_eq!(quotas.len(), 3);
/// assert_eq!(quotas.to_string(), "100/minute; 1000/day; 5 concurrent");
/// for quota in &quotas {
///     assert!(quota.count() >= 5);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quotas(Vec<Quota>);

impl Quotas {
    /// Several quotas.
    ///
    /// # Errors
    ///
    /// [`QuotaError::NoQuotas`] when `quotas` is empty.
    pub fn new(quotas: Vec<Quota>) -> Result<Quotas, QuotaError> {
        if quotas.is_empty() {
            Err(QuotaError::NoQuotas)
        } else {
            Ok(Quotas(quotas))
        }
    }

    /// The quotas, in order.
    pub fn as_slice(&self) -> &[Quota] {
        &self.0
    }

    /// The quotas, in order, as a vector.
    pub fn into_vec(self) -> Vec<Quota> {
        self.0
    }
}

impl From<Quota> for Quotas {
    fn from(quota: Quota) -> Self {
        Quotas(vec![quota])
    }
}

impl TryFrom<Vec<Quota>> for Quotas {
    type Error = QuotaError;

    fn try_from(quotas: Vec<Quota>) -> Result<Self, Self::Error> {
        Quotas::new(quotas)
    }
}

impl Deref for Quotas {
    type Target = [Quota];

    fn deref(&self) -> &[Quota] {
        &self.0
    }
}

impl AsRef<[Quota]> for Quotas {
    fn as_ref(&self) -> &[Quota] {
        &self.0
    }
}

impl IntoIterator for Quotas {
    type Item = Quota;
    type IntoIter = std::vec::IntoIter<Quota>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Quotas {
    type Item = &'a Quota;
    type IntoIter = std::slice::Iter<'a, Quota>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, quota) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            fmt::Display::fmt(quota, f)?;
        }
        Ok(())
    }
}

impl FromStr for Quotas {
    type Err = QuotaParseError;

    /// Parses `;`-separated quotas (one trailing `;` allowed); see the
    /// [grammar](self#text-form). Spans in errors are relative to the whole
    /// text, and the error names the segment at fault.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse::parse_quotas(s).map(Quotas)
    }
}
