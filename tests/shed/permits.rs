//! A place in flight is held by the response body and given back when the
//! body ends or drops, or when the response future drops (queued or running).

use std::pin::Pin;
use std::task::Context;

use http::StatusCode;
use http_body::Body;
use tollgate::clock::ManualClock;

use crate::support::{builder, call, gated, load, normal, pending, ready, whole};

#[test]
fn released_when_the_body_ends() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    inner.finish(StatusCode::OK);
    let mut response = ready(&mut a);
    assert_eq!(
        load(&layer.snapshot()),
        (1, 0),
        "held while the body is unread"
    );
    let body = Pin::new(response.body_mut());
    let frame = body.poll_frame(&mut Context::from_waker(std::task::Waker::noop()));
    assert!(matches!(frame, std::task::Poll::Ready(Some(Ok(_)))));
    assert_eq!(layer.snapshot().in_flight, 1, "still held mid-body");
    let body = Pin::new(response.body_mut());
    let end = body.poll_frame(&mut Context::from_waker(std::task::Waker::noop()));
    assert!(matches!(end, std::task::Poll::Ready(None)));
    assert_eq!(
        layer.snapshot().in_flight,
        0,
        "released at the end of the body"
    );
    drop(response);
    assert_eq!(layer.snapshot().in_flight, 0);
}

#[test]
fn released_when_the_body_is_dropped_unread() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    inner.finish(StatusCode::OK);
    let response = ready(&mut a);
    assert_eq!(layer.snapshot().in_flight, 1);
    drop(response);
    assert_eq!(layer.snapshot().in_flight, 0);
}

#[test]
fn released_when_a_running_request_is_cancelled_and_handed_on() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    pending(&mut b);
    assert_eq!(load(&layer.snapshot()), (1, 1));
    drop(a); // the client went away mid-request
    assert_eq!(load(&layer.snapshot()), (1, 0), "b got the place");
    pending(&mut b);
    assert_eq!(inner.calls.get(), 2);
    let s = layer.snapshot();
    assert_eq!(s.admitted, 2);
    assert_eq!(s.shed.total(), 0);
}

#[test]
fn a_cancelled_waiter_leaves_the_queue() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(1).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    pending(&mut b);
    drop(b); // the client went away while queued
    let s = layer.snapshot();
    assert_eq!(load(&s), (1, 0));
    assert_eq!(s.cancelled, 1);
    assert_eq!(s.shed.total(), 0, "a cancel is not a shed");
    // Its place in the queue is free again.
    let mut c = call(&mut svc, normal());
    pending(&mut c);
    assert_eq!(load(&layer.snapshot()), (1, 1));
    inner.finish(StatusCode::OK);
    drop(whole(ready(&mut a)));
    pending(&mut c);
    assert_eq!(inner.calls.get(), 2, "c ran, b never did");
}

#[test]
fn a_place_granted_to_a_waiter_that_left_is_handed_on() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(2).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    pending(&mut b);
    let mut c = call(&mut svc, normal());
    pending(&mut c);
    inner.finish(StatusCode::OK);
    drop(ready(&mut a)); // b is granted the place, but not polled yet
    assert_eq!(load(&layer.snapshot()), (1, 1));
    drop(b);
    assert_eq!(load(&layer.snapshot()), (1, 0), "c holds it now");
    pending(&mut c);
    assert_eq!(inner.calls.get(), 2);
    inner.finish(StatusCode::OK);
    drop(ready(&mut c));
    assert_eq!(load(&layer.snapshot()), (0, 0));
}

#[test]
fn an_unanswered_service_keeps_nothing_after_everyone_left() {
    let clock = ManualClock::new();
    let layer = builder(2, &clock).max_queue(8).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut futures: Vec<_> = (0..10).map(|_| call(&mut svc, normal())).collect();
    for f in &mut futures {
        pending(f);
    }
    assert_eq!(load(&layer.snapshot()), (2, 8));
    drop(futures);
    assert_eq!(load(&layer.snapshot()), (0, 0));
    assert_eq!(inner.calls.get(), 2);
}
