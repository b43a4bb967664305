//! A concurrency permit lasts as long as the response body: held while the
//! body is unread, released when it ends or is dropped.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tollgate::clock::ManualClock;
use tower::{Layer, Service};

use crate::sf;
use crate::support::{builder, call, from, layer, respond, send, single, Calls, PEER};

/// A body streaming what its sender sends; it ends when the sender is dropped.
#[derive(Debug)]
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
    }
}

/// Answers with a streaming body whose first chunk is already sent; keeps
/// each body's sender so the test decides when the body ends.
#[derive(Clone, Debug, Default)]
struct Streamer {
    calls: Calls,
    senders: Arc<Mutex<Vec<mpsc::Sender<Bytes>>>>,
}

impl Streamer {
    /// Ends every body sent so far.
    fn end_all(&self) {
        self.senders.lock().expect("senders lock").clear();
    }
}

impl<B> Service<Request<B>> for Streamer {
    type Response = Response<ChannelBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<ChannelBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        self.calls.hit();
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Bytes::from_static(b"hello"))
            .expect("room for the first chunk");
        self.senders.lock().expect("senders lock").push(tx);
        ready(Ok(Response::new(ChannelBody { rx })))
    }
}

/// Sends one request and drops the response unread: a streamed body may
/// never end, so reading it is the test's business.
async fn status<S, B>(svc: &mut S, peer: &str) -> u16
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let response = respond(svc, from(peer)).await;
    response.status().as_u16()
}

#[tokio::test]
async fn permit_is_held_until_the_body_ends() {
    let clock = ManualClock::new();
    let inner = Streamer::default();
    let mut svc = layer(single("gen", "1 concurrent"), &clock).layer(inner.clone());

    let mut first = respond(&mut svc, from(PEER)).await;
    assert_eq!(first.status(), StatusCode::OK);

    // The first response is in hand, its body unread: the slot is taken.
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["policy"], "gen");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let (policies, limits) = sf::check_fields(&refused.headers).expect("valid fields");
    let policy = &policies.expect("policy field")[0];
    assert!(policy.concurrent);
    assert_eq!((policy.q, policy.w), (1, None));
    assert_eq!(limits.expect("ratelimit field")[0].r, 0);

    // Another client is not affected.
    assert_eq!(status(&mut svc, "198.51.100.2:1").await, 200);

    // A frame read is not the end.
    let frame = first
        .body_mut()
        .frame()
        .await
        .expect("a frame")
        .expect("no error");
    assert_eq!(
        frame.into_data().expect("data"),
        Bytes::from_static(b"hello")
    );
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);

    // The body ends: the slot is free, though the response is still held.
    inner.end_all();
    let rest = first
        .body_mut()
        .collect()
        .await
        .expect("no error")
        .to_bytes();
    assert!(rest.is_empty());
    let next = respond(&mut svc, from(PEER)).await;
    assert_eq!(next.status(), StatusCode::OK);
    drop(first);

    // Holding `next` unread holds the slot; dropping it unread frees it.
    assert_eq!(status(&mut svc, PEER).await, 429);
    drop(next);
    let after_drop = respond(&mut svc, from(PEER)).await;
    assert_eq!(after_drop.status(), StatusCode::OK);
    let body = after_drop.into_body();
    assert_eq!(status(&mut svc, PEER).await, 429, "the body holds it");
    drop(body);
    assert_eq!(
        status(&mut svc, PEER).await,
        200,
        "dropping the body frees it"
    );
    assert_eq!(inner.calls.get(), 5);
}

#[tokio::test]
async fn dropping_the_response_future_frees_the_permit() {
    let clock = ManualClock::new();
    let inner = Streamer::default();
    let mut svc = layer(single("gen", "1 concurrent"), &clock).layer(inner.clone());

    let pending = call(&mut svc, from(PEER)).await;
    assert_eq!(status(&mut svc, PEER).await, 429);
    drop(pending);
    assert_eq!(status(&mut svc, PEER).await, 200);
    assert_eq!(inner.calls.get(), 2);
}

#[tokio::test]
async fn two_slots_admit_two_bodies_at_once() {
    let clock = ManualClock::new();
    let inner = Streamer::default();
    let mut svc = builder(single("gen", "2 concurrent"), &clock)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(inner.clone());
    let mut held = Vec::new();
    for remaining in [1, 0] {
        let response = respond(&mut svc, from(PEER)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let value = response
            .headers()
            .get("ratelimit")
            .expect("ratelimit field")
            .to_str()
            .expect("ascii");
        // No t: room comes back when a request finishes, at no known time.
        assert_eq!(value, format!("\"gen\";r={remaining}"));
        held.push(response);
    }
    assert_eq!(status(&mut svc, PEER).await, 429);
    held.pop();
    assert_eq!(status(&mut svc, PEER).await, 200);
}

#[tokio::test]
async fn a_concurrency_refusal_charges_no_rate() {
    let clock = ManualClock::new();
    let inner = Streamer::default();
    let plans = tollgate::Plans::single("gen", "5/minute; 1 concurrent").expect("valid plans");
    let mut svc = layer(plans, &clock).layer(inner.clone());

    let held = respond(&mut svc, from(PEER)).await;
    assert_eq!(held.status(), StatusCode::OK);
    for _ in 0..3 {
        let refused = send(&mut svc, from(PEER)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["policy"], "gen-concurrent");
    }
    drop(held);

    // The rate limit saw one request, not four: four more pass, one at a time.
    let mut admitted = 0;
    loop {
        let response = respond(&mut svc, from(PEER)).await;
        if response.status() != StatusCode::OK {
            let refused = crate::support::collect(response).await;
            assert_eq!(refused.json()["policy"], "gen-minute");
            break;
        }
        admitted += 1;
        assert!(admitted <= 5, "never refused");
    }
    assert_eq!(admitted, 4);
    assert_eq!(inner.calls.get(), 5);
}

#[tokio::test]
async fn a_held_permit_survives_a_sweep() {
    let clock = ManualClock::new();
    let inner = Streamer::default();
    let layer = layer(single("gen", "1 concurrent"), &clock);
    let mut svc = layer.layer(inner.clone());
    let held = respond(&mut svc, from(PEER)).await;
    assert_eq!(held.status(), StatusCode::OK);
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(layer.store().sweep(), 0, "a key in flight is not idle");
    assert_eq!(status(&mut svc, PEER).await, 429);
    drop(held);
    assert_eq!(layer.store().sweep(), 1, "idle once the permit is back");
    assert_eq!(status(&mut svc, PEER).await, 200);
}
