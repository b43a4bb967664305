//! The concurrency algorithm against an in-flight counter with random releases.

use proptest::prelude::*;
use tollgate::algorithm::{Algorithm, Concurrency, RETRY_NEVER};
use tollgate::quota::Quota;

#[derive(Debug, Clone, Copy)]
enum Step {
    Acquire(u64),
    Peek(u64),
    /// Releases the held permit at this index (modulo how many are held).
    Release(usize),
    AcquireThenRefund(u64),
}

fn steps(limit: u64) -> impl Strategy<Value = Vec<Step>> {
    let cost = prop_oneof![3 => Just(1u64), 2 => 1..=limit, 1 => 1..=limit + 3];
    let step = prop_oneof![
        4 => cost.clone().prop_map(Step::Acquire),
        1 => cost.clone().prop_map(Step::Peek),
        3 => any::<usize>().prop_map(Step::Release),
        1 => cost.prop_map(Step::AcquireThenRefund),
    ];
    prop::collection::vec(step, 1..80)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn concurrency_matches_an_in_flight_counter(
        (limit, steps) in (1u64..=10).prop_flat_map(|limit| (Just(limit), steps(limit))),
        hint in prop::option::of(1u64..=10_000_000_000),
    ) {
        let quota = Quota::concurrent(limit).expect("quota");
        let alg = match hint {
            Some(hint) => Concurrency::new(&quota).with_retry_hint(hint),
            None => Concurrency::new(&quota),
        };
        let hint = hint.unwrap_or(Concurrency::DEFAULT_RETRY_HINT);
        let state = alg.new_state();
        let mut held: Vec<u64> = Vec::new();
        // The clock is irrelevant to a concurrency limit: use a moving one anyway.
        let mut now = 1;
        for (i, step) in steps.iter().enumerate() {
            now += 1_000 * i as u64;
            let in_flight: u64 = held.iter().sum();
            let expected = |cost: u64| {
                let fits = in_flight + cost <= limit;
                let retry = if fits { 0 } else if cost > limit { RETRY_NEVER } else { hint };
                let remaining = if fits { limit - in_flight - cost } else { limit - in_flight };
                (fits, remaining, retry)
            };
            match *step {
                Step::Acquire(cost) => {
                    let got = alg.acquire(&state, now, cost);
                    prop_assert_eq!((got.allowed, got.remaining, got.retry_after), expected(cost), "{:?}", step);
                    prop_assert_eq!(got.limit, limit);
                    if got.allowed {
                        held.push(cost);
                    }
                }
                Step::Peek(cost) => {
                    let got = alg.peek(&state, now, cost);
                    prop_assert_eq!((got.allowed, got.remaining, got.retry_after), expected(cost), "{:?}", step);
                }
                Step::Release(index) => {
                    if !held.is_empty() {
                        let cost = held.swap_remove(index % held.len());
                        alg.refund(&state, now, cost);
                    }
                }
                Step::AcquireThenRefund(cost) => {
                    let before: Vec<_> = (1..=limit + 1).map(|c| alg.peek(&state, now, c)).collect();
                    let got = alg.acquire(&state, now, cost);
                    prop_assert_eq!(got.allowed, expected(cost).0);
                    if got.allowed {
                        alg.refund(&state, now, cost);
                    }
                    let after: Vec<_> = (1..=limit + 1).map(|c| alg.peek(&state, now, c)).collect();
                    prop_assert_eq!(before, after);
                }
            }
            prop_assert_eq!(alg.is_idle(&state, now), held.is_empty());
        }
    }
}
