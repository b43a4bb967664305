//! [`RateLimitLayer`]: the tower layer.

use std::fmt;
use std::sync::{Arc, Mutex};

use std::future::Future;

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;

use crate::key::{KeyExtractor, PeerIp, RequestInfo};
use crate::plan::Plans;
use crate::rate_limit::evaluate::{OnStoreError, Shared};
use crate::rate_limit::peek::{PeekError, Peeked};
use crate::rate_limit::reload::Reloader;
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::RuleSet;
use crate::rate_limit::service::RateLimit;
use crate::response::Rejection;
use crate::store::{Checked, MemoryStore, Store};

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
                rules: RuleSet::new(vec![rule]),
                reloading: Mutex::new(()),
                cost: None,
                headers_on_allowed: false,
                legacy_headers: false,
                shadow: false,
                on_store_error: OnStoreError::default(),
                on_reject: None,
                refund: None,
                #[cfg(feature = "metrics")]
                metrics: crate::metrics::LayerMetrics::new(),
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
            let mut rules = Vec::clone(&s.rules.load());
            if let Some(rule) = rules.first_mut() {
                rule.extractor = Arc::new(extractor);
            }
            s.rules.store(rules);
        })
    }

    /// Adds another rule: every request also charges `plans` under the key
    /// `extractor` reads, all or nothing with the other rules. For example a
    /// per-IP ceiling whatever the tier.
    #[must_use]
    pub fn also(self, plans: Plans, extractor: impl KeyExtractor) -> Self {
        self.modify(|s| {
            let mut rules = Vec::clone(&s.rules.load());
            rules.push(Rule::bind(&s.store, plans, Arc::new(extractor)));
            s.rules.store(rules);
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
    /// debug level (and counted, with the `metrics` feature) and let through.
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

    /// Answers refused requests as gRPC: trailers-only `RESOURCE_EXHAUSTED`
    /// (or `UNAVAILABLE`, `INVALID_ARGUMENT`, `UNAUTHENTICATED`) with the
    /// standard `google.rpc` details; see [`crate::grpc`].
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
    #[must_use]
    pub fn grpc(self) -> Self {
        self.on_reject(crate::grpc::respond)
    }

    /// Gives a request's charge back when `refund` says so of the inner
    /// service's answer (status and fields): Flask-Limiter's `deduct_when`,
    /// without its race.
    ///
    /// The request is still charged when admitted, so concurrent requests
    /// never pass a limit together; the refund comes once the answer's head
    /// is known, before it is sent, and takes back exactly what was charged
    /// (the same windows, the same cost), atomically per store. Concurrency
    /// limits are not refunded: their permit ends with the body anyway. An
    /// inner service error refunds nothing.
    ///
    /// Count only failed logins:
    ///
    /// ```
    /// use tollgate::{Plans, RateLimitLayer};
    ///
    /// let login = RateLimitLayer::new(Plans::single("login-failures", "5/15 minutes")?)
    ///     .refund_when(|status, _headers| status.is_success());
    /// # let _ = login;
    /// # Ok::<(), tollgate::ConfigError>(())
    /// ```
    ///
    /// Or do not charge clients for the server's own errors:
    /// `.refund_when(|status, _| status.is_server_error())`.
    ///
    /// With a refund set, an admitted request owns a copy of its keys until
    /// its answer (one small allocation per key, and two boxes).
    #[must_use]
    pub fn refund_when(
        self,
        refund: impl Fn(http::StatusCode, &http::HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.modify(|s| s.refund = Some(Arc::new(refund)))
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.shared.store
    }

    /// What the limits would answer for `request` now, charging nothing:
    /// for an API that shows clients their remaining quota. The figures are
    /// those the request would get if sent now (its own cost taken).
    ///
    /// The keys and tiers are read at once; the returned future owns all it
    /// needs (it is `Send + 'static`) and waits only for a remote store.
    ///
    /// ```
    /// use tollgate::{Plans, RateLimitLayer};
    /// use tollgate::key::PeerAddr;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = RateLimitLayer::new(Plans::single("api", "10/minute")?);
    /// let request = http::Request::builder()
    ///     .extension(PeerAddr("192.0.2.7:4000".parse()?))
    ///     .body(())?;
    /// let peeked = layer.peek(&request).await?;
    /// assert!(peeked.decision.is_allowed());
    /// // The figures are those a request sent now would get: 9 left after it.
    /// assert_eq!(peeked.decision.remaining(), 9);
    /// assert_eq!(peeked.policy.map(|p| p.name().to_owned()).as_deref(), Some("api"));
    /// // Nothing was charged: the same again.
    /// assert_eq!(layer.peek(&request).await?.decision.remaining(), 9);
    /// # Ok(()) }
    /// ```
    pub fn peek<B>(
        &self,
        request: &Request<B>,
    ) -> impl Future<Output = Result<Peeked, PeekError>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let looked = shared.look(request);
        async move {
            let mut looked = looked?;
            let verdict = match looked.checked.take() {
                None => return Ok(Peeked::unlimited()),
                Some(Checked::Ready(result)) => result?,
                Some(Checked::Pending(future)) => future.await?,
            };
            Ok(shared.peeked(&looked, verdict.decision))
        }
    }

    /// The plans in force for the rule of the constructor (a reload may
    /// have replaced those given to it).
    pub fn plans(&self) -> Plans {
        self.shared.rules.load()[0].plans.clone()
    }

    /// Makes the plans replaceable while the layer runs, and answers the
    /// [`Reloader`] that replaces them for this layer and every clone and
    /// service made from it.
    ///
    /// Call it last: a setter called afterwards makes a new layer the
    /// reloader does not reach. Reading replaceable plans costs each request
    /// an `arc-swap` load (tens of nanoseconds), so layers whose plans never
    /// change are better left fixed.
    ///
    /// ```
    /// use tollgate::{Plans, RateLimitLayer};
    ///
    /// let (layer, reloader) = RateLimitLayer::new(Plans::single("api", "10/second")?)
    ///     .headers_on_allowed(true)
    ///     .reloadable();
    /// reloader.replace(0, Plans::single("api", "5/second")?)?;
    /// assert_eq!(layer.plans().default_tier().limits()[0].quota().count(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reloadable(self) -> (Self, Reloader<St>) {
        let layer = self.modify(|s| s.rules.make_live());
        let reloader = Reloader::new(Arc::clone(&layer.shared));
        (layer, reloader)
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
            .field("rules", &self.shared.rules.load().len())
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
