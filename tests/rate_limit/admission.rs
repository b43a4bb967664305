//! A plan admits exactly its quota, then answers 429 with the fields and a
//! problem body; the wait it gives is exact.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tower::Layer;

use crate::sf;
use crate::support::{from, layer, send, single, statuses, Calls, Ok200, PEER};

#[tokio::test]
async fn admits_the_quota_then_429_with_fields_and_problem_body() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = layer(single("api", "3/minute"), &clock).layer(Ok200::new(&calls));

    for i in 0..3 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}");
        assert_eq!(&reply.body[..], b"ok");
        assert!(
            reply.has_no_rate_limit_fields(),
            "fields are off by default"
        );
    }
    assert_eq!(calls.get(), 3);

    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        calls.get(),
        3,
        "a refused request never reaches the service"
    );
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    // GCRA 3/minute: one request every 20 s, so the next one in 20 s.
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(refused.header("ratelimit-policy"), Some("\"api\";q=3;w=60"));
    // t is the effective window (draft section 4.1.2): the next unit comes
    // in 20 s, as the Retry-After says, not when the bucket is full (60 s).
    assert_eq!(refused.header("ratelimit"), Some("\"api\";r=0;t=20"));
    sf::check_fields(&refused.headers).expect("fields follow the draft");

    let body = refused.json();
    assert_eq!(body["status"], 429);
    // draft-ietf-httpapi-ratelimit-headers section 5.1.
    assert_eq!(
        body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(
        body["title"],
        "Request cannot be satisfied as assigned quota has been exceeded"
    );
    assert_eq!(body["policy"], "api");
    assert_eq!(body["tier"], "api");
    assert_eq!(body["limit"], 3);
    assert_eq!(body["remaining"], 0);
    assert_eq!(body["window_seconds"], 60);
    assert_eq!(body["retry_after_ms"], 20_000);
    assert_eq!(body["violated-policies"], serde_json::json!(["api"]));
}

#[tokio::test]
async fn waiting_exactly_retry_after_admits_again() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = layer(single("api", "3/minute"), &clock).layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 429]);

    let refused = send(&mut svc, from(PEER)).await;
    let wait = refused.json()["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms is a number");
    let wait = Duration::from_millis(wait);

    clock.advance(wait - Duration::from_nanos(1));
    let early = send(&mut svc, from(PEER)).await;
    assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS, "1 ns early");
    assert_eq!(early.header("retry-after"), Some("1"), "1 ns is 1 s");
    assert_eq!(early.json()["retry_after_ms"], 1, "never 0 ms either");

    clock.advance(Duration::from_nanos(1));
    assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);
    assert_eq!(send(&mut svc, from(PEER)).await.status, 429);
    assert_eq!(calls.get(), 4);
}

#[tokio::test]
async fn retry_after_rounds_up_and_is_never_zero() {
    let clock = ManualClock::new();
    let mut svc = layer(single("fast", "10/second"), &clock).layer(Ok200::default());
    assert_eq!(
        statuses(&mut svc, PEER, 11).await,
        [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 429]
    );
    // 100 ms to wait: 1 s, not 0.
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["retry_after_ms"], 100);
    sf::check_fields(&refused.headers).expect("fields follow the draft");

    let clock = ManualClock::new();
    let mut svc = layer(single("api", "3/minute"), &clock).layer(Ok200::default());
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    // 1.2 s to wait: 2 s, rounded up, not to the nearest.
    clock.advance(Duration::from_millis(18_800));
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("2"));
    assert_eq!(refused.json()["retry_after_ms"], 1_200);
}

#[tokio::test]
async fn clients_are_counted_apart() {
    let clock = ManualClock::new();
    let mut svc = layer(single("api", "2/minute"), &clock).layer(Ok200::default());
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 429]);
    assert_eq!(
        statuses(&mut svc, "198.51.100.7:1", 3).await,
        [200, 200, 429]
    );
    // Same IPv6 /64: one client.
    assert_eq!(statuses(&mut svc, "[2001:db8:1:2::1]:1", 1).await, [200]);
    assert_eq!(
        statuses(&mut svc, "[2001:db8:1:2:ffff::9]:2", 2).await,
        [200, 429]
    );
}

/// `retry_after_ms` in the body is a wait in milliseconds; a client that
/// waits exactly that long must be admitted, so it has to be rounded up like
/// `Retry-After` is. 3/second earns a unit every 333,333,334 ns.
///
/// Fails with the current code: `rate_limited_body` (src/response/mod.rs)
/// writes `wait.as_millis()`, rounded down (333), so the client comes back
/// 333,334 ns early and is refused again.
#[tokio::test]
async fn waiting_retry_after_ms_is_enough_when_the_wait_is_not_whole_ms() {
    let clock = ManualClock::new();
    let mut svc = layer(single("api", "3/second"), &clock).layer(Ok200::default());
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = refused.json()["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms is a number");
    clock.advance(Duration::from_millis(wait));
    let again = send(&mut svc, from(PEER)).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "waited retry_after_ms = {wait} ms and was refused again: {:?}",
        again.json()
    );
}
