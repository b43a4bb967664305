//! Shared helpers: a layer on a manual clock, an inner service whose calls
//! the test finishes, a service that tracks its concurrency, and polling by
//! hand.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use tollgate::clock::ManualClock;
use tollgate::shed::{LoadShedBuilder, LoadShedLayer, Priority, Snapshot};
use tower::Service;

/// A builder on `clock`, with priorities read from `x-priority`.
pub(crate) fn builder(max_in_flight: usize, clock: &ManualClock) -> LoadShedBuilder {
    LoadShedLayer::builder(max_in_flight)
        .clock(clock.clone())
        .priority(
            |req| match req.headers().get("x-priority").map(|v| v.as_bytes()) {
                Some(b"low") => Priority::Low,
                Some(b"high") => Priority::High,
                Some(b"critical") => Priority::Critical,
                _ => Priority::Normal,
            },
        )
}

/// A request of `priority`.
pub(crate) fn req(priority: Priority) -> Request<()> {
    Request::builder()
        .uri("/work")
        .header("x-priority", priority.as_str())
        .body(())
        .expect("test request")
}

/// A request of normal priority.
pub(crate) fn normal() -> Request<()> {
    req(Priority::Normal)
}

/// Counts; clones share the count.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    pub(crate) fn add(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(crate) fn sub(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn raise_to(&self, n: usize) {
        self.0.fetch_max(n, Ordering::SeqCst);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An inner service whose calls wait until the test finishes them, each
/// with the status it chooses. Clones share the calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Gated {
    pub(crate) calls: Counter,
    pending: Arc<Mutex<VecDeque<oneshot::Sender<StatusCode>>>>,
}

impl Gated {
    /// Finishes the oldest unfinished call still awaited with `status`.
    pub(crate) fn finish(&self, status: StatusCode) {
        let mut pending = self.pending.lock().expect("pending lock");
        loop {
            let tx = pending.pop_front().expect("a call to finish");
            if tx.send(status).is_ok() {
                return;
            }
        }
    }

    /// Calls not finished yet (cancelled ones included).
    pub(crate) fn unfinished(&self) -> usize {
        self.pending.lock().expect("pending lock").len()
    }
}

impl<B> Service<Request<B>> for Gated {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        self.calls.add();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").push_back(tx);
        Box::pin(async move {
            let status = rx.await.unwrap_or(StatusCode::OK);
            let mut response = Response::new(Full::new(Bytes::from_static(b"done")));
            *response.status_mut() = status;
            Ok(response)
        })
    }
}

/// The layer's service over `inner`.
pub(crate) type Shed<S> = tollgate::shed::LoadShed<S>;

/// Calls `service` (always ready) and answers the future unpolled.
pub(crate) fn call<S>(service: &mut S, request: Request<()>) -> S::Future
where
    S: Service<Request<()>>,
    S::Error: Debug,
{
    let ready = service.poll_ready(&mut Context::from_waker(Waker::noop()));
    assert!(matches!(ready, Poll::Ready(Ok(()))), "service ready");
    service.call(request)
}

/// Counts how often it is woken.
#[derive(Debug, Default)]
pub(crate) struct Wakes(AtomicUsize);

impl Wakes {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `future` once with a waker that counts its wakes.
pub(crate) fn poll_with<F: Future + Unpin>(future: &mut F, wakes: &Arc<Wakes>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::clone(wakes));
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// Polls `future` once.
pub(crate) fn poll<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls `future` once and answers its output, which must be ready.
pub(crate) fn ready<F, T, E>(future: &mut F) -> T
where
    F: Future<Output = Result<T, E>> + Unpin,
    E: Debug,
{
    match poll(future) {
        Poll::Ready(result) => result.expect("service answers"),
        Poll::Pending => panic!("expected an answer, the future is pending"),
    }
}

/// Asserts that `future` is still pending.
pub(crate) fn pending<F: Future + Unpin>(future: &mut F) {
    assert!(
        poll(future).is_pending(),
        "expected the future to be pending"
    );
}

/// A response with its body read to the end.
#[derive(Debug)]
pub(crate) struct Whole {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Whole {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `reason` member of a shed answer.
    pub(crate) fn reason(&self) -> String {
        self.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Reads a response whole; the bodies here are ready at once.
pub(crate) fn whole<B>(response: Response<B>) -> Whole
where
    B: Body + Unpin,
    B::Error: Debug,
{
    let (parts, body) = response.into_parts();
    let body = match poll(&mut Box::pin(body.collect())) {
        Poll::Ready(Ok(collected)) => collected.to_bytes(),
        Poll::Ready(Err(e)) => panic!("body failed: {e:?}"),
        Poll::Pending => panic!("body not ready"),
    };
    Whole {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Asserts a 503 shed for `reason`, and answers it whole.
pub(crate) fn assert_shed<B>(response: Response<B>, reason: &str) -> Whole
where
    B: Body + Unpin,
    B::Error: Debug,
{
    let whole = whole(response);
    assert_eq!(whole.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(whole.reason(), reason);
    whole
}

/// The `(in_flight, queued)` of a snapshot.
pub(crate) fn load(snapshot: &Snapshot) -> (usize, usize) {
    (snapshot.in_flight, snapshot.queued)
}

/// A layer over a fresh [`Gated`] service.
pub(crate) fn gated(layer: &LoadShedLayer) -> (Shed<Gated>, Gated) {
    let inner = Gated::default();
    (tower::Layer::layer(layer, inner.clone()), inner)
}
