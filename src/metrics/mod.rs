//! Counters, gauges and a histogram through the [`metrics`]
//! facade (feature `metrics`).
//!
//! With the feature on, the layers report what they decide to whatever
//! recorder the application installs: `metrics-exporter-prometheus`,
//! StatsD, OpenTelemetry... Without it, none of this code is built.
//!
//! ```
//! use std::net::SocketAddr;
//! use http::{Request, Response, StatusCode};
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower::{Layer, Service, ServiceExt};
//! use tollgate::key::PeerAddr;
//! use tollgate::{Plans, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A real server installs the recorder for the whole process, first
//! // thing: `PrometheusBuilder::new().install_recorder()?`. Here a local
//! // one is enough: the layer registers its counters while it is built.
//! let recorder = PrometheusBuilder::new().build_recorder();
//! let prometheus = recorder.handle();
//! let layer = metrics::with_local_recorder(&recorder, || {
//!     tollgate::metrics::describe();
//!     Plans::single("per-ip", "1/minute").map(RateLimitLayer::new)
//! })?;
//! let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! }));
//!
//! let peer: SocketAddr = "192.0.2.7:50000".parse()?;
//! for expected in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
//!     let request = Request::builder().extension(PeerAddr(peer)).body(())?;
//!     assert_eq!(service.ready().await?.call(request).await?.status(), expected);
//! }
//!
//! let text = prometheus.render();
//! assert!(text.contains(r#"tollgate_requests_allowed_total{tier="per-ip"} 1"#));
//! assert!(text.contains(r#"tollgate_requests_rejected_total{limit="per-ip",tier="per-ip"} 1"#));
//! # Ok(()) }
//! ```
//!
//! # Install the recorder first
//!
//! Every handle is registered once, when the layer (or store) is built:
//! the rate-limit layer registers its counters per tier and per (limit,
//! tier) when a layer is built
//! ([`build`](crate::RateLimitLayerBuilder::build)) (and again for the new plans when
//! plans are reloaded), the load-shedding layer one per (reason, priority)
//! in its [`build`](crate::shed::LoadShedBuilder::build), a store its own
//! when it is built. A request then costs one atomic
//! increment through a handle it already holds: no allocation, no label
//! formatting, no lookup in the recorder's registry.
//!
//! So **install the recorder before building the layers and stores**.
//! Handles registered while no recorder is installed are no-ops, and stay
//! no-ops after one is installed: a layer built too early never reports.
//! The rare events (circuit breaker transitions, the Redis fallback
//! switching on and off) are reported through the recorder installed when
//! they happen.
//!
//! Call [`describe`] once after installing the recorder to give each metric
//! its help text and unit.
//!
//! # Metrics
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `tollgate_requests_allowed_total` | counter | `tier` | requests a rate-limit layer let through, within every limit, counted under the tier each of its rules chose: a layer with an [`also`](crate::RateLimitLayerBuilder::also) rule counts a request under both rules' tiers |
//! | `tollgate_requests_delayed_total` | counter | `tier` | requests a limit with a [queue](crate::Quota::with_queue) admitted to pass later (also counted as allowed) |
//! | `tollgate_request_delay_seconds` | histogram | `tier` | how long each delayed request was told to wait |
//! | `tollgate_requests_rejected_total` | counter | `limit`, `tier` | requests refused `429` (or by the layer's own answer), by the limit that refused them and the tier whose limit it is |
//! | `tollgate_requests_shadow_rejected_total` | counter | `limit`, `tier` | in [shadow mode](crate::RateLimitLayerBuilder::shadow): requests a limit would have refused, let through |
//! | `tollgate_requests_key_rejected_total` | counter | `reason` | requests refused because no usable key was found: `missing`, `malformed`, `too_long`, `unknown` ([`KeyError`](crate::key::KeyError)) |
//! | `tollgate_store_errors_total` | counter | `error` | checks the store could not answer, answered by the layer's [`OnStoreError`](crate::OnStoreError): `full`, `timeout`, `unavailable` (which includes an open circuit breaker) |
//! | `tollgate_requests_shed_total` | counter | `reason`, `priority` | requests a [`LoadShedLayer`](crate::LoadShedLayer) answered `503`: `reason` is a [`ShedReason`](crate::shed::ShedReason) name, `priority` a [`Priority`](crate::shed::Priority) name |
//! | `tollgate_store_keys` | gauge | `store="memory"` | keys tracked now by the in-memory stores of the process (a Redis store's local fallback included) |
//! | `tollgate_store_latency_seconds` | histogram | `store="redis"` | time of each call to Redis for a check or a lease refill, answered or failed (a timeout records the timeout); a check the breaker or the over-limit cache answers makes no call |
//! | `tollgate_store_call_errors_total` | counter | `store="redis"`, `error` | calls to Redis that failed: `timeout` or `unavailable` (before any local fallback answers) |
//! | `tollgate_redis_breaker_transitions_total` | counter | `transition` | circuit breaker transitions: `opened`, `half_opened`, `reopened`, `closed` |
//! | `tollgate_redis_fallback_active` | gauge | — | Redis stores answering from their local fallback now |
//!
//! Metrics of several layers with the same names and labels add up in one
//! series. The Redis metrics need the `redis` feature too.
//!
//! A request the layer lets through because the store failed
//! ([`OnStoreError::FailOpen`](crate::OnStoreError::FailOpen)) counts in
//! `tollgate_store_errors_total`, not in `tollgate_requests_allowed_total`;
//! neither does a request whose tiers are all switched off.
//!
//! Registering is enough for the Prometheus exporter to show a series, at
//! zero: every (limit, tier) and (reason, priority) series exists from the
//! start, which `rate()` and alerts on absent series need.
//!
//! The Prometheus exporter renders histograms as summaries unless it is
//! given buckets:
//! `PrometheusBuilder::new().set_buckets_for_metric(Matcher::Full(STORE_LATENCY.into()), &[...])`.

