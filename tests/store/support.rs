//! Shared helpers: stores on a manual clock, checks that unwrap the memory
//! store's ready answer, and a runner that drives an [`Algorithm`] and a
//! reference model through the same random operations.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tollgate::algorithm::{Algorithm, AlgorithmKind, Outcome, RETRY_NEVER};
use tollgate::clock::{ManualClock, Nanos};
use tollgate::key::Key;
use tollgate::quota::Quota;
use tollgate::store::{Charge, Checked, MemoryHandle, MemoryStore, Store, Verdict};
use tollgate::{Decision, Limit, StoreError};

pub(crate) const MS: Nanos = 1_000_000;
pub(crate) const S: Nanos = 1_000_000_000;

/// The four rate algorithms.
pub(crate) const RATE_KINDS: [AlgorithmKind; 4] = [
    AlgorithmKind::Gcra,
    AlgorithmKind::FixedWindow,
    AlgorithmKind::SlidingWindow,
    AlgorithmKind::SlidingLog,
];

pub(crate) type TestStore = MemoryStore<ManualClock>;

/// A store with default bounds on `clock`.
pub(crate) fn store(clock: &ManualClock) -> TestStore {
    MemoryStore::builder().clock(clock.clone()).build()
}

/// A rate limit from quota text.
pub(crate) fn rate(name: &str, quota: &str, kind: AlgorithmKind) -> Limit {
    let quota: Quota = quota.parse().expect("quota text");
    Limit::new(name, quota, kind).expect("limit")
}

/// A concurrency limit of `n` in flight.
pub(crate) fn concurrent(name: &str, n: u64) -> Limit {
    let quota = Quota::concurrent(n).expect("concurrency quota");
    Limit::new(name, quota, AlgorithmKind::Gcra).expect("limit")
}

/// Either kind of limit, for tests that run over every algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spec {
    Rate(AlgorithmKind),
    Concurrent,
}

/// Every algorithm, the concurrency limit included.
pub(crate) const ALL_SPECS: [Spec; 5] = [
    Spec::Rate(AlgorithmKind::Gcra),
    Spec::Rate(AlgorithmKind::FixedWindow),
    Spec::Rate(AlgorithmKind::SlidingWindow),
    Spec::Rate(AlgorithmKind::SlidingLog),
    Spec::Concurrent,
];

impl Spec {
    /// A limit of `n` units per minute, or `n` in flight.
    pub(crate) fn limit(self, name: &str, n: u64) -> Limit {
        match self {
            Spec::Rate(kind) => rate(name, &format!("{n}/minute"), kind),
            Spec::Concurrent => concurrent(name, n),
        }
    }
}

/// A byte key.
pub(crate) fn key(text: &str) -> Key<'static> {
    Key::owned(text, "test").expect("key")
}

/// An IPv4 key.
pub(crate) fn ip(a: u8, b: u8, c: u8, d: u8) -> Key<'static> {
    Key::ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

