//! All or nothing over several limits and keys, exact quotas under
//! concurrency across two stores, and a script Redis has forgotten.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::store::{Charge, Store};

use crate::support::{check, concurrent, key, peek, rate, Server};

#[tokio::test]
async fn a_refusing_limit_charges_no_other() {
    let server = Server::start();
    let store = server.store();
    let minute = store.bind(&rate("minute", "10/minute", AlgorithmKind::Gcra));
    let day = store.bind(&rate("day", "2/day", AlgorithmKind::FixedWindow));
    let k = key("client");
    let both = [Charge::new(&minute, &k, 1), Charge::new(&day, &k, 1)];
    for remaining in [1, 0] {
        let d = check(&store, &both).await.expect("check").decision;
        assert!(d.is_allowed());
        assert_eq!((d.policy(), d.remaining()), (1, remaining));
    }
    for _ in 0..5 {
        let d = check(&store, &both).await.expect("check").decision;
        assert!(!d.is_allowed());
        assert_eq!(d.policy(), 1, "the day limit refuses");
    }
    // The refused checks took nothing from the minute limit.
    let d = peek(&store, &[Charge::new(&minute, &k, 1)])
        .await
        .expect("peek")
        .decision;
    assert_eq!(d.remaining(), 7, "two charged, one more on this look");
}

#[tokio::test]
async fn all_or_nothing_across_client_keys_and_algorithms() {
    let server = Server::start();
    let store = server.store();
    let per_key = store.bind(&rate("per-key", "5/minute", AlgorithmKind::SlidingLog));
    let per_ip = store.bind(&rate("per-ip", "2/minute", AlgorithmKind::SlidingWindow));
    let slots = store.bind(&concurrent("slots", 10));
    let api = key("ak_{}live");
    let ip = Key::ip("198.51.100.7".parse().expect("ip"));
    let charges = [
        Charge::new(&per_key, &api, 1),
        Charge::new(&slots, &api, 1),
        Charge::new(&per_ip, &ip, 1),
    ];
    let mut permits = Vec::new();
    for _ in 0..2 {
        let v = check(&store, &charges).await.expect("check");
        assert!(v.decision.is_allowed());
        assert_eq!(v.permits.len(), 1);
        permits.push(v.permits);
    }
    let refused = check(&store, &charges).await.expect("check");
    assert!(!refused.decision.is_allowed());
    assert_eq!(refused.decision.policy(), 2, "the per-IP limit refuses");
    assert!(refused.permits.is_empty());
    let key_left = peek(&store, &[Charge::new(&per_key, &api, 1)])
        .await
        .expect("peek")
        .decision
        .remaining();
    assert_eq!(key_left, 2, "5 - 2 charged - 1 on this look");
    let slots_left = peek(&store, &[Charge::new(&slots, &api, 1)])
        .await
        .expect("peek")
        .decision
        .remaining();
    assert_eq!(slots_left, 7, "two leases held, none for the refusal");
}

/// The same counter twice in one check counts twice.
#[tokio::test]
async fn one_counter_charged_twice_in_a_check() {
    let server = Server::start();
    let store = server.store();
    let limit = rate("twice", "3/minute", AlgorithmKind::Gcra);
    let a = store.bind(&limit);
    let b = store.bind(&limit);
    let k = key("client");
    let d = check(&store, &[Charge::new(&a, &k, 1), Charge::new(&b, &k, 1)])
        .await
        .expect("check")
        .decision;
    assert!(d.is_allowed());
    assert_eq!(d.remaining(), 1);
    let d = check(&store, &[Charge::new(&a, &k, 1), Charge::new(&b, &k, 1)])
        .await
        .expect("check")
        .decision;
    assert!(!d.is_allowed(), "1 left, 2 asked");
    assert!(check(&store, &[Charge::new(&a, &k, 1)])
        .await
        .expect("check")
        .decision
        .is_allowed());
}

/// Two stores (two connections, as two instances would have) and many tasks
/// on one key admit exactly the quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_quota_under_concurrency_across_two_stores() {
    let server = Server::start();
    let prefix = crate::support::prefix();
    let stores = [
        server.store_with(&prefix, std::time::Duration::from_secs(5)),
        server.store_with(&prefix, std::time::Duration::from_secs(5)),
    ];
    for (kind, quota) in [
        (AlgorithmKind::Gcra, 100),
        (AlgorithmKind::FixedWindow, 100),
        (AlgorithmKind::SlidingWindow, 100),
        (AlgorithmKind::SlidingLog, 100),
    ] {
        let limit = rate(&format!("hammer-{kind}"), &format!("{quota}/day"), kind);
        let admitted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for t in 0..32 {
            let store = stores[t % 2].clone();
            let handle = store.bind(&limit);
            let admitted = Arc::clone(&admitted);
            tasks.push(tokio::spawn(async move {
                let k = key("one-key");
                for _ in 0..6 {
                    let v = check(&store, &[Charge::new(&handle, &k, 1)])
                        .await
                        .expect("check");
                    if v.decision.is_allowed() {
                        admitted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        // 192 tries for 100 units (the day windows would only turn over
        // if the run straddled midnight UTC).
        assert_eq!(admitted.load(Ordering::SeqCst), quota, "{kind}");
    }
    let limit = concurrent("hammer-slots", 10);
    let admitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..32 {
        let store = stores[t % 2].clone();
        let handle = store.bind(&limit);
        let admitted = Arc::clone(&admitted);
        tasks.push(tokio::spawn(async move {
            let k = key("one-key");
            let mut held = Vec::new();
            for _ in 0..3 {
                let v = check(&store, &[Charge::new(&handle, &k, 1)])
                    .await
                    .expect("check");
                if v.decision.is_allowed() {
                    admitted.fetch_add(1, Ordering::SeqCst);
                    held.push(v.permits);
                }
            }
            held
        }));
    }
    let mut held = Vec::new();
    for task in tasks {
        held.push(task.await.expect("task"));
    }
    assert_eq!(admitted.load(Ordering::SeqCst), 10, "slots held at once");
}

#[tokio::test]
async fn a_flushed_script_is_loaded_again() {
    let server = Server::start();
    let store = server.store();
    let limit = store.bind(&rate("flush", "3/minute", AlgorithmKind::Gcra));
    let k = key("client");
    assert!(check(&store, &[Charge::new(&limit, &k, 1)])
        .await
        .expect("check")
        .decision
        .is_allowed());
    let mut raw = server.raw().await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .expect("SCRIPT FLUSH");
    let d = check(&store, &[Charge::new(&limit, &k, 1)])
        .await
        .expect("check after SCRIPT FLUSH")
        .decision;
    assert!(d.is_allowed());
    assert_eq!(d.remaining(), 1, "the counter survived the flush");
}
