//! `poll_ready` is the inner service's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use std::future::Future;
use tollgate::clock::ManualClock;

use tower::{Layer, Service, ServiceExt};

use crate::support::{from, layer, send, single, Calls, Ok200, PEER};

/// Not ready on the first `not_ready` polls (waking the task), then as the
/// inner service; fails readiness when `fail` is set.
#[derive(Clone, Debug)]
struct Reluctant {
    calls: Calls,
    polls: Arc<AtomicUsize>,
    not_ready: usize,
    fail: bool,
}

impl Reluctant {
    fn new(not_ready: usize) -> Self {
        Self {
            calls: Calls::default(),
            polls: Arc::default(),
            not_ready,
            fail: false,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Overloaded;

impl<B> Service<Request<B>> for Reluctant {
    type Response = Response<Full<Bytes>>;
    type Error = Overloaded;
    type Future = std::future::Ready<Result<Self::Response, Overloaded>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Overloaded>> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst);
        if n < self.not_ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.fail {
            return Poll::Ready(Err(Overloaded));
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        self.calls.hit();
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    }
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[tokio::test]
async fn pending_inner_means_pending_layer() {
    let clock = ManualClock::new();
    let inner = Reluctant::new(2);
    let mut svc = layer(single("api", "3/minute"), &clock).layer(inner.clone());
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);

    assert!(Service::<Request<()>>::poll_ready(&mut svc, &mut cx).is_pending());
    assert!(Service::<Request<()>>::poll_ready(&mut svc, &mut cx).is_pending());
    assert!(matches!(
        Service::<Request<()>>::poll_ready(&mut svc, &mut cx),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(inner.polls.load(Ordering::SeqCst), 3, "each poll delegated");

    let reply = send(&mut svc, from(PEER)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(inner.calls.get(), 1);
}

#[tokio::test]
async fn readiness_does_not_charge_and_errors_pass_through() {
    let clock = ManualClock::new();
    let mut svc = layer(single("api", "1/minute"), &clock).layer(Reluctant::new(0));
    // Readiness many times over charges nothing: the request is still admitted.
    for _ in 0..5 {
        ServiceExt::<Request<()>>::ready(&mut svc)
            .await
            .expect("ready");
    }
    assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);

    let mut failing = Reluctant::new(1);
    failing.fail = true;
    let mut svc = layer(single("api", "1/minute"), &clock).layer(failing);
    let error = ServiceExt::<Request<()>>::ready(&mut svc)
        .await
        .expect_err("the inner error");
    assert_eq!(error, Overloaded);
}

#[tokio::test]
#[should_panic(expected = "polled after completion")]
async fn a_refusal_polled_again_panics_as_towers_futures_do() {
    let clock = ManualClock::new();
    let mut svc = layer(single("api", "1/minute"), &clock).layer(Ok200::default());
    assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);
    let mut refused = ServiceExt::<Request<()>>::ready(&mut svc)
        .await
        .expect("ready")
        .call(from(PEER));
    let mut cx = Context::from_waker(Waker::noop());
    let first = std::pin::Pin::new(&mut refused).poll(&mut cx);
    assert!(matches!(first, Poll::Ready(Ok(ref r)) if r.status() == StatusCode::TOO_MANY_REQUESTS));
    // Never left pending forever: a second poll is a caller's bug, told.
    let _ = std::pin::Pin::new(&mut refused).poll(&mut cx);
}
