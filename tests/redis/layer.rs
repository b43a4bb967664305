//! The layer over a Redis store answers as over the memory store, and by
//! its failure policy when Redis is away.

use std::time::Duration;

use http::StatusCode;
use tollgate::store::{MemoryStore, RedisStore};
use tollgate::{OnStoreError, Plans, RateLimitLayer};
use tower::Layer;

use crate::support::{free_port, from, send, Calls, Ok200, Reply, Server};

const PEER: &str = "192.0.2.1:40000";

fn plans() -> Plans {
    Plans::builder()
        .tier("basic", "3/minute; 100/day")
        .build()
        .expect("plans")
}

const FIELDS: [&str; 7] = [
    "ratelimit-policy",
    "ratelimit",
    "retry-after",
    "content-type",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fn same_answer(redis: &Reply, memory: &Reply) {
    assert_eq!(redis.status, memory.status);
    for name in FIELDS {
        assert_eq!(redis.header(name), memory.header(name), "{name}");
    }
    if redis.status == StatusCode::TOO_MANY_REQUESTS {
        let (mut r, mut m) = (redis.json(), memory.json());
        // Milliseconds from each store's own clock: a few apart at most.
        let ms = |v: &mut serde_json::Value| {
            v.as_object_mut()
                .and_then(|o| o.remove("retry_after_ms"))
                .and_then(|n| n.as_i64())
                .expect("retry_after_ms")
        };
        let (rm, mm) = (ms(&mut r), ms(&mut m));
        assert!((rm - mm).abs() <= 1_000, "retry_after_ms {rm} vs {mm}");
        assert_eq!(r, m);
    } else {
        assert_eq!(redis.body, memory.body);
    }
}

#[tokio::test]
async fn answers_like_the_memory_store() {
    let server = Server::start();
    let calls = Calls::default();
    let mut redis = RateLimitLayer::builder(plans())
        .store(server.store())
        .headers_on_allowed(true)
        .legacy_headers(true)
        .build()
        .expect("layer")
        .layer(Ok200(calls.clone()));
    let mut memory = RateLimitLayer::builder(plans())
        .store(MemoryStore::new())
        .headers_on_allowed(true)
        .legacy_headers(true)
        .build()
        .expect("layer")
        .layer(Ok200(calls.clone()));
    for expected in [200, 200, 200, 429, 429] {
        let r = send(&mut redis, from(PEER)).await;
        let m = send(&mut memory, from(PEER)).await;
        assert_eq!(r.status.as_u16(), expected);
        same_answer(&r, &m);
    }
    assert_eq!(calls.get(), 6);
    // Another client has its own counters.
    assert_eq!(
        send(&mut redis, from("198.51.100.9:1")).await.status,
        StatusCode::OK
    );
}

fn down() -> RedisStore {
    RedisStore::builder(format!("redis://127.0.0.1:{}/", free_port()))
        .no_fallback()
        .timeout(Duration::from_millis(30))
        .build()
        .expect("store")
}

#[tokio::test]
async fn redis_down_is_503_when_failing_closed() {
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(plans())
        .store(down())
        .build()
        .expect("layer")
        .layer(Ok200(calls.clone()));
    for _ in 0..3 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.json()["status"], 503);
    }
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn redis_down_is_200_when_failing_open() {
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(plans())
        .store(down())
        .on_store_error(OnStoreError::FailOpen)
        .build()
        .expect("layer")
        .layer(Ok200(calls.clone()));
    for _ in 0..5 {
        assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);
    }
    assert_eq!(calls.get(), 5);
}
