//! Shadow mode, custom rejections and request costs.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use tollgate::clock::ManualClock;
use tollgate::response::Rejection;
use tower::Layer;

use crate::sf;
use crate::support::{builder, from, send, single, statuses, with_headers, Calls, Ok200, PEER};

#[tokio::test]
async fn shadow_mode_lets_refused_requests_through() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("api", "2/minute"), &clock)
        .shadow(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    for _ in 0..6 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"ok");
        assert!(reply.has_no_rate_limit_fields());
    }
    assert_eq!(calls.get(), 6);
    // Shadow mode is about limits: a request with no key is still answered.
    let no_peer = send(&mut svc, with_headers(None, &[])).await;
    assert_eq!(no_peer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.get(), 6);
}

#[tokio::test]
async fn on_reject_replaces_the_answer() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("api", "2/minute"), &clock)
        .on_reject(|rejection| match rejection {
            Rejection::RateLimited(limited) => {
                let body = format!(
                    "slow down: {} ({} of {} left)",
                    limited.policy.name(),
                    limited.decision.remaining(),
                    limited.decision.limit()
                );
                let mut response = Response::new(Bytes::from(body));
                *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                if let Some(retry) = limited.headers.get(RETRY_AFTER) {
                    headers.insert(RETRY_AFTER, retry.clone());
                }
                response
            }
            other => other.to_response(),
        })
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 200]);
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(&refused.body[..], b"slow down: api (0 of 2 left)");
    assert_eq!(refused.header("content-type"), Some("text/plain"));
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert!(
        !refused.headers.contains_key("ratelimit"),
        "only what the closure put there"
    );
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn on_reject_can_start_from_the_default_answer() {
    let clock = ManualClock::new();
    let seen: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let mut svc = builder(single("api", "1/minute"), &clock)
        .on_reject(move |rejection| {
            let kind = match rejection {
                Rejection::RateLimited(_) => "limited",
                Rejection::Key(_) => "key",
                Rejection::Store(_) => "store",
                _ => "other",
            };
            log.lock()
                .expect("log lock")
                .push((kind.to_owned(), rejection.status().as_u16()));
            let mut response = rejection.to_response();
            response
                .headers_mut()
                .insert("x-rejected-by", HeaderValue::from_static("tollgate"));
            response
        })
        .build()
        .expect("layer")
        .layer(Ok200::default());
    assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);

    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("x-rejected-by"), Some("tollgate"));
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    sf::check_fields(&refused.headers).expect("default fields kept");
    assert_eq!(refused.json()["policy"], "api");

    let no_peer = send(&mut svc, with_headers(None, &[])).await;
    assert_eq!(no_peer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(no_peer.header("x-rejected-by"), Some("tollgate"));
    assert_eq!(no_peer.json()["status"], 500);

    let seen = seen.lock().expect("log lock").clone();
    assert_eq!(seen, [("limited".to_owned(), 429), ("key".to_owned(), 500)]);
}

#[tokio::test]
async fn a_request_costing_3_on_5_per_minute() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("api", "5/minute"), &clock)
        .cost(|_| 3)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let first = send(&mut svc, from(PEER)).await;
    assert_eq!(first.status, StatusCode::OK);
    // 5/minute: a unit every 12 s; with 2 left, the third comes in 12 s.
    assert_eq!(first.header("ratelimit"), Some("\"api\";r=2;t=12"));

    let second = send(&mut svc, from(PEER)).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.json()["remaining"], 2);
    // The third unit, the one the request lacks, comes in 12 s: t and
    // Retry-After agree.
    assert_eq!(second.header("ratelimit"), Some("\"api\";r=2;t=12"));
    // One unit back every 12 s; the request needs one more.
    assert_eq!(second.header("retry-after"), Some("12"));
    assert_eq!(second.json()["retry_after_ms"], 12_000);
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn cost_read_from_the_request() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("api", "5/minute"), &clock)
        .cost(|request| {
            request
                .headers()
                .get("x-cost")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1)
        })
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let cost = |n: &'static [u8]| with_headers(Some(PEER), &[("x-cost", n)]);

    // Cost 0 counts as 1.
    let zero = send(&mut svc, cost(b"0")).await;
    assert_eq!(zero.header("ratelimit"), Some("\"api\";r=4;t=12"));

    // More than the whole limit can never pass: refused, no Retry-After.
    let huge = send(&mut svc, cost(b"6")).await;
    assert_eq!(huge.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        !huge.headers.contains_key("retry-after"),
        "waiting will not help"
    );
    let body = huge.json();
    assert_eq!(body["limit"], 5);
    assert!(body.get("retry_after_ms").is_none());
    sf::check_fields(&huge.headers).expect("valid fields");

    let four = send(&mut svc, cost(b"4")).await;
    assert_eq!(four.status, StatusCode::OK);
    assert_eq!(four.header("ratelimit"), Some("\"api\";r=0;t=12"));
    assert_eq!(calls.get(), 2);
}
