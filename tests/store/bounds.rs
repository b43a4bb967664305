//! Bounded memory: at most `max_keys` keys, idle keys evicted by themselves.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::{Identity, Key, KeyFn, RequestInfo};
use tollgate::store::{Charge, MemoryStore, Store};
use tollgate::{Plans, RateLimitLayer, StoreError};
use tower::{Layer, ServiceExt};

use crate::support::{check, decide, ip, key, rate, room, store, Spec, ALL_SPECS, RATE_KINDS};

fn client(i: usize) -> Key<'static> {
    key(&format!("client-{i}"))
}

/// 1000 keys each at the end of a 1/minute quota fill a 1000-key store: a
/// new key is refused with `Full` (the limited keys keep their counters),
/// until the quota's period has passed and a sweep, run by the store
/// itself, forgets the now idle keys.
#[test]
fn a_full_store_refuses_new_keys_until_idle_ones_are_swept_by_themselves() {
    // Default sweeps (every 60 s), and sweeps only forced by a full store.
    for idle_sweep_every in [Duration::from_secs(60), Duration::from_secs(3_600)] {
        for kind in RATE_KINDS {
            let case = format!("{kind} sweeping every {idle_sweep_every:?}");
            let clock = ManualClock::new();
            let store = MemoryStore::builder()
                .clock(clock.clone())
                .max_keys(1_000)
                .idle_sweep_every(idle_sweep_every)
                .build();
            let limit = store.bind(&rate("per-client", "1/minute", kind));
            for i in 0..1_000 {
                let k = client(i);
                assert!(
                    decide(&store, &[Charge::new(&limit, &k, 1)]).is_allowed(),
                    "{case}"
                );
                assert!(
                    !decide(&store, &[Charge::new(&limit, &k, 1)]).is_allowed(),
                    "{case}"
                );
            }
            assert_eq!(store.len(), 1_000, "{case}");

            let newcomer = client(1_000);
            for _ in 0..3 {
                match check(&store, &[Charge::new(&limit, &newcomer, 1)]) {
                    Err(StoreError::Full { max_keys: 1_000 }) => {}
                    other => panic!("{case}: expected Full, got {other:?}"),
                }
            }
            clock.advance(Duration::from_millis(1_500));
            assert!(
                check(&store, &[Charge::new(&limit, &newcomer, 1)]).is_err(),
                "{case}"
            );
            assert_eq!(store.len(), 1_000, "{case}");
            // Known keys still get their own (limited) answers, not Full.
            let known = client(7);
            assert!(
                !decide(&store, &[Charge::new(&limit, &known, 1)]).is_allowed(),
                "{case}"
            );

            // Two minutes on, every key is idle even for the sliding window
            // (whose previous window still weighs during the next one).
            clock.advance(Duration::from_secs(120));
            assert!(
                decide(&store, &[Charge::new(&limit, &newcomer, 1)]).is_allowed(),
                "{case}"
            );
            assert_eq!(store.len(), 1, "{case}: the idle keys were forgotten");
            // A forgotten key starts afresh.
            assert!(
                decide(&store, &[Charge::new(&limit, &known, 1)]).is_allowed(),
                "{case}"
            );
            assert_eq!(store.len(), 2, "{case}");
        }
    }
}

/// 100 000 distinct keys on a 1000-key store, with the clock moving 1 ms
/// per request: the count never passes 1000, and every answer is either a
/// decision or `Full`.
#[test]
fn a_flood_of_distinct_keys_never_grows_the_store_past_its_bound() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .max_keys(1_000)
            .build();
        let limit = store.bind(&spec.limit("flood", 1));
        let (mut admitted, mut full) = (0, 0);
        for i in 0..100_000u32 {
            let [a, b, c, d] = i.to_be_bytes();
            let k = if i % 2 == 0 {
                ip(a | 10, b, c, d)
            } else {
                client(i as usize)
            };
            match check(&store, &[Charge::new(&limit, &k, 1)]) {
                Ok(verdict) => {
                    assert!(
                        verdict.decision.is_allowed(),
                        "{spec:?}: a new key has room"
                    );
                    admitted += 1;
                }
                Err(StoreError::Full { max_keys }) => {
                    assert_eq!(max_keys, 1_000);
                    full += 1;
                }
                Err(other) => panic!("{spec:?}: {other:?}"),
            }
            assert!(store.len() <= 1_000, "{spec:?}: {} keys", store.len());
            clock.advance(Duration::from_millis(1));
        }
        assert!(admitted >= 1_000, "{spec:?}: {admitted} admitted");
        if spec != Spec::Concurrent {
            assert!(full > 0, "{spec:?}: a 1/minute key stays busy for a minute");
        }
    }
}

