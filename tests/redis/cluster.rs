//! A Redis Cluster of three primaries the test starts itself: each check
//! runs in its client key's slot, wherever that lives.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::store::{Charge, RedisStore, Store};
use tollgate::StoreError;

use crate::support::{check, concurrent, key, prefix, rate, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_in_every_slot() {
    let cluster = Cluster::start();
    let prefix = prefix();
    let store = RedisStore::builder(cluster.url())
        .prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("cluster store");
    let limits = [
        store.bind(&rate("g", "3/minute", AlgorithmKind::Gcra)),
        store.bind(&rate("f", "3/hour", AlgorithmKind::FixedWindow)),
        store.bind(&rate("s", "3/hour", AlgorithmKind::SlidingWindow)),
        store.bind(&rate("l", "3/hour", AlgorithmKind::SlidingLog)),
        store.bind(&concurrent("c", 3)),
    ];
    let mut held = Vec::new();
    let clients: Vec<_> = (0..12).map(|i| key(&format!("client-{i}"))).collect();
    for (round, client) in clients.iter().enumerate() {
        let charges: Vec<_> = limits.iter().map(|h| Charge::new(h, client, 1)).collect();
        for expected in [true, true, true, false] {
            let verdict = check(&store, &charges).await.expect("cluster check");
            assert_eq!(verdict.decision.is_allowed(), expected, "client {round}");
            held.push(verdict.permits);
        }
        if round == 5 {
            // Forgotten scripts are loaded again on whichever node asks.
            for url in cluster.node_urls() {
                let mut raw = redis::Client::open(url.as_str())
                    .expect("node url")
                    .get_multiplexed_async_connection()
                    .await
                    .expect("node");
                let () = redis::cmd("SCRIPT")
                    .arg("FLUSH")
                    .query_async(&mut raw)
                    .await
                    .expect("SCRIPT FLUSH");
            }
        }
    }
    // The clients' counters are spread over the nodes.
    let mut nodes_used = 0;
    for url in cluster.node_urls() {
        let mut raw = redis::Client::open(url.as_str())
            .expect("node url")
            .get_multiplexed_async_connection()
            .await
            .expect("node");
        let size: u64 = redis::cmd("DBSIZE")
            .query_async(&mut raw)
            .await
            .expect("DBSIZE");
        nodes_used += usize::from(size > 0);
    }
    assert!(nodes_used >= 2, "12 clients landed on {nodes_used} node(s)");

    // Several client keys in one check: refused whole, never checked partly.
    let ip = tollgate::key::Key::ip("192.0.2.1".parse().expect("ip"));
    let fresh = key("fresh");
    let mixed = [
        Charge::new(&limits[0], &fresh, 1),
        Charge::new(&limits[0], &ip, 1),
    ];
    assert!(matches!(
        check(&store, &mixed).await,
        Err(StoreError::Unavailable(_))
    ));
}
