use crate::clock::Nanos;

/// `retry_after` of a request that can never pass: its cost exceeds the
/// limit's whole capacity.
pub const RETRY_NEVER: Nanos = u64::MAX;

/// What one limit answers for one request.
///
/// Read its fields; stores build it (it is `#[non_exhaustive]`, so new
/// figures can be added without breaking a caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Whether the request fits.
    pub allowed: bool,
    /// The limit's quota (requests or cost units per period, or in flight).
    pub limit: u64,
    /// Units left after this request (if allowed) or now (if not).
    pub remaining: u64,
    /// The effective window: nanoseconds until more than `remaining` units
    /// can be spent. A client that spends the `remaining` units now waits
    /// this long for the next one; on a refusal, the wait until
    /// `remaining + 1` units fit (at most `retry_after`). This is the `t` of
    /// the `RateLimit` field (`draft-ietf-httpapi-ratelimit-headers`,
    /// section 4.1.2). 0 for a concurrency limit, whose room comes back when
    /// requests finish, not at a time.
    pub window: Nanos,
    /// Nanoseconds until the request would pass. Refused: until a request
    /// of the same cost would, [`RETRY_NEVER`] when it never can. Allowed:
    /// 0, unless the limit delays rather than refuses
    /// ([`Gcra::queue`](super::Gcra::queue)): then the wait before this
    /// request conforms ([`delay`](Outcome::delay)); its place is reserved
    /// and it passes at `now + retry_after`, `remaining` and `window` being
    /// the figures at that instant.
    pub retry_after: Nanos,
}

impl Outcome {
    pub(crate) fn allow(limit: u64, remaining: u64, window: Nanos) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            window,
            retry_after: 0,
        }
    }

    /// Allowed, once the request has waited `delay` nanoseconds.
    pub(crate) fn allow_after(limit: u64, remaining: u64, window: Nanos, delay: Nanos) -> Self {
        Self {
            retry_after: delay,
            ..Self::allow(limit, remaining, window)
        }
    }

    pub(crate) fn deny(limit: u64, remaining: u64, window: Nanos, retry_after: Nanos) -> Self {
        Self {
            allowed: false,
            limit,
            remaining,
            window,
            retry_after: retry_after.max(1),
        }
    }

    /// The wait before an allowed request passes: 0 unless its limit
    /// delays rather than refuses; 0 for a refused request.
    pub const fn delay(&self) -> Nanos {
        if self.allowed {
            self.retry_after
        } else {
            0
        }
    }
}
