//! `refund_when` over the Redis store: charged on admission, given back
//! after the answer by `rollback.lua` on the receipt the check returned (or
//! to the lease the units came from, in leased mode). Refunds to Redis run
//! in a task of their own: the tests wait for them by polling Redis (a
//! counter, or `peek`) with a deadline, never by a fixed sleep.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use tokio::sync::Semaphore;
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::{HeaderKey, PeerAddr, PeerIp};
use tollgate::store::redis::TokenLease;
use tollgate::store::{Charge, RedisStore, Store};
use tollgate::{Plans, RateLimitLayer};
use tower::{Layer, Service, ServiceExt};

use crate::support::{
    check, concurrent, key, keys, peek, prefix, rate, redis_now, send, Cluster, Server,
};

const PEER: &str = "192.0.2.44:40000";

/// Every rate algorithm: each is refunded.
const RATES: [AlgorithmKind; 4] = [
    AlgorithmKind::Gcra,
    AlgorithmKind::FixedWindow,
    AlgorithmKind::SlidingWindow,
    AlgorithmKind::SlidingLog,
];

/// Answers the status `x-status` names (200 without it); a request marked
/// `x-hold` (see [`held`]), when there is a gate, first says it was called
/// (`arrived`), then waits for a permit of the gate.
#[derive(Clone, Default)]
struct Answers {
    gate: Option<Gate>,
}

#[derive(Clone)]
struct Gate {
    open: Arc<Semaphore>,
    arrived: Arc<Semaphore>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            open: Arc::new(Semaphore::new(0)),
            arrived: Arc::new(Semaphore::new(0)),
        }
    }

    /// Waits (at most 5 s) until `n` calls have reached the inner service.
    async fn arrivals(&self, n: u32) {
        let arrived = tokio::time::timeout(Duration::from_secs(5), self.arrived.acquire_many(n))
            .await
            .expect("the admitted requests reach the service within 5 s")
            .expect("semaphore open");
        arrived.forget();
    }

    fn let_through(&self, n: usize) {
        self.open.add_permits(n);
    }
}

impl Service<Request<()>> for Answers {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let status = request
            .headers()
            .get("x-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u16>().ok())
            .and_then(|v| StatusCode::from_u16(v).ok())
            .unwrap_or(StatusCode::OK);
        let gate = self
            .gate
            .clone()
            .filter(|_| request.headers().contains_key("x-hold"));
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.arrived.add_permits(1);
                gate.open.acquire().await.expect("gate open").forget();
            }
            let mut response = Response::new(Full::new(Bytes::from_static(b"answer")));
            *response.status_mut() = status;
            Ok(response)
        })
    }
}

fn answering(status: u16) -> Request<()> {
    Request::builder()
        .uri("/login")
        .header("x-status", status.to_string())
        .header("x-api-key", "client-7")
        .extension(PeerAddr(PEER.parse().expect("socket address")))
        .body(())
        .expect("request")
}

/// A request the gated service holds until the gate lets it through.
fn held(status: u16) -> Request<()> {
    let mut request = answering(status);
    request
        .headers_mut()
        .insert("x-hold", http::HeaderValue::from_static("1"));
    request
}

/// Calls `svc` with `request` in a task of its own; answers its status.
fn spawn_call<S, B>(svc: &S, request: Request<()>) -> tokio::task::JoinHandle<u16>
where
    S: Service<Request<()>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug + Send,
    B: Send + 'static,
{
    let mut svc = svc.clone();
    tokio::spawn(async move {
        let response = svc
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("answer");
        response.status().as_u16()
    })
}

/// One rule of one limit, `quota` under `kind`.
fn plans(name: &str, quota: &str, kind: AlgorithmKind) -> Plans {
    Plans::builder()
        .tier_limits(name, [rate(name, quota, kind)])
        .build()
        .expect("plans")
}

/// A store on `url` with a fresh prefix, optionally leased.
fn store(url: &str, lease: Option<TokenLease>, over_limit_cache: usize) -> RedisStore {
    let builder = RedisStore::builder(url)
        .no_fallback()
        .prefix(prefix())
        .timeout(Duration::from_secs(2))
        .over_limit_cache(over_limit_cache);
    match lease {
        Some(lease) => builder.leased(lease),
        None => builder,
    }
    .build()
    .expect("redis store")
}

