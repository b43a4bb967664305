//! A Redis Cluster of three primaries the test starts itself: each check
//! runs in its client key's slot, wherever that lives; a check over client
//! keys in several slots runs part by part, all or nothing.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::store::redis::TokenLease;
use tollgate::store::{Charge, RedisStore, Store};

use crate::support::{check, concurrent, key, peek, prefix, rate, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_in_every_slot() {
    let cluster = Cluster::start();
    let prefix = prefix();
    let store = RedisStore::builder(cluster.url())
        .no_fallback()
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

    // Several client keys in one check: checked slot by slot.
    let ip = Key::ip("192.0.2.1".parse().expect("ip"));
    let fresh = key("fresh");
    let mixed = [
        Charge::new(&limits[0], &fresh, 1),
        Charge::new(&limits[0], &ip, 1),
    ];
    for expected in [true, true, true, false] {
        let d = check(&store, &mixed).await.expect("check").decision;
        assert_eq!(d.is_allowed(), expected);
    }
}

/// The node (index) holding keys that match `pattern`, if one does.
async fn node_holding(cluster: &Cluster, pattern: &str) -> Option<usize> {
    for (i, url) in cluster.node_urls().iter().enumerate() {
        let mut raw = node(url).await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(pattern)
            .query_async(&mut raw)
            .await
            .expect("KEYS");
        if !keys.is_empty() {
            return Some(i);
        }
    }
    None
}

async fn node(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("node url")
        .get_multiplexed_async_connection()
        .await
        .expect("node")
}

/// The value of `key` on whichever node holds it (0 when none does).
async fn count_of(cluster: &Cluster, key: &str) -> u64 {
    let mut total = 0;
    for url in cluster.node_urls() {
        let mut raw = node(&url).await;
        let found: Option<u64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap_or(None);
        total += found.unwrap_or(0);
    }
    total
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A check over an API key and an IP whose counters live on different
/// nodes: taken part by part; a refusal in the later part undoes the
/// earlier one, for every algorithm; concurrent checks never admit past
/// either quota and leave both counters equal; leased mode refills per
/// slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_over_several_slots_are_all_or_nothing() {
    let cluster = Cluster::start();
    let prefix = prefix();
    let store = RedisStore::builder(cluster.url())
        .no_fallback()
        .prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("cluster store");
    // The API key's tag ("b...") sorts before any IP's ("i..."): its part
    // is taken first and undone when the IP's refuses.
    let api = key("api-key-1");
    let api_tag = format!("b{}", hex(b"api-key-1"));
    let probe = store.bind(&rate("probe", "100/hour", AlgorithmKind::Gcra));
    check(&store, &[Charge::new(&probe, &api, 1)])
        .await
        .expect("check");
    let api_node = node_holding(&cluster, &format!("{prefix}:{{{api_tag}}}:*"))
        .await
        .expect("the API key's counter");
    let mut ip = None;
    for last in 1..=50u8 {
        let candidate = Key::ip(std::net::IpAddr::from([198, 51, 100, last]));
        check(&store, &[Charge::new(&probe, &candidate, 1)])
            .await
            .expect("check");
        let tag = format!("i00000000000000000000ffffc63364{last:02x}");
        if node_holding(&cluster, &format!("{prefix}:{{{tag}}}:*")).await != Some(api_node) {
            ip = Some((candidate, tag));
            break;
        }
    }
    let (ip, ip_tag) = ip.expect("an IP whose counters live on another node");

    let per_key = [
        store.bind(&rate("k-gcra", "10/hour", AlgorithmKind::Gcra)),
        store.bind(&rate("k-fw", "10/day", AlgorithmKind::FixedWindow)),
        store.bind(&rate("k-sw", "10/hour", AlgorithmKind::SlidingWindow)),
        store.bind(&rate("k-log", "10/hour", AlgorithmKind::SlidingLog)),
        store.bind(&concurrent("k-slots", 10)),
    ];
    let per_ip = store.bind(&rate("ip", "2/hour", AlgorithmKind::SlidingLog));
    let mut charges: Vec<_> = per_key.iter().map(|h| Charge::new(h, &api, 1)).collect();
    charges.push(Charge::new(&per_ip, &ip, 1));
    let mut held = Vec::new();
    for _ in 0..2 {
        let v = check(&store, &charges).await.expect("check");
        assert!(v.decision.is_allowed());
        assert_eq!(v.permits.len(), 1, "the concurrency slot's permit");
        held.push(v.permits);
    }
    for _ in 0..3 {
        let v = check(&store, &charges).await.expect("check");
        assert!(!v.decision.is_allowed());
        assert_eq!(v.decision.policy(), 5, "the per-IP limit refuses");
        assert!(v.permits.is_empty());
    }
    // Every per-key limit counts the two admitted checks only.
    for (i, h) in per_key.iter().enumerate() {
        let d = peek(&store, &[Charge::new(h, &api, 1)])
            .await
            .expect("peek")
            .decision;
        assert!(d.is_allowed());
        assert_eq!(
            d.remaining(),
            10 - 2 - 1,
            "limit {i}: 2 charged, 1 on this look"
        );
    }
    drop(held);

    // Concurrent checks over both keys: never past either quota; every
    // refused check's part undone, so both counters agree.
    let fw_key = store.bind(&rate("c-key", "30/day", AlgorithmKind::FixedWindow));
    let fw_ip = store.bind(&rate("c-ip", "12/day", AlgorithmKind::FixedWindow));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let (fw_key, fw_ip) = (fw_key.clone(), fw_ip.clone());
        let (api, ip) = (api.clone().into_owned(), ip.clone().into_owned());
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0u64;
            for _ in 0..4 {
                let charges = [Charge::new(&fw_key, &api, 1), Charge::new(&fw_ip, &ip, 1)];
                if check(&store, &charges)
                    .await
                    .expect("check")
                    .decision
                    .is_allowed()
                {
                    admitted += 1;
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.expect("task");
    }
    assert!(
        admitted <= 12,
        "{admitted} admitted past the IP's quota of 12"
    );
    let day = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs())
        / 86_400;
    let key_count = count_of(&cluster, &format!("{prefix}:{{{api_tag}}}:c-key@fw:{day}")).await;
    let ip_count = count_of(&cluster, &format!("{prefix}:{{{ip_tag}}}:c-ip@fw:{day}")).await;
    assert_eq!(
        (key_count, ip_count),
        (admitted, admitted),
        "both counters hold exactly the admitted checks"
    );

    // Leased mode over both keys: a lease per slot, spent locally.
    let leased = RedisStore::builder(cluster.url())
        .no_fallback()
        .prefix(prefix.as_str())
        .timeout(Duration::from_secs(2))
        .leased(TokenLease::new(4))
        .build()
        .expect("leased cluster store");
    let l_key = leased.bind(&rate("l-key", "100/hour", AlgorithmKind::Gcra));
    let l_ip = leased.bind(&rate("l-ip", "6/day", AlgorithmKind::FixedWindow));
    let charges = [Charge::new(&l_key, &api, 1), Charge::new(&l_ip, &ip, 1)];
    let mut passed = 0;
    for _ in 0..10 {
        if check(&leased, &charges)
            .await
            .expect("check")
            .decision
            .is_allowed()
        {
            passed += 1;
        }
    }
    assert_eq!(passed, 6, "the IP's quota, through leases");
    let stats = leased.lease_stats();
    assert!(stats.local >= 3 && stats.per_request == 0, "{stats:?}");
}
