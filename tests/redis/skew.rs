//! Clock skew: stores whose local clocks are hours apart enforce one
//! combined quota per key, window after window, with the over-limit cache
//! on and in leased mode; the figures they answer come from Redis's
//! `TIME`.
//!
//! The store reads a local clock only for what it times by itself (the
//! over-limit cache, the breaker's backoff, the local fallback, leases),
//! and keeps there only durations Redis gave, counted from a local reading.
//! Each store here gets its own [`Skewed`] clock: it runs at the real rate
//! but reads hours (and half a second) away from the other's, so a store
//! that took "now" from its local clock to decide anything would count in
//! windows of its own (twice the quota per window between the two), place
//! window ends half a second off, or keep cached refusals into the next
//! window. Each check is bracketed by two readings of Redis's clock, so
//! every figure is held against the instant Redis must have used.

use std::time::Duration;

use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::{Clock, MonotonicClock, Nanos};
use tollgate::store::redis::TokenLease;
use tollgate::store::{Charge, RedisHandle, RedisStore, Store};
use tollgate::Decision;

use crate::support::{check, key, prefix, rate, redis_now, Server};

const SEC: Nanos = 1_000_000_000;
const HOUR: Nanos = 3_600 * SEC;

/// A clock at the real rate, `offset` ahead of a fresh monotonic clock.
struct Skewed {
    base: MonotonicClock,
    offset: Nanos,
}

impl Clock for Skewed {
    fn now(&self) -> Nanos {
        self.base.now() + self.offset
    }
}

/// Local clock offsets, each with half a second past whole seconds between
/// them, so no window of a second lines up across them.
const OFFSETS: [Nanos; 2] = [0, 9 * HOUR + 13 * 60 * SEC + 7 * SEC + SEC / 2];

/// Stores on one server and prefix, each on its own skewed clock, with the
/// over-limit cache on, leased when `lease` is given.
fn skewed_stores(server: &Server, prefix: &str, lease: Option<TokenLease>) -> Vec<RedisStore> {
    OFFSETS
        .iter()
        .map(|&offset| {
            let builder = RedisStore::builder(server.url())
                .no_fallback()
                .prefix(prefix)
                .timeout(Duration::from_secs(2))
                .over_limit_cache(64)
                .clock(Skewed {
                    base: MonotonicClock::new(),
                    offset,
                });
            match lease {
                Some(lease) => builder.leased(lease),
                None => builder,
            }
            .build()
            .expect("redis store")
        })
        .collect()
}

/// One check, with Redis's clock read just before and just after it.
struct Step {
    before: Nanos,
    after: Nanos,
    decision: Decision,
}

async fn step(
    raw: &mut redis::aio::MultiplexedConnection,
    store: &RedisStore,
    limit: &RedisHandle,
    client: &tollgate::key::Key<'_>,
) -> Step {
    let before = redis_now(raw).await;
    let decision = check(store, &[Charge::new(limit, client, 1)])
        .await
        .expect("check")
        .decision;
    let after = redis_now(raw).await;
    Step {
        before,
        after,
        decision,
    }
}

/// Sleeps until `into` past the start of the next window of `period` on
/// Redis's clock; answers that window's index.
async fn next_window(
    raw: &mut redis::aio::MultiplexedConnection,
    period: Nanos,
    into: Nanos,
) -> u64 {
    let now = redis_now(raw).await;
    let index = now / period + 1;
    tokio::time::sleep(Duration::from_nanos(index * period + into - now)).await;
    index
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).expect("a duration in range")
}