/// `store.check`, which the memory store always answers at once.
pub(crate) fn check(
    store: &TestStore,
    charges: &[Charge<'_, MemoryHandle>],
) -> Result<Verdict, StoreError> {
    match store.check(charges) {
        Checked::Ready(result) => result,
        Checked::Pending(never) => match never {},
    }
}

/// `store.peek`, answered at once.
pub(crate) fn peek(store: &TestStore, charges: &[Charge<'_, MemoryHandle>]) -> Decision {
    match store.peek(charges) {
        Checked::Ready(result) => result.expect("peek never fails").decision,
        Checked::Pending(never) => match never {},
    }
}

/// The check's decision; the store must answer it.
pub(crate) fn decide(store: &TestStore, charges: &[Charge<'_, MemoryHandle>]) -> Decision {
    check(store, charges).expect("store answers").decision
}

/// Units `key` may still spend under `handle` now: the largest cost a peek
/// admits, searched up to `max`.
pub(crate) fn room(store: &TestStore, handle: &MemoryHandle, key: &Key<'_>, max: u64) -> u64 {
    let mut room = 0;
    for cost in 1..=max {
        if !peek(store, &[Charge::new(handle, key, cost)]).is_allowed() {
            break;
        }
        room = cost;
    }
    room
}

// ---------------------------------------------------------------------------
// Reference models for the rate algorithms.
// ---------------------------------------------------------------------------

/// A tiny, obviously correct model of one rate algorithm for one key.
///
/// Answers are pure functions of the model and an instant at or after the
/// last charge, so the runner can ask about the future without changing it.
pub(crate) trait Reference: Clone + Debug {
    /// The largest cost that can ever pass; larger costs never do.
    fn capacity(&self) -> u64;
    /// A wait after which any request within capacity fits, whatever the state.
    fn horizon(&self) -> Nanos;
    /// Whether a request of `cost` (within capacity) fits at `now`.
    fn fits(&self, now: Nanos, cost: u64) -> bool;
    /// Whole units that could be spent at `now`.
    fn units_left(&self, now: Nanos) -> u64;
    /// Takes `cost` at `now` (only called when it fits).
    fn charge(&mut self, now: Nanos, cost: u64);
}

/// What the model expects an [`Outcome`] to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expected {
    pub(crate) allowed: bool,
    pub(crate) remaining: u64,
    /// The effective window, by its definition: spend every unit left at
    /// `now`, then the least wait until one more fits.
    pub(crate) window: Nanos,
    pub(crate) retry_after: Nanos,
}

/// The least wait from `now` after which `model` admits `cost`, by
/// bisection (every model only frees room as time passes); 0 when it fits now.
fn least_wait<R: Reference>(model: &R, now: Nanos, cost: u64) -> Nanos {
    if model.fits(now, cost) {
        return 0;
    }
    let horizon = model.horizon();
    assert!(
        model.fits(now + horizon, cost),
        "model {model:?} must admit cost {cost} after its horizon"
    );
    let (mut lo, mut hi) = (0, horizon); // lo does not fit, hi fits
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if model.fits(now + mid, cost) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The effective window of `model` at `now` (the `t` of the `RateLimit`
/// field): the units left spent now, the wait for the next one.
pub(crate) fn window_of<R: Reference>(model: &R, now: Nanos) -> Nanos {
    let mut spent = model.clone();
    let left = spent.units_left(now);
    if left > 0 {
        spent.charge(now, left);
    }
    least_wait(&spent, now, 1)
}

/// The model's answer to a request of `cost` at `now`, charging nothing.
///
/// `retry_after` is the least wait after which the model admits the same
/// request, found by bisection (every model only frees room as time passes).
pub(crate) fn expect<R: Reference>(model: &R, now: Nanos, cost: u64) -> Expected {
    if cost > model.capacity() {
        return Expected {
            allowed: false,
            remaining: model.units_left(now),
            window: window_of(model, now),
            retry_after: RETRY_NEVER,
        };
    }
    if model.fits(now, cost) {
        let mut after = model.clone();
        after.charge(now, cost);
        return Expected {
            allowed: true,
            remaining: after.units_left(now),
            window: window_of(&after, now),
            retry_after: 0,
        };
    }
    Expected {
        allowed: false,
        remaining: model.units_left(now),
        window: window_of(model, now),
        retry_after: least_wait(model, now, cost),
    }
}

/// What a generated operation does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    Acquire,
    Peek,
    AcquireThenRefund,
}

/// One generated operation: move the clock, then act with some cost.
///
/// The raw numbers are scaled to the quota under test by [`Op::advance`]
/// and [`Op::cost`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    advance_class: u8,
    advance_raw: u64,
    cost_class: u8,
    cost_raw: u64,
    pub(crate) action: Action,
}

impl Op {
    /// Nanoseconds to move forward from `now`: none, one, a little, about an
    /// emission interval, up to three periods, or to the next period boundary.
    pub(crate) fn advance(&self, now: Nanos, period: Nanos, limit: u64) -> Nanos {
        let fine = (period / limit.max(1)).max(1);
        match self.advance_class {
            0 => 0,
            1 => 1,
            2 => self.advance_raw % 1_000,
            3 => self.advance_raw % (2 * fine + 1),
            4 => self.advance_raw % (3 * period + 1),
            _ => {
                let to_boundary = period - now % period;
                // Exactly on the boundary, or a nanosecond either side of it.
                (to_boundary + self.advance_raw % 3).saturating_sub(1)
            }
        }
    }

    /// The cost: mostly 1, often up to the capacity, sometimes beyond it.
    pub(crate) fn cost(&self, capacity: u64) -> u64 {
        match self.cost_class {
            0 | 1 => 1,
            2 => 1 + self.cost_raw % capacity.max(1),
            _ => 1 + self.cost_raw % (capacity + 3),
        }
    }
}

/// Random operation sequences.
pub(crate) fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0u8..6, any::<u64>(), 0u8..4, any::<u64>(), 0u8..4),
        1..max_len,
    )
    .prop_map(|ops| {
        ops.into_iter()
            .map(
                |(advance_class, advance_raw, cost_class, cost_raw, action)| Op {
                    advance_class,
                    advance_raw,
                    cost_class,
                    cost_raw,
                    action: match action {
                        0 | 1 => Action::Acquire,
                        2 => Action::Peek,
                        _ => Action::AcquireThenRefund,
                    },
                },
            )
            .collect()
    })
}

