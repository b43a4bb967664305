//! The 503 answer: status, `Retry-After`, problem+json naming the reason.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::shed::Priority;

use crate::support::{builder, call, gated, pending, ready, req, whole};

#[test]
fn a_shed_request_gets_a_503_problem() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(0).build().expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut a = call(&mut svc, req(Priority::Normal));
    pending(&mut a);
    let shed = whole(ready(&mut call(&mut svc, req(Priority::Low))));
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers["retry-after"], "1", "default 1 s");
    assert_eq!(shed.headers["content-type"], "application/problem+json");
    assert_eq!(shed.headers["cache-control"], "no-store");
    let json = shed.json();
    // draft-ietf-httpapi-ratelimit-headers section 5.2.
    assert_eq!(
        json["type"],
        "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
    );
    assert_eq!(
        json["title"],
        "Request cannot be satisfied due to temporary server capacity constraints"
    );
    assert_eq!(json["violated-policies"], serde_json::json!(["load-shed"]));
    assert_eq!(json["status"], 503);
    assert_eq!(json["reason"], "queue_full");
    assert_eq!(json["priority"], "low");
    assert_eq!(json["retry_after_seconds"], 1);
    assert!(json["detail"]
        .as_str()
        .is_some_and(|d| d.contains("queue is full")));
}

#[test]
fn retry_after_is_configurable_and_rounded_up() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(1)
        .max_queue_wait(Duration::from_millis(10))
        .retry_after(Duration::from_millis(2500))
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut a = call(&mut svc, req(Priority::Normal));
    pending(&mut a);
    let mut b = call(&mut svc, req(Priority::High));
    pending(&mut b);
    let full = whole(ready(&mut call(&mut svc, req(Priority::High))));
    assert_eq!(full.headers["retry-after"], "3");
    assert_eq!(full.json()["retry_after_seconds"], 3);
    clock.advance(Duration::from_millis(11));
    let timeout = whole(ready(&mut b));
    assert_eq!(timeout.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(timeout.headers["retry-after"], "3");
    assert_eq!(timeout.json()["reason"], "queue_timeout");
    assert_eq!(timeout.json()["priority"], "high");
}

#[test]
#[should_panic(expected = "polled after completion")]
fn a_shed_answer_polled_again_panics_as_towers_futures_do() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(0).build().expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut a = call(&mut svc, req(Priority::Normal));
    pending(&mut a);
    let mut shed = call(&mut svc, req(Priority::Low));
    let _ = ready(&mut shed);
    // Never left pending forever: a second poll is a caller's bug, told.
    let _ = ready(&mut shed);
}
