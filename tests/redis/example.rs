//! Two copies of the tiered example on different loopback ports, counting
//! in the same Redis, enforce one combined quota per key and tier.
#![cfg(feature = "serde")]

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tollgate::key::TrustedProxies;

use crate::support::Server;

#[path = "../../examples/tiered_api.rs"]
#[allow(dead_code, unreachable_pub)]
mod tiered_api;

async fn start(url: &str, prefix: &str) -> SocketAddr {
    let store = tollgate::store::RedisStore::builder(url)
        .no_fallback()
        .prefix(prefix)
        .build()
        .expect("store");
    serve(store).await
}

/// Serves the example's app over `store` on a free loopback port.
async fn serve(store: tollgate::store::RedisStore) -> SocketAddr {
    let limits = tiered_api::Limits::from_toml(tiered_api::DEFAULT_CONFIG).expect("config");
    let app = tiered_api::app_with_store(limits, TrustedProxies::none(), store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}

#[tokio::test]
async fn two_copies_share_one_quota_per_key_and_tier() {
    let server = Server::start();
    let prefix = crate::support::prefix();
    let a = start(server.url(), &prefix).await;
    let b = start(server.url(), &prefix).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let get = |addr: SocketAddr, key: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut request = http::Request::builder().uri(format!("http://{addr}/api/hello"));
            if let Some(key) = key {
                request = request.header("x-api-key", key);
            }
            let response = client
                .request(request.body(Empty::new()).expect("request"))
                .await
                .expect("response");
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
    };
    // Anonymous, one client IP, 3/minute: three answers in all, alternating copies.
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(get(if i % 2 == 0 { a } else { b }, None).await);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    // Basic, 10/minute: ten in all across both copies.
    let mut admitted = 0;
    for i in 0..14 {
        if get(if i % 2 == 0 { a } else { b }, Some("basic-demo-key")).await == 200 {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 10);
}

/// The example's `GET /api/quota` answers a store that cannot answer as the
/// layer does: 503, `Retry-After` and a problem+json body.
#[tokio::test]
async fn quota_answers_a_store_error_like_the_layer() {
    let url = format!("redis://127.0.0.1:{}/", crate::support::free_port());
    let addr = start(&url, &crate::support::prefix()).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    for path in ["/api/quota", "/api/hello"] {
        let request = http::Request::builder()
            .uri(format!("http://{addr}{path}"))
            .header("x-api-key", "basic-demo-key")
            .body(Empty::new())
            .expect("request");
        let response = client.request(request).await.expect("response");
        assert_eq!(response.status().as_u16(), 503, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("retry-after").as_deref(), Some("1"), "{path}");
        assert_eq!(
            header("content-type").as_deref(),
            Some("application/problem+json"),
            "{path}"
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem+json");
        assert_eq!(problem["status"], 503, "{path}");
    }
}

/// The load the issue measured: two copies of the example on one Redis,
/// 32 closed-loop HTTP clients (anonymous and every tier), with the store's
/// defaults. A healthy Redis must answer every check itself: no 503, the
/// breaker never open, and (beyond a stall of this shared machine longer
/// than the timeout, tolerated up to 0.5% and reported) no check answered
/// by the local fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_under_32_http_clients_are_answered_by_redis() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let server = Server::start();
    let prefix = crate::support::prefix();
    let build = || {
        tollgate::store::RedisStore::builder(server.url())
            .prefix(prefix.as_str())
            .build()
            .expect("store")
    };
    let (one, two) = (build(), build());
    let addrs = [serve(one.clone()).await, serve(two.clone()).await];
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let stop = Arc::new(AtomicBool::new(false));
    let keys = [
        None,
        Some("basic-demo-key"),
        Some("premium-demo-key"),
        Some("admin-demo-key"),
    ];
    let mut tasks = Vec::new();
    for c in 0..32usize {
        let (client, stop) = (client.clone(), Arc::clone(&stop));
        let (addr, key) = (addrs[c % 2], keys[c % 4]);
        tasks.push(tokio::spawn(async move {
            let mut statuses = [0u64; 3]; // 200, 429, other
            let mut slowest = Duration::ZERO;
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut request = http::Request::builder().uri(format!("http://{addr}/api/hello"));
                if let Some(key) = key {
                    request = request.header("x-api-key", key);
                }
                let began = Instant::now();
                let response = client
                    .request(request.body(Empty::new()).expect("request"))
                    .await
                    .expect("response");
                let status = response.status().as_u16();
                let _ = response.into_body().collect().await;
                slowest = slowest.max(began.elapsed());
                statuses[match status {
                    200 => 0,
                    429 => 1,
                    _ => 2,
                }] += 1;
            }
            (statuses, slowest)
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut totals = [0u64; 3];
    let mut slowest = Duration::ZERO;
    for task in tasks {
        let (statuses, s) = task.await.expect("no panic in the load");
        for (t, n) in totals.iter_mut().zip(statuses) {
            *t += n;
        }
        slowest = slowest.max(s);
    }
    let total: u64 = totals.iter().sum();
    assert!(total > 1_000, "only {total} requests");
    assert_eq!(
        totals[2], 0,
        "{} answers neither 200 nor 429 of {total}",
        totals[2]
    );
    assert!(totals[0] > 0 && totals[1] > 0, "{totals:?}");
    let opened = one.breaker_stats().opened + two.breaker_stats().opened;
    assert_eq!(opened, 0, "the breaker opened on a healthy Redis");
    let local = one.fallback_stats().answers + two.fallback_stats().answers;
    assert!(
        local * 200 <= total,
        "{local} of {total} checks not answered by a healthy Redis"
    );
    eprintln!(
        "chaos | healthy Redis, two example copies, 32 HTTP clients | 3.0 s | {total} | {} | {} | 0 | - | {:.1} | {local} | - |",
        totals[0],
        totals[1],
        slowest.as_secs_f64() * 1e3
    );
}

/// `GET /api/search` on two copies of the example sharing one Redis: thirty
/// requests at once from one client, alternating copies, are shaped as one
/// queue: one passes at once, ten pass 200 ms apart, nineteen are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_copies_shape_one_search_queue() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let server = Server::start();
    let prefix = crate::support::prefix();
    let a = start(server.url(), &prefix).await;
    let b = start(server.url(), &prefix).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let begin = Arc::new(Instant::now());
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let client = client.clone();
            let begin = Arc::clone(&begin);
            let addr = if i % 2 == 0 { a } else { b };
            tokio::spawn(async move {
                let request = http::Request::builder()
                    .uri(format!("http://{addr}/api/search?q={i}"))
                    .body(Empty::new())
                    .expect("request");
                let response = client.request(request).await.expect("response");
                let status = response.status().as_u16();
                let retry = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = response.into_body().collect().await;
                (status, retry, begin.elapsed())
            })
        })
        .collect();
    let mut passed = Vec::new();
    let mut refused = 0;
    for task in tasks {
        let (status, retry, at) = task.await.expect("task");
        match status {
            200 => passed.push(at),
            429 => {
                assert_eq!(retry.as_deref(), Some("1"));
                refused += 1;
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!((passed.len(), refused), (11, 19));
    passed.sort_unstable();
    for (i, at) in passed.iter().enumerate() {
        let slot = Duration::from_millis(200 * i as u64);
        assert!(
            *at + Duration::from_millis(40) >= slot,
            "{i} passed at {at:?}, before {slot:?}"
        );
        assert!(
            *at < slot + Duration::from_millis(500),
            "{i} passed at {at:?}, after {slot:?}"
        );
    }
}
