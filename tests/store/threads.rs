//! Many OS threads on one key and a frozen clock admit exactly the quota.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use tollgate::clock::ManualClock;
use tollgate::key::Key;
use tollgate::store::{Charge, MemoryHandle, Store, Verdict};

use crate::support::{check, ip, key, room, store, Spec, TestStore, ALL_SPECS};

const THREADS: usize = 8;

/// Runs `attempts` checks of `charges` on each of [`THREADS`] threads and
/// answers the admitted verdicts (their permits still held).
fn hammer(
    store: &TestStore,
    charges: &[Charge<'_, MemoryHandle>],
    attempts: usize,
) -> Vec<Verdict> {
    thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    let mut admitted = Vec::new();
                    for _ in 0..attempts {
                        let verdict = check(store, charges).expect("answered");
                        if verdict.decision.is_allowed() {
                            admitted.push(verdict);
                        }
                    }
                    admitted
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    })
}

#[test]
fn one_key_admits_exactly_the_quota_for_each_algorithm() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = store(&clock);
        let handle = store.bind(&spec.limit("hammered", 100));
        let k = key("hot-key");
        let admitted = hammer(&store, &[Charge::new(&handle, &k, 1)], 1_000);
        assert_eq!(admitted.len(), 100, "{spec:?}");
        assert_eq!(room(&store, &handle, &k, 100), 0, "{spec:?}");
        drop(admitted);
        let after = if spec == Spec::Concurrent { 100 } else { 0 };
        assert_eq!(room(&store, &handle, &k, 100), after, "{spec:?}");
    }
}

#[test]
fn costs_above_one_never_overshoot_the_quota() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = store(&clock);
        let handle = store.bind(&spec.limit("hammered", 100));
        let k = key("hot-key");
        // 3 does not divide 100: 33 admitted, 1 unit left over.
        let admitted = hammer(&store, &[Charge::new(&handle, &k, 3)], 500);
        assert_eq!(admitted.len(), 33, "{spec:?}");
        assert_eq!(room(&store, &handle, &k, 100), 1, "{spec:?}");
    }
}

/// Key layouts for the multi-limit hammer.
#[derive(Debug, Clone, Copy)]
enum Keys {
    Same,
    ApiKeyAndIp,
}

/// Limits of 50 and 80 on each pair of algorithms, in both orders, on one
/// key and across two: exactly 50 admitted, and the 80 limit charged for
/// exactly those 50 (refused requests rolled back, under contention).
#[test]
fn two_limits_admit_exactly_the_smaller_quota_and_charge_the_other_exactly() {
    for tight in ALL_SPECS {
        for loose in ALL_SPECS {
            for keys in [Keys::Same, Keys::ApiKeyAndIp] {
                for tight_first in [true, false] {
                    let case = format!(
                        "tight {tight:?} loose {loose:?} {keys:?} tight first {tight_first}"
                    );
                    let clock = ManualClock::new();
                    let store = store(&clock);
                    let fifty = store.bind(&tight.limit("fifty", 50));
                    let eighty = store.bind(&loose.limit("eighty", 80));
                    let api: Key<'static> = key("ak_shared");
                    let addr = ip(10, 0, 0, 1);
                    let loose_key = match keys {
                        Keys::Same => &api,
                        Keys::ApiKeyAndIp => &addr,
                    };
                    let a = Charge::new(&fifty, &api, 1);
                    let b = Charge::new(&eighty, loose_key, 1);
                    let charges = if tight_first { [a, b] } else { [b, a] };

                    let admitted = hammer(&store, &charges, 250);
                    assert_eq!(admitted.len(), 50, "{case}");
                    assert_eq!(room(&store, &fifty, &api, 50), 0, "{case}");
                    assert_eq!(room(&store, &eighty, loose_key, 80), 30, "{case}");
                    drop(admitted);
                    let fifty_after = if tight == Spec::Concurrent { 50 } else { 0 };
                    let eighty_after = if loose == Spec::Concurrent { 80 } else { 30 };
                    assert_eq!(room(&store, &fifty, &api, 50), fifty_after, "{case}");
                    assert_eq!(room(&store, &eighty, loose_key, 80), eighty_after, "{case}");
                }
            }
        }
    }
}

#[test]
fn concurrency_permits_never_exceed_the_limit_and_all_come_back() {
    for (limit, cost) in [(3u64, 1u64), (5, 2)] {
        let clock = ManualClock::new();
        let store = store(&clock);
        let handle = store.bind(&Spec::Concurrent.limit("slots", limit));
        let k = key("slots-key");
        let charges = [Charge::new(&handle, &k, cost)];
        let held = AtomicUsize::new(0);
        let max_held = AtomicUsize::new(0);
        let admitted = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for i in 0..1_000 {
                        let verdict = check(&store, &charges).expect("answered");
                        if !verdict.decision.is_allowed() {
                            continue;
                        }
                        admitted.fetch_add(1, Ordering::Relaxed);
                        let now = held.fetch_add(cost as usize, Ordering::SeqCst) + cost as usize;
                        max_held.fetch_max(now, Ordering::SeqCst);
                        if i % 7 == 0 {
                            thread::yield_now();
                        }
                        held.fetch_sub(cost as usize, Ordering::SeqCst);
                        drop(verdict);
                    }
                });
            }
        });
        let max_held = max_held.load(Ordering::SeqCst);
        assert!(max_held <= limit as usize, "held {max_held} of {limit}");
        assert!(max_held >= cost as usize);
        assert!(admitted.load(Ordering::Relaxed) > 0);
        // Every permit came back: a later check admits the full limit.
        let full = check(&store, &[Charge::new(&handle, &k, limit)]).expect("answered");
        assert!(full.decision.is_allowed());
        assert_eq!(full.permits.len(), 1);
    }
}
