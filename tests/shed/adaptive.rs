//! AIMD through the service: one more after a success while the limit is
//! used, 10% less (at least one) after a drop, nothing for a cancel, within
//! the floor and ceiling; a grown limit admits waiters at once.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::shed::{Aimd, LoadShedLayer};

use crate::support::{builder, call, gated, load, normal, pending, ready};

fn layer(clock: &ManualClock, start: usize, min: usize, max: usize) -> LoadShedLayer {
    builder(start, clock)
        .max_queue(8)
        .max_queue_wait(Duration::from_secs(10))
        .aimd(Aimd::new(min, max).latency_threshold(Duration::from_millis(100)))
        .build()
        .expect("layer")
}

#[test]
fn success_grows_drop_shrinks_cancel_is_ignored() {
    let clock = ManualClock::new();
    let layer = layer(&clock, 4, 2, 6);
    let (mut svc, inner) = gated(&layer);
    let limit = || layer.snapshot().limit;

    // Two in flight out of 4: the limit is in use.
    let mut a = call(&mut svc, normal());
    let mut b = call(&mut svc, normal());
    pending(&mut a);
    pending(&mut b);
    inner.finish(StatusCode::OK);
    drop(ready(&mut a));
    assert_eq!(limit(), 5);
    // One in flight out of 5: no evidence the limit is too small.
    inner.finish(StatusCode::OK);
    drop(ready(&mut b));
    assert_eq!(limit(), 5);

    // A 503 from the service is a drop: 5 * 0.9 = 4.5, truncated.
    let mut c = call(&mut svc, normal());
    pending(&mut c);
    inner.finish(StatusCode::SERVICE_UNAVAILABLE);
    let answer = ready(&mut c);
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(answer);
    assert_eq!(limit(), 4);

    // Slower than the threshold is a drop too.
    let mut d = call(&mut svc, normal());
    pending(&mut d);
    clock.advance(Duration::from_millis(150));
    inner.finish(StatusCode::OK);
    drop(ready(&mut d));
    assert_eq!(limit(), 3);

    // A client cancel says nothing about the service.
    let mut e = call(&mut svc, normal());
    pending(&mut e);
    clock.advance(Duration::from_secs(60));
    drop(e);
    assert_eq!(limit(), 3);

    // The floor holds.
    for _ in 0..5 {
        let mut f = call(&mut svc, normal());
        pending(&mut f);
        inner.finish(StatusCode::GATEWAY_TIMEOUT);
        drop(ready(&mut f));
    }
    assert_eq!(limit(), 2);
    assert_eq!(load(&layer.snapshot()), (0, 0));
}

#[test]
fn the_ceiling_holds_and_a_grown_limit_admits_waiters() {
    let clock = ManualClock::new();
    let layer = layer(&clock, 2, 1, 3);
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    let mut b = call(&mut svc, normal());
    let mut c = call(&mut svc, normal());
    let mut d = call(&mut svc, normal());
    for f in [&mut a, &mut b, &mut c, &mut d] {
        pending(f);
    }
    assert_eq!(load(&layer.snapshot()), (2, 2));
    // a succeeds with the limit full: 3, and two places free (a's and the
    // new one) for c and d.
    inner.finish(StatusCode::OK);
    drop(ready(&mut a));
    let s = layer.snapshot();
    assert_eq!(s.limit, 3);
    assert_eq!(load(&s), (3, 0));
    pending(&mut c);
    pending(&mut d);
    assert_eq!(inner.calls.get(), 4);
    // The ceiling is 3.
    inner.finish(StatusCode::OK);
    drop(ready(&mut b));
    assert_eq!(layer.snapshot().limit, 3);
    assert!(inner.unfinished() == 2);
}