/// Three rounds, each in a window of its own: the two stores alternate 12
/// checks of a `5/second` fixed window; together they admit exactly 5, and
/// every figure is the window's end on Redis's clock.
async fn windows_agree(leased: bool) {
    const QUOTA: usize = 5;
    const TRIES: usize = 12;
    let server = Server::start();
    let mut raw = server.raw().await;
    let prefix = prefix();
    let lease = leased.then(|| TokenLease::new(2));
    let stores = skewed_stores(&server, &prefix, lease);
    let limit = rate("skew-fw", "5/second", AlgorithmKind::FixedWindow);
    let handles: Vec<_> = stores.iter().map(|s| s.bind(&limit)).collect();
    let client = key("skewed-client");
    // Answers from local state (the over-limit cache, a lease) are early by
    // at most the round trip of the call they came from.
    let slack = SEC / 10;

    let mut rounds = 0;
    let mut attempts = 0;
    while rounds < 3 {
        attempts += 1;
        assert!(attempts <= 8, "a round never fit in one window");
        let window = next_window(&mut raw, SEC, SEC / 10).await;
        let end = (window + 1) * SEC;
        let mut steps = Vec::with_capacity(TRIES);
        for i in 0..TRIES {
            // Alternate the stores, in a different order each round.
            let s = (i + rounds) % stores.len();
            steps.push(step(&mut raw, &stores[s], &handles[s], &client).await);
        }
        if steps.iter().any(|s| s.after >= end) {
            // The machine stalled past the window's end: not a finding
            // about the store; try again in a fresh window.
            continue;
        }
        let admitted = steps.iter().filter(|s| s.decision.is_allowed()).count();
        assert_eq!(
            admitted, QUOTA,
            "round {rounds}: the two stores admit the quota together"
        );
        for (i, s) in steps.iter().enumerate() {
            let d = &s.decision;
            if !leased {
                // Per request, in the order asked.
                assert_eq!(d.is_allowed(), i < QUOTA, "round {rounds}, check {i}");
            }
            // The window's end on Redis's clock, seen from the instant of
            // the check: within the bracket.
            let reset = nanos(d.window());
            assert!(
                reset <= end - s.before,
                "round {rounds}, check {i}: reset {reset} past the window end {}",
                end - s.before
            );
            if d.is_allowed() {
                let low = if leased { slack } else { 0 };
                assert!(
                    reset + low >= end - s.after,
                    "round {rounds}, check {i}: reset {reset} before the window end {}",
                    end - s.after
                );
                if !leased {
                    assert_eq!(d.remaining(), (QUOTA - 1 - i) as u64);
                }
            } else {
                // Answered by Redis or from local state: the time left
                // until the window's end, never later.
                let retry = nanos(d.retry_after().expect("refused, with a retry"));
                assert!(
                    retry <= end - s.before && retry + slack >= end - s.after,
                    "round {rounds}, check {i}: retry {retry} against the window end {}..{}",
                    end - s.after,
                    end - s.before
                );
                assert_eq!(d.remaining(), 0);
            }
        }
        rounds += 1;
    }
    for (i, store) in stores.iter().enumerate() {
        // Local answers were given, and the next windows still admitted.
        let local = if leased {
            store.lease_stats().local
        } else {
            store.over_limit_cache_hits()
        };
        assert!(local >= 3, "store {i}: {local} local answers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_windows_agree_across_skewed_clocks() {
    windows_agree(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leased_fixed_windows_agree_across_skewed_clocks() {
    windows_agree(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcra_agrees_across_skewed_clocks() {
    // Four at once, then one every 500 ms: T = 500 ms, burst window 2 s.
    const T: i128 = SEC as i128 / 2;
    const BURST: i128 = 4;
    let server = Server::start();
    let mut raw = server.raw().await;
    let prefix = prefix();
    let stores = skewed_stores(&server, &prefix, None);
    let limit = rate("skew-gcra", "2/second burst 4", AlgorithmKind::Gcra);
    let handles: Vec<_> = stores.iter().map(|s| s.bind(&limit)).collect();
    let client = key("skewed-client");

    // The key is fresh and the run shorter than the burst window, so the
    // state is never idle: after m admissions the TAT is r1 + m T, r1 being
    // the first check's instant on Redis's clock (within its bracket). A
    // check at r admits iff r1 + (m + 1) T <= r + BURST T.
    let mut steps: Vec<Step> = Vec::new();
    let mut admitted: i128 = 0;
    let mut decided = 0;
    for i in 0..14 {
        if i == 10 {
            // Wait out the last refusal: one unit comes back, for one
            // store, not one per store.
            let wait = steps[9].decision.retry_after().expect("a retry");
            tokio::time::sleep(wait + Duration::from_millis(150)).await;
        }
        let s = (i + i / 3) % stores.len();
        let st = step(&mut raw, &stores[s], &handles[s], &client).await;
        let (b1, a1) = steps
            .first()
            .map_or((st.before, st.after), |f| (f.before, f.after));
        let (b1, a1) = (i128::from(b1), i128::from(a1));
        let (b, a) = (i128::from(st.before), i128::from(st.after));
        let need = (admitted - BURST + 1) * T; // r - r1 must reach this
        let expected = if admitted < BURST || b - a1 >= need {
            Some(true)
        } else if a - b1 < need {
            Some(false)
        } else {
            None // within a round trip of the instant a unit comes back
        };
        let d = &st.decision;
        if let Some(expected) = expected {
            assert_eq!(d.is_allowed(), expected, "check {i} on store {s}");
            decided += 1;
        }
        // The effective window is the wait for one unit more than remains:
        // `(r + 1) T - (BURST T - (TAT - now))`, so it gives back the TAT
        // offset `TAT - now`, which must lie within the bracket.
        let window = i128::from(nanos(d.window()));
        assert!(window > 0 && window <= T, "check {i}: window {window}");
        let r = i128::from(d.remaining());
        let reset = window + BURST * T - (r + 1) * T;
        if d.is_allowed() {
            admitted += 1;
            // The new TAT minus now.
            let tat = admitted * T;
            assert!(
                reset >= b1 + tat - a && reset <= a1 + tat - b,
                "check {i}: TAT offset {reset} outside {}..{}",
                b1 + tat - a,
                a1 + tat - b
            );
        } else {
            // Retry: the TAT plus one interval, minus the burst window,
            // minus now; answered by Redis or (early by at most the cached
            // call's round trip) from the over-limit cache.
            let retry = i128::from(nanos(d.retry_after().expect("a retry")));
            let due = (admitted + 1 - BURST) * T;
            let slack = i128::from(SEC / 10);
            assert!(
                retry <= a1 + due - b && retry + slack >= b1 + due - a,
                "check {i}: retry {retry} outside {}..{}",
                b1 + due - a,
                a1 + due - b
            );
            assert!(
                reset <= a1 + admitted * T - b && reset + slack >= b1 + admitted * T - a,
                "check {i}: reset {reset}"
            );
        }
        steps.push(st);
    }
    assert!(
        decided >= 13,
        "only {decided} of 14 checks had a certain answer"
    );
    assert!(
        admitted >= 5,
        "the burst of four, then a unit back after the retry: {admitted}"
    );
    assert!(
        stores.iter().all(|s| s.over_limit_cache_hits() >= 1),
        "both stores answered refusals from their caches"
    );
}