/// Waits (at most 5 s) until a request sent now would be admitted and
/// Three failed answers (401, not refunded) spend a quota of three the
/// successes before them gave back: the next request is refused.
async fn failures_spend_the_quota<S, B>(svc: &mut S, kind: AlgorithmKind)
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    for _ in 0..3 {
        let reply = send(svc, answering(401)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{kind}");
    }
    let refused = send(svc, answering(200)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{kind}");
}

/// leave `remaining`: refunds to Redis land in a task of their own.
async fn until_remaining(layer: &RateLimitLayer<RedisStore>, remaining: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let peeked = layer.peek(&answering(200)).await.expect("peek");
        if peeked.decision.is_allowed() && peeked.decision.remaining() == remaining {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no refund within 5 s: {:?}, {remaining} left expected",
            peeked.decision
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sleeps past the end of the current window of `period` on Redis's clock
/// when fewer than `margin` of it are left, so a test of a window's quota
/// runs inside one window.
async fn clear_of_window_edge(
    raw: &mut redis::aio::MultiplexedConnection,
    period: Duration,
    margin: Duration,
) {
    let period = u64::try_from(period.as_nanos()).expect("period");
    let now = redis_now(raw).await;
    let left = period - now % period;
    if u128::from(left) < margin.as_nanos() {
        tokio::time::sleep(Duration::from_nanos(left) + Duration::from_millis(10)).await;
    }
}

/// The members of the sorted set `key`.
async fn entries(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(raw)
        .await
        .expect("ZCARD")
}

/// The value of `key` (0 when it does not exist).
async fn count(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let found: Option<i64> = redis::cmd("GET")
        .arg(key)
        .query_async(raw)
        .await
        .expect("GET");
    found.unwrap_or(0)
}

/// Sends `n` held requests at once through `svc`, all answering `status`;
/// once the admitted ones (`admitted`) are inside the service and the
/// others answered, lets them through (so no refund comes before every
/// request is decided) and answers every status, sorted.
async fn at_once<S, B>(svc: &S, gate: &Gate, n: usize, admitted: u32, status: u16) -> Vec<u16>
where
    S: Service<Request<()>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug + Send,
    B: Send + 'static,
{
    let waiting: Vec<_> = (0..n).map(|_| spawn_call(svc, held(status))).collect();
    gate.arrivals(admitted).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while waiting.iter().filter(|task| task.is_finished()).count() < n - admitted as usize {
        assert!(
            Instant::now() < deadline,
            "the requests not admitted were not answered within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    gate.let_through(admitted as usize);
    let mut statuses = Vec::new();
    for task in waiting {
        statuses.push(task.await.expect("task"));
    }
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn only_failures_count_for_every_rate_algorithm() {
    let server = Server::start();
    let mut raw = server.raw().await;
    for kind in RATES {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        let layer = RateLimitLayer::builder(plans("login", "3/hour", kind))
            .store(server.store())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let mut svc = layer.clone().layer(Answers::default());
        for _ in 0..5 {
            assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
            until_remaining(&layer, 2).await;
        }
        failures_spend_the_quota(&mut svc, kind).await;
    }
}

#[tokio::test]
async fn server_errors_are_refunded_and_the_rest_is_kept() {
    let server = Server::start();
    let layer = RateLimitLayer::builder(plans("api", "2/hour", AlgorithmKind::Gcra))
        .store(server.store())
        .refund_when(|status, _| status.is_server_error())
        .build()
        .expect("layer");
    let mut svc = layer.clone().layer(Answers::default());
    for _ in 0..3 {
        assert_eq!(
            send(&mut svc, answering(503)).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        until_remaining(&layer, 1).await;
    }
    assert_eq!(
        send(&mut svc, answering(404)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
    assert_eq!(
        send(&mut svc, answering(200)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Five at once against a quota of 3, all answering 200 and refunded: only
/// three are admitted, since each counts until its answer; once they are
/// refunded, three more are admitted, and no more.
#[tokio::test]
async fn requests_in_flight_count_until_their_answer() {
    let server = Server::start();
    let mut raw = server.raw().await;
    for kind in RATES {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        let gate = Gate::new();
        let layer = RateLimitLayer::builder(plans("api", "3/hour", kind))
            .store(server.store())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let svc = layer.clone().layer(Answers {
            gate: Some(gate.clone()),
        });
        for round in 0..3 {
            let statuses = at_once(&svc, &gate, 5, 3, 200).await;
            assert_eq!(statuses, [200, 200, 200, 429, 429], "{kind}, round {round}");
            // Every admitted one is refunded: the whole quota comes back
            // (for GCRA once the time the requests were in flight has
            // passed, which a backlogged bucket does not get back).
            until_remaining(&layer, 2).await;
        }
    }
}

/// A refusal the over-limit cache remembers (for some 20 minutes) while
/// admitted requests are in flight is dropped once they are refunded: the
/// next requests are answered by Redis, never by the stale refusal (nor by
/// an admission the cache made up: it makes none).
#[tokio::test]
async fn a_refund_drops_the_refusals_the_over_limit_cache_holds() {
    let server = Server::start();
    let mut raw = server.raw().await;
    for kind in RATES {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        let store = store(server.url(), None, 1024);
        let gate = Gate::new();
        let layer = RateLimitLayer::builder(plans("api", "3/hour", kind))
            .store(store.clone())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let mut svc = layer.clone().layer(Answers {
            gate: Some(gate.clone()),
        });
        for round in 0..2 {
            let in_flight: Vec<_> = (0..3).map(|_| spawn_call(&svc, held(200))).collect();
            gate.arrivals(3).await;
            let hits = store.over_limit_cache_hits();
            for _ in 0..2 {
                let refused = send(&mut svc, answering(200)).await;
                assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{kind}");
            }
            // The first refusal came from Redis, the second from the cache.
            assert_eq!(store.over_limit_cache_len(), 1, "{kind}, round {round}");
            assert_eq!(
                store.over_limit_cache_hits(),
                hits + 1,
                "{kind}, round {round}"
            );
            gate.let_through(3);
            for task in in_flight {
                assert_eq!(task.await.expect("task"), 200);
            }
            // `peek` answers from the cache too: it admits only once the
            // refunds have landed and the refusal is gone.
            until_remaining(&layer, 2).await;
            assert_eq!(store.over_limit_cache_len(), 0, "{kind}");
        }
    }
}

#[tokio::test]
async fn a_fixed_window_refund_never_adds_room_to_the_next_window() {
    const PERIOD: u64 = 1_000_000_000;
    let server = Server::start();
    let mut raw = server.raw().await;
    // A run needs its steps to fall in the windows meant: on a machine too
    // slow for that, it starts again (and fails after five tries).
    for attempt in 0.. {
        assert!(attempt < 5, "five runs in a row missed their windows");
        // Start 20 ms into a window of Redis's clock.
        let now = redis_now(&mut raw).await;
        let window = now / PERIOD + 1;
        tokio::time::sleep(Duration::from_nanos(window * PERIOD - now + 20_000_000)).await;
        let prefix = prefix();
        let store = RedisStore::builder(server.url())
            .no_fallback()
            .prefix(prefix.as_str())
            .timeout(Duration::from_secs(2))
            .build()
            .expect("redis store");
        let gate = Gate::new();
        // Beside the window, a sliding log nothing fills: its entries show
        // when A's refund (one script over both charges) has run, once A's
        // window, and so its key, is gone.
        let plans = Plans::builder()
            .tier_limits(
                "api",
                [
                    rate("api", "2/second", AlgorithmKind::FixedWindow),
                    rate("api-log", "100/hour", AlgorithmKind::SlidingLog),
                ],
            )
            .build()
            .expect("plans");
        let layer = RateLimitLayer::builder(plans)
            .store(store)
            .refund_when(|status, _| status.is_server_error())
            .build()
            .expect("layer");
        let mut svc = layer.clone().layer(Answers {
            gate: Some(gate.clone()),
        });

        // A: admitted in this window; its 500 (refunded) comes in the next.
        let slow = spawn_call(&svc, held(500));
        gate.arrivals(1).await;
        // B: this window's second request, kept.
        assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
        let first = keys(&mut raw, &prefix)
            .await
            .into_iter()
            .find(|k| k.ends_with(&format!("@fw:{window}")));
        let log = keys(&mut raw, &prefix)
            .await
            .into_iter()
            .find(|k| k.ends_with("@log"));
        let (Some(first), Some(log), true) =
            (first, log, redis_now(&mut raw).await / PERIOD == window)
        else {
            gate.let_through(1);
            slow.await.expect("task");
            continue;
        };
        assert_eq!(count(&mut raw, &first).await, 2);
        let base = first.rsplit_once(':').expect("a window key").0;
        let next = format!("{base}:{}", window + 1);

        // The next window: C is admitted there, then A's refund lands, in
        // A's window.
        let now = redis_now(&mut raw).await;
        tokio::time::sleep(Duration::from_nanos(
            ((window + 1) * PERIOD).saturating_sub(now),
        ))
        .await;
        while redis_now(&mut raw).await / PERIOD == window {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
        assert_eq!(entries(&mut raw, &log).await, 3, "A, B and C");
        gate.let_through(1);
        assert_eq!(slow.await.expect("task"), 500);
        let deadline = Instant::now() + Duration::from_secs(5);
        while entries(&mut raw, &log).await != 2 {
            assert!(Instant::now() < deadline, "A's refund never ran");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(
            count(&mut raw, &first).await <= 1,
            "A's window had 2, less 1, or it ended"
        );
        // The new window got nothing back: D fills it, E is refused.
        assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
        let refused = send(&mut svc, answering(200)).await;
        if redis_now(&mut raw).await / PERIOD != window + 1 {
            continue;
        }
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(count(&mut raw, &next).await, 2);
        return;
    }
}

#[tokio::test]
async fn concurrency_limits_are_not_refunded() {
    let server = Server::start();
    let mut raw = server.raw().await;
    let prefix = prefix();
    let store = RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("redis store");
    let plans = Plans::builder()
        .tier_limits(
            "slots",
            [
                concurrent("slots", 1),
                rate("slots-rate", "100/hour", AlgorithmKind::Gcra),
            ],
        )
        .build()
        .expect("plans");
    let layer = RateLimitLayer::builder(plans)
        .store(store)
        .refund_when(|_, _| true)
        .build()
        .expect("layer");
    let mut svc = layer.clone().layer(Answers::default());
    let response = svc
        .ready()
        .await
        .expect("ready")
        .call(answering(200))
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    // The refund is one script over both charges: once the rate limit's
    // state is gone (a fresh bucket refunded is full again), it has run.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = keys(&mut raw, &prefix).await;
        if !now.iter().any(|k| k.ends_with("@gcra")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rate charge was never refunded"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The slot is still taken, by the body not yet dropped.
    let slot = keys(&mut raw, &prefix)
        .await
        .into_iter()
        .find(|k| k.ends_with("@conc"))
        .expect("the concurrency limit's key");
    assert_eq!(entries(&mut raw, &slot).await, 1);
    assert_eq!(
        send(&mut svc, answering(200)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = send(&mut svc, answering(200)).await.status;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Leased mode: an answer spent from a lease is refunded to that lease, at
/// once and without a call; limits leases do not serve are checked, and
/// refunded, in Redis.
#[tokio::test]
async fn leased_answers_are_refunded_to_their_lease() {
    let server = Server::start();
    let mut raw = server.raw().await;
    for kind in [
        AlgorithmKind::Gcra,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::SlidingLog,
    ] {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        let lease = TokenLease::new(4).max_age(Duration::from_secs(60));
        let store = store(server.url(), Some(lease), 0);
        let layer = RateLimitLayer::builder(plans("login", "3/hour", kind))
            .store(store.clone())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let mut svc = layer.clone().layer(Answers::default());
        for _ in 0..5 {
            assert_eq!(send(&mut svc, answering(200)).await.status, StatusCode::OK);
            if kind == AlgorithmKind::SlidingLog {
                until_remaining(&layer, 2).await;
            }
        }
        let stats = store.lease_stats();
        if kind == AlgorithmKind::SlidingLog {
            assert_eq!((stats.calls, stats.local), (0, 0), "{kind}: per request");
        } else {
            // One lease of one unit, given back after each answer and spent
            // again: no other call.
            assert_eq!((stats.calls, stats.local), (1, 4), "{kind}");
        }
        failures_spend_the_quota(&mut svc, kind).await;
    }
}

#[tokio::test]
async fn leased_requests_in_flight_count_until_their_answer() {
    let server = Server::start();
    let mut raw = server.raw().await;
    let lease = TokenLease::new(4).max_age(Duration::from_secs(60));
    for kind in [AlgorithmKind::Gcra, AlgorithmKind::FixedWindow] {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        let store = store(server.url(), Some(lease), 0);
        let gate = Gate::new();
        let layer = RateLimitLayer::builder(plans("api", "3/hour", kind))
            .store(store.clone())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let svc = layer.clone().layer(Answers {
            gate: Some(gate.clone()),
        });
        for round in 0..3 {
            let statuses = at_once(&svc, &gate, 5, 3, 200).await;
            assert_eq!(statuses, [200, 200, 200, 429, 429], "{kind}, round {round}");
        }
        // After the first round every admission spent units given back.
        let stats = store.lease_stats();
        assert!(stats.local >= 6, "{kind}: {stats:?}");
    }
}

/// On a cluster, a check over two client keys (an API key and the peer
/// IP) runs as two parts in two slots; its refund gives back both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_spread_over_slots_is_refunded_part_by_part() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let node = cluster.node_urls().into_iter().next().expect("a node");
    let mut raw = redis::Client::open(node.as_str())
        .expect("node url")
        .get_multiplexed_async_connection()
        .await
        .expect("node");
    for kind in RATES {
        clear_of_window_edge(&mut raw, Duration::from_secs(3600), Duration::from_secs(10)).await;
        // 3 per API key and 3 per IP: `peek` shows 2 left only once both
        // parts are refunded.
        let layer = RateLimitLayer::builder(plans("per-key", "3/hour", kind))
            .store(store(&url, None, 0))
            .key(HeaderKey::new("x-api-key"))
            .also("per-ip", plans("per-ip", "3/hour", kind), PeerIp::new())
            .refund_when(|status, _| status.is_success())
            .build()
            .expect("layer");
        let mut svc = layer.clone().layer(Answers::default());
        for _ in 0..5 {
            assert_eq!(
                send(&mut svc, answering(200)).await.status,
                StatusCode::OK,
                "{kind}"
            );
            until_remaining(&layer, 2).await;
        }
        failures_spend_the_quota(&mut svc, kind).await;
    }
}

/// Through the `Store` API: only an admission Redis charged carries a
/// receipt, with the `TIME` of the charge; `Store::refund` on it gives
/// the charge back. Refusals, looks, over-limit cache answers and local
/// fallback answers carry none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_come_only_with_admissions_redis_charged() {
    let mut server = Server::own();
    let mut raw = server.raw().await;
    let store = RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix())
        .timeout(Duration::from_millis(500))
        .over_limit_cache(16)
        .fallback_local(1)
        .build()
        .expect("redis store");
    let limit = store.bind(&rate("api", "2/hour", AlgorithmKind::Gcra));
    let client = key("client");
    let charge = [Charge::new(&limit, &client, 1)];

    let before = redis_now(&mut raw).await;
    let first = check(&store, &charge).await.expect("check");
    let after = redis_now(&mut raw).await;
    assert!(first.decision.is_allowed());
    let receipt = first.receipt.expect("an admission Redis charged");
    assert!(
        (before / 1_000..=after / 1_000).contains(&(receipt.at() / 1_000)),
        "the charge's TIME: {} not in [{before}, {after}]",
        receipt.at()
    );
    let looked = peek(&store, &charge).await.expect("peek");
    assert_eq!(
        looked.decision.remaining(),
        0,
        "one left before, none after"
    );
    assert!(looked.receipt.is_none(), "a look charges nothing");

    // The refund gives the charge back (a fresh bucket: full again).
    store.refund(&charge, receipt);
    let deadline = Instant::now() + Duration::from_secs(5);
    while peek(&store, &charge)
        .await
        .expect("peek")
        .decision
        .remaining()
        != 1
    {
        assert!(Instant::now() < deadline, "the refund never landed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let second = check(&store, &charge).await.expect("check");
    let third = check(&store, &charge).await.expect("check");
    assert!(second.decision.is_allowed() && third.decision.is_allowed());
    let (second, third) = (
        second.receipt.expect("a receipt"),
        third.receipt.expect("a receipt"),
    );
    assert_ne!(second.id(), third.id(), "each check has its own number");
    let refused = check(&store, &charge).await.expect("check");
    assert!(!refused.decision.is_allowed());
    assert!(refused.receipt.is_none(), "a refusal charges nothing");
    let cached = check(&store, &charge).await.expect("check");
    assert_eq!(store.over_limit_cache_hits(), 1);
    assert!(cached.receipt.is_none(), "the cache charges nothing");

    // Redis away: the local fallback admits, and its answers carry no
    // receipt (a refund would find nothing of theirs in Redis).
    server.kill();
    let other = key("other");
    let local = check(&store, &[Charge::new(&limit, &other, 1)])
        .await
        .expect("the fallback answers");
    assert!(local.decision.is_allowed());
    assert!(store.fallback_stats().answers >= 1);
    assert!(local.receipt.is_none(), "a local answer is not refunded");
}
