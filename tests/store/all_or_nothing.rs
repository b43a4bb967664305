//! Several charges per check: all are taken, or none.

use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::store::{Charge, MemoryStore, Store};
use tollgate::{Plans, StoreError};

use crate::support::{
    check, concurrent, decide, ip, key, peek, rate, room, store, Spec, ALL_SPECS, RATE_KINDS,
};

#[test]
fn a_day_limit_refusal_leaves_the_minute_limit_uncharged() {
    for kind in RATE_KINDS {
        let clock = ManualClock::new();
        let store = store(&clock);
        let plans = Plans::builder()
            .tier("basic", "10/minute; 3/day")
            .algorithm(kind)
            .build()
            .expect("plans");
        let limits = plans.tier("basic").limits();
        let minute = store.bind(&limits[0]);
        let day = store.bind(&limits[1]);
        let api_key = key("ak_basic");
        let charges = [
            Charge::new(&minute, &api_key, 1),
            Charge::new(&day, &api_key, 1),
        ];

        for left in (0..3).rev() {
            let allowed = decide(&store, &charges);
            assert!(allowed.is_allowed(), "{kind}");
            // The tighter limit is the one reported.
            assert_eq!((allowed.policy(), allowed.remaining()), (1, left), "{kind}");
        }
        for _ in 0..20 {
            let denied = decide(&store, &charges);
            assert!(!denied.is_allowed(), "{kind}");
            assert_eq!((denied.policy(), denied.limit()), (1, 3), "{kind}");
        }
        // The minute limit was charged for the 3 admitted requests only.
        assert_eq!(room(&store, &minute, &api_key, 10), 7, "{kind}");
        assert!(peek(&store, &[Charge::new(&minute, &api_key, 7)]).is_allowed());
        assert!(!peek(&store, &[Charge::new(&minute, &api_key, 8)]).is_allowed());
        assert_eq!(room(&store, &day, &api_key, 3), 0, "{kind}");
    }
}

#[test]
fn an_ip_limit_refusal_leaves_the_api_key_limit_uncharged_and_vice_versa() {
    for kind in RATE_KINDS {
        let clock = ManualClock::new();
        let store = store(&clock);
        let per_key = store.bind(&rate("per-key", "5/minute", kind));
        let per_ip = store.bind(&rate("per-ip", "8/minute", kind));
        let (alice, bob) = (key("ak_alice"), key("ak_bob"));
        let shared_ip = ip(192, 0, 2, 7);
        let alice_req = [
            Charge::new(&per_key, &alice, 1),
            Charge::new(&per_ip, &shared_ip, 1),
        ];
        let bob_req = [
            Charge::new(&per_key, &bob, 1),
            Charge::new(&per_ip, &shared_ip, 1),
        ];

        for _ in 0..5 {
            assert!(decide(&store, &alice_req).is_allowed(), "{kind}");
        }
        // Alice's key limit refuses: the IP is not charged for these.
        for _ in 0..10 {
            let denied = decide(&store, &alice_req);
            assert!(!denied.is_allowed());
            assert_eq!(denied.policy(), 0, "{kind}");
        }
        assert_eq!(room(&store, &per_ip, &shared_ip, 8), 3, "{kind}");

        // Bob gets the IP's last 3, then the IP limit refuses him and his
        // own key limit is not charged for the refusals.
        for _ in 0..3 {
            assert!(decide(&store, &bob_req).is_allowed(), "{kind}");
        }
        for _ in 0..10 {
            let denied = decide(&store, &bob_req);
            assert!(!denied.is_allowed());
            assert_eq!(denied.policy(), 1, "{kind}");
        }
        assert_eq!(room(&store, &per_key, &bob, 5), 2, "{kind}");
        assert_eq!(room(&store, &per_key, &alice, 5), 0, "{kind}");
        assert_eq!(room(&store, &per_ip, &shared_ip, 8), 0, "{kind}");
    }
}

/// The same limit and key twice in one check: judged as one charge of the
/// summed cost (named by its first place), which does not fit, so nothing
/// is charged.
#[test]
fn a_charge_taken_before_a_later_refusal_is_rolled_back() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = store(&clock);
        let handle = store.bind(&spec.limit("twice", 3));
        let k = key("client");
        let twice = [Charge::new(&handle, &k, 1), Charge::new(&handle, &k, 1)];

        let first = check(&store, &twice).expect("answered");
        assert!(first.decision.is_allowed(), "{spec:?}");
        // One charge of 2: a concurrency limit holds one permit of 2 slots.
        let expected_permits = if spec == Spec::Concurrent { 1 } else { 0 };
        assert_eq!(first.permits.len(), expected_permits, "{spec:?}");
        assert_eq!(room(&store, &handle, &k, 3), 1, "{spec:?}");

        // Each charge alone would fit; together (2 units, 1 left) they do not.
        let second = check(&store, &twice).expect("answered");
        assert!(!second.decision.is_allowed(), "{spec:?}");
        assert_eq!(second.decision.policy(), 0, "{spec:?}");
        assert!(second.permits.is_empty(), "{spec:?}");
        drop(second);
        assert_eq!(room(&store, &handle, &k, 3), 1, "{spec:?}");
        drop(first);
        let full = if spec == Spec::Concurrent { 3 } else { 1 };
        assert_eq!(room(&store, &handle, &k, 3), full, "{spec:?}");
    }
}

