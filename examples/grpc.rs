//! A gRPC service on tonic, rate-limited and load-shed by tollgate.
//!
//! `tollgate.demo.Greeter/SayHello` (see `proto/greeter.proto`) answers a
//! greeting. In front of it, in one `tower::ServiceBuilder`:
//!
//! - a rate limit per client: callers sending `x-api-key` metadata are
//!   counted per key in the tier `api-key` (10/minute and 200/hour), the
//!   others per peer IP in the tier `anonymous` (3/minute); a call over its limit gets
//!   `RESOURCE_EXHAUSTED` with `RetryInfo` and `QuotaFailure` details and
//!   `retry-after` / `grpc-retry-pushback-ms` metadata;
//! - load shedding: 64 calls run at once, 64 more wait, the rest get
//!   `UNAVAILABLE` with `RetryInfo` and `ErrorInfo` details at once.
//!
//! Rate limits go outside, so a call its rate limit refuses never takes a
//! place in the queue. Both answer as gRPC (`.grpc()`): trailers-only
//! responses a gRPC client reads as a status, never an HTTP 429 or 503.
//!
//! ```text
//! cargo run --example grpc --features tonic -- --addr 127.0.0.1:50051
//! grpcurl -plaintext -import-path examples/proto -proto greeter.proto \
//!   -H 'x-api-key: k1' -d '{"name": "Ada"}' 127.0.0.1:50051 tollgate.demo.Greeter/SayHello
//! ```
//!
//! The Rust code of the proto is generated once and checked in
//! (`proto/tollgate.demo.rs`): building the example needs no protobuf
//! compiler. `tests/grpc_codegen.rs` checks that it is up to date.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tollgate::key::{HeaderKey, Key, KeyExtractor, PeerIp, RequestInfo, TierName};
use tollgate::shed::{LoadShedLayer, ShedConfigError};
use tollgate::{ConfigError, Plans, RateLimitLayer};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

/// The code generated from `proto/greeter.proto` (package `tollgate.demo`).
pub mod demo {
    #![allow(clippy::all, clippy::pedantic, unreachable_pub)]
    include!("proto/tollgate.demo.rs");
}

use demo::greeter_server::{Greeter, GreeterServer};
use demo::{HelloReply, HelloRequest};

/// The tier of callers that send an API key.
pub const API_KEY_TIER: &str = "api-key";
/// The tier of callers without one, counted per peer IP.
pub const ANONYMOUS_TIER: &str = "anonymous";
/// The longest work a call may ask for with `work_ms`.
pub const MAX_WORK: Duration = Duration::from_secs(60);

/// The settings of the example server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The quota of each API key.
    pub api_key_quota: String,
    /// The quota of each peer IP calling without a key.
    pub anonymous_quota: String,
    /// How many calls run at once.
    pub max_in_flight: usize,
    /// How many calls may wait for a place.
    pub max_queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            api_key_quota: "10/minute; 200/hour".to_owned(),
            anonymous_quota: "3/minute".to_owned(),
            max_in_flight: 64,
            max_queue: 64,
        }
    }
}

/// Reads `--addr HOST:PORT` (the only flag) from the arguments after the
/// program name.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => {
                let value = args.next().ok_or("--addr needs HOST:PORT")?;
                options.addr = value
                    .parse()
                    .map_err(|e| format!("--addr {value:?}: {e}"))?;
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: grpc [--addr HOST:PORT]"
                ))
            }
        }
    }
    Ok(options)
}

/// The greeter: answers after the work the request asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hello;

#[tonic::async_trait]
impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let HelloRequest { name, work_ms } = request.into_inner();
        let work = Duration::from_millis(u64::from(work_ms)).min(MAX_WORK);
        if !work.is_zero() {
            tokio::time::sleep(work).await;
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello, {name}!"),
        }))
    }
}

/// Every API key is in the tier [`API_KEY_TIER`].
fn api_key_tier(_: &RequestInfo<'_>, _: &Key<'_>) -> Option<TierName<'static>> {
    Some(TierName::from(API_KEY_TIER))
}

/// The rate limit: per API key from the `x-api-key` metadata, falling back
/// to the peer IP (tonic records it) for calls without one; answers as gRPC.
pub fn rate_limit(options: &Options) -> Result<RateLimitLayer, ConfigError> {
    let plans = Plans::builder()
        .tier(ANONYMOUS_TIER, &options.anonymous_quota)
        .tier(API_KEY_TIER, &options.api_key_quota)
        .default_tier(ANONYMOUS_TIER)
        .build()?;
    let key = HeaderKey::new("x-api-key")
        .tiered(api_key_tier)
        .or(PeerIp::new());
    RateLimitLayer::builder(plans).key(key).grpc().build()
}

/// The load shedder; answers as gRPC.
pub fn load_shed(options: &Options) -> Result<LoadShedLayer, ShedConfigError> {
    LoadShedLayer::builder(options.max_in_flight)
        .max_queue(options.max_queue)
        .grpc()
        .build()
}

/// Serves the greeter on `listener` behind `limit` and `shed` until the
/// task is dropped.
pub async fn serve(
    listener: TcpListener,
    limit: RateLimitLayer,
    shed: LoadShedLayer,
) -> Result<(), tonic::transport::Error> {
    let layers = tower::ServiceBuilder::new().layer(limit).layer(shed);
    Server::builder()
        .layer(layers)
        .add_service(GreeterServer::new(Hello))
        .serve_with_incoming(TcpIncoming::from(listener))
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_args(std::env::args().skip(1))?;
    let limit = rate_limit(&options)?;
    let shed = load_shed(&options)?;
    let listener = TcpListener::bind(options.addr).await?;
    println!(
        "tollgate.demo.Greeter on {} (api keys {}, anonymous {} per IP, {} in flight + {} queued)",
        listener.local_addr()?,
        options.api_key_quota,
        options.anonymous_quota,
        options.max_in_flight,
        options.max_queue,
    );
    serve(listener, limit, shed).await?;
    Ok(())
}
