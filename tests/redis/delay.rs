//! Delay mode on a real `redis-server`: the script answers when a request
//! may pass from Redis's `TIME`, so the waiters of two stores (two
//! instances) are ordered on one timeline; a check of several GCRA limits
//! charges each for the instant the request passes, as the memory store.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::store::{Charge, MemoryStore, Store};

use crate::support::{check, key, rate, Server};

const MS: u64 = 1_000_000;

/// `actual` within `slack_ms` of `expected_ms` (Redis's clock moves between
/// calls by the time they take).
fn near(actual: Duration, expected_ms: u64, slack_ms: u64) -> bool {
    let actual = u64::try_from(actual.as_nanos()).unwrap_or(u64::MAX);
    actual + slack_ms * MS >= expected_ms * MS && actual <= (expected_ms + slack_ms) * MS
}

/// Two stores (two instances) on one Redis, one key: one request passes at
/// once, the next ten wait 200 ms apart whichever store admits them, the
/// rest are refused with the wait until a place frees.
#[tokio::test]
async fn two_instances_queue_one_client_on_one_timeline() {
    let server = Server::start();
    let prefix = crate::support::prefix();
    let limit = rate("search", "5/second burst 1 queue 10", AlgorithmKind::Gcra);
    let stores = [
        server.store_with(&prefix, Duration::from_secs(2)),
        server.store_with(&prefix, Duration::from_secs(2)),
    ];
    let handles = [stores[0].bind(&limit), stores[1].bind(&limit)];
    let client = key("203.0.113.7");
    let start = std::time::Instant::now();
    let mut delays = Vec::new();
    let mut refused = Vec::new();
    for i in 0..30 {
        let (store, handle) = (&stores[i % 2], &handles[i % 2]);
        let verdict = check(store, &[Charge::new(handle, &client, 1)])
            .await
            .expect("answered");
        let since = start.elapsed();
        let decision = verdict.decision;
        if decision.is_allowed() {
            // When it passes, on the test's clock: arrival + wait.
            delays.push(since + decision.delay());
        } else {
            refused.push(decision.retry_after().expect("a wait"));
        }
    }
    assert_eq!((delays.len(), refused.len()), (11, 19));
    // The instants of passing are 200 ms apart, whichever instance asked
    // (slack for the calls' own time on this machine).
    let first = delays[0];
    for (i, at) in delays.iter().enumerate() {
        let offset = at.saturating_sub(first);
        assert!(
            near(offset, 200 * i as u64, 25),
            "waiter {i} passes {offset:?} after the first"
        );
    }
    for retry in &refused {
        assert!(
            *retry <= Duration::from_millis(200),
            "refused with {retry:?}"
        );
        assert!(*retry > Duration::ZERO);
    }
}

/// A check of a queued limit and a plain GCRA on another key: the same
/// admissions and waits as the memory store (the oracle) gives for the
/// same sequence.
#[tokio::test]
async fn several_gcra_limits_delay_as_the_memory_store_does() {
    let server = Server::start();
    let redis = server.store_with(&crate::support::prefix(), Duration::from_secs(2));
    same_as_memory(&redis).await;
}

/// The same on Redis Cluster, where the two keys live in different slots:
/// the part holding the queue runs first and answers the wait, the other
/// part is charged for the instant the request passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_gcra_limits_over_cluster_slots_delay_as_the_memory_store_does() {
    let cluster = crate::support::Cluster::start();
    let redis = tollgate::store::RedisStore::builder(cluster.url())
        .no_fallback()
        .prefix(crate::support::prefix().as_str())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("cluster store");
    same_as_memory(&redis).await;
}

/// A queued limit on one key and a plain GCRA on another, checked together
/// eight times at once: `redis` answers what the memory store does.
async fn same_as_memory(redis: &tollgate::store::RedisStore) {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(10));
    let memory = MemoryStore::builder().clock(clock.clone()).build();
    let search = rate("search", "5/second burst 1 queue 4", AlgorithmKind::Gcra);
    let global = rate("global", "4/second burst 3", AlgorithmKind::Gcra);
    let (rs, rg) = (redis.bind(&search), redis.bind(&global));
    let (ms, mg) = (memory.bind(&search), memory.bind(&global));
    let client = key("client");
    let all = key("all");
    let mut seen = Vec::new();
    for _ in 0..8 {
        let from_redis = check(
            redis,
            &[Charge::new(&rs, &client, 1), Charge::new(&rg, &all, 1)],
        )
        .await
        .expect("redis");
        let from_memory = check(
            &memory,
            &[Charge::new(&ms, &client, 1), Charge::new(&mg, &all, 1)],
        )
        .await
        .expect("memory");
        let (r, m) = (from_redis.decision, from_memory.decision);
        assert_eq!(r.is_allowed(), m.is_allowed(), "after {seen:?}");
        let m_delay = u64::try_from(m.delay().as_millis()).expect("ms");
        assert!(
            near(r.delay(), m_delay, 30),
            "redis {:?}, memory {m_delay} ms",
            r.delay()
        );
        seen.push((m.is_allowed(), m_delay));
    }
    // Exact on the memory store's fixed clock: the search queue gives 0,
    // 200, ..., 800 ms; the fifth passes only because the global limit
    // (4/s, burst 3), which refuses it now, is asked for the instant it
    // passes (800 ms on); then the queue is full.
    let expected: Vec<(bool, u64)> = [0, 200, 400, 600, 800]
        .into_iter()
        .map(|ms| (true, ms))
        .chain(std::iter::repeat_n((false, 0), 3))
        .collect();
    assert_eq!(seen, expected);
}

/// A waiter that leaves gives its place back on Redis when it is the last
/// one reserved, and keeps it when a later waiter is behind it.
#[tokio::test]
async fn a_departed_waiter_gives_back_only_the_last_place() {
    let server = Server::start();
    let prefix = crate::support::prefix();
    let store = server.store_with(&prefix, Duration::from_secs(2));
    let limit = rate("search", "5/second burst 1 queue 10", AlgorithmKind::Gcra);
    let handle = store.bind(&limit);
    let client = key("leaving");
    let charge = [Charge::new(&handle, &client, 1)];
    let mut verdicts = Vec::new();
    for _ in 0..3 {
        verdicts.push(check(&store, &charge).await.expect("answered"));
    }
    assert!(verdicts.iter().all(|v| v.decision.is_allowed()));
    let mut raw = server.raw().await;
    let keys = crate::support::keys(&mut raw, &prefix).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stamp = |raw: &mut redis::aio::MultiplexedConnection| {
        let key = keys[0].clone();
        let mut raw = raw.clone();
        async move {
            let value: String = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut raw)
                .await
                .expect("GET");
            value.parse::<u64>().expect("a decimal arrival time")
        }
    };
    let before = stamp(&mut raw).await;
    // The second waiter has the third behind it: its place stays.
    let second = &verdicts[1];
    store.cancel(
        &charge,
        second.receipt.expect("receipt"),
        second.decision.delay(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stamp(&mut raw).await, before);
    // The third is the last: its place (one interval, 200 ms) comes back.
    let third = &verdicts[2];
    store.cancel(
        &charge,
        third.receipt.expect("receipt"),
        third.decision.delay(),
    );
    let mut now = stamp(&mut raw).await;
    for _ in 0..100 {
        if now != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        now = stamp(&mut raw).await;
    }
    assert_eq!(before - now, 200 * MS);
}