mod layer;
mod rule;
mod shed;
mod store;

#[cfg(feature = "redis")]
mod redis;

pub(crate) use layer::LayerMetrics;
#[cfg(feature = "redis")]
pub(crate) use redis::{breaker_transition, fallback_switched, RedisMetrics};
pub(crate) use rule::RuleMetrics;
pub(crate) use shed::ShedMetrics;
pub(crate) use store::KeysGauge;

use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// `tollgate_requests_allowed_total`: counter, label `tier`.
pub const REQUESTS_ALLOWED: &str = "tollgate_requests_allowed_total";
/// `tollgate_requests_delayed_total`: counter, label `tier`: requests a
/// limit with a queue admitted to pass later (counted as allowed too).
pub const REQUESTS_DELAYED: &str = "tollgate_requests_delayed_total";
/// `tollgate_request_delay_seconds`: histogram, label `tier`: how long each
/// delayed request waits.
pub const REQUEST_DELAY: &str = "tollgate_request_delay_seconds";
/// `tollgate_requests_rejected_total`: counter, labels `limit` and `tier`.
pub const REQUESTS_REJECTED: &str = "tollgate_requests_rejected_total";
/// `tollgate_requests_shadow_rejected_total`: counter, labels `limit` and `tier`.
pub const REQUESTS_SHADOW_REJECTED: &str = "tollgate_requests_shadow_rejected_total";
/// `tollgate_requests_key_rejected_total`: counter, label `reason`.
pub const REQUESTS_KEY_REJECTED: &str = "tollgate_requests_key_rejected_total";
/// `tollgate_store_errors_total`: counter, label `error`.
pub const STORE_ERRORS: &str = "tollgate_store_errors_total";
/// `tollgate_requests_shed_total`: counter, labels `reason` and `priority`.
pub const REQUESTS_SHED: &str = "tollgate_requests_shed_total";
/// `tollgate_store_keys`: gauge, label `store`.
pub const STORE_KEYS: &str = "tollgate_store_keys";
/// `tollgate_store_latency_seconds`: histogram, label `store`.
pub const STORE_LATENCY: &str = "tollgate_store_latency_seconds";
/// `tollgate_store_call_errors_total`: counter, labels `store` and `error`.
pub const STORE_CALL_ERRORS: &str = "tollgate_store_call_errors_total";
/// `tollgate_redis_breaker_transitions_total`: counter, label `transition`.
pub const REDIS_BREAKER_TRANSITIONS: &str = "tollgate_redis_breaker_transitions_total";
/// `tollgate_redis_fallback_active`: gauge, no label.
pub const REDIS_FALLBACK_ACTIVE: &str = "tollgate_redis_fallback_active";

/// Gives every metric above its help text and unit in the recorder
/// installed now (the global one, or the local one in force).
///
/// Optional: the metrics are reported without it, only undescribed.
pub fn describe() {
    describe_counter!(
        REQUESTS_ALLOWED,
        Unit::Count,
        "Requests a rate-limit layer let through, by tier."
    );
    describe_counter!(
        REQUESTS_DELAYED,
        Unit::Count,
        "Requests a rate limit with a queue admitted to pass later, by tier."
    );
    describe_histogram!(
        REQUEST_DELAY,
        Unit::Seconds,
        "How long each delayed request waits for its turn, by tier."
    );
    describe_counter!(
        REQUESTS_REJECTED,
        Unit::Count,
        "Requests refused by a rate limit, by limit and tier."
    );
    describe_counter!(
        REQUESTS_SHADOW_REJECTED,
        Unit::Count,
        "Requests a rate limit in shadow mode would have refused, by limit and tier."
    );
    describe_counter!(
        REQUESTS_KEY_REJECTED,
        Unit::Count,
        "Requests refused for want of a usable rate-limit key, by reason."
    );
    describe_counter!(
        STORE_ERRORS,
        Unit::Count,
        "Rate-limit checks the store could not answer, by error."
    );
    describe_counter!(
        REQUESTS_SHED,
        Unit::Count,
        "Requests shed with 503 by admission control, by reason and priority."
    );
    describe_gauge!(
        STORE_KEYS,
        Unit::Count,
        "Keys tracked by the in-memory rate-limit stores."
    );
    describe_histogram!(
        STORE_LATENCY,
        Unit::Seconds,
        "Time of each call to a remote rate-limit store."
    );
    describe_counter!(
        STORE_CALL_ERRORS,
        Unit::Count,
        "Calls to a remote rate-limit store that failed, by error."
    );
    describe_counter!(
        REDIS_BREAKER_TRANSITIONS,
        Unit::Count,
        "Transitions of the Redis store's circuit breaker."
    );
    describe_gauge!(
        REDIS_FALLBACK_ACTIVE,
        Unit::Count,
        "Redis stores answering from their local fallback limiter now."
    );
}
