//! Shared helpers: a manual-clock store, a counting inner service, requests
//! from a given peer, and replies collected whole.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tollgate::clock::ManualClock;
use tollgate::key::PeerAddr;
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimitLayer, RateLimitLayerBuilder};
use tower::{Service, ServiceExt};

/// The store of every test: memory, on a clock the test moves.
pub(crate) type TestStore = MemoryStore<ManualClock>;

/// A memory store reading `clock`.
pub(crate) fn store(clock: &ManualClock) -> TestStore {
    MemoryStore::builder().clock(clock.clone()).build()
}

/// A layer over `plans` on a fresh manual-clock store.
pub(crate) fn layer(plans: Plans, clock: &ManualClock) -> RateLimitLayer<TestStore> {
    builder(plans, clock).build().expect("layer")
}

/// A layer's builder over `plans` on a fresh manual-clock store.
pub(crate) fn builder(plans: Plans, clock: &ManualClock) -> RateLimitLayerBuilder<TestStore> {
    RateLimitLayer::builder(plans).store(store(clock))
}

/// A one-tier plan set.
pub(crate) fn single(name: &str, quotas: &str) -> Plans {
    Plans::single(name, quotas).expect("valid test plan")
}

/// Counts the calls of an inner service; clones share the count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The trivial inner service: counts the call and answers `200 ok`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ok200 {
    pub(crate) calls: Calls,
}

impl Ok200 {
    pub(crate) fn new(calls: &Calls) -> Self {
        Self {
            calls: calls.clone(),
        }
    }
}

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        self.calls.hit();
        ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    }
}

/// The peer address of the usual test client.
pub(crate) const PEER: &str = "192.0.2.1:40000";

/// A socket address from text.
pub(crate) fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test socket address")
}

/// A GET request from `peer`.
pub(crate) fn from(peer: &str) -> Request<()> {
    Request::builder()
        .uri("/api")
        .extension(PeerAddr(addr(peer)))
        .body(())
        .expect("test request")
}

/// A GET request from `peer` with extra header lines (raw bytes allowed).
pub(crate) fn with_headers(peer: Option<&str>, headers: &[(&str, &[u8])]) -> Request<()> {
    let mut builder = Request::builder().uri("/api");
    if let Some(peer) = peer {
        builder = builder.extension(PeerAddr(addr(peer)));
    }
    for (name, value) in headers {
        let value = HeaderValue::from_bytes(value).expect("test header value");
        builder = builder.header(*name, value);
    }
    builder.body(()).expect("test request")
}

/// A response with its body read to the end.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The value of a header as text, if present and visible ASCII.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Whether none of the rate-limit fields is present.
    pub(crate) fn has_no_rate_limit_fields(&self) -> bool {
        [
            "ratelimit-policy",
            "ratelimit",
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ]
        .iter()
        .all(|name| !self.headers.contains_key(*name))
    }
}

/// Reads a response whole.
pub(crate) async fn collect<B>(response: Response<B>) -> Reply
where
    B: Body,
    B::Error: Debug,
{
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body reads").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Waits for `service` to be ready, calls it and reads the reply whole.
pub(crate) async fn send<S, B>(service: &mut S, request: Request<()>) -> Reply
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    let response = service
        .ready()
        .await
        .expect("service ready")
        .call(request)
        .await
        .expect("service answers");
    collect(response).await
}

/// Sends `n` requests from `peer`, answering their statuses.
pub(crate) async fn statuses<S, B>(service: &mut S, peer: &str, n: usize) -> Vec<u16>
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: Debug,
    B: Body,
    B::Error: Debug,
{
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(send(service, from(peer)).await.status.as_u16());
    }
    out
}

/// Waits for `service` to be ready and calls it, answering the call's
/// future unpolled.
pub(crate) async fn call<S>(service: &mut S, request: Request<()>) -> S::Future
where
    S: Service<Request<()>>,
    S::Error: Debug,
{
    ServiceExt::<Request<()>>::ready(service)
        .await
        .expect("service ready")
        .call(request)
}

/// Waits for `service` to be ready, calls it and answers the response,
/// its body unread.
pub(crate) async fn respond<S>(service: &mut S, request: Request<()>) -> S::Response
where
    S: Service<Request<()>>,
    S::Error: Debug,
{
    call(service, request).await.await.expect("service answers")
}