#[test]
fn a_rate_refusal_takes_no_concurrency_permit() {
    let clock = ManualClock::new();
    let store = store(&clock);
    let slots = store.bind(&concurrent("uploads", 2));
    let rate = store.bind(&rate("upload-rate", "1/minute", AlgorithmKind::Gcra));
    let k = key("uploader");
    let charges = [Charge::new(&slots, &k, 1), Charge::new(&rate, &k, 1)];

    let admitted = check(&store, &charges).expect("answered");
    assert!(admitted.decision.is_allowed());
    assert_eq!(admitted.permits.len(), 1);
    for _ in 0..5 {
        let refused = check(&store, &charges).expect("answered");
        assert!(!refused.decision.is_allowed());
        assert_eq!(refused.decision.policy(), 1);
        assert!(refused.permits.is_empty());
    }
    assert_eq!(room(&store, &slots, &k, 2), 1);
    drop(admitted);
    assert_eq!(room(&store, &slots, &k, 2), 2);
}

/// A store error on a later charge rolls back the earlier ones too.
#[test]
fn a_full_store_on_the_second_key_leaves_the_first_uncharged() {
    for spec in ALL_SPECS {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .max_keys(2)
            // Keys used once stay: this test needs the store to stay full.
            .forget_under_pressure(0)
            .build();
        let per_key = store.bind(&spec.limit("per-key", 5));
        let per_ip = store.bind(&rate("per-ip", "100/minute", AlgorithmKind::Gcra));
        let api = key("ak_1");
        let (home, cafe) = (ip(198, 51, 100, 1), ip(203, 0, 113, 9));

        let first = check(
            &store,
            &[
                Charge::new(&per_key, &api, 1),
                Charge::new(&per_ip, &home, 1),
            ],
        )
        .expect("room for two keys");
        assert!(first.decision.is_allowed());
        assert_eq!(store.len(), 2);

        let from_cafe = [
            Charge::new(&per_key, &api, 1),
            Charge::new(&per_ip, &cafe, 1),
        ];
        for _ in 0..3 {
            match check(&store, &from_cafe) {
                Err(StoreError::Full { max_keys }) => assert_eq!(max_keys, 2),
                other => panic!("{spec:?}: expected Full, got {other:?}"),
            }
        }
        assert_eq!(store.len(), 2);
        assert_eq!(room(&store, &per_key, &api, 5), 4, "{spec:?}");
        drop(first);
    }
}

#[test]
fn an_empty_check_is_unlimited_and_charges_nothing() {
    let clock = ManualClock::new();
    let store = store(&clock);
    let verdict = check(&store, &[]).expect("answered");
    assert!(verdict.decision.is_allowed());
    assert_eq!(verdict.decision.policy(), usize::MAX);
    assert!(store.is_empty());
}

/// One limit charged twice in one check (the same handle and key) is
/// judged as one charge of the summed cost, on every algorithm: the same
/// decision as that single charge on a store in the same state (an outside
/// differential check found the retry-after of one part, 69 ms where
/// 269 ms was needed, and a request that can never pass not seen as such).
#[test]
fn a_limit_charged_twice_in_one_check_is_judged_as_the_summed_charge() {
    use crate::support;
    for kind in [
        AlgorithmKind::Gcra,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::SlidingWindow,
        AlgorithmKind::SlidingLog,
    ] {
        for (spent, parts) in [(0u64, [3u64, 3]), (3, [1, 2]), (1, [2, 2]), (0, [2, 3])] {
            let clock = ManualClock::new();
            clock.set(1_000 * support::MS);
            let (twice, once) = (support::store(&clock), support::store(&clock));
            let limit = support::rate("p", "5/second", kind);
            let (h2, h1) = (twice.bind(&limit), once.bind(&limit));
            let key = support::key("client");
            if spent > 0 {
                assert!(support::decide(&twice, &[Charge::new(&h2, &key, spent)]).is_allowed());
                assert!(support::decide(&once, &[Charge::new(&h1, &key, spent)]).is_allowed());
            }
            clock.advance(std::time::Duration::from_millis(69));
            let split = [
                Charge::new(&h2, &key, parts[0]),
                Charge::new(&h2, &key, parts[1]),
            ];
            let whole = [Charge::new(&h1, &key, parts[0] + parts[1])];
            let (a, b) = (
                support::decide(&twice, &split),
                support::decide(&once, &whole),
            );
            let what = format!("{kind:?}, {spent} spent, {parts:?}");
            assert_eq!(a.is_allowed(), b.is_allowed(), "{what}");
            assert_eq!(a.retry_after(), b.retry_after(), "{what}");
            assert_eq!(a.is_impossible(), b.is_impossible(), "{what}");
            assert_eq!(a.remaining(), b.remaining(), "{what}");
            assert_eq!(a.policy(), 0, "{what}: the first place names it");
            if parts[0] + parts[1] > 5 {
                assert!(a.is_impossible(), "{what}: can never pass");
            }
            // Peeks too.
            let (pa, pb) = (support::peek(&twice, &split), support::peek(&once, &whole));
            assert_eq!(pa.is_allowed(), pb.is_allowed(), "{what}: peek");
            assert_eq!(pa.retry_after(), pb.retry_after(), "{what}: peek");
        }
    }
}
