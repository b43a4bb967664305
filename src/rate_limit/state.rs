//! [`Shared`]: the settings and rules every clone of the layer and every
//! service made from it share, and [`OnStoreError`].

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Response;

use crate::key::RequestInfo;
use crate::rate_limit::refund::RefundFn;
use crate::rate_limit::rules::RuleSet;
use crate::response::Rejection;
use crate::store::Store;

/// What to do when the store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnStoreError {
    /// Refuse the request with 503 and `Retry-After` (the default): no
    /// request passes unchecked.
    #[default]
    FailClosed,
    /// Let the request through unchecked.
    FailOpen,
}

pub(crate) type CostFn = Arc<dyn Fn(&RequestInfo<'_>) -> u64 + Send + Sync>;
pub(crate) type RejectFn = Arc<dyn Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync>;

/// What a built layer holds, behind one `Arc`: set once by the builder.
pub(crate) struct Shared<St: Store> {
    pub(crate) store: St,
    pub(crate) rules: RuleSet<St::Handle>,
    /// Serialises reloads, so two never interleave their rebinding.
    pub(crate) reloading: Mutex<()>,
    pub(crate) cost: Option<CostFn>,
    pub(crate) headers_on_allowed: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) shadow: bool,
    pub(crate) on_store_error: OnStoreError,
    pub(crate) on_reject: Option<RejectFn>,
    pub(crate) refund: Option<RefundFn>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::LayerMetrics,
}
