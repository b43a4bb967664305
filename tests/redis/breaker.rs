//! The circuit breaker: with Redis killed, checks fail at once without
//! touching the network after a few failures; one probe at a time, with a
//! backoff that doubles; recovery without a new store once Redis is back.

use std::error::Error as _;
use std::time::{Duration, Instant};

use tollgate::algorithm::AlgorithmKind;
use tollgate::store::redis::{BreakerSettings, BreakerState, CircuitOpen};
use tollgate::store::{Charge, Checked, RedisHandle, RedisStore, Store};
use tollgate::StoreError;

use crate::support::{check, key, prefix, rate, Server};

const TIMEOUT: Duration = Duration::from_millis(50);

fn store(server: &Server, initial: Duration) -> RedisStore {
    RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix())
        .timeout(TIMEOUT)
        .breaker(
            BreakerSettings::new()
                .min_calls(3)
                .failure_rate(0.75)
                .backoff(initial, Duration::from_secs(2)),
        )
        .build()
        .expect("redis store")
}

fn is_circuit_open(error: &StoreError) -> bool {
    matches!(error, StoreError::Unavailable(_))
        && error
            .source()
            .is_some_and(|s| s.downcast_ref::<CircuitOpen>().is_some())
}

/// Checks until `n` calls to Redis have failed; none may succeed.
async fn fail_calls(store: &RedisStore, limit: &RedisHandle, n: usize) {
    let k = key("tripper");
    for i in 0..n {
        let result = check(store, &[Charge::new(limit, &k, 1)]).await;
        let error = result.expect_err("Redis is down");
        assert!(!is_circuit_open(&error), "call {i} reached Redis: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_fails_fast_then_recovers_without_a_new_store() {
    let mut server = Server::own();
    let store = store(&server, Duration::from_millis(300));
    let limit = store.bind(&rate("api", "1000000/minute", AlgorithmKind::Gcra));
    let k = key("client");
    let charge = [Charge::new(&limit, &k, 1)];
    check(&store, &charge).await.expect("redis up");
    assert_eq!(store.breaker_state(), BreakerState::Closed);

    server.kill();
    fail_calls(&store, &limit, 3).await;
    assert_eq!(store.breaker_state(), BreakerState::Open);
    assert_eq!(store.breaker_stats().opened, 1);

    // Open: answered at once, synchronously (no future, so no network),
    // far below the timeout.
    for _ in 0..20 {
        let started = Instant::now();
        let Checked::Ready(Err(error)) = store.check(&charge) else {
            panic!("an open breaker answers at once with an error");
        };
        let took = started.elapsed();
        assert!(is_circuit_open(&error), "{error}");
        assert!(
            error.to_string().contains("circuit breaker open"),
            "{error}"
        );
        assert!(took < Duration::from_millis(2), "took {took:?}");
    }
    assert!(store.breaker_stats().rejected >= 20);

    server.restart();
    let back = Instant::now();
    loop {
        if check(&store, &charge).await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no recovery within 5 s: {:?}",
            store.breaker_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.breaker_state(), BreakerState::Closed);
    let stats = store.breaker_stats();
    assert_eq!((stats.opened, stats.closed), (1, 1), "{stats:?}");
    assert!(stats.half_opened >= 1, "{stats:?}");
    assert_eq!(stats.reopened, stats.half_opened - 1, "{stats:?}");
    assert_eq!(stats.backoff, Duration::from_millis(300), "reset on close");
    for _ in 0..10 {
        check(&store, &charge).await.expect("closed again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_doubles_the_backoff() {
    let mut server = Server::own();
    let initial = Duration::from_millis(100);
    let store = store(&server, initial);
    let limit = store.bind(&rate("api", "1000000/minute", AlgorithmKind::Gcra));
    let k = key("client");
    let charge = [Charge::new(&limit, &k, 1)];
    check(&store, &charge).await.expect("redis up");
    server.kill();
    fail_calls(&store, &limit, 3).await;
    let opened = Instant::now();
    assert_eq!(store.breaker_stats().backoff, initial);

    // Polls until the next probe (a check that goes to Redis: a future);
    // answers that come at once are refusals of the open breaker.
    let next_probe = |since: Instant| {
        let store = store.clone();
        let limit = limit.clone();
        async move {
            let k = key("client");
            loop {
                match store.check(&[Charge::new(&limit, &k, 1)]) {
                    Checked::Ready(Err(e)) => assert!(is_circuit_open(&e), "{e}"),
                    Checked::Ready(Ok(_)) => panic!("no answer without Redis"),
                    Checked::Pending(probe) => {
                        let started = since.elapsed();
                        assert!(probe.await.is_err(), "Redis is down");
                        return (started, Instant::now());
                    }
                }
                assert!(since.elapsed() < Duration::from_secs(3), "no probe");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };

    let (after, failed) = next_probe(opened).await;
    assert!(after >= initial, "probed after {after:?}");
    let stats = store.breaker_stats();
    assert_eq!((stats.half_opened, stats.reopened), (1, 1), "{stats:?}");
    assert_eq!(stats.backoff, 2 * initial);
    assert_eq!(store.breaker_state(), BreakerState::Open);

    let (after, _) = next_probe(failed).await;
    assert!(after >= 2 * initial, "probed after {after:?}");
    assert!(
        after < 2 * initial + Duration::from_millis(500),
        "{after:?}"
    );
    let stats = store.breaker_stats();
    assert_eq!((stats.opened, stats.half_opened, stats.reopened), (1, 2, 2));
    assert_eq!(stats.backoff, 4 * initial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_over_limit_cache_answers_before_the_breaker() {
    let mut server = Server::own();
    let store = RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix())
        .timeout(TIMEOUT)
        .over_limit_cache(16)
        .breaker(
            BreakerSettings::new()
                .min_calls(3)
                .failure_rate(0.5)
                .backoff(Duration::from_secs(2), Duration::from_secs(2)),
        )
        .build()
        .expect("redis store");
    let minute = store.bind(&rate("once", "1/minute", AlgorithmKind::Gcra));
    let k = key("client");
    let charge = [Charge::new(&minute, &k, 1)];
    assert!(check(&store, &charge)
        .await
        .expect("redis")
        .decision
        .is_allowed());
    assert!(!check(&store, &charge)
        .await
        .expect("redis")
        .decision
        .is_allowed());

    server.kill();
    // Two successes and two failures: half of the window's four calls.
    fail_calls(&store, &minute, 2).await;
    assert_eq!(store.breaker_state(), BreakerState::Open);
    let Checked::Ready(Ok(cached)) = store.check(&charge) else {
        panic!("the cache answers");
    };
    assert!(!cached.decision.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 1);
}

#[tokio::test]
async fn without_a_breaker_every_check_calls_redis() {
    let mut server = Server::own();
    let store = RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix())
        .timeout(TIMEOUT)
        .no_breaker()
        .build()
        .expect("redis store");
    let limit = store.bind(&rate("api", "5/minute", AlgorithmKind::Gcra));
    server.kill();
    fail_calls(&store, &limit, 6).await;
    assert_eq!(store.breaker_state(), BreakerState::Closed);
    assert_eq!(store.breaker_stats().opened, 0);
}
