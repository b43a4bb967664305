//! Load shedding and admission control: [`LoadShedLayer`].
//!
//! Rate limits protect a service from one client; load shedding protects it
//! from all of them at once. Past its capacity, queueing more work only makes
//! every answer late, so the layer lets at most `max_in_flight` requests run,
//! lets up to `max_queue` wait a short while, and answers the rest at once
//! with `503 Service Unavailable`.
//!
//! ```
//! use std::convert::Infallible;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{Layer, Service, ServiceExt};
//! use tollgate::shed::{LoadShedLayer, ShedReason};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = LoadShedLayer::builder(1).max_queue(0).build()?;
//! let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
//!     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
//! }));
//!
//! // The first response's body holds the only place until it ends or drops.
//! let first = service.ready().await?.call(Request::new(())).await?;
//! assert_eq!(first.status(), StatusCode::OK);
//! let second = service.ready().await?.call(Request::new(())).await?;
//! assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(second.headers()["retry-after"], "1");
//! assert_eq!(second.headers()["content-type"], "application/problem+json");
//!
//! drop(first);
//! let third = service.ready().await?.call(Request::new(())).await?;
//! assert_eq!(third.status(), StatusCode::OK);
//! assert_eq!(layer.snapshot().shed.reason(ShedReason::QueueFull), 1);
//! # Ok(()) }
//! ```
//!
//! # Admission
//!
//! - A place in flight is taken in `call`, never in `poll_ready` (which only
//!   asks the inner service), so an idle keep-alive connection holds nothing.
//! - It is held by the response body and given back when the body ends,
//!   fails or is dropped, or when the response future is dropped (the
//!   client went away while waiting or running).
//! - Without a free place a request waits in the queue, at most
//!   `max_queue_wait`; a full queue, or a wait past that, sheds it.
//! - A shed request never reaches the inner service. It gets `503` with
//!   `Retry-After` (default 1 s), `Cache-Control: no-store` and an
//!   `application/problem+json` body whose `reason` is one of
//!   [`ShedReason`]'s names (`queue_full`, `queue_timeout`, `overloaded`,
//!   `displaced`) and `priority` the request's [`Priority`]. That tells it
//!   apart from a client's own `429`.
//! - [`LoadShedBuilder::on_shed`] answers shed requests with a closure of
//!   yours instead (it gets a [`Shed`]); with the `tonic` feature,
//!   `LoadShedBuilder::grpc` answers them as gRPC `UNAVAILABLE`.
//!
//! # Queue management
//!
//! The queue follows Facebook's "Fail at Scale" (see [`Codel`]): while it
//! drains now and then it is FIFO and bounded by `max_queue_wait`; once a
//! standing queue has formed (the queue was never empty for a whole 100 ms
//! interval and nobody left it within 5 ms) it turns LIFO, serving the
//! newest request first, and sheds whoever has waited past the 5 ms target.
//! It turns back when the queue has been empty again.
//!
//! # Priorities
//!
//! Each request gets a [`Priority`], from a closure
//! ([`LoadShedBuilder::priority`]) or from the tier a key extractor names
//! ([`LoadShedBuilder::priority_from_tier`], the same tiers as the rate
//! limits). Waiters are served highest priority first; a full queue lets a
//! request displace a waiting one of lower priority; and a share of the
//! limit can be kept for the higher priorities ([`LoadShedBuilder::reserve`]).
//! Each decision is taken under one short lock, so the global limit holds
//! under any race.
//!
//! # Adaptive limit
//!
//! With [`Aimd`], the limit moves between a floor and a ceiling with what
//! the service answers: one more after each success while the limit is in
//! use, 10% less after a drop (a 503 or 504, an error, or an answer slower
//! than the threshold); a client cancel counts for nothing.
//!
//! With [`Gradient`], it follows the latency gradient instead, as Netflix's
//! Gradient2 and Envoy's adaptive concurrency filter do: window by window,
//! the limit falls as the latency climbs past a baseline measured unloaded
//! (re-measured every minute, the limit pinned low meanwhile) and grows by
//! a square-root headroom while it stays near it.
//!
//! # With rate limits
//!
//! Put the rate limit outside (first in a `ServiceBuilder`), so a request
//! refused by its rate limit never takes a place in the queue:
//!
//! ```
//! use tollgate::shed::{LoadShedLayer, Priority};
//! use tollgate::key::ApiKeyOrIp;
//! use tollgate::{Plans, RateLimitLayer};
//!
//! let plans = Plans::builder()
//!     .tier("anonymous", "10/minute")
//!     .tier("premium", "100/minute")
//!     .build()?;
//! let resolve = |key: &str| (key == "premium-key").then_some("premium");
//! let shed = LoadShedLayer::builder(8)
//!     .max_queue(16)
//!     .priority_from_tier(ApiKeyOrIp::new(resolve), |tier| match tier {
//!         Some("premium") => Priority::High,
//!         _ => Priority::Low,
//!     })
//!     .reserve(Priority::High, 25)
//!     .build()?;
//! let stack = tower::ServiceBuilder::new()
//!     .layer(RateLimitLayer::builder(plans).key(ApiKeyOrIp::new(resolve)).build()?)
//!     .layer(shed.clone());
//! # let _ = stack;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Observability
//!
//! [`LoadShedLayer::snapshot`] (and [`LoadShed::snapshot`]) answer the
//! current limit, requests in flight and waiting, the queue delay, whether
//! the queue is in LIFO mode, and shed counts by reason and priority.
//!
//! # Time
//!
//! Waiters check their deadline whenever they are polled and whenever a
//! request arrives or ends. To shed a waiter on time while nothing else
//! happens, each layer runs a small thread (`tollgate-shed`) while requests
//! wait, which needs no async runtime; it sleeps on the real clock, so with
//! a [`ManualClock`](crate::clock::ManualClock) deadlines are met at the next
//! poll or event instead.
//!
//! # Cost
//!
//! An admitted request takes and releases one uncontended mutex for a few
//! comparisons and allocates its permit (one small box); a shed request
//! costs the same plus clones of a shared body and a small header map.

mod adaptive;
mod answer;
mod builder;
mod codel;
mod core;
mod error;
pub mod future;
mod gate;
mod gradient;
mod hook;
mod layer;
mod priority;
mod queue;
mod reason;
mod service;
mod snapshot;
mod ticket;
mod timer;
mod wait;

pub use adaptive::Aimd;
pub use answer::POLICY;
pub use builder::LoadShedBuilder;
pub use codel::Codel;
pub use error::{LimitSettingError, ShedConfigError};
pub use gradient::Gradient;
pub use hook::Shed;
pub use layer::LoadShedLayer;
pub use priority::Priority;
pub use reason::ShedReason;
pub use service::LoadShed;
pub use snapshot::{ShedCounts, Snapshot};
