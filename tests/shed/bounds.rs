//! At most `max_in_flight` run, at most `max_queue` wait, none waits past
//! `max_queue_wait`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::shed::{LoadShedLayer, ShedReason};

use crate::support::{
    assert_shed, builder, call, gated, load, normal, pending, poll_with, ready, whole, Wakes,
};

#[test]
fn at_most_max_in_flight_run() {
    let clock = ManualClock::new();
    let layer = builder(2, &clock).max_queue(0).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    let mut b = call(&mut svc, normal());
    let mut c = call(&mut svc, normal());
    pending(&mut a);
    pending(&mut b);
    assert_shed(ready(&mut c), "queue_full");
    assert_eq!(
        inner.calls.get(),
        2,
        "a shed request never reaches the service"
    );
    let s = layer.snapshot();
    assert_eq!(load(&s), (2, 0));
    assert_eq!(s.shed.reason(ShedReason::QueueFull), 1);
    assert_eq!(s.admitted, 2);
}

#[test]
fn at_most_max_queue_wait_and_they_are_served_in_order() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(2)
        .max_queue_wait(Duration::from_secs(1))
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    let mut b = call(&mut svc, normal());
    let mut c = call(&mut svc, normal());
    let mut d = call(&mut svc, normal());
    pending(&mut a);
    let b_wakes = Arc::new(Wakes::default());
    assert!(poll_with(&mut b, &b_wakes).is_pending());
    pending(&mut c);
    assert_shed(ready(&mut d), "queue_full");
    assert_eq!(load(&layer.snapshot()), (1, 2));
    assert_eq!(inner.calls.get(), 1);

    inner.finish(StatusCode::OK);
    let a = whole(ready(&mut a));
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(b_wakes.count(), 1, "the next waiter is woken");
    pending(&mut b);
    assert_eq!(inner.calls.get(), 2, "b runs");
    assert_eq!(load(&layer.snapshot()), (1, 1));
    pending(&mut c);
    assert_eq!(inner.calls.get(), 2, "c still waits");
}

#[test]
fn a_waiter_is_shed_once_it_has_waited_max_queue_wait() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(4)
        .max_queue_wait(Duration::from_millis(50))
        .without_codel()
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    pending(&mut b);
    clock.advance(Duration::from_millis(30));
    let mut c = call(&mut svc, normal());
    pending(&mut c);
    clock.advance(Duration::from_millis(20));
    pending(&mut b); // exactly 50 ms: not longer yet
    clock.advance(Duration::from_millis(1));
    let b = assert_shed(ready(&mut b), "queue_timeout");
    assert_eq!(b.json()["priority"], "normal");
    pending(&mut c);
    let s = layer.snapshot();
    assert_eq!(load(&s), (1, 1));
    assert_eq!(s.queue_delay, Duration::from_millis(21));
    assert_eq!(s.shed.reason(ShedReason::QueueTimeout), 1);
    assert_eq!(inner.calls.get(), 1, "the shed waiter never ran");
}

#[test]
fn an_arrival_sheds_and_wakes_expired_waiters() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(4)
        .max_queue_wait(Duration::from_millis(50))
        .without_codel()
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    let wakes = Arc::new(Wakes::default());
    assert!(poll_with(&mut b, &wakes).is_pending());
    clock.advance(Duration::from_millis(60));
    let mut c = call(&mut svc, normal());
    pending(&mut c);
    assert_eq!(wakes.count(), 1, "shed by the arrival, and told so");
    assert_eq!(load(&layer.snapshot()), (1, 1));
    assert_shed(ready(&mut b), "queue_timeout");
}

#[tokio::test]
async fn the_timer_sheds_an_idle_waiter_on_time() {
    // The real clock: no event but the deadline itself.
    let layer = LoadShedLayer::builder(1)
        .max_queue(1)
        .max_queue_wait(Duration::from_millis(20))
        .without_codel()
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    // Started before the call: the wait is counted from the call, on the
    // layer's own clock (calibrated TSC), hence the 1 ms tolerance.
    let started = std::time::Instant::now();
    let b = call(&mut svc, normal());
    let b = tokio::time::timeout(Duration::from_secs(5), b)
        .await
        .expect("shed before the test timeout")
        .expect("service answers");
    assert!(started.elapsed() >= Duration::from_millis(19));
    assert_shed(b, "queue_timeout");
    assert_eq!(load(&layer.snapshot()), (1, 0));
}
