//! The `on_shed` hook: it answers every shed request instead of the 503,
//! is told the reason, priority and retry-after, can start from the
//! default answer, and never sees admitted requests; and, with the `tonic`
//! feature, `grpc()` answers as gRPC `UNAVAILABLE`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use tollgate::clock::ManualClock;
use tollgate::shed::{Priority, Shed, ShedReason};

use crate::support::{builder, call, gated, pending, ready, req, whole};

/// What the hook was told, one entry per shed request.
type Seen = Arc<Mutex<Vec<(ShedReason, Priority, Duration)>>>;

#[test]
fn the_hook_answers_shed_requests_and_is_told_why() {
    let clock = ManualClock::new();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let layer = builder(1, &clock)
        .max_queue(1)
        .max_queue_wait(Duration::from_millis(10))
        .retry_after(Duration::from_millis(2500))
        .on_shed(move |shed: &Shed<'_>| {
            record.lock().expect("seen lock").push((
                shed.reason(),
                shed.priority(),
                shed.retry_after(),
            ));
            let mut response = Response::new(Bytes::from(format!(
                "busy: {} ({})",
                shed.reason(),
                shed.priority()
            )));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response.headers_mut().insert(
                "x-shed-reason",
                shed.reason().as_str().parse().expect("ASCII"),
            );
            response
        })
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);

    let mut running = call(&mut svc, req(Priority::Normal));
    pending(&mut running);
    let mut waiting = call(&mut svc, req(Priority::High));
    pending(&mut waiting);
    let full = whole(ready(&mut call(&mut svc, req(Priority::Low))));
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(full.headers["x-shed-reason"], "queue_full");
    assert!(
        full.headers.get("retry-after").is_none(),
        "the hook's answer, not the default"
    );
    assert_eq!(full.body, "busy: queue_full (low)");

    clock.advance(Duration::from_millis(11));
    let timeout = whole(ready(&mut waiting));
    assert_eq!(timeout.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(timeout.body, "busy: queue_timeout (high)");

    // The admitted request never meets the hook.
    inner.finish(StatusCode::OK);
    let done = whole(ready(&mut running));
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body, "done");
    assert_eq!(
        inner.calls.get(),
        1,
        "shed requests never reach the service"
    );

    let retry = Duration::from_millis(2500);
    assert_eq!(
        *seen.lock().expect("seen lock"),
        [
            (ShedReason::QueueFull, Priority::Low, retry),
            (ShedReason::QueueTimeout, Priority::High, retry),
        ]
    );
    assert_eq!(layer.snapshot().shed.reason(ShedReason::QueueFull), 1);
    assert_eq!(layer.snapshot().shed.reason(ShedReason::QueueTimeout), 1);
}

#[test]
fn the_hook_can_start_from_the_default_answer() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(0)
        .on_shed(|shed: &Shed<'_>| {
            assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
            let mut response = shed.to_response();
            response.headers_mut().insert(
                "x-priority-shed",
                shed.priority().as_str().parse().expect("ASCII"),
            );
            response
        })
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut running = call(&mut svc, req(Priority::Normal));
    pending(&mut running);
    let shed = whole(ready(&mut call(&mut svc, req(Priority::Critical))));
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers["retry-after"], "1");
    assert_eq!(shed.headers["content-type"], "application/problem+json");
    assert_eq!(shed.headers["x-priority-shed"], "critical");
    assert_eq!(shed.json()["reason"], "queue_full");
    assert_eq!(shed.json()["priority"], "critical");
}

#[cfg(feature = "tonic")]
#[test]
fn grpc_mode_answers_unavailable_trailers_only() {
    use tonic::Code;
    use tonic_types::StatusExt;

    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(1)
        .max_queue_wait(Duration::from_millis(10))
        .retry_after(Duration::from_millis(1500))
        .grpc()
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut running = call(&mut svc, req(Priority::Normal));
    pending(&mut running);
    let mut waiting = call(&mut svc, req(Priority::High));
    pending(&mut waiting);
    clock.advance(Duration::from_millis(11));
    let answer = whole(ready(&mut waiting));

    assert_eq!(answer.status, StatusCode::OK, "gRPC answers are HTTP 200");
    assert_eq!(answer.headers["content-type"], "application/grpc");
    assert_eq!(answer.headers["grpc-status"], "14");
    assert_eq!(answer.headers["retry-after"], "2");
    assert_eq!(answer.headers["grpc-retry-pushback-ms"], "1500");
    assert!(answer.body.is_empty(), "trailers-only");
    let status = tonic::Status::from_header_map(&answer.headers).expect("a gRPC status");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), ShedReason::QueueTimeout.detail());
    let retry = status.get_details_retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_millis(1500)));
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "QUEUE_TIMEOUT");
    assert_eq!(info.domain, "tollgate");
    assert_eq!(info.metadata["priority"], "high");
}
