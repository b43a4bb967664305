//! [`RateLimitLayerBuilder`]: everything a layer is configured with, checked
//! and built once.

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Response;

use crate::error::ConfigError;
use crate::key::{KeyExtractor, PeerIp, RequestInfo};
use crate::limit::validate_name;
use crate::plan::Plans;
use crate::rate_limit::layer::RateLimitLayer;
use crate::rate_limit::refund::RefundFn;
use crate::rate_limit::reload::Reloader;
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::RuleSet;
use crate::rate_limit::state::{CostFn, OnStoreError, RejectFn, Shared};
use crate::response::Rejection;
use crate::store::{MemoryStore, Store};

/// The name of the rule given to [`RateLimitLayer::builder`] until
/// [`name`](RateLimitLayerBuilder::name) says otherwise.
pub const MAIN_RULE: &str = "main";

/// The most rules one layer may hold.
pub const MAX_RULES: usize = 32;

/// Configures a [`RateLimitLayer`]; [`build`](Self::build) checks the whole
/// configuration and makes the layer, which is fixed from then on (only a
/// [`Reloader`] changes its plans).
///
/// ```
/// use tollgate::{Plans, RateLimitLayer};
/// use tollgate::key::{ApiKeyOrIp, ClientIp};
///
/// let tiers = Plans::builder()
///     .tier("anonymous", "3/minute")
///     .tier("premium", "20/minute")
///     .build()?;
/// let resolve = |key: &str| (key == "premium-demo-key").then_some("premium");
/// let layer = RateLimitLayer::builder(tiers)
///     .name("tiers")
///     .key(ApiKeyOrIp::new(resolve))
///     .also("per-ip", Plans::single("per-ip", "20/second burst 40")?, ClientIp::new())
///     .headers_on_allowed(true)
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), tollgate::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until built"]
pub struct RateLimitLayerBuilder<St: Store = MemoryStore> {
    store: St,
    rules: Vec<Draft>,
    cost: Option<CostFn>,
    headers_on_allowed: bool,
    legacy_headers: bool,
    shadow: bool,
    on_store_error: OnStoreError,
    on_reject: Option<RejectFn>,
    refund: Option<RefundFn>,
}

/// A rule before it is bound to the store.
struct Draft {
    name: Arc<str>,
    plans: Plans,
    extractor: Arc<dyn KeyExtractor>,
}

impl RateLimitLayerBuilder<MemoryStore> {
    pub(crate) fn new(plans: Plans) -> Self {
        Self {
            store: MemoryStore::new(),
            rules: vec![Draft {
                name: Arc::from(MAIN_RULE),
                plans,
                extractor: Arc::new(PeerIp::new()),
            }],
            cost: None,
            headers_on_allowed: false,
            legacy_headers: false,
            shadow: false,
            on_store_error: OnStoreError::default(),
            on_reject: None,
            refund: None,
        }
    }
}

impl<St: Store> RateLimitLayerBuilder<St> {
    /// Counts in `store` instead of a new [`MemoryStore`]: a
    /// [`MemoryStore`] built with its own settings or shared with another
    /// layer, or a Redis store.
    pub fn store<T: Store>(self, store: T) -> RateLimitLayerBuilder<T> {
        RateLimitLayerBuilder {
            store,
            rules: self.rules,
            cost: self.cost,
            headers_on_allowed: self.headers_on_allowed,
            legacy_headers: self.legacy_headers,
            shadow: self.shadow,
            on_store_error: self.on_store_error,
            on_reject: self.on_reject,
            refund: self.refund,
        }
    }

