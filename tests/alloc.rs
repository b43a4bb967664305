//! The hot path allocates nothing: an allowed request for a key the
//! in-memory store already tracks, through the store and through the layer;
//! and a refusal allocates only the parts of its answer.
//!
//! A counting global allocator counts the allocations of the test's own
//! thread while the checks run.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator. The library itself forbids unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::{Request, Response, StatusCode};
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::{ApiKeyOrIp, ClientIp, Key, PeerAddr};
use tollgate::store::{Charge, Checked, MemoryStore, Store};
use tollgate::{Limit, Plans, Quota, RateLimitLayer};
use tower::{Layer, Service};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn plenty() -> Quota {
    Quota::per_second(1_000_000_000).expect("quota")
}

#[test]
fn a_known_key_is_checked_without_allocating_for_every_algorithm() {
    let kinds = [
        AlgorithmKind::Gcra,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::SlidingWindow,
    ];
    for kind in kinds {
        let store = MemoryStore::new();
        let handle = store.bind(&Limit::new("hot", plenty(), kind).expect("limit"));
        let api_key = Key::borrowed(b"ak_0123456789abcdef", "test").expect("key");
        let ip = Key::ip("192.0.2.1".parse().expect("ip"));
        for key in [&api_key, &ip] {
            // The first check inserts the key: that may allocate.
            let charge = [Charge::new(&handle, key, 1)];
            assert!(
                matches!(store.check(&charge), Checked::Ready(Ok(v)) if v.decision.is_allowed())
            );
            let n = allocations_during(|| {
                for _ in 0..1000 {
                    let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
                        panic!("memory store answers at once");
                    };
                    assert!(verdict.decision.is_allowed());
                }
            });
            assert_eq!(n, 0, "{kind} allocated on the hot path");
        }
    }
}

#[test]
fn a_concurrency_permit_is_taken_and_released_without_allocating() {
    let store = MemoryStore::new();
    let quota = Quota::concurrent(1000).expect("quota");
    let handle = store.bind(&Limit::new("c", quota, AlgorithmKind::Gcra).expect("limit"));
    let key = Key::ip("192.0.2.9".parse().expect("ip"));
    let charge = [Charge::new(&handle, &key, 1)];
    assert!(matches!(store.check(&charge), Checked::Ready(Ok(v)) if v.permits.len() == 1));
    let n = allocations_during(|| {
        for _ in 0..1000 {
            let Checked::Ready(Ok(verdict)) = store.check(&charge) else {
                panic!("memory store answers at once");
            };
            assert_eq!(verdict.permits.len(), 1);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn a_multi_limit_check_of_known_keys_does_not_allocate() {
    let store = MemoryStore::new();
    let minute = store.bind(&Limit::new("m", plenty(), AlgorithmKind::Gcra).expect("limit"));
    let day = store.bind(&Limit::new("d", plenty(), AlgorithmKind::SlidingWindow).expect("limit"));
    let key = Key::borrowed(b"client", "test").expect("key");
    let ip = Key::ip("2001:db8::1".parse().expect("ip"));
    let charges = [
        Charge::new(&minute, &key, 1),
        Charge::new(&day, &key, 1),
        Charge::new(&minute, &ip, 1),
    ];
    assert!(matches!(store.check(&charges), Checked::Ready(Ok(_))));
    let n = allocations_during(|| {
        for _ in 0..1000 {
            assert!(
                matches!(store.check(&charges), Checked::Ready(Ok(v)) if v.decision.is_allowed())
            );
        }
    });
    assert_eq!(n, 0);
}

fn poll_now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("not ready at once"),
    }
}

#[test]
fn an_allowed_request_through_the_layer_does_not_allocate() {
    let plans = Plans::builder()
        .tier("anonymous", "1000000/second")
        .tier("basic", "1000000/second; 1000000000/day")
        .build()
        .expect("plans");
    let layer = RateLimitLayer::builder(plans)
        .key(ApiKeyOrIp::new(|k: &str| {
            (k == "basic-key").then_some("basic")
        }))
        .also(
            "per-ip",
            Plans::single("per-ip", "1000000/second").expect("plans"),
            ClientIp::new(),
        )
        .build()
        .expect("layer");
    let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    }));
    let request = |api_key: Option<&'static str>| {
        let mut builder = Request::builder();
        if let Some(k) = api_key {
            builder = builder.header("x-api-key", k);
        }
        let mut request = builder.body(()).expect("request");
        request
            .extensions_mut()
            .insert(PeerAddr(SocketAddr::from(([198, 51, 100, 9], 1234))));
        request
    };
    for api_key in [None, Some("basic-key")] {
        let first = poll_now(service.call(request(api_key))).expect("infallible");
        assert_eq!(first.status(), StatusCode::OK);
        let requests: Vec<_> = (0..200).map(|_| request(api_key)).collect();
        let mut responses = Vec::with_capacity(200);
        let n = allocations_during(|| {
            for r in requests {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(service.poll_ready(&mut cx).is_ready());
                responses.push(poll_now(service.call(r)).expect("infallible"));
            }
        });
        assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
        assert_eq!(n, 0, "allowed request allocated (api key: {api_key:?})");
    }
}

/// A refusal allocates only what its answer is made of: the header map (its
/// index and its entries), and one buffer holding both the body and the
/// `RateLimit` value with that buffer's shared count. The response future
/// holds the answer itself, unboxed.
#[test]
fn a_refusal_allocates_four_times() {
    let layer = RateLimitLayer::builder(Plans::single("tight", "1/hour").expect("plans"))
        .key(ClientIp::new())
        .build()
        .expect("layer");
    let mut service = layer.layer(tower::service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
    }));
    let request = || {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(PeerAddr(SocketAddr::from(([198, 51, 100, 9], 1234))));
        request
    };
    let first = poll_now(service.call(request())).expect("infallible");
    assert_eq!(first.status(), StatusCode::OK);
    // The first refusal also makes the tables every later one shares.
    let warm = poll_now(service.call(request())).expect("infallible");
    assert_eq!(warm.status(), StatusCode::TOO_MANY_REQUESTS);
    let requests: Vec<_> = (0..100).map(|_| request()).collect();
    let mut responses = Vec::with_capacity(100);
    let n = allocations_during(|| {
        for r in requests {
            let mut cx = Context::from_waker(Waker::noop());
            assert!(service.poll_ready(&mut cx).is_ready());
            responses.push(poll_now(service.call(r)).expect("infallible"));
        }
    });
    assert!(responses
        .iter()
        .all(|r| r.status() == StatusCode::TOO_MANY_REQUESTS));
    let first = &responses[0];
    assert_eq!(first.headers()["ratelimit"], "\"tight\";r=0;t=3600");
    assert_eq!(first.headers()["retry-after"], "3600");
    assert_eq!(n, 4 * 100, "allocations for 100 refusals");
}
