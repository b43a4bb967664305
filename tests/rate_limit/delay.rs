//! Delay mode through the layer, on paused Tokio time: the store reads the
//! same virtual clock the timers run on, so every instant is exact.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tollgate::clock::Clock;
use tollgate::key::{ClientIp, PeerAddr};
use tollgate::shed::LoadShedLayer;
use tollgate::store::MemoryStore;
use tollgate::{ConfigError, Plans, RateLimitLayer};
use tower::{Layer, Service, ServiceExt};

use crate::support::{addr, collect};

/// Tokio's clock (virtual when paused), read as nanoseconds from a second
/// after its start.
#[derive(Clone, Debug)]
struct TokioClock(Instant);

impl TokioClock {
    fn new() -> Self {
        Self(Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX);
        1_000_000_000 + elapsed
    }
}

/// When the inner service ran, in milliseconds after `start`.
#[derive(Clone)]
struct Log {
    start: Instant,
    calls: Arc<Mutex<Vec<u128>>>,
}

impl Log {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            calls: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<u128> {
        let mut calls = self.calls.lock().expect("log").clone();
        calls.sort_unstable();
        calls
    }

    /// The service that notes each call and answers 200 at once.
    fn service(
        &self,
    ) -> impl Service<
        Request<()>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        let log = self.clone();
        tower::service_fn(move |_request: Request<()>| {
            let log = log.clone();
            async move {
                let at = log.start.elapsed().as_millis();
                log.calls.lock().expect("log").push(at);
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        })
    }
}

fn search_layer(quota: &str) -> RateLimitLayer<MemoryStore<TokioClock>> {
    let store = MemoryStore::builder().clock(TokioClock::new()).build();
    RateLimitLayer::builder(Plans::single("search", quota).expect("plans"))
        .store(store)
        .key(ClientIp::new())
        .headers_on_allowed(true)
        .build()
        .expect("layer")
}

fn request(peer: &str) -> Request<()> {
    Request::builder()
        .uri("/api/search")
        .extension(PeerAddr(addr(peer)))
        .body(())
        .expect("request")
}

/// One request's fate: its status, when its answer came (ms after the
/// start), and its `Retry-After` and `RateLimit` fields.
struct Fate {
    status: StatusCode,
    at: u128,
    retry_after: Option<String>,
    ratelimit: Option<String>,
}

async fn send<S, B>(service: S, peer: &'static str, start: Instant) -> Fate
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service.oneshot(request(peer)).await.expect("infallible");
    let at = start.elapsed().as_millis();
    let reply = collect(response).await;
    Fate {
        status: reply.status,
        at,
        retry_after: reply.header("retry-after").map(str::to_owned),
        ratelimit: reply.header("ratelimit").map(str::to_owned),
    }
}

