//! `refund_when` over the Redis store: charged on admission, given back
//! after the answer by `rollback.lua`, on the receipt the check returned.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::PeerAddr;
use tollgate::store::RedisStore;
use tollgate::{Plans, RateLimitLayer};
use tower::{Layer, Service};

use crate::support::{concurrent, rate, send, Server};

const PEER: &str = "192.0.2.44:40000";

/// Answers the status `x-status` names (200 without it).
#[derive(Clone)]
struct Answers;

impl Service<Request<()>> for Answers {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let status = request
            .headers()
            .get("x-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u16>().ok())
            .and_then(|v| StatusCode::from_u16(v).ok())
            .unwrap_or(StatusCode::OK);
        let mut response = Response::new(Full::new(Bytes::from_static(b"answer")));
        *response.status_mut() = status;
        ready(Ok(response))
    }
}

fn answering(status: u16) -> Request<()> {
    Request::builder()
        .uri("/login")
        .header("x-status", status.to_string())
        .extension(PeerAddr(PEER.parse().expect("socket address")))
        .body(())
        .expect("request")
}

/// Waits (at most 5 s) until a request sent now would leave `remaining`:
/// refunds on Redis run in a task of their own.
async fn until_remaining(layer: &RateLimitLayer<RedisStore>, remaining: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let peeked = layer.peek(&answering(200)).await.expect("peek");
        if peeked.decision.is_allowed() && peeked.decision.remaining() == remaining {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no refund: {:?} left, {remaining} expected",
            peeked.decision
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn only_failures_count_for_every_rate_algorithm() {
    let server = Server::start();
    for kind in [
        AlgorithmKind::Gcra,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::SlidingWindow,
        AlgorithmKind::SlidingLog,
    ] {
        let plans = Plans::builder()
            .tier_limits("login", [rate("login", "3/hour", kind)])
            .build()
            .expect("plans");
        let layer = RateLimitLayer::with_store(plans, server.store())
            .refund_when(|status, _| status.is_success());
        let mut svc = layer.clone().layer(Answers);
        for _ in 0..5 {
            assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
            until_remaining(&layer, 2).await;
        }
        for _ in 0..3 {
            let reply = send(&mut svc, answering(401)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{kind}");
        }
        let refused = send(&mut svc, answering(200)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{kind}");
    }
}

#[tokio::test]
async fn server_errors_are_refunded_and_the_rest_is_kept() {
    let server = Server::start();
    let plans = Plans::builder()
        .tier_limits("api", [rate("api", "2/hour", AlgorithmKind::Gcra)])
        .build()
        .expect("plans");
    let layer = RateLimitLayer::with_store(plans, server.store())
        .refund_when(|status, _| status.is_server_error());
    let mut svc = layer.clone().layer(Answers);
    assert_eq!(
        send(&mut svc, answering(503)).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    until_remaining(&layer, 1).await;
    assert_eq!(
        send(&mut svc, answering(404)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
    assert_eq!(
        send(&mut svc, answering(200)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn concurrency_limits_are_not_refunded_twice() {
    let server = Server::start();
    let plans = Plans::builder()
        .tier_limits(
            "slots",
            [
                concurrent("slots", 1),
                rate("slots-rate", "100/hour", AlgorithmKind::Gcra),
            ],
        )
        .build()
        .expect("plans");
    let layer = RateLimitLayer::with_store(plans, server.store()).refund_when(|_, _| true);
    let mut svc = layer.clone().layer(Answers);
    let held = svc.call(answering(200)).await.expect("answer");
    assert_eq!(held.status(), StatusCode::OK);
    // Give a wrong refund time to land: the slot must stay taken.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        send(&mut svc, answering(200)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = send(&mut svc, answering(200)).await.status;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
