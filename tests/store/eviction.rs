//! Eviction changes no answer: a store that forgets idle keys at every
//! chance answers exactly as one that never forgets.

use std::time::Duration;

use proptest::prelude::*;
use tollgate::clock::ManualClock;
use tollgate::key::Key;
use tollgate::store::{Charge, MemoryStore, Store, Verdict};

use crate::support::{check, ip, key, peek, Spec, ALL_SPECS, MS};

#[derive(Debug, Clone, Copy)]
enum Step {
    Check {
        key: usize,
        cost: u64,
    },
    Peek {
        key: usize,
        cost: u64,
    },
    /// Drops a held verdict (ends its concurrency permits).
    Release(usize),
    Sweep,
}

fn steps() -> impl Strategy<Value = Vec<(u64, Step)>> {
    let advance = prop_oneof![Just(0u64), 0..10 * MS, 0..3_000 * MS];
    let cost = prop_oneof![3 => Just(1u64), 1 => 1u64..=6];
    let step = prop_oneof![
        6 => (0..4usize, cost.clone()).prop_map(|(key, cost)| Step::Check { key, cost }),
        1 => (0..4usize, cost).prop_map(|(key, cost)| Step::Peek { key, cost }),
        2 => any::<usize>().prop_map(Step::Release),
        1 => Just(Step::Sweep),
    ];
    prop::collection::vec((advance, step), 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn forgetting_idle_keys_changes_no_answer(
        spec in prop::sample::select(ALL_SPECS.to_vec()),
        count in 1u64..=5,
        steps in steps(),
    ) {
        let clock = ManualClock::new();
        // Sweeps on every new key (and on request), never refuses one.
        let forgetful = MemoryStore::builder()
            .clock(clock.clone())
            .idle_sweep_every(Duration::ZERO)
            .full_sweep_gap(Duration::ZERO)
            .build();
        // Never sweeps.
        let keeper = MemoryStore::builder()
            .clock(clock.clone())
            .idle_sweep_every(Duration::MAX)
            .full_sweep_gap(Duration::MAX)
            .build();
        let limit = match spec {
            Spec::Rate(kind) => crate::support::rate("p", &format!("{count}/second"), kind),
            Spec::Concurrent => crate::support::concurrent("p", count),
        };
        let (f_limit, k_limit) = (forgetful.bind(&limit), keeper.bind(&limit));
        let keys: [Key<'static>; 4] = [ip(10, 0, 0, 1), key("a"), ip(10, 0, 0, 2), key("b")];
        let mut held: Vec<(Verdict, Verdict)> = Vec::new();
        for (i, &(advance, step)) in steps.iter().enumerate() {
            clock.advance_nanos(advance);
            match step {
                Step::Check { key, cost } => {
                    let f = check(&forgetful, &[Charge::new(&f_limit, &keys[key], cost)]).expect("room");
                    let k = check(&keeper, &[Charge::new(&k_limit, &keys[key], cost)]).expect("room");
                    prop_assert_eq!(f.decision, k.decision, "step {} {:?}", i, step);
                    prop_assert_eq!(f.permits.len(), k.permits.len());
                    held.push((f, k));
                }
                Step::Peek { key, cost } => {
                    let f = peek(&forgetful, &[Charge::new(&f_limit, &keys[key], cost)]);
                    let k = peek(&keeper, &[Charge::new(&k_limit, &keys[key], cost)]);
                    prop_assert_eq!(f, k, "step {} {:?}", i, step);
                }
                Step::Release(index) => {
                    if !held.is_empty() {
                        held.swap_remove(index % held.len());
                    }
                }
                Step::Sweep => {
                    forgetful.sweep();
                }
            }
            prop_assert!(forgetful.len() <= keeper.len());
        }
        // Once everything is idle, both stores' counts go back to zero.
        drop(held);
        clock.advance(Duration::from_secs(10));
        forgetful.sweep();
        keeper.sweep();
        prop_assert_eq!(forgetful.len(), 0);
        prop_assert_eq!(keeper.len(), 0);
    }
}