/// nginx `limit_req_zone ... rate=5r/s` with `burst=10` (no `nodelay`):
/// thirty requests at once from one client.
#[tokio::test(start_paused = true)]
async fn thirty_at_once_one_passes_ten_wait_their_turn_nineteen_are_refused() {
    let log = Log::new();
    let service = search_layer("5/second burst 1 queue 10").layer(log.service());
    let start = log.start;
    let fates = futures_join(
        (0..30)
            .map(|_| send(service.clone(), "203.0.113.7:40000", start))
            .collect(),
    )
    .await;

    let passed: Vec<&Fate> = fates
        .iter()
        .filter(|f| f.status == StatusCode::OK)
        .collect();
    let refused: Vec<&Fate> = fates
        .iter()
        .filter(|f| f.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!((passed.len(), refused.len()), (11, 19));
    // The inner service ran at once, then exactly every 200 ms of virtual time.
    let expected: Vec<u128> = (0..=10).map(|i| i * 200).collect();
    assert_eq!(log.calls(), expected);
    let mut answered: Vec<u128> = passed.iter().map(|f| f.at).collect();
    answered.sort_unstable();
    assert_eq!(answered, expected);
    // The refusals came at once, each telling when to come back.
    for fate in &refused {
        assert_eq!(fate.at, 0);
        assert_eq!(fate.retry_after.as_deref(), Some("1"));
    }
    // Delayed answers carry the fields computed when they were admitted:
    // nothing left, the next unit one interval (rounded up to 1 s) later.
    for fate in passed.iter().filter(|f| f.at > 0) {
        assert_eq!(fate.ratelimit.as_deref(), Some("\"search\";r=0;t=1"));
    }
}

/// `futures::future::join_all` without the dependency: spawn and await.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// A client that obeys `Retry-After` after a refusal is let in (queued).
#[tokio::test(start_paused = true)]
async fn a_client_obeying_retry_after_is_not_refused_again() {
    let log = Log::new();
    let service = search_layer("5/second burst 1 queue 10").layer(log.service());
    let start = log.start;
    let queued: Vec<_> = (0..11)
        .map(|_| tokio::spawn(send(service.clone(), "203.0.113.7:40000", start)))
        .collect();
    tokio::task::yield_now().await;
    let refused = send(service.clone(), "203.0.113.7:40000", start).await;
    assert_eq!(
        (refused.status, refused.at),
        (StatusCode::TOO_MANY_REQUESTS, 0)
    );
    let wait: u64 = refused
        .retry_after
        .as_deref()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = send(service.clone(), "203.0.113.7:40000", start).await;
    assert_eq!(again.status, StatusCode::OK);
    // Back after 1 s, it waited for the place after the ten queued: 2200 ms.
    assert_eq!(again.at, 2_200);
    for waiter in queued {
        assert_eq!(waiter.await.expect("task").status, StatusCode::OK);
    }
}

/// A waiter that leaves gives its place back only when no one is behind it.
#[tokio::test(start_paused = true)]
async fn waiters_that_leave_give_back_the_last_place_only() {
    let log = Log::new();
    let service = search_layer("5/second burst 1 queue 10").layer(log.service());
    let start = log.start;
    let peer = "198.51.100.9:1";
    assert_eq!(
        send(service.clone(), peer, start).await.status,
        StatusCode::OK
    );
    let second = tokio::spawn(send(service.clone(), peer, start)); // 200 ms
    let third = tokio::spawn(send(service.clone(), peer, start)); // 400 ms
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The third leaves first: its place is the last one, so it comes back.
    third.abort();
    assert!(third.await.is_err());
    let fourth = tokio::spawn(send(service.clone(), peer, start));
    tokio::task::yield_now().await;
    // The second leaves with the fourth behind it: its place stays taken.
    tokio::time::sleep(Duration::from_millis(50)).await;
    second.abort();
    assert!(second.await.is_err());
    let fifth = tokio::spawn(send(service.clone(), peer, start));
    let fourth = fourth.await.expect("task");
    let fifth = fifth.await.expect("task");
    assert_eq!(fourth.status, StatusCode::OK);
    // The fourth took the third's returned place (400 ms), not 600 ms.
    assert_eq!(fourth.at, 400);
    // The fifth is behind the fourth; the second's place was kept.
    assert_eq!(fifth.at, 600);
    assert_eq!(log.calls(), vec![0, 400, 600]);
}

/// A waiting request holds no place of a `LoadShedLayer` inside.
#[tokio::test(start_paused = true)]
async fn a_waiter_holds_no_load_shedding_place() {
    let log = Log::new();
    let shed = LoadShedLayer::builder(1).build().expect("shed");
    let service = search_layer("5/second burst 1 queue 10").layer(shed.layer(log.service()));
    let start = log.start;
    let waiting_client = "203.0.113.7:1";
    assert_eq!(
        send(service.clone(), waiting_client, start).await.status,
        StatusCode::OK
    );
    let waiter = tokio::spawn(send(service.clone(), waiting_client, start));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Another client passes at once while the waiter waits: the only place
    // is free.
    let other = send(service.clone(), "192.0.2.44:1", start).await;
    assert_eq!((other.status, other.at), (StatusCode::OK, 100));
    let waiter = waiter.await.expect("task");
    assert_eq!((waiter.status, waiter.at), (StatusCode::OK, 200));
}

/// A window or concurrency limit cannot share a layer with a queue.
#[test]
fn a_queue_beside_a_window_or_a_concurrency_limit_is_refused_at_build() {
    let per_key = Plans::single("per-key", "2 concurrent").expect("plans");
    let built =
        RateLimitLayer::builder(Plans::single("search", "5/s burst 1 queue 10").expect("plans"))
            .also("per-key", per_key, ClientIp::new())
            .build();
    match built {
        Err(ConfigError::DelayBeside {
            queued,
            other,
            kind,
        }) => {
            assert_eq!(
                (queued.as_str(), other.as_str(), kind),
                ("search", "per-key", "concurrency")
            );
        }
        other => panic!("expected DelayBeside, got {other:?}"),
    }
    let window = Plans::builder()
        .algorithm(tollgate::algorithm::AlgorithmKind::FixedWindow)
        .tier("search", "5/second queue 10")
        .build();
    assert!(matches!(window, Err(ConfigError::QueueNeedsGcra { .. })));
}

/// A waiter dropped before it was ever polled gives its place back too.
#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_unpolled_gives_its_place_back() {
    let log = Log::new();
    let mut service = search_layer("5/second burst 1 queue 10").layer(log.service());
    let start = log.start;
    let peer = "198.51.100.20:1";
    assert_eq!(
        send(service.clone(), peer, start).await.status,
        StatusCode::OK
    );
    for _ in 0..3 {
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .expect("ready");
        drop(service.call(request(peer)));
    }
    // Each left at once: the next one still gets the first waiting place.
    let next = send(service.clone(), peer, start).await;
    assert_eq!((next.status, next.at), (StatusCode::OK, 200));
    assert_eq!(log.calls(), vec![0, 200]);
}

/// In shadow mode a delay changes no answer: the request passes at once.
#[tokio::test(start_paused = true)]
async fn shadow_mode_passes_at_once_what_it_would_delay() {
    let log = Log::new();
    let store = MemoryStore::builder().clock(TokioClock::new()).build();
    let layer = RateLimitLayer::builder(
        Plans::single("search", "5/second burst 1 queue 10").expect("plans"),
    )
    .store(store)
    .key(ClientIp::new())
    .shadow(true)
    .build()
    .expect("layer");
    let service = layer.layer(log.service());
    let start = log.start;
    for _ in 0..3 {
        let fate = send(service.clone(), "203.0.113.9:1", start).await;
        assert_eq!((fate.status, fate.at), (StatusCode::OK, 0));
    }
    assert_eq!(log.calls(), vec![0, 0, 0]);
}
