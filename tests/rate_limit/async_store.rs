//! A store that answers later (like a remote one): answers go through the
//! layer's waiting path, the inner service is called once per admitted
//! request, and a failing store is answered by the failure policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Semaphore;
use tollgate::clock::ManualClock;
use tollgate::store::{Charge, Checked, MemoryHandle, MemoryStore, Receipt, Store, Verdict};
use tollgate::{Limit, OnStoreError, RateLimitLayer, StoreError};
use tower::Layer;

use crate::sf;
use crate::support::{
    call, collect, from, send, single, statuses, store, Calls, Ok200, TestStore, PEER,
};

type Answer = Pin<Box<dyn Future<Output = Result<Verdict, StoreError>> + Send>>;

/// Wraps a memory store; every check answers `Checked::Pending`, after a
/// yield, or after the gate lets it through when the gate is closed.
#[derive(Clone)]
struct SlowStore {
    memory: TestStore,
    down: Arc<AtomicBool>,
    checks: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
}

impl SlowStore {
    fn new(clock: &ManualClock) -> Self {
        Self {
            memory: store(clock),
            down: Arc::default(),
            checks: Arc::default(),
            answered: Arc::default(),
            gate: None,
        }
    }

    fn gated(clock: &ManualClock, gate: &Arc<Semaphore>) -> Self {
        Self {
            gate: Some(Arc::clone(gate)),
            ..Self::new(clock)
        }
    }

    fn answer(&self, result: Result<Verdict, StoreError>) -> Checked<Answer> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.clone();
        let answered = Arc::clone(&self.answered);
        Checked::Pending(Box::pin(async move {
            match gate {
                Some(gate) => gate.acquire().await.expect("gate open").forget(),
                None => tokio::task::yield_now().await,
            }
            answered.fetch_add(1, Ordering::SeqCst);
            result
        }))
    }

    fn now(checked: Checked<<TestStore as Store>::Future>) -> Result<Verdict, StoreError> {
        match checked {
            Checked::Ready(result) => result,
            Checked::Pending(never) => match never {},
        }
    }
}

impl Store for SlowStore {
    type Handle = MemoryHandle;
    type Future = Answer;

    fn bind(&self, limit: &Limit) -> MemoryHandle {
        self.memory.bind(limit)
    }

    fn check(&self, charges: &[Charge<'_, MemoryHandle>]) -> Checked<Answer> {
        if self.down.load(Ordering::SeqCst) {
            return self.answer(Err(StoreError::Unavailable("connection refused".into())));
        }
        self.answer(Self::now(self.memory.check(charges)))
    }

    fn peek(&self, charges: &[Charge<'_, MemoryHandle>]) -> Checked<Answer> {
        if self.down.load(Ordering::SeqCst) {
            return self.answer(Err(StoreError::Unavailable("connection refused".into())));
        }
        self.answer(Self::now(self.memory.peek(charges)))
    }

    fn refund(&self, charges: &[Charge<'_, MemoryHandle>], receipt: Receipt) {
        self.memory.refund(charges, receipt);
    }
}

#[tokio::test]
async fn answers_come_through_the_waiting_path() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("api", "3/minute"))
        .store(slow.clone())
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));

    for remaining in [2, 1, 0] {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"ok");
        assert_eq!(
            reply.header("ratelimit"),
            // The next unit comes 20 s after each (GCRA, 3/minute).
            Some(format!("\"api\";r={remaining};t=20").as_str())
        );
    }
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(refused.json()["policy"], "api");
    sf::check_fields(&refused.headers).expect("valid fields");

    assert_eq!(slow.checks.load(Ordering::SeqCst), 4);
    assert_eq!(
        slow.answered.load(Ordering::SeqCst),
        4,
        "all answered later"
    );
    assert_eq!(calls.get(), 3, "once per admitted request");

    clock.advance(Duration::from_secs(20));
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 429]);
    assert_eq!(calls.get(), 4);
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[tokio::test]
async fn inner_service_waits_for_the_store() {
    let clock = ManualClock::new();
    let gate = Arc::new(Semaphore::new(0));
    let slow = SlowStore::gated(&clock, &gate);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("api", "1/minute"))
        .store(slow.clone())
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));

    let mut first = call(&mut svc, from(PEER)).await;
    let mut second = call(&mut svc, from(PEER)).await;
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut first).poll(&mut cx).is_pending());
    assert!(Pin::new(&mut second).poll(&mut cx).is_pending());
    assert_eq!(calls.get(), 0, "not called before the store answers");
    assert_eq!(slow.checks.load(Ordering::SeqCst), 2);

    gate.add_permits(2);
    let first = collect(first.await.expect("answers")).await;
    let second = collect(second.await.expect("answers")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn store_failure_is_503_by_default() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    slow.down.store(true, Ordering::SeqCst);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("api", "3/minute"))
        .store(slow.clone())
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    for _ in 0..3 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let body = reply.json();
        assert_eq!(body["status"], 503);
        assert!(body["detail"]
            .as_str()
            .expect("detail")
            .contains("connection refused"));
    }
    assert_eq!(calls.get(), 0);
    slow.down.store(false, Ordering::SeqCst);
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 429]);
}

