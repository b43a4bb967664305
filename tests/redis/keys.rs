//! Key names, TTLs and expiry.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::quota::Quota;
use tollgate::store::{Charge, RedisStore, Store};
use tollgate::Limit;

use crate::support::{check, concurrent, key, keys, prefix, Server};

fn short(name: &str, kind: AlgorithmKind) -> Limit {
    Limit::new(
        name,
        Quota::new(3, Duration::from_millis(200)).expect("quota"),
        kind,
    )
    .expect("limit")
}

#[tokio::test]
async fn every_key_has_a_ttl_and_expires() {
    let server = Server::start();
    let prefix = prefix();
    let store = RedisStore::builder(server.url())
        .no_fallback()
        .prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .concurrency_slot_ttl(Duration::from_millis(200))
        .build()
        .expect("store");
    let mut raw = server.raw().await;
    let limits = [
        store.bind(&short("g", AlgorithmKind::Gcra)),
        store.bind(&short("f", AlgorithmKind::FixedWindow)),
        store.bind(&short("s", AlgorithmKind::SlidingWindow)),
        store.bind(&short("l", AlgorithmKind::SlidingLog)),
        store.bind(&concurrent("c", 3)),
    ];
    let k = key("client");
    let charges: Vec<_> = limits.iter().map(|h| Charge::new(h, &k, 1)).collect();
    let verdict = check(&store, &charges).await.expect("check");
    assert!(verdict.decision.is_allowed());
    // Keep the lease: only its expiry may end it here.
    let permits = verdict.permits;
    let names = keys(&mut raw, &prefix).await;
    // GCRA, one fixed window, one sliding window counter, the log and its
    // sum, the leases and their sum.
    assert_eq!(names.len(), 7, "{names:?}");
    for name in &names {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(name)
            .query_async(&mut raw)
            .await
            .expect("PTTL");
        // A 200 ms window may have ended (and its key gone, -2) since the
        // check; no key may lack a TTL (-1).
        let window = name.contains("@fw:") || name.contains("@sw:");
        assert!(
            (ttl > 0 || (window && ttl == -2)) && ttl <= 401,
            "{name}: PTTL {ttl}"
        );
    }
    // Sliding window counters live two periods; everything is gone after.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let left = keys(&mut raw, &prefix).await;
    assert!(left.is_empty(), "still there: {left:?}");
    drop(permits);
}

#[tokio::test]
async fn names_hold_the_tag_and_policy_and_no_client_brace() {
    let server = Server::start();
    let prefix = prefix();
    let store = server.store_with(&prefix, Duration::from_secs(2));
    let mut raw = server.raw().await;
    let limit = store.bind(
        &Limit::new(
            "basic-minute",
            "5/minute".parse().expect("quota"),
            AlgorithmKind::Gcra,
        )
        .expect("limit"),
    );
    let sneaky = key("}{other}");
    let ip = Key::ip("192.0.2.1".parse().expect("ip"));
    for k in [&sneaky, &ip] {
        check(&store, &[Charge::new(&limit, k, 1)])
            .await
            .expect("check");
    }
    let names = keys(&mut raw, &prefix).await;
    assert_eq!(
        names,
        [
            format!("{prefix}:{{b7d7b6f746865727d}}:basic-minute@gcra"),
            format!("{prefix}:{{i00000000000000000000ffffc0000201}}:basic-minute@gcra"),
        ]
    );
}

/// Stores with the same prefix share counters; another prefix counts apart.
#[tokio::test]
async fn the_prefix_names_the_counters() {
    let server = Server::start();
    let shared = prefix();
    let a = server.store_with(&shared, Duration::from_secs(2));
    let b = server.store_with(&shared, Duration::from_secs(2));
    let other = server.store();
    let limit = Limit::new(
        "api",
        "2/minute".parse().expect("quota"),
        AlgorithmKind::Gcra,
    )
    .expect("limit");
    let k = key("client");
    for (store, expected) in [
        (&a, true),
        (&b, true),
        (&a, false),
        (&b, false),
        (&other, true),
    ] {
        let handle = store.bind(&limit);
        let d = check(store, &[Charge::new(&handle, &k, 1)])
            .await
            .expect("check")
            .decision;
        assert_eq!(d.is_allowed(), expected);
    }
}