    /// Names the rule of the plans given to [`RateLimitLayer::builder`]
    /// (default [`MAIN_RULE`], `main`): the name a [`Reloader`] replaces it
    /// by.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.rules[0].name = Arc::from(name.into());
        self
    }

    /// Reads keys and tiers for the plans given to
    /// [`RateLimitLayer::builder`] with `extractor` (default: the peer's IP,
    /// [`PeerIp`]).
    pub fn key(mut self, extractor: impl KeyExtractor) -> Self {
        self.rules[0].extractor = Arc::new(extractor);
        self
    }

    /// Adds a rule named `name`: every request also charges `plans` under
    /// the key `extractor` reads, all or nothing with the other rules. For
    /// example a per-IP ceiling whatever the tier.
    pub fn also(
        mut self,
        name: impl Into<String>,
        plans: Plans,
        extractor: impl KeyExtractor,
    ) -> Self {
        self.rules.push(Draft {
            name: Arc::from(name.into()),
            plans,
            extractor: Arc::new(extractor),
        });
        self
    }

    /// Sets the cost of each request (default 1; 0 counts as 1).
    pub fn cost(mut self, cost: impl Fn(&RequestInfo<'_>) -> u64 + Send + Sync + 'static) -> Self {
        self.cost = Some(Arc::new(cost));
        self
    }

    /// Adds `RateLimit-Policy` and `RateLimit` to admitted responses too
    /// (default off: refused responses always carry them).
    pub fn headers_on_allowed(mut self, on: bool) -> Self {
        self.headers_on_allowed = on;
        self
    }

    /// Adds the legacy `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
    /// `X-RateLimit-Reset` (seconds from now) fields (default off).
    pub fn legacy_headers(mut self, on: bool) -> Self {
        self.legacy_headers = on;
        self
    }

    /// Shadow (dry-run) mode: requests a limit would refuse are logged at
    /// debug level (and counted, with the `metrics` feature) and let through.
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
        self
    }

    /// What to do when the store cannot answer (default
    /// [`OnStoreError::FailClosed`]).
    pub fn on_store_error(mut self, policy: OnStoreError) -> Self {
        self.on_store_error = policy;
        self
    }

    /// Answers refused requests with `respond` instead of the default
    /// answers ([`Rejection::to_response`] builds those, so a closure can
    /// start from them).
    pub fn on_reject(
        mut self,
        respond: impl Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
    ) -> Self {
        self.on_reject = Some(Arc::new(respond));
        self
    }

    /// Answers refused requests as gRPC: trailers-only `RESOURCE_EXHAUSTED`
    /// (or `UNAVAILABLE`, `INVALID_ARGUMENT`, `UNAUTHENTICATED`) with the
    /// standard `google.rpc` details; see [`crate::grpc`].
    #[cfg(feature = "tonic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
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
    /// let login = RateLimitLayer::builder(Plans::single("login-failures", "5/15 minutes")?)
    ///     .refund_when(|status, _headers| status.is_success())
    ///     .build()?;
    /// # let _ = login;
    /// # Ok::<(), tollgate::ConfigError>(())
    /// ```
    ///
    /// Or do not charge clients for the server's own errors:
    /// `.refund_when(|status, _| status.is_server_error())`.
    ///
    /// With a refund set, an admitted request owns a copy of its keys until
    /// its answer (one small allocation per key, and two boxes).
    pub fn refund_when(
        mut self,
        refund: impl Fn(http::StatusCode, &http::HeaderMap) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.refund = Some(Arc::new(refund));
        self
    }

    /// Checks the configuration and makes the layer, whose plans stay
    /// those given for its life.
    ///
    /// # Errors
    ///
    /// A rule name that is not 1 to 64 of `A-Z a-z 0-9 - _ . :`
    /// ([`ConfigError::InvalidName`]), two rules of one name
    /// ([`ConfigError::Duplicate`]), more than [`MAX_RULES`] rules
    /// ([`ConfigError::TooManyRules`]), a limit that delays (a quota with a
    /// [queue](crate::Quota::with_queue)) beside a window or concurrency
    /// limit in any rule ([`ConfigError::DelayBeside`]: give that limit a
    /// layer of its own).
    pub fn build(self) -> Result<RateLimitLayer<St>, ConfigError> {
        self.validate()?;
        Ok(self.assemble(false))
    }

    /// [`build`](Self::build), with plans replaceable while the layer runs:
    /// the [`Reloader`] replaces them for the layer and every clone and
    /// service made from it. Reading replaceable plans costs each request
    /// an `arc-swap` load (tens of nanoseconds), so layers whose plans never
    /// change are better built fixed.
    ///
    /// ```
    /// use tollgate::{Plans, RateLimitLayer};
    ///
    /// let (layer, reloader) = RateLimitLayer::builder(Plans::single("api", "10/second")?)
    ///     .headers_on_allowed(true)
    ///     .build_reloadable()?;
    /// reloader.replace("main", Plans::single("api", "5/second")?)?;
    /// assert_eq!(layer.plans().default_tier().limits()[0].quota().count(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_reloadable(self) -> Result<(RateLimitLayer<St>, Reloader<St>), ConfigError> {
        self.validate()?;
        let layer = self.assemble(true);
        let reloader = Reloader::new(Arc::clone(layer.shared()));
        Ok((layer, reloader))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.rules.len() > MAX_RULES {
            return Err(ConfigError::TooManyRules {
                count: self.rules.len(),
                max: MAX_RULES,
            });
        }
        for (i, rule) in self.rules.iter().enumerate() {
            validate_name(&rule.name)?;
            if self.rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(ConfigError::Duplicate {
                    name: rule.name.to_string(),
                });
            }
        }
        crate::plan::mix::check_delay_mix(self.rules.iter().map(|rule| &rule.plans))
    }

    /// The layer, without checking names (the one-rule layer of
    /// [`RateLimitLayer::new`] cannot be wrong).
    pub(crate) fn assemble(self, live: bool) -> RateLimitLayer<St> {
        let rules = self
            .rules
            .into_iter()
            .map(|d| Rule::bind(&self.store, d.name, d.plans, d.extractor))
            .collect();
        let rules = if live {
            RuleSet::live(rules)
        } else {
            RuleSet::fixed(rules)
        };
        RateLimitLayer::from_shared(Arc::new(Shared {
            store: self.store,
            rules,
            reloading: Mutex::new(()),
            cost: self.cost,
            headers_on_allowed: self.headers_on_allowed,
            legacy_headers: self.legacy_headers,
            shadow: self.shadow,
            on_store_error: self.on_store_error,
            on_reject: self.on_reject,
            refund: self.refund,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::LayerMetrics::new(),
        }))
    }
}

impl<St: Store> fmt::Debug for RateLimitLayerBuilder<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| &*r.name).collect();
        f.debug_struct("RateLimitLayerBuilder")
            .field("rules", &names)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}