/// A random rate quota: 1 to 12 units per 1 ms to 2 minutes.
pub(crate) fn rate_quota() -> impl Strategy<Value = Quota> {
    (
        1u64..=12,
        prop_oneof![
            Just(1u64),
            Just(7),
            Just(1_000),
            Just(60_000),
            1u64..=120_000
        ],
    )
        .prop_map(|(count, millis)| {
            Quota::new(count, std::time::Duration::from_millis(millis)).expect("valid quota")
        })
}

/// A starting instant: the manual clock's, or anywhere in the first few hours.
pub(crate) fn start() -> impl Strategy<Value = Nanos> {
    prop_oneof![Just(S), 1u64..=10_000 * S]
}

/// Compares an outcome with the model's expectation.
pub(crate) fn assert_outcome(
    got: Outcome,
    want: Expected,
    limit: u64,
    context: &dyn Fn() -> String,
) -> Result<(), TestCaseError> {
    let got_view = Expected {
        allowed: got.allowed,
        remaining: got.remaining,
        window: got.window,
        retry_after: got.retry_after,
    };
    prop_assert_eq!(got_view, want, "{}", context());
    prop_assert_eq!(got.limit, limit, "{}", context());
    Ok(())
}

/// How the runner peeks at a future instant without disturbing the state it
/// keeps using (a sliding log's peek drops expired entries, so peeking ahead
/// on the live state would change its later answers).
pub(crate) type Probe<'a, A, R> =
    &'a dyn Fn(&A, &<A as Algorithm>::State, &R, Nanos, u64) -> Outcome;

/// A probe that peeks at the live state (algorithms whose peek is pure).
pub(crate) fn peek_live<A: Algorithm, R>(
    alg: &A,
    state: &A::State,
    _: &R,
    at: Nanos,
    cost: u64,
) -> Outcome {
    alg.peek(state, at, cost)
}

/// Drives `alg` and `model` through `ops` from `start`, asserting that they
/// agree on every answer, that `retry_after` is exact (denied one nanosecond
/// before it, admitted at it, for the model and the algorithm alike), and
/// that a charge refunded at once leaves every answer as it was.
pub(crate) fn run_model<A: Algorithm, R: Reference>(
    alg: &A,
    mut model: R,
    limit: u64,
    period: Nanos,
    start: Nanos,
    ops: &[Op],
    probe: Probe<'_, A, R>,
) -> Result<(), TestCaseError> {
    let state = alg.new_state();
    let capacity = model.capacity();
    let mut now = start;
    for (i, op) in ops.iter().enumerate() {
        now += op.advance(now, period, limit);
        let cost = op.cost(capacity);
        let want = expect(&model, now, cost);
        let seen = model.clone();
        let context = || format!("op {i} {op:?} at {now} cost {cost}; model {seen:?}");
        match op.action {
            Action::Peek => {
                assert_outcome(alg.peek(&state, now, cost), want, limit, &context)?;
            }
            Action::Acquire => {
                let got = alg.acquire(&state, now, cost);
                assert_outcome(got, want, limit, &context)?;
                if got.allowed {
                    model.charge(now, cost);
                }
            }
            Action::AcquireThenRefund => {
                let before = snapshot(alg, &state, now, capacity);
                let got = alg.acquire(&state, now, cost);
                assert_outcome(got, want, limit, &context)?;
                if got.allowed {
                    alg.refund(&state, now, cost);
                }
                let after = snapshot(alg, &state, now, capacity);
                prop_assert_eq!(before, after, "refund at once restores: {}", context());
            }
        }
        let retry = want.retry_after;
        if !want.allowed && retry != RETRY_NEVER {
            prop_assert!(
                model.fits(now + retry, cost),
                "model at retry: {}",
                context()
            );
            prop_assert!(
                probe(alg, &state, &model, now + retry, cost).allowed,
                "admitted at now + retry_after: {}",
                context()
            );
            if retry > 1 {
                prop_assert!(
                    !model.fits(now + retry - 1, cost),
                    "model before retry: {}",
                    context()
                );
                prop_assert!(
                    !probe(alg, &state, &model, now + retry - 1, cost).allowed,
                    "denied 1 ns before now + retry_after: {}",
                    context()
                );
            }
        }
    }
    Ok(())
}

/// Every answer a peek at `now` gives, for costs 1 to beyond the capacity.
fn snapshot<A: Algorithm>(alg: &A, state: &A::State, now: Nanos, capacity: u64) -> Vec<Outcome> {
    (1..=capacity + 1)
        .map(|cost| alg.peek(state, now, cost))
        .collect()
}
