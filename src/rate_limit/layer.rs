//! [`RateLimitLayer`]: the tower layer.

use std::fmt;
use std::sync::Arc;

use std::future::Future;

use http::Request;
use tower_layer::Layer;

use crate::plan::Plans;
use crate::rate_limit::builder::RateLimitLayerBuilder;
use crate::rate_limit::peek::{PeekError, Peeked};
use crate::rate_limit::service::RateLimit;
use crate::rate_limit::state::Shared;
use crate::store::{Checked, MemoryStore, Store};

/// Applies rate limits to every request of the wrapped service.
///
/// Built once, by [`RateLimitLayer::builder`] (or [`RateLimitLayer::new`]
/// for plans alone, keyed by peer IP, in memory). Every clone of the layer,
/// and every service it makes (one per route, per connection), shares one
/// set of counters: a limit holds across all of them.
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
/// let layer = RateLimitLayer::builder(plans)
///     .key(ApiKeyOrIp::new(resolve))
///     .also("per-ip", Plans::single("per-ip", "20/second burst 40")?, ClientIp::new())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), tollgate::ConfigError>(())
/// ```
pub struct RateLimitLayer<St: Store = MemoryStore> {
    shared: Arc<Shared<St>>,
}

impl RateLimitLayer<MemoryStore> {
    /// Limits requests by `plans` in a new in-memory store, keyed by peer
    /// IP: `RateLimitLayer::builder(plans).build()`, which cannot fail.
    pub fn new(plans: Plans) -> Self {
        RateLimitLayerBuilder::new(plans).assemble(false)
    }

    /// Configures a layer limiting requests by `plans`: the rule named
    /// [`MAIN_RULE`](crate::MAIN_RULE) unless
    /// [`name`](RateLimitLayerBuilder::name) says otherwise, keyed by peer
    /// IP until [`key`](RateLimitLayerBuilder::key) says otherwise, counted
    /// in a new [`MemoryStore`] until [`store`](RateLimitLayerBuilder::store)
    /// says otherwise.
    pub fn builder(plans: Plans) -> RateLimitLayerBuilder<MemoryStore> {
        RateLimitLayerBuilder::new(plans)
    }
}

impl<St: Store> RateLimitLayer<St> {
    pub(crate) fn from_shared(shared: Arc<Shared<St>>) -> Self {
        Self { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<St>> {
        &self.shared
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

    /// The plans in force for the layer's first rule, the one given to
    /// [`builder`](RateLimitLayer::builder) (a reload may have replaced
    /// them).
    pub fn plans(&self) -> Plans {
        self.shared.rules.load()[0].plans.clone()
    }

    /// The plans in force for the rule named `rule`, if the layer has one.
    pub fn plans_of(&self, rule: &str) -> Option<Plans> {
        let rules = self.shared.rules.load();
        rules
            .iter()
            .find(|r| &*r.name == rule)
            .map(|r| r.plans.clone())
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
            .field(
                "rules",
                &self
                    .shared
                    .rules
                    .load()
                    .iter()
                    .map(|r| &*r.name)
                    .collect::<Vec<_>>(),
            )
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
