//! [`Peeked`]: what a request's limits would answer, charging nothing.

use http::HeaderMap;

use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::KeyError;
use crate::limit::Limit;

/// What [`RateLimitLayer::peek`](crate::RateLimitLayer::peek) found: the
/// decision a request would get now, and nothing charged for it.
///
/// For an API that shows clients what they have left, such as a
/// `GET /quota` route outside the limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Peeked {
    /// Whether the request would be admitted, and the figures of the limit
    /// closest to running out (or of the one that would refuse).
    pub decision: Decision,
    /// That limit; `None` when no limit applies (every tier charged is
    /// [`Mode::Off`](crate::Mode::Off)).
    pub policy: Option<Limit>,
    /// The request's tier under the rule of that limit.
    pub tier: Option<String>,
    /// The `RateLimit-Policy` and `RateLimit` fields (and `Retry-After` when
    /// the request would be refused) the layer would send.
    pub headers: HeaderMap,
}

impl Peeked {
    /// The answer when no limit applies.
    pub(crate) fn unlimited() -> Self {
        Self {
            decision: Decision::unlimited(),
            policy: None,
            tier: None,
            headers: HeaderMap::new(),
        }
    }
}

/// Why [`RateLimitLayer::peek`](crate::RateLimitLayer::peek) has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeekError {
    /// No usable key could be read from the request.
    #[error("no usable key: {0}")]
    Key(#[from] KeyError),
    /// The store could not answer.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}
