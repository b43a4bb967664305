//! Priorities: higher served first, lower displaced from a full queue,
//! capacity reserved for the highest; priorities from tiers.

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{HeaderKey, Key, KeyExtractor, RequestInfo, TierName};
use tollgate::shed::{LoadShedLayer, Priority, ShedReason};

use crate::support::{assert_shed, builder, call, gated, load, pending, ready, req};

#[test]
fn the_highest_priority_waiting_is_served_first() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(8).build().expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut running = call(&mut svc, req(Priority::Normal));
    pending(&mut running);
    let mut low = call(&mut svc, req(Priority::Low));
    let mut high = call(&mut svc, req(Priority::High));
    let mut normal = call(&mut svc, req(Priority::Normal));
    let mut critical = call(&mut svc, req(Priority::Critical));
    for f in [&mut low, &mut high, &mut normal, &mut critical] {
        pending(f);
    }
    let mut order = Vec::new();
    let mut waiting = vec![
        ("low", low),
        ("high", high),
        ("normal", normal),
        ("critical", critical),
    ];
    while !waiting.is_empty() {
        inner.finish(StatusCode::OK);
        drop(ready(&mut running));
        let calls = inner.calls.get();
        let at = waiting
            .iter_mut()
            .position(|(_, f)| {
                pending(f);
                inner.calls.get() > calls
            })
            .expect("one waiter ran");
        let (name, f) = waiting.remove(at);
        order.push(name);
        running = f;
    }
    assert_eq!(order, ["critical", "high", "normal", "low"]);
}

#[test]
fn a_full_queue_displaces_the_oldest_of_a_lower_priority() {
    let clock = ManualClock::new();
    let layer = builder(1, &clock).max_queue(2).build().expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let mut running = call(&mut svc, req(Priority::Normal));
    pending(&mut running);
    let mut low1 = call(&mut svc, req(Priority::Low));
    pending(&mut low1);
    let mut low2 = call(&mut svc, req(Priority::Low));
    pending(&mut low2);

    let mut high = call(&mut svc, req(Priority::High));
    pending(&mut high);
    let displaced = assert_shed(ready(&mut low1), "displaced");
    assert_eq!(displaced.json()["priority"], "low");
    pending(&mut low2);

    // Same priority as the lowest waiting: nobody to displace.
    let shed = assert_shed(ready(&mut call(&mut svc, req(Priority::Low))), "queue_full");
    assert_eq!(shed.json()["priority"], "low");
    // A higher one displaces the other low waiter.
    let mut critical = call(&mut svc, req(Priority::Critical));
    pending(&mut critical);
    assert_shed(ready(&mut low2), "displaced");
    // Now only higher priorities wait: a normal request is shed.
    assert_shed(
        ready(&mut call(&mut svc, req(Priority::Normal))),
        "queue_full",
    );

    let s = layer.snapshot();
    assert_eq!(load(&s), (1, 2));
    assert_eq!(s.shed.reason(ShedReason::Displaced), 2);
    assert_eq!(s.shed.reason(ShedReason::QueueFull), 2);
    assert_eq!(s.shed.priority(Priority::Low), 3);
    assert_eq!(s.shed.priority(Priority::Normal), 1);
    assert_eq!(s.shed.priority(Priority::High), 0);
    assert_eq!(s.shed.total(), 4);
}

#[test]
fn a_reserved_share_is_kept_for_the_highest_priority() {
    let clock = ManualClock::new();
    let layer = builder(10, &clock)
        .max_queue(4)
        .reserve(Priority::Critical, 20)
        .build()
        .expect("layer");
    let (mut svc, inner) = gated(&layer);
    let mut highs: Vec<_> = (0..8)
        .map(|_| call(&mut svc, req(Priority::High)))
        .collect();
    for f in &mut highs {
        pending(f);
    }
    assert_eq!(load(&layer.snapshot()), (8, 0));
    // 80% is all the lower priorities may use.
    let mut ninth = call(&mut svc, req(Priority::High));
    pending(&mut ninth);
    assert_eq!(load(&layer.snapshot()), (8, 1));
    // The reserved 20% admits critical requests at once.
    let mut c1 = call(&mut svc, req(Priority::Critical));
    let mut c2 = call(&mut svc, req(Priority::Critical));
    pending(&mut c1);
    pending(&mut c2);
    assert_eq!(load(&layer.snapshot()), (10, 1));
    let mut c3 = call(&mut svc, req(Priority::Critical));
    pending(&mut c3);
    assert_eq!(load(&layer.snapshot()), (10, 2));
    assert_eq!(inner.calls.get(), 10);

    // A place frees: the critical waiter takes it.
    drop(highs.pop());
    assert_eq!(load(&layer.snapshot()), (10, 1));
    pending(&mut c3);
    assert_eq!(inner.calls.get(), 11);
    // Another: 9 in flight is above the lower priorities' 8, so the high
    // waiter still waits.
    drop(highs.pop());
    pending(&mut ninth);
    assert_eq!(load(&layer.snapshot()), (9, 1));
    drop(c1);
    drop(c2);
    pending(&mut ninth);
    assert_eq!(load(&layer.snapshot()), (8, 0), "now under 80%: it runs");
    assert_eq!(inner.calls.get(), 12);
}

#[test]
fn priorities_follow_the_tier_an_extractor_names() {
    let extractor = HeaderKey::new("x-api-key").tiered(|_: &RequestInfo<'_>, key: &Key<'_>| {
        match key.as_bytes() {
            b"admin-key" => Some(TierName::from("admin")),
            b"premium-key" => Some(TierName::from("premium")),
            _ => None,
        }
    });
    let clock = ManualClock::new();
    let layer = LoadShedLayer::builder(1)
        .clock(clock.clone())
        .max_queue(1)
        .priority_from_tier(extractor, |tier| match tier {
            Some("admin") => Priority::Critical,
            Some("premium") => Priority::High,
            _ => Priority::Low,
        })
        .build()
        .expect("layer");
    let (mut svc, _inner) = gated(&layer);
    let with_key = |key: &str| {
        http::Request::builder()
            .header("x-api-key", key)
            .body(())
            .expect("request")
    };
    let mut running = call(&mut svc, with_key("anonymous-key"));
    pending(&mut running);
    let mut premium = call(&mut svc, with_key("premium-key"));
    pending(&mut premium);
    let mut admin = call(&mut svc, with_key("admin-key"));
    pending(&mut admin);
    let displaced = assert_shed(ready(&mut premium), "displaced");
    assert_eq!(displaced.json()["priority"], "high");
    // No key at all: the map's `None`, here the lowest priority.
    let shed = assert_shed(
        ready(&mut call(&mut svc, http::Request::new(()))),
        "queue_full",
    );
    assert_eq!(shed.json()["priority"], "low");
}
