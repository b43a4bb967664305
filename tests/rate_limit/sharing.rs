//! Every clone of the layer and every service made from it share one set of
//! counters.

use http::StatusCode;
use tollgate::clock::ManualClock;
use tower::Layer;

use crate::support::{from, layer, respond, send, single, Calls, Ok200, PEER};

#[tokio::test]
async fn clones_and_services_admit_the_quota_once() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let first = layer(single("api", "6/minute"), &clock);
    let second = first.clone();
    let mut services = [
        first.layer(Ok200::new(&calls)),
        first.layer(Ok200::new(&calls)),
        second.layer(Ok200::new(&calls)),
    ];
    // A clone of a service made before any request shares too.
    let mut cloned = services[0].clone();

    let mut admitted = 0;
    for round in 0..4 {
        for svc in services.iter_mut() {
            if send(svc, from(PEER)).await.status == StatusCode::OK {
                admitted += 1;
            }
        }
        if send(&mut cloned, from(PEER)).await.status == StatusCode::OK {
            admitted += 1;
        }
        assert!(admitted <= 6, "round {round}: {admitted} admitted");
    }
    assert_eq!(admitted, 6, "the quota once over all clones");
    assert_eq!(calls.get(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_on_one_key_admit_exactly_the_quota() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let layer = layer(single("api", "25/minute"), &clock);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut svc = layer.clone().layer(Ok200::new(&calls));
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0_usize;
            for _ in 0..10 {
                let response = respond(&mut svc, from(PEER)).await;
                if response.status() == StatusCode::OK {
                    admitted += 1;
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += task.await.expect("task completes");
    }
    assert_eq!(admitted, 25);
    assert_eq!(calls.get(), 25);
}
