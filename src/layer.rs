//! [`RateLimitLayer`]: the tower layer.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use tower_layer::Layer;

use crate::key::{KeyExtractor, PeerIp, RequestInfo};
use crate::plan::Plans;
use crate::response::Rejection;
use crate::rule::Rule;
use crate::service::RateLimit;
use crate::shared::{OnStoreError, Shared};
use crate::store::{MemoryStore, Store};

/// Applies rate limits to every request of the wrapped service.
///
/// Every clone of the layer, and every service it makes (one per route, per
/// connection), shares one set of counters through an `Arc`: a limit holds
/// across all of them. Configure the layer before cloning it; the setters
/// take `self`.
///
/// ```
/// use tollgate::{Plans, RateLimitLayer};
/// use tollgate::key::{ApiKeyOrIp, ClientIp};
///
/// let plans = Plans::builder()
///     .tier("anonymous", "3/minute")
///     .tier("basic", "10/minute; 1000/day")
///     .tier("premium", "20/minute")
///     .build()?;
/// let resolve = |key: &str| match key {
///     "basic-demo-key" => Some("basic"),
///     "premium-demo-key" => Some("premium"),
///     _ => None,
/// };
/// let layer = RateLimitLayer::new(plans)
///     .key(ApiKeyOrIp::new(resolve))
///     .also(Plans::single("per-ip", "20/second burst 40")?, ClientIp::new());
/// # let _ = layer;
/// # Ok::<(), tollgate::ConfigError>(())
/// ```
pub struct RateLimitLayer<St: Store = MemoryStore> {
    shared: Arc<Shared<St>>,
}

impl RateLimitLayer<MemoryStore> {
    /// Limits requests by `plans` in a new in-memory store, keyed by peer IP
    /// until [`key`](RateLimitLayer::key) says otherwise.
    pub fn new(plans: Plans) -> Self {
        Self::with_store(plans, MemoryStore::new())
    }
}

impl<St: Store> RateLimitLayer<St> {
    /// Limits requests by `plans` in `store`, keyed by peer IP until
    /// [`key`](RateLimitLayer::key) says otherwise.
    pub fn with_store(plans: Plans, store: St) -> Self {
        let rule = Rule::bind(&store, plans, Arc::new(PeerIp::new()));
        Self {
            shared: Arc::new(Shared {
                store,
                rules: vec![rule],
                cost: None,
                headers_on_allowed: false,
                legacy_headers: false,
                shadow: false,
                on_store_error: OnStoreError::default(),
                on_reject: None,
            }),
        }
    }

    fn modify(mut self, f: impl FnOnce(&mut Shared<St>)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// Reads keys and tiers for the plans given to the constructor with
    /// `extractor`.
    #[must_use]
    pub fn key(self, extractor: impl KeyExtractor) -> Self {
        self.modify(|s| {
            if let Some(rule) = s.rules.first_mut() {
                rule.extractor = Arc::new(extractor);
            }
        })
    }

    /// Adds another rule: every request also charges `plans` under the key
    /// `extractor` reads, all or nothing with the other rules. For example a
    /// per-IP ceiling whatever the tier.
    #[must_use]
    pub fn also(self, plans: Plans, extractor: impl KeyExtractor) -> Self {
        self.modify(|s| {
            let rule = Rule::bind(&s.store, plans, Arc::new(extractor));
            s.rules.push(rule);
        })
    }

    /// Sets the cost of each request (default 1; 0 counts as 1).
    #[must_use]
    pub fn cost(self, cost: impl Fn(&RequestInfo<'_>) -> u64 + Send + Sync + 'static) -> Self {
        self.modify(|s| s.cost = Some(Arc::new(cost)))
    }

    /// Adds `RateLimit-Policy` and `RateLimit` to admitted responses too
    /// (default off: refused responses always carry them).
    #[must_use]
    pub fn headers_on_allowed(self, on: bool) -> Self {
        self.modify(|s| s.headers_on_allowed = on)
    }

    /// Adds the legacy `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
    /// `X-RateLimit-Reset` (seconds from now) fields (default off).
    #[must_use]
    pub fn legacy_headers(self, on: bool) -> Self {
        self.modify(|s| s.legacy_headers = on)
    }

    /// Shadow (dry-run) mode: requests a limit would refuse are logged at
    /// info level and let through.
    #[must_use]
    pub fn shadow(self, on: bool) -> Self {
        self.modify(|s| s.shadow = on)
    }

    /// What to do when the store cannot answer (default
    /// [`OnStoreError::FailClosed`]).
    #[must_use]
    pub fn on_store_error(self, policy: OnStoreError) -> Self {
        self.modify(|s| s.on_store_error = policy)
    }

    /// Answers refused requests with `respond` instead of the default
    /// answers ([`Rejection::to_response`] builds those, so a closure can
    /// start from them).
    #[must_use]
    pub fn on_reject(
        self,
        respond: impl Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.modify(|s| s.on_reject = Some(Arc::new(respond)))
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.shared.store
    }

    /// The plans given to the constructor.
    pub fn plans(&self) -> &Plans {
        &self.shared.rules[0].plans
    }
}

impl<St: Store> Clone for RateLimitLayer<St> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<St: Store> fmt::Debug for RateLimitLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("rules", &self.shared.rules.len())
            .field("shadow", &self.shared.shadow)
            .finish_non_exhaustive()
    }
}

impl<S, St: Store> Layer<S> for RateLimitLayer<St> {
    type Service = RateLimit<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.shared))
    }
}
