//! Delay mode over several limits in the memory store, against the
//! definition of a rate: each GCRA limit counts a request at the instant it
//! passes (arrival + the check's wait), and no interval of length L holds
//! more than `L / T + burst` of any limit's units. Checked on random
//! traces of two clients, each charging its own queued limit and one shared
//! limit, some waiters leaving before their turn.

use std::time::Duration;

use proptest::prelude::*;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::Key;
use tollgate::store::{Charge, Checked, MemoryStore, Store, Verdict};
use tollgate::{Limit, Quota};

fn limit(name: &str, quota: &str) -> Limit {
    let quota: Quota = quota.parse().expect("quota");
    Limit::new(name, quota, AlgorithmKind::Gcra).expect("limit")
}

fn check(
    store: &MemoryStore<ManualClock>,
    charges: &[Charge<'_, tollgate::store::MemoryHandle>],
) -> Verdict {
    match store.check(charges) {
        Checked::Ready(result) => result.expect("memory store answers"),
        Checked::Pending(_) => unreachable!("the memory store answers at once"),
    }
}

/// Every window `[start, end]` of the passes of one limit holds at most
/// `(end - start) / t + burst` units.
fn conforms(passes: &mut [(u64, u64)], t: u64, burst: u64) -> Result<(), String> {
    passes.sort_unstable();
    for (i, &(start, _)) in passes.iter().enumerate() {
        let mut units = 0;
        for &(end, cost) in &passes[i..] {
            units += cost;
            let bound = (end - start) / t + burst;
            if units > bound {
                return Err(format!("{units} units in [{start}, {end}], bound {bound}"));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_limit_holds_its_rate_at_the_instants_requests_pass(
        steps in proptest::collection::vec((0u64..160, 0usize..2, 1u64..3, any::<bool>()), 1..120),
        queue in 1u64..6,
        shared_burst in 1u64..4,
    ) {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(1));
        let store = MemoryStore::builder().clock(clock.clone()).build();
        // Each client: 10/second (T = 100 ms), two at once, a queue; both
        // share 8/second (T = 125 ms) with a small burst and no queue.
        let own = store.bind(&limit("own", &format!("10/second burst 2 queue {queue}")));
        let shared = store.bind(&limit("shared", &format!("8/second burst {shared_burst}")));
        let clients = [Key::owned("a", "t").expect("key"), Key::owned("b", "t").expect("key")];
        let all = Key::owned("all", "t").expect("key");
        let mut own_passes: [Vec<(u64, u64)>; 2] = [Vec::new(), Vec::new()];
        let mut shared_passes = Vec::new();
        for (gap_ms, who, cost, leaves) in steps {
            clock.advance(Duration::from_millis(gap_ms));
            let now = tollgate::clock::Clock::now(&clock);
            let charges = [
                Charge::new(&own, &clients[who], cost),
                Charge::new(&shared, &all, cost),
            ];
            let verdict = check(&store, &charges);
            if !verdict.decision.is_allowed() {
                continue;
            }
            let delay = verdict.decision.delay();
            let own_wait = Duration::from_nanos(queue * 100_000_000);
            prop_assert!(delay <= own_wait, "waited {delay:?}, queue allows {own_wait:?}");
            if leaves && delay > Duration::ZERO {
                // The client goes away before its turn.
                store.cancel(&charges, verdict.receipt.expect("receipt"), delay);
                continue;
            }
            let passes = now + u64::try_from(delay.as_nanos()).expect("ns");
            own_passes[who].push((passes, cost));
            shared_passes.push((passes, cost));
        }
        for passes in &mut own_passes {
            prop_assert!(conforms(passes, 100_000_000, 2).is_ok(), "{:?}", conforms(passes, 100_000_000, 2));
        }
        let shared_ok = conforms(&mut shared_passes, 125_000_000, shared_burst);
        prop_assert!(shared_ok.is_ok(), "shared: {shared_ok:?}");
    }
}
