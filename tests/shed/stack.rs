//! Rate limits and load shedding in one stack: the rate limit outside, so a
//! request it refuses never takes a place in the queue.

use http::{Request, StatusCode};
use tollgate::clock::ManualClock;
use tollgate::key::HeaderKey;
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimitLayer};
use tower::ServiceBuilder;

use crate::support::{builder, call, load, pending, ready, whole, Gated};

#[test]
fn a_request_refused_by_its_rate_limit_never_queues() {
    let clock = ManualClock::new();
    let plans = Plans::single("per-key", "2/minute").expect("plans");
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let rate = RateLimitLayer::builder(plans)
        .store(store)
        .key(HeaderKey::new("x-api-key"))
        .build()
        .expect("layer");
    let shed = builder(1, &clock).max_queue(4).build().expect("layer");
    let inner = Gated::default();
    let mut svc = ServiceBuilder::new()
        .layer(rate)
        .layer(shed.clone())
        .service(inner.clone());
    let from = |key: &str| {
        Request::builder()
            .header("x-api-key", key)
            .header("x-priority", "normal")
            .body(())
            .expect("request")
    };
    let mut a = call(&mut svc, from("k1"));
    pending(&mut a);
    let mut b = call(&mut svc, from("k1"));
    pending(&mut b);
    assert_eq!(load(&shed.snapshot()), (1, 1));
    // k1's third request is over its rate: 429, and the queue is untouched.
    let refused = whole(ready(&mut call(&mut svc, from("k1"))));
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(load(&shed.snapshot()), (1, 1));
    // Another key within its rate queues behind them.
    let mut c = call(&mut svc, from("k2"));
    pending(&mut c);
    assert_eq!(load(&shed.snapshot()), (1, 2));
    assert_eq!(inner.calls.get(), 1);
}
