//! CoDel: a standing queue turns the queue LIFO and sheds past the target;
//! once the queue has drained, back to FIFO.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::shed::{Codel, ShedReason};

use crate::support::{assert_shed, builder, call, gated, load, normal, pending, ready};

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_standing_queue_turns_lifo_and_a_drained_one_fifo() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(10)
        .max_queue_wait(Duration::from_secs(1))
        .codel(Codel::new()) // 5 ms target, 100 ms interval
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut a = call(&mut svc, normal());
    pending(&mut a);
    let mut b = call(&mut svc, normal());
    pending(&mut b);
    clock.advance(10 * MS);
    let mut c = call(&mut svc, normal());
    pending(&mut c);

    // First interval: the queue was empty at its start.
    clock.advance(90 * MS);
    pending(&mut b);
    assert!(!layer.snapshot().lifo);
    // Second: never empty, nobody served: a standing queue. Everyone who
    // waited past the 5 ms target is shed.
    clock.advance(100 * MS);
    assert_shed(ready(&mut b), "overloaded");
    assert_shed(ready(&mut c), "overloaded");
    let s = layer.snapshot();
    assert!(s.lifo);
    assert_eq!(s.shed.reason(ShedReason::Overloaded), 2);
    assert_eq!(load(&s), (1, 0));

    // LIFO: the newest waiter is served first.
    let mut d = call(&mut svc, normal());
    pending(&mut d);
    clock.advance(MS);
    let mut e = call(&mut svc, normal());
    pending(&mut e);
    clock.advance(MS);
    inner.finish(StatusCode::OK);
    drop(ready(&mut a));
    pending(&mut e);
    pending(&mut d);
    assert_eq!(inner.calls.get(), 2, "e runs, d still waits");
    assert_eq!(load(&layer.snapshot()), (1, 1));

    // Past the target even a fresh waiter is shed while overloaded.
    clock.advance(4 * MS); // d has waited 6 ms
    assert_shed(ready(&mut d), "overloaded");

    // The queue is empty: at the end of the interval, back to FIFO.
    clock.advance(100 * MS);
    let mut f = call(&mut svc, normal());
    pending(&mut f);
    let s = layer.snapshot();
    assert!(!s.lifo, "the standing queue is gone");
    clock.advance(MS);
    let mut g = call(&mut svc, normal());
    pending(&mut g);
    clock.advance(20 * MS); // past the target, within max_queue_wait
    inner.finish(StatusCode::OK);
    drop(ready(&mut e));
    pending(&mut f);
    pending(&mut g);
    assert_eq!(inner.calls.get(), 3, "f (the oldest) runs, g waits");
    assert_eq!(load(&layer.snapshot()), (1, 1));
    assert_eq!(layer.snapshot().shed.reason(ShedReason::Overloaded), 3);
}

#[test]
fn a_queue_served_within_the_target_never_turns_lifo() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock)
        .max_queue(10)
        .max_queue_wait(Duration::from_secs(1))
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut running = call(&mut svc, normal());
    pending(&mut running);
    let mut waiting = call(&mut svc, normal());
    pending(&mut waiting);
    // The queue never empties, but each waiter is served after 4 ms, under
    // the 5 ms target: no standing queue over 200 ms (two intervals).
    for round in 0..100 {
        let mut next = call(&mut svc, normal());
        pending(&mut next);
        clock.advance(2 * MS);
        inner.finish(StatusCode::OK);
        drop(ready(&mut running));
        pending(&mut waiting);
        running = std::mem::replace(&mut waiting, next);
        assert!(!layer.snapshot().lifo, "round {round}");
        assert_eq!(load(&layer.snapshot()), (1, 1));
    }
    let s = layer.snapshot();
    assert_eq!(s.shed.total(), 0);
    assert_eq!(s.min_queue_delay, Some(4 * MS));
}
