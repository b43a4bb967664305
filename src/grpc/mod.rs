//! gRPC answers for tonic servers (feature `tonic`).
//!
//! The layers work in front of a tonic server as they are, but their
//! default answers are HTTP ones (429, 503), which a gRPC client reads as a
//! transport failure. [`RateLimitLayerBuilder::grpc`](crate::RateLimitLayerBuilder::grpc)
//! and [`LoadShedBuilder::grpc`](crate::shed::LoadShedBuilder::grpc) make
//! them answer as gRPC does instead, each as a *trailers-only* response
//! (HTTP 200, `content-type: application/grpc`, `grpc-status`,
//! `grpc-message` and `grpc-status-details-bin` in the headers, no body):
//!
//! | refusal | code | details (`google.rpc`) |
//! |---|---|---|
//! | a rate limit | `RESOURCE_EXHAUSTED` | `RetryInfo`, `QuotaFailure` (limit, tier, quota), `ErrorInfo` |
//! | shed by [`LoadShedLayer`](crate::LoadShedLayer) | `UNAVAILABLE` | `RetryInfo`, `ErrorInfo` (reason, priority) |
//! | store failure, fail-closed | `UNAVAILABLE` | `RetryInfo`, `ErrorInfo` |
//! | malformed key (HTTP 400) | `INVALID_ARGUMENT` | `ErrorInfo` |
//! | missing or unknown credentials (HTTP 401) | `UNAUTHENTICATED` | `ErrorInfo` |
//!
//! Never `INTERNAL`, never an HTTP error status. The retry hint is in the
//! metadata too: `retry-after` (whole seconds, rounded up) and
//! `grpc-retry-pushback-ms` (gRFC A6; `-1`, "do not retry", when the
//! request costs more than the limit can ever allow), and the `ratelimit`
//! and `ratelimit-policy` fields of the HTTP answer are kept as metadata.
//! A tonic client reads the details with `tonic_types::StatusExt`.
//!
//! [`status`] and [`shed_status`] give the [`tonic::Status`] alone, to
//! change before [`trailers_only`] writes it; [`respond`] and
//! [`respond_shed`] are the hooks the `grpc` methods install.
//!
//! Keys work as for HTTP: gRPC metadata are HTTP/2 headers, so
//! [`HeaderKey::new("x-api-key")`](crate::key::HeaderKey) reads the
//! `x-api-key` metadata, and [`PeerIp`](crate::key::PeerIp) reads the peer
//! address tonic's server records (`TcpConnectInfo`).
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response};
//! use tonic::Code;
//! use tonic_types::StatusExt;
//! use tower::{Layer, Service, ServiceExt};
//! use tollgate::key::HeaderKey;
//! use tollgate::{Plans, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = RateLimitLayer::builder(Plans::single("per-key", "1/minute")?)
//!     .key(HeaderKey::new("x-api-key"))
//!     .grpc()
//!     .build()?;
//! // A stand-in for a tonic server's routes.
//! let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(http_body_util::Empty::<Bytes>::new()))
//! }));
//!
//! let call = || Request::builder().header("x-api-key", "k1").body(()).unwrap();
//! let first = service.ready().await?.call(call()).await?;
//! assert!(first.headers().get("grpc-status").is_none(), "reached the service");
//!
//! let refused = service.ready().await?.call(call()).await?;
//! assert_eq!(refused.status(), http::StatusCode::OK);
//! assert_eq!(refused.headers()["content-type"], "application/grpc");
//! assert_eq!(refused.headers()["retry-after"], "60");
//! let status = tonic::Status::from_header_map(refused.headers()).unwrap();
//! assert_eq!(status.code(), Code::ResourceExhausted);
//! let delay = status.get_details_retry_info().unwrap().retry_delay.unwrap();
//! assert!(delay.as_secs() == 59 || delay.as_secs() == 60);
//! let quota = status.get_details_quota_failure().unwrap();
//! assert_eq!(quota.violations[0].quota_id, "per-key");
//! # Ok(()) }
//! ```
//!
//! In a tonic server, with the rate limit outside the load shedder:
//!
//! ```no_run
//! use tollgate::key::{HeaderKey, KeyExtractor, PeerIp};
//! use tollgate::{LoadShedLayer, Plans, RateLimitLayer};
//!
//! # async fn serve(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//! let limit = RateLimitLayer::builder(Plans::single("per-client", "10/second burst 20")?)
//!     .key(HeaderKey::new("x-api-key").or(PeerIp::new()))
//!     .grpc()
//!     .build()?;
//! let shed = LoadShedLayer::builder(64).max_queue(64).grpc().build()?;
//! tonic::transport::Server::builder()
//!     .layer(tower::ServiceBuilder::new().layer(limit).layer(shed))
//!     .add_routes(routes) // the generated services, e.g. `GreeterServer::new(..)`
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Cost
//!
//! Unlike the HTTP answers, written from text made once, a gRPC answer
//! encodes its details and formats its message per refusal: a few small
//! allocations.

mod code;
mod reject;
mod retry;
mod shed;
mod trailers;

pub use reject::{respond, status};
pub use shed::{respond_shed, shed_status};
pub use trailers::trailers_only;

/// The `domain` of the `google.rpc.ErrorInfo` in every answer of this
/// module: `"tollgate"`.
pub const DOMAIN: &str = "tollgate";
