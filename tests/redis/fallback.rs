//! The local fallback: with Redis killed, checks are answered by a local
//! limiter enforcing this instance's share of the quota (no store error);
//! with Redis back, Redis answers again; without the fallback, errors as
//! before.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::store::redis::{BreakerSettings, BreakerState, FallbackStats};
use tollgate::store::{Charge, Checked, RedisStore, Store};
use tollgate::ConfigError;

use crate::support::{check, concurrent, key, prefix, rate, Server};

const TIMEOUT: Duration = Duration::from_millis(50);

fn store(server: &Server, prefix: &str, fallback: Option<u32>) -> RedisStore {
    let builder = RedisStore::builder(server.url())
        .prefix(prefix)
        .timeout(TIMEOUT)
        .breaker(
            BreakerSettings::new()
                .min_calls(3)
                .failure_rate(0.75)
                .backoff(Duration::from_millis(100), Duration::from_millis(200)),
        );
    match fallback {
        Some(instances) => builder.fallback_local(instances),
        None => builder.no_fallback(),
    }
    .build()
    .expect("redis store")
}

/// Keys under `prefix` in the server's Redis.
async fn keys_in_redis(server: &Server, prefix: &str) -> Vec<String> {
    let mut raw = server.raw().await;
    redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut raw)
        .await
        .expect("KEYS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_answers_with_this_instances_share_then_redis_again() {
    let mut server = Server::own();
    let prefix = prefix();
    let store = store(&server, &prefix, Some(2));
    let limit = store.bind(&rate("api", "10/minute", AlgorithmKind::Gcra));

    // Redis answers: the local limiter is neither asked nor charged.
    let early = key("early");
    for _ in 0..3 {
        let v = check(&store, &[Charge::new(&limit, &early, 1)])
            .await
            .expect("redis up");
        assert_eq!(v.decision.limit(), 10, "Redis's figures");
    }
    assert_eq!(store.fallback_stats(), FallbackStats::default());
    assert_eq!(keys_in_redis(&server, &prefix).await.len(), 1);

    server.kill();
    // Exactly 5 (10 over 2 instances) admitted per key, then refused with
    // the local limiter's figures; never a store error. The first checks
    // fall back inside their future (calls failing), the later ones at
    // once (breaker open).
    for name in ["fresh", "early"] {
        let k = key(name);
        for i in 0..5 {
            let v = check(&store, &[Charge::new(&limit, &k, 1)])
                .await
                .expect("answered locally");
            assert!(v.decision.is_allowed(), "{name}: check {i} admitted");
            assert_eq!(v.decision.limit(), 5);
            assert_eq!(v.decision.remaining(), 4 - i);
        }
        for _ in 0..3 {
            let v = check(&store, &[Charge::new(&limit, &k, 1)])
                .await
                .expect("answered locally");
            assert!(!v.decision.is_allowed(), "{name}: past the share");
            assert_eq!((v.decision.limit(), v.decision.remaining()), (5, 0));
            let retry = v.decision.retry_after().expect("a retry-after");
            assert!(retry > Duration::from_secs(10), "{retry:?}");
            assert!(retry <= Duration::from_secs(12), "{retry:?}");
        }
    }
    assert_eq!(store.breaker_state(), BreakerState::Open);
    let k = key("fresh");
    let Checked::Ready(Ok(v)) = store.check(&[Charge::new(&limit, &k, 1)]) else {
        panic!("an open breaker with the fallback answers at once, locally");
    };
    assert!(!v.decision.is_allowed());
    let stats = store.fallback_stats();
    assert_eq!((stats.answers, stats.entered, stats.left), (17, 1, 0));

    // A concurrency limit's share: 5 in flight over 2 instances is 2.
    let slots = store.bind(&concurrent("slots", 5));
    let k = key("conc");
    let charge = [Charge::new(&slots, &k, 1)];
    let first = check(&store, &charge).await.expect("local");
    let second = check(&store, &charge).await.expect("local");
    assert!(first.decision.is_allowed() && second.decision.is_allowed());
    let third = check(&store, &charge).await.expect("local");
    assert!(!third.decision.is_allowed(), "2 in flight at most");
    drop(first);
    assert!(check(&store, &charge)
        .await
        .expect("local")
        .decision
        .is_allowed());

    server.restart();
    // Redis (empty after the restart) answers again once a probe gets
    // through: "fresh", refused locally, is admitted by Redis's 10.
    let k = key("fresh");
    let started = std::time::Instant::now();
    let back = loop {
        let before = store.fallback_stats().answers;
        let v = check(&store, &[Charge::new(&limit, &k, 1)])
            .await
            .expect("never a store error");
        if store.fallback_stats().answers == before {
            break v;
        }
        assert!(!v.decision.is_allowed(), "still refused locally");
        assert!(started.elapsed() < Duration::from_secs(3), "no recovery");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(back.decision.is_allowed());
    assert_eq!((back.decision.limit(), back.decision.remaining()), (10, 9));
    assert_eq!(store.breaker_state(), BreakerState::Closed);
    let stats = store.fallback_stats();
    assert_eq!((stats.entered, stats.left), (1, 1), "{stats:?}");
    for _ in 0..5 {
        let v = check(&store, &[Charge::new(&limit, &k, 1)])
            .await
            .expect("redis");
        assert!(v.decision.is_allowed());
    }
    assert_eq!(store.fallback_stats(), stats, "no more local answers");
    assert_eq!(
        keys_in_redis(&server, &prefix).await.len(),
        1,
        "the counter is in Redis again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fallback_redis_away_is_a_store_error() {
    let mut server = Server::own();
    let store = store(&server, &prefix(), None);
    let limit = store.bind(&rate("api", "10/minute", AlgorithmKind::Gcra));
    let k = key("client");
    check(&store, &[Charge::new(&limit, &k, 1)])
        .await
        .expect("redis up");
    server.kill();
    for _ in 0..6 {
        check(&store, &[Charge::new(&limit, &k, 1)])
            .await
            .expect_err("Redis is down and there is no fallback");
    }
    assert_eq!(store.breaker_state(), BreakerState::Open);
    assert_eq!(store.fallback_stats(), FallbackStats::default());
}

#[test]
fn zero_instances_is_a_config_error() {
    let built = RedisStore::builder("redis://127.0.0.1:1/")
        .fallback_local(0)
        .build();
    assert!(matches!(built, Err(ConfigError::Store(_))), "{built:?}");
    assert!(RedisStore::builder("redis://127.0.0.1:1/")
        .fallback_local(1)
        .build()
        .is_ok());
}
