//! The over-limit cache: rate-limit refusals answered locally, with no
//! Redis call, until their retry instant; never concurrency refusals, never
//! an admission, never more than `max_entries` entries.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::store::{Charge, Checked, RedisStore, Store, Verdict};

use crate::support::{check, concurrent, key, prefix, rate, Server};

/// A store with the cache on, a fresh prefix and a timeout short enough
/// for a test against a killed server.
fn cached(server: &Server, max_entries: usize) -> RedisStore {
    RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix())
        .timeout(Duration::from_millis(500))
        .over_limit_cache(max_entries)
        .build()
        .expect("redis store")
}

/// The verdict of a check answered at once (from the cache).
fn ready(checked: Checked<impl std::future::Future>) -> Verdict {
    match checked {
        Checked::Ready(result) => result.expect("a cached answer"),
        Checked::Pending(_) => panic!("expected an answer from the cache, got a Redis call"),
    }
}

/// How many scripts Redis has run (`INFO commandstats`).
async fn evalsha_calls(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

#[tokio::test]
async fn a_refusal_is_answered_locally_even_while_redis_is_down() {
    let mut server = Server::own();
    let mut raw = server.raw().await;
    let store = cached(&server, 16);
    let minute = store.bind(&rate("minute", "1/minute", AlgorithmKind::Gcra));
    let client = key("client-1");
    let charge = [Charge::new(&minute, &client, 1)];

    let first = check(&store, &charge).await.expect("redis answers");
    assert!(first.decision.is_allowed());
    let refused = check(&store, &charge).await.expect("redis answers");
    assert!(!refused.decision.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 0);
    assert_eq!(store.over_limit_cache_len(), 1);

    let calls = evalsha_calls(&mut raw).await;
    let mut last = refused.decision.retry_after().expect("a retry");
    for n in 1..=3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let hit = ready(store.check(&charge)).decision;
        assert!(!hit.is_allowed());
        assert_eq!((hit.policy(), hit.limit(), hit.remaining()), (0, 1, 0));
        let retry = hit.retry_after().expect("a retry");
        assert!(
            retry > Duration::ZERO && retry < last,
            "{retry:?} after {last:?}"
        );
        assert!(hit.window() >= retry && hit.window() <= Duration::from_secs(60));
        last = retry;
        assert_eq!(store.over_limit_cache_hits(), n);
    }
    // A peek is answered alike.
    assert!(!ready(store.peek(&charge)).decision.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 4);
    assert_eq!(evalsha_calls(&mut raw).await, calls, "no script ran");

    server.kill();
    let hit = ready(store.check(&charge)).decision;
    assert!(!hit.is_allowed() && hit.retry_after() < Some(last));
    assert_eq!(store.over_limit_cache_hits(), 5);
    let other = key("client-2");
    let uncached = check(&store, &[Charge::new(&minute, &other, 1)]).await;
    assert!(uncached.is_err(), "an uncached key needs Redis");
}

#[tokio::test]
async fn any_charge_hit_refuses_the_whole_check_at_its_position() {
    let server = Server::start();
    let store = cached(&server, 16);
    let wide = store.bind(&rate("wide", "100/minute", AlgorithmKind::Gcra));
    let narrow = store.bind(&rate("narrow", "5/minute", AlgorithmKind::Gcra));
    let client = key("client-1");
    let take = |cost| {
        [
            Charge::new(&wide, &client, 1),
            Charge::new(&narrow, &client, cost),
        ]
    };

    assert!(check(&store, &take(5))
        .await
        .expect("redis")
        .decision
        .is_allowed());
    let refused = check(&store, &take(3)).await.expect("redis").decision;
    assert_eq!((refused.is_allowed(), refused.policy()), (false, 1));
    // Only the refusing charge was cached.
    assert_eq!(store.over_limit_cache_len(), 1);
    // A cheaper request may fit earlier: it goes to Redis.
    let cheaper = check(&store, &take(1)).await.expect("redis").decision;
    assert!(!cheaper.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 0);
    // As costly or costlier: refused from the cache, at the charge's position.
    let hit = ready(store.check(&take(4))).decision;
    assert_eq!((hit.is_allowed(), hit.policy(), hit.limit()), (false, 1, 5));
    assert_eq!(store.over_limit_cache_hits(), 1);
    // The same limit bound anew (maybe to another quota) does not hit.
    let rebound = store.bind(&rate("narrow", "5/minute", AlgorithmKind::Gcra));
    let fresh = store.check(&[Charge::new(&rebound, &client, 4)]);
    assert!(matches!(fresh, Checked::Pending(_)));
}

