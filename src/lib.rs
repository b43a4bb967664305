//! Tower middleware for rate limiting and admission control.
//!
//! Add one [`RateLimitLayer`] to an axum, hyper or tonic service and every
//! request is checked against the limits of its tier before the service
//! sees it. A request over a limit is answered `429 Too Many Requests` with
//! `Retry-After`, the IETF `RateLimit-Policy` and `RateLimit` fields and a
//! problem+json body; it never reaches the inner service.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use tower::{Layer, Service, ServiceExt};
//! use tollgate::key::{HeaderKey, PeerAddr};
//! use tollgate::{Plans, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plans = Plans::builder().tier("free", "2/minute").build()?;
//! let layer = RateLimitLayer::builder(plans)
//!     .key(HeaderKey::new("x-api-key"))
//!     .build()?;
//! let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! }));
//!
//! let request = || Request::builder().header("x-api-key", "k1").body(()).unwrap();
//! for expected in [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
//!     let response = service.ready().await?.call(request()).await?;
//!     assert_eq!(response.status(), expected);
//! }
//! # Ok(()) }
//! ```
//!
//! The pieces:
//! - [`quota`]: `"10/second burst 20"`, `"100/minute; 1000/day"`, `"2 concurrent"`.
//! - [`algorithm`]: GCRA, fixed window, sliding window counter, sliding log, concurrency.
//! - [`plan`]: tiers and their limits ([`Plans`]).
//! - [`key`]: who a request is counted against (peer IP, trusted forwarded
//!   headers, API key, bearer token, route, closure) and its tier.
//! - [`store`]: where counters live; the in-memory store is sharded (no
//!   global lock), bounded and evicts idle keys by itself; Redis behind the
//!   `redis` feature.
//! - [`response`]: the answers and how to replace them.
//! - [`shed`]: load shedding and admission control (503 when overloaded).
//! - `grpc` (feature `tonic`): the same answers as gRPC statuses
//!   (`RESOURCE_EXHAUSTED`, `UNAVAILABLE`) with `google.rpc` details.
//! - `metrics` (feature `metrics`): counters, gauges and a histogram through
//!   the `metrics` facade.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
pub mod body;
pub mod clock;
mod decision;
mod error;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod grpc;
mod jitter;
pub mod key;
pub mod limit;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
pub mod plan;
pub mod quota;
mod rate_limit;
pub mod response;
pub mod shed;
pub mod store;

pub use decision::Decision;
pub use error::{ConfigError, StoreConfigError, StoreError};
pub use limit::Limit;
/// The TOML form of plans, now at [`plan::config`] (this path is kept).
#[cfg(feature = "serde")]
#[doc(hidden)]
pub use plan::config;
pub use plan::mode::{Mode, UnknownMode};
pub use plan::Plans;
pub use quota::Quota;
pub use rate_limit::builder::{RateLimitLayerBuilder, MAIN_RULE, MAX_RULES};
pub use rate_limit::future;
pub use rate_limit::layer::RateLimitLayer;
pub use rate_limit::peek::{PeekError, Peeked};
pub use rate_limit::reload::{ReloadError, Reloader};
pub use rate_limit::service::RateLimit;
pub use rate_limit::state::OnStoreError;
pub use shed::LoadShedLayer;
