//! Each algorithm answers in Redis what it answers in memory.
//!
//! The memory store runs on a manual clock set to Redis's `TIME`, so both
//! stores count time from the Unix epoch and align windows alike. Each step
//! reads Redis's clock before (`t1`) and after (`t2`) the Redis check; the
//! script read its own `TIME` somewhere in between. The memory store is
//! asked at `t1` and at `t2` without charging:
//!
//! - allowed, limit and remaining must equal the memory answer at `t1`,
//!   unless the answer changes between `t1` and `t2` (a step that runs
//!   across a refill or a fading weight), when they must equal the answer at
//!   `t2`; the memory store is then charged at that instant, as Redis was;
//! - reset and retry-after are a stored instant (a TAT, a logged request, a
//!   window's end) minus now. In Redis each instant lies within its step's
//!   `[t1, t2]`, in memory at its `t1`, so the two figures differ by at most
//!   the widest step so far: they must agree within that (a Redis round
//!   trip, some hundreds of microseconds).

use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tollgate::algorithm::AlgorithmKind;

use tollgate::clock::{Clock, Nanos};
use tollgate::key::Key;
use tollgate::quota::Quota;
use tollgate::store::{
    Charge, MemoryHandle, MemoryStore, Permits, RedisHandle, RedisStore, Store, Verdict,
};
use tollgate::{Decision, Limit};

use crate::support::{check, concurrent, key, peek, rate, redis_now, Server};

/// A clock the test sets to any reading, backwards too.
#[derive(Clone, Default)]
struct Settable(Arc<AtomicU64>);

impl Settable {
    fn set(&self, now: Nanos) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for Settable {
    fn now(&self) -> Nanos {
        self.0.load(Ordering::SeqCst)
    }
}

/// A Redis store and a memory store on Redis's clock, bound to one limit.
struct Twin {
    _server: Server,
    raw: redis::aio::MultiplexedConnection,
    redis: RedisStore,
    memory: MemoryStore<Settable>,
    clock: Settable,
    redis_limit: RedisHandle,
    memory_limit: MemoryHandle,
    key: Key<'static>,
    /// The longest step so far, from `t1` to `t2`, in ns.
    widest: u64,
    /// Permits held: (memory, redis).
    held: Vec<(Permits, Permits)>,
    /// The period, for limits with windows: a step whose clock readings fall
    /// in two windows cannot be compared.
    window: Option<u64>,
    crossed: bool,
    /// A second charge every Redis check carries (a limit it never comes
    /// near, on another key): the check then runs `check.lua`, the script
    /// for several charges, where one charge alone runs its algorithm's own
    /// lean script.
    beside: Option<(RedisHandle, Key<'static>)>,
}

impl Twin {
    async fn new(limit: &Limit, beside: bool) -> Twin {
        let server = Server::start();
        let raw = server.raw().await;
        let redis = server.store();
        let clock = Settable::default();
        let memory = MemoryStore::builder().clock(clock.clone()).build();
        let window = match limit.kind() {
            tollgate::limit::LimitKind::Rate(
                AlgorithmKind::FixedWindow | AlgorithmKind::SlidingWindow,
            ) => Some(limit.quota().period_nanos()),
            _ => None,
        };
        let redis_limit = redis.bind(limit);
        let beside = beside.then(|| {
            let roomy = rate("roomy", "1000000/second", AlgorithmKind::Gcra);
            (redis.bind(&roomy), key("bystander"))
        });
        // Connect and load the script first, so no step pays for that.
        let warm = key("warm-up");
        peek(&redis, &[Charge::new(&redis_limit, &warm, 1)])
            .await
            .expect("redis answers");
        Twin {
            redis_limit,
            memory_limit: memory.bind(limit),
            _server: server,
            raw,
            redis,
            memory,
            clock,
            key: key("client-1"),
            widest: 0,
            held: Vec::new(),
            window,
            crossed: false,
            beside,
        }
    }

    /// Checks `cost` in both stores and compares the answers as the module
    /// docs say; answers Redis's decision.
    async fn step(&mut self, cost: u64) -> Decision {
        let t1 = redis_now(&mut self.raw).await;
        let mut charges = vec![Charge::new(&self.redis_limit, &self.key, cost)];
        if let Some((handle, key)) = &self.beside {
            charges.push(Charge::new(handle, key, 1));
        }
        let redis = check(&self.redis, &charges).await.expect("redis check");
        let t2 = redis_now(&mut self.raw).await;
        self.widest = self.widest.max(t2 - t1);
        if let Some(period) = self.window {
            if t1 / period != t2 / period {
                self.crossed = true;
            }
        }
        let charge = [Charge::new(&self.memory_limit, &self.key, cost)];
        let at = |t: u64| {
            self.clock.set(t);
            t
        };
        at(t1);
        let before = peek(&self.memory, &charge)
            .await
            .expect("memory peek")
            .decision;
        at(t2);
        let after = peek(&self.memory, &charge)
            .await
            .expect("memory peek")
            .decision;
        // Charge the memory store at the instant whose answer Redis gave:
        // t1, unless the answer changed between t1 and t2.
        if counts(&redis.decision) == counts(&before) {
            at(t1);
        } else {
            assert_eq!(
                counts(&redis.decision),
                counts(&after),
                "cost {cost}: redis {:?}, memory {before:?} at t1, {after:?} at t2",
                redis.decision
            );
        }
        let memory = check(&self.memory, &charge).await.expect("memory check");
        compare(&redis.decision, &memory.decision, self.widest, cost);
        let decision = redis.decision;
        self.hold(memory, redis);
        decision
    }

