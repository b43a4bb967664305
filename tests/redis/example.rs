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
    let limits = tiered_api::Limits::from_toml(tiered_api::DEFAULT_CONFIG).expect("config");
    let store = tollgate::store::RedisStore::builder(url)
        .no_fallback()
        .prefix(prefix)
        .build()
        .expect("store");
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
