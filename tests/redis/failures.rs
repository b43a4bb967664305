//! Redis away: errors within the timeout, never a panic, and recovery
//! without a new store once it is back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate::algorithm::AlgorithmKind;
use tollgate::store::{Charge, Store};
use tollgate::StoreError;

use crate::support::{check, free_port, key, prefix, rate, Server};

/// What the load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    timeouts: AtomicU64,
    unavailable: AtomicU64,
    /// The longest a failing check took, in µs.
    slowest_failure_us: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_load_then_restarted() {
    let mut server = Server::own();
    let timeout = Duration::from_millis(50);
    let store = server.store_with(&prefix(), timeout);
    let limit = store.bind(&rate("api", "1000000/minute", AlgorithmKind::Gcra));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut load = Vec::new();
    for t in 0..8 {
        let (store, limit, stop, tally) = (
            store.clone(),
            limit.clone(),
            Arc::clone(&stop),
            Arc::clone(&tally),
        );
        load.push(tokio::spawn(async move {
            let k = key(&format!("client-{t}"));
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                match check(&store, &[Charge::new(&limit, &k, 1)]).await {
                    Ok(v) => {
                        assert!(v.decision.is_allowed());
                        tally.ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                        tally.slowest_failure_us.fetch_max(us, Ordering::SeqCst);
                        match e {
                            StoreError::Timeout(_) => tally.timeouts.fetch_add(1, Ordering::SeqCst),
                            StoreError::Unavailable(_) => {
                                tally.unavailable.fetch_add(1, Ordering::SeqCst)
                            }
                            other => panic!("unexpected error {other}"),
                        };
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    let wait_for_ok = |tally: Arc<Tally>, more_than: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tally.ok.load(Ordering::SeqCst) <= more_than {
            assert!(Instant::now() < deadline, "no check succeeded within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    wait_for_ok(Arc::clone(&tally), 50).await;

    server.kill();
    let killed_at = tally.ok.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let failed = tally.timeouts.load(Ordering::SeqCst) + tally.unavailable.load(Ordering::SeqCst);
    assert!(failed > 0, "checks fail while Redis is down");
    // A few checks in flight at the kill may still have succeeded.
    let ok_while_down = tally.ok.load(Ordering::SeqCst) - killed_at;
    assert!(
        ok_while_down <= 8,
        "{ok_while_down} checks passed with Redis down"
    );

    server.restart();
    let recovered_from = tally.ok.load(Ordering::SeqCst);
    wait_for_ok(Arc::clone(&tally), recovered_from + 50).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.expect("no panic in the load");
    }
    // Every failure answered within the timeout and a margin for a loaded
    // two-core machine.
    let slowest = Duration::from_micros(tally.slowest_failure_us.load(Ordering::SeqCst));
    assert!(
        slowest <= timeout + Duration::from_millis(100),
        "a failing check took {slowest:?}"
    );
}

#[tokio::test]
async fn nothing_listening_is_an_error_within_the_timeout() {
    let timeout = Duration::from_millis(30);
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let store = tollgate::store::RedisStore::builder(url)
        .no_fallback()
        .timeout(timeout)
        .build()
        .expect("store");
    let limit = store.bind(&rate("api", "5/minute", AlgorithmKind::Gcra));
    let k = key("client");
    for _ in 0..5 {
        let started = Instant::now();
        let result = check(&store, &[Charge::new(&limit, &k, 1)]).await;
        assert!(
            matches!(
                result,
                Err(StoreError::Timeout(_) | StoreError::Unavailable(_))
            ),
            "{result:?}"
        );
        assert!(started.elapsed() <= timeout + Duration::from_millis(100));
    }
}