    fn hold(&mut self, memory: Verdict, redis: Verdict) {
        assert_eq!(memory.permits.len(), redis.permits.len(), "permits held");
        self.held.push((memory.permits, redis.permits));
    }
}

fn counts(d: &Decision) -> (bool, u64, u64, bool) {
    (d.is_allowed(), d.limit(), d.remaining(), d.is_impossible())
}

fn compare(redis: &Decision, memory: &Decision, slack: u64, cost: u64) {
    assert_eq!(
        counts(redis),
        counts(memory),
        "cost {cost}: redis {redis:?}, memory {memory:?}"
    );
    assert_eq!(redis.policy(), memory.policy());
    let near = |a: Duration, b: Duration| {
        let d = a.abs_diff(b);
        assert!(
            d <= Duration::from_nanos(slack),
            "cost {cost}: {a:?} vs {b:?} differ by {d:?} > {slack} ns; redis {redis:?}, memory {memory:?}"
        );
    };
    near(redis.window(), memory.window());
    match (redis.retry_after(), memory.retry_after()) {
        (Some(r), Some(m)) => near(r, m),
        (None, None) => {}
        (r, m) => panic!("cost {cost}: retry-after {r:?} in redis, {m:?} in memory"),
    }
}

/// Runs `costs` against both stores, again with a fresh prefix if a step
/// ran across a window boundary (then the two stores may count in
/// different windows). Then again with a second charge beside each Redis
/// check ([`Twin::beside`]): the lean script of one charge and the script
/// of several give the same answers. Answers the first run's decisions.
async fn same_answers(limit: Limit, costs: &[u64]) -> Vec<Decision> {
    let alone = same_answers_in(&limit, costs, false).await;
    let beside = same_answers_in(&limit, costs, true).await;
    assert_eq!(
        allowed(&alone),
        allowed(&beside),
        "alone and beside another charge"
    );
    alone
}

async fn same_answers_in(limit: &Limit, costs: &[u64], beside: bool) -> Vec<Decision> {
    for _ in 0..5 {
        let mut twin = Twin::new(limit, beside).await;
        let mut out = Vec::new();
        for &cost in costs {
            out.push(twin.step(cost).await);
        }
        if !twin.crossed {
            return out;
        }
    }
    panic!("every try ran across a window boundary");
}

fn allowed(decisions: &[Decision]) -> Vec<bool> {
    decisions.iter().map(Decision::is_allowed).collect()
}

#[tokio::test]
async fn gcra_matches_memory() {
    let d = same_answers(
        rate("g", "5/minute", AlgorithmKind::Gcra),
        &[1, 1, 2, 1, 1, 6, 1],
    )
    .await;
    assert_eq!(allowed(&d), [true, true, true, true, false, false, false]);
    assert!(d[5].is_impossible());
    let d = same_answers(
        rate("g", "2/second burst 4", AlgorithmKind::Gcra),
        &[3, 1, 1, 5, 2],
    )
    .await;
    assert_eq!(allowed(&d), [true, true, false, false, false]);
}

#[tokio::test]
async fn fixed_window_matches_memory() {
    let d = same_answers(
        rate("f", "5/hour", AlgorithmKind::FixedWindow),
        &[1, 2, 2, 1, 6, 1],
    )
    .await;
    assert_eq!(allowed(&d), [true, true, true, false, false, false]);
    let retry = d[3].retry_after().expect("waits for the next window");
    assert_eq!(Some(retry), Some(d[3].window()));
}

#[tokio::test]
async fn sliding_window_matches_memory() {
    let d = same_answers(
        rate("s", "5/hour", AlgorithmKind::SlidingWindow),
        &[1, 2, 2, 1, 6],
    )
    .await;
    assert_eq!(allowed(&d), [true, true, true, false, false]);
}

#[tokio::test]
async fn sliding_log_matches_memory() {
    let d = same_answers(
        rate("l", "5/hour", AlgorithmKind::SlidingLog),
        &[1, 2, 2, 1, 6, 1],
    )
    .await;
    assert_eq!(allowed(&d), [true, true, true, false, false, false]);
    assert!(d[4].is_impossible());
}

#[tokio::test]
async fn concurrency_matches_memory_and_release_frees_the_slot() {
    let limit = concurrent("c", 3);
    let mut twin = Twin::new(&limit, false).await;
    let mut seen = Vec::new();
    for cost in [1, 1, 1, 1, 4] {
        seen.push(twin.step(cost).await.is_allowed());
    }
    assert_eq!(seen, [true, true, true, false, false]);
    // Ending the first request gives its slot back in both stores.
    twin.held.remove(0);
    let mut released = false;
    for _ in 0..100 {
        let charge = [Charge::new(&twin.redis_limit, &twin.key, 1)];
        if peek(&twin.redis, &charge)
            .await
            .expect("peek")
            .decision
            .is_allowed()
        {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(released, "the dropped permit released its lease");
    assert!(twin.step(1).await.is_allowed());
    assert!(!twin.step(1).await.is_allowed());
}

/// The previous window's weight, over real windows of 300 ms, alone and
/// beside another charge.
#[tokio::test]
async fn sliding_window_weights_the_previous_window_like_memory() {
    let quota = Quota::new(5, Duration::from_millis(300)).expect("quota");
    let limit = Limit::new("s", quota, AlgorithmKind::SlidingWindow).expect("limit");
    for beside in [false, true] {
        weights_fade(&limit, beside).await;
    }
}

async fn weights_fade(limit: &Limit, beside: bool) {
    let period = limit.quota().period_nanos();
    for _ in 0..5 {
        let mut twin = Twin::new(limit, beside).await;
        // Start early in a window so the five fit in it.
        let now = redis_now(&mut twin.raw).await;
        let into = now % period;
        if into > period / 3 {
            tokio::time::sleep(Duration::from_nanos(period - into + 5_000_000)).await;
        }
        for cost in [2, 3] {
            assert!(twin.step(cost).await.is_allowed());
        }
        // Into the next window: the previous five weigh less and less.
        let now = redis_now(&mut twin.raw).await;
        tokio::time::sleep(Duration::from_nanos(period - now % period + period / 5)).await;
        let mut admitted = 0;
        for _ in 0..8 {
            if twin.step(1).await.is_allowed() {
                admitted += 1;
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        if !twin.crossed {
            assert!(admitted >= 1, "the previous window's weight fades");
            return;
        }
    }
    panic!("every try ran across a window boundary");
}

/// GCRA refill over real time, alone and beside another charge.
#[tokio::test]
async fn gcra_refills_like_memory() {
    let limit = rate("g", "10/second burst 3", AlgorithmKind::Gcra);
    for beside in [false, true] {
        let mut twin = Twin::new(&limit, beside).await;
        for cost in [3, 1] {
            twin.step(cost).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let d = twin.step(2).await;
        assert!(d.is_allowed(), "two tokens back after 250 ms: {d:?}");
        assert!(!twin.step(2).await.is_allowed());
    }
}

/// One limit charged twice in one check is judged as one charge of the
/// summed cost in Redis too: the same answer as that single charge for a
/// client in the same state (retry-after within a round trip).
#[tokio::test]
async fn a_limit_charged_twice_in_one_check_is_judged_as_the_summed_charge() {
    let server = Server::start();
    let store = server.store();
    for kind in [
        AlgorithmKind::Gcra,
        AlgorithmKind::FixedWindow,
        AlgorithmKind::SlidingWindow,
        AlgorithmKind::SlidingLog,
    ] {
        let h = store.bind(&rate("twice", "5/minute", kind));
        for (n, (spent, parts)) in [(0u64, [3u64, 3]), (3, [1, 2]), (1, [2, 2])]
            .into_iter()
            .enumerate()
        {
            let (split_key, whole_key) = (
                key(&format!("{kind:?}-{n}-a")),
                key(&format!("{kind:?}-{n}-b")),
            );
            for k in [&split_key, &whole_key] {
                if spent > 0 {
                    let v = check(&store, &[Charge::new(&h, k, spent)])
                        .await
                        .expect("redis");
                    assert!(v.decision.is_allowed());
                }
            }
            let split = [
                Charge::new(&h, &split_key, parts[0]),
                Charge::new(&h, &split_key, parts[1]),
            ];
            let whole = [Charge::new(&h, &whole_key, parts[0] + parts[1])];
            let a = check(&store, &split).await.expect("redis").decision;
            let b = check(&store, &whole).await.expect("redis").decision;
            let what = format!("{kind:?}, {spent} spent, {parts:?}");
            assert_eq!(a.is_allowed(), b.is_allowed(), "{what}");
            assert_eq!(a.is_impossible(), b.is_impossible(), "{what}");
            assert_eq!(a.remaining(), b.remaining(), "{what}");
            assert_eq!(a.policy(), 0, "{what}");
            if parts[0] + parts[1] > 5 {
                assert!(a.is_impossible(), "{what}: can never pass");
            }
            let (ra, rb) = (
                a.retry_after().unwrap_or_default(),
                b.retry_after().unwrap_or_default(),
            );
            let apart = ra.abs_diff(rb);
            assert!(
                apart <= Duration::from_millis(50),
                "{what}: retry {ra:?} vs {rb:?}"
            );
        }
    }
}
