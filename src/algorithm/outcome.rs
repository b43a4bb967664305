use crate::clock::Nanos;

/// `retry_after` of a request that can never pass: its cost exceeds the
/// limit's whole capacity.
pub const RETRY_NEVER: Nanos = u64::MAX;

/// What one limit answers for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the request fits.
    pub allowed: bool,
    /// The limit's quota (requests or cost units per period, or in flight).
    pub limit: u64,
    /// Units left after this request (if allowed) or now (if not).
    pub remaining: u64,
    /// Nanoseconds until the allowance is full again.
    pub reset: Nanos,
    /// Nanoseconds until a request of the same cost would pass: 0 when
    /// allowed, [`RETRY_NEVER`] when it never can.
    pub retry_after: Nanos,
}

impl Outcome {
    pub(crate) fn allow(limit: u64, remaining: u64, reset: Nanos) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            reset,
            retry_after: 0,
        }
    }

    pub(crate) fn deny(limit: u64, remaining: u64, reset: Nanos, retry_after: Nanos) -> Self {
        Self {
            allowed: false,
            limit,
            remaining,
            reset,
            retry_after: retry_after.max(1),
        }
    }
}