/// A key forgotten while idle answers exactly as one never seen.
#[test]
fn an_evicted_key_answers_as_a_fresh_key() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .max_keys(4)
            .build();
        let limit = store.bind(&spec.limit("evict", 4));
        let (old, other, fresh) = (key("old"), key("other"), key("fresh"));
        let held = decide(&store, &[Charge::new(&limit, &old, 3)]);
        assert!(held.is_allowed());
        assert!(decide(&store, &[Charge::new(&limit, &other, 4)]).is_allowed());
        clock.advance(Duration::from_secs(121));
        // The next new key runs the periodic sweep, which forgets both idle keys.
        let third = key("third");
        assert!(decide(&store, &[Charge::new(&limit, &third, 1)]).is_allowed());
        let stranger = key("stranger");
        assert!(decide(&store, &[Charge::new(&limit, &stranger, 1)]).is_allowed());
        assert_eq!(store.len(), 2, "{spec:?}: old and other were evicted");

        // Permits are kept, so a concurrency limit fills up like the others.
        let mut held = Vec::new();
        for cost in [2, 2, 1, 1, 5] {
            let a = check(&store, &[Charge::new(&limit, &old, cost)]).expect("answered");
            let b = check(&store, &[Charge::new(&limit, &fresh, cost)]).expect("answered");
            assert_eq!(a.decision, b.decision, "{spec:?} cost {cost}");
            assert_eq!(a.permits.len(), b.permits.len());
            held.extend([a, b]);
            clock.advance(Duration::from_millis(250));
        }
        assert_eq!(store.len(), 4);
    }
}

#[test]
fn dropping_every_handle_of_a_limit_gives_its_keys_back() {
    let clock = ManualClock::new();
    let store = store(&clock);
    let kept = store.bind(&rate("kept", "1/minute", AlgorithmKind::Gcra));
    let dropped = store.bind(&rate("dropped", "1/minute", AlgorithmKind::SlidingLog));
    let dropped_clone = dropped.clone();
    for i in 0..10 {
        let k = client(i);
        assert!(decide(&store, &[Charge::new(&dropped, &k, 1)]).is_allowed());
        if i < 4 {
            assert!(decide(&store, &[Charge::new(&kept, &k, 1)]).is_allowed());
        }
    }
    assert_eq!(store.len(), 14);
    drop(dropped);
    assert_eq!(store.len(), 14, "a clone still holds the limit");
    drop(dropped_clone);
    assert_eq!(store.len(), 4);
    assert_eq!(
        room(&store, &kept, &client(0), 1),
        0,
        "the other limit keeps its counters"
    );
    drop(kept);
    assert!(store.is_empty());
}

#[test]
fn dropping_the_layer_gives_its_keys_back() {
    let clock = ManualClock::new();
    let store = store(&clock);
    let plans = Plans::single("per-path", "1/minute; 2 concurrent").expect("plans");
    let by_path =
        KeyFn::new(|req: &RequestInfo<'_>| Key::owned(req.uri().path(), "path").map(Identity::new));
    let layer = RateLimitLayer::builder(plans)
        .store(store.clone())
        .key(by_path)
        .build()
        .expect("layer");
    let service = layer.layer(tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
    }));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let send = |path: &str| {
        let request = Request::builder().uri(path).body(()).expect("request");
        runtime
            .block_on(service.clone().oneshot(request))
            .expect("infallible")
            .status()
    };
    for path in ["/a", "/b", "/c"] {
        assert_eq!(send(path), StatusCode::OK);
    }
    assert_eq!(send("/a"), StatusCode::TOO_MANY_REQUESTS);
    // Two limits (rate and concurrency) for each of three paths.
    assert_eq!(store.len(), 6);
    drop(layer);
    assert_eq!(store.len(), 6, "the service still holds the limits");
    drop(service);
    assert!(store.is_empty(), "{} keys left", store.len());
}