#[tokio::test]
async fn store_failure_passes_with_fail_open() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    slow.down.store(true, Ordering::SeqCst);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("api", "1/minute"))
        .store(slow.clone())
        .on_store_error(OnStoreError::FailOpen)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    for _ in 0..3 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.has_no_rate_limit_fields());
    }
    assert_eq!(calls.get(), 3);
}

/// A layer over a memory store of one key, 3/minute, on a manual clock.
fn one_key_store() -> (ManualClock, Calls, RateLimitLayer<MemoryStore<ManualClock>>) {
    let clock = ManualClock::new();
    let full = MemoryStore::builder()
        .clock(clock.clone())
        .max_keys(1)
        .build();
    let layer = RateLimitLayer::builder(single("api", "3/minute"))
        .store(full)
        .build()
        .expect("layer");
    (clock, Calls::default(), layer)
}

#[tokio::test]
async fn a_full_memory_store_fails_closed_then_open() {
    let (clock, calls, layer) = one_key_store();
    let mut svc = layer.clone().layer(Ok200::new(&calls));
    // A client that came back (two requests) is more than lightly used:
    // the store does not forget it to make room.
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 200]);
    // The one slot is busy: a new client is refused, the known one is not.
    let other = send(&mut svc, from("198.51.100.3:1")).await;
    assert_eq!(other.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(other.header("retry-after"), Some("1"));
    assert_eq!(statuses(&mut svc, PEER, 1).await, [200]);

    // A layer failing open over the same store.
    let mut open = RateLimitLayer::builder(single("api", "3/minute"))
        .store(layer.store().clone())
        .on_store_error(OnStoreError::FailOpen)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut open, "198.51.100.3:1", 1).await, [200]);
    assert_eq!(calls.get(), 4);

    // Once the known client is idle again, a new client takes its place.
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        statuses(&mut svc, "198.51.100.3:1", 4).await,
        [200, 200, 200, 429]
    );
    assert_eq!(layer.store().len(), 1);
}

#[tokio::test]
async fn a_full_memory_store_forgets_a_client_seen_once_for_a_new_one() {
    let (_clock, calls, layer) = one_key_store();
    let mut svc = layer.clone().layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 1).await, [200]);
    // The known client used one unit of three: it is forgotten for room, and
    // the new client is served rather than refused for lack of room.
    assert_eq!(statuses(&mut svc, "198.51.100.3:1", 1).await, [200]);
    assert_eq!(layer.store().len(), 1);
    assert_eq!(layer.store().forgotten_under_pressure(), 1);
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn permits_from_the_waiting_path_last_as_long_as_the_body() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("gen", "1 concurrent"))
        .store(slow.clone())
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));

    let held = crate::support::respond(&mut svc, from(PEER)).await;
    assert_eq!(held.status(), StatusCode::OK);
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("retry-after"), Some("1"));

    // Reading the body to its end gives the slot back.
    let body = collect(held).await;
    assert_eq!(&body.body[..], b"ok");
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    assert_eq!(slow.answered.load(Ordering::SeqCst), 5);
    assert_eq!(calls.get(), 4);
}

#[tokio::test]
async fn a_shadow_tier_is_checked_again_without_it_on_the_waiting_path() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    let calls = Calls::default();
    let shadowed = tollgate::Plans::builder()
        .tier("new-limit", "1/minute")
        .mode("new-limit", tollgate::Mode::Shadow)
        .build()
        .expect("plans");
    let mut svc = RateLimitLayer::builder(shadowed)
        .store(slow.clone())
        .also(
            "per-ip",
            single("per-ip", "3/minute"),
            tollgate::key::PeerIp::new(),
        )
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 200]);
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["policy"], "per-ip");
    assert_eq!(calls.get(), 3);
    // Requests 2 to 4 were refused by the shadow limit, then checked again
    // without it: 1 + 2 * 3 checks, all answered later.
    assert_eq!(slow.checks.load(Ordering::SeqCst), 7);
    assert_eq!(slow.answered.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn peeking_waits_for_a_remote_store_and_charges_nothing() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    let calls = Calls::default();
    let layer = RateLimitLayer::builder(single("api", "2/minute"))
        .store(slow.clone())
        .build()
        .expect("layer");
    for _ in 0..3 {
        let peeked = layer.peek(&from(PEER)).await.expect("peek");
        assert_eq!(peeked.decision.remaining(), 1);
    }
    assert_eq!(slow.answered.load(Ordering::SeqCst), 3, "answered later");
    slow.down.store(true, Ordering::SeqCst);
    let error = layer.peek(&from(PEER)).await.expect_err("store down");
    assert!(matches!(error, tollgate::PeekError::Store(_)), "{error:?}");
    slow.down.store(false, Ordering::SeqCst);
    let mut svc = layer.layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 3).await, [200, 200, 429]);
}

#[tokio::test]
async fn refunds_settle_on_the_waiting_path_too() {
    let clock = ManualClock::new();
    let slow = SlowStore::new(&clock);
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(single("api", "1/minute"))
        .store(slow.clone())
        .refund_when(|status, _| status.is_success())
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    // Every answer is a success, so every charge comes back.
    assert_eq!(statuses(&mut svc, PEER, 5).await, [200; 5]);
    assert_eq!(slow.answered.load(Ordering::SeqCst), 5, "answered later");
    assert_eq!(calls.get(), 5);
}