#[tokio::test]
async fn after_the_retry_instant_the_request_goes_to_redis() {
    let server = Server::start();
    let store = cached(&server, 16);
    let second = store.bind(&rate("second", "2/second", AlgorithmKind::Gcra));
    let client = key("client-1");
    let charge = [Charge::new(&second, &client, 1)];

    for _ in 0..2 {
        assert!(check(&store, &charge)
            .await
            .expect("redis")
            .decision
            .is_allowed());
    }
    let refused = check(&store, &charge).await.expect("redis").decision;
    let retry = refused.retry_after().expect("a retry");
    assert!(retry <= Duration::from_millis(500), "{retry:?}");
    assert!(!ready(store.check(&charge)).decision.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 1);

    tokio::time::sleep(Duration::from_millis(600)).await;
    let checked = store.check(&charge);
    assert!(matches!(checked, Checked::Pending(_)), "expired: ask Redis");
    let Checked::Pending(future) = checked else {
        unreachable!()
    };
    assert!(future.await.expect("redis").decision.is_allowed());
    assert_eq!(store.over_limit_cache_hits(), 1);
    // The expired entry was dropped on the way.
    assert_eq!(store.over_limit_cache_len(), 0);
}

#[tokio::test]
async fn concurrency_refusals_are_never_cached() {
    let server = Server::start();
    let store = cached(&server, 16);
    let one = store.bind(&concurrent("one", 1));
    let client = key("client-1");
    let charge = [Charge::new(&one, &client, 1)];

    let held = check(&store, &charge).await.expect("redis");
    assert!(held.decision.is_allowed());
    for _ in 0..3 {
        let checked = store.check(&charge);
        let Checked::Pending(future) = checked else {
            panic!("a concurrency refusal must come from Redis")
        };
        assert!(!future.await.expect("redis").decision.is_allowed());
    }
    assert_eq!(
        (store.over_limit_cache_hits(), store.over_limit_cache_len()),
        (0, 0)
    );
    // The permit's early release lets the next request in at once.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        if check(&store, &charge)
            .await
            .expect("redis")
            .decision
            .is_allowed()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot came back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.over_limit_cache_hits(), 0);
}

#[tokio::test]
async fn the_cache_never_exceeds_max_entries() {
    let server = Server::start();
    let store = cached(&server, 2);
    let minute = store.bind(&rate("minute", "1/minute", AlgorithmKind::Gcra));
    let clients: Vec<_> = (0..5).map(|i| key(&format!("client-{i}"))).collect();
    for client in &clients {
        let charge = [Charge::new(&minute, client, 1)];
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
        assert!(store.over_limit_cache_len() <= 2);
    }
    assert_eq!(store.over_limit_cache_len(), 2);
    // The first two are cached; the others, refused all the same, by Redis.
    for (i, client) in clients.iter().enumerate() {
        let hits = store.over_limit_cache_hits();
        let decision = check(&store, &[Charge::new(&minute, client, 1)])
            .await
            .expect("redis")
            .decision;
        assert!(!decision.is_allowed());
        let cached = u64::from(i < 2);
        assert_eq!(store.over_limit_cache_hits(), hits + cached, "client {i}");
    }
    assert_eq!(store.over_limit_cache_len(), 2);
}

#[tokio::test]
async fn off_by_default() {
    let server = Server::start();
    let store = server.store();
    let minute = store.bind(&rate("minute", "1/minute", AlgorithmKind::Gcra));
    let client = key("client-1");
    let charge = [Charge::new(&minute, &client, 1)];
    for _ in 0..3 {
        let _ = check(&store, &charge).await.expect("redis");
    }
    assert!(matches!(store.check(&charge), Checked::Pending(_)));
    assert_eq!(store.over_limit_cache_hits(), 0);
}
