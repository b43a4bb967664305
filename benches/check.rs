//! One admission decision on the in-memory store, per algorithm, beside
//! governor's keyed limiter and a floor of one DashMap lookup plus one
//! atomic add, on the same key sequences.
//!
//! `cargo bench --bench check` (criterion; medians in target/criterion).
//! Filter with e.g. `cargo bench --bench check -- 'check/gcra'`.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dashmap::DashMap;
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::store::{Charge, Checked, MemoryHandle, MemoryStore, Store};
use tollgate::{Limit, Quota};

/// Key counts measured.
const KEY_COUNTS: [usize; 3] = [1, 1_000, 1_000_000];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Allow,
    Deny,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Allow => "allow",
            Mode::Deny => "deny",
        }
    }
}

#[derive(Clone, Copy)]
enum KeyType {
    ApiKey,
    Ipv4,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::ApiKey => "apikey",
            KeyType::Ipv4 => "ipv4",
        }
    }
}

/// The i-th API-key-like string: `ak_` and 16 hex digits.
fn api_key(i: usize) -> String {
    format!("ak_{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn ipv4(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000u32.wrapping_add(i as u32)))
}

/// A visiting order over `n` keys that is not sequential, so large maps
/// are read as a server would read them.
fn order(n: usize) -> Vec<u32> {
    let len = n.max(4096);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as u32
        })
        .collect()
}

trait Checker: Sync {
    fn check(&self, key: usize) -> bool;
}

struct Ours {
    store: MemoryStore,
    handle: MemoryHandle,
    keys: Vec<Key<'static>>,
}

impl Checker for Ours {
    #[inline]
    fn check(&self, key: usize) -> bool {
        let charge = [Charge::new(&self.handle, &self.keys[key], 1)];
        match self.store.check(&charge) {
            // Dropping the verdict releases a concurrency permit at once.
            Checked::Ready(Ok(verdict)) => verdict.decision.is_allowed(),
            _ => false,
        }
    }
}

enum GovKeys {
    Strings(governor::DefaultKeyedRateLimiter<String>, Vec<String>),
    Ips(governor::DefaultKeyedRateLimiter<IpAddr>, Vec<IpAddr>),
}

struct Governor(GovKeys);

impl Checker for Governor {
    #[inline]
    fn check(&self, key: usize) -> bool {
        match &self.0 {
            GovKeys::Strings(l, keys) => l.check_key(&keys[key]).is_ok(),
            GovKeys::Ips(l, keys) => l.check_key(&keys[key]).is_ok(),
        }
    }
}

enum FloorKeys {
    Strings(DashMap<String, AtomicU64>, Vec<String>),
    Ips(DashMap<IpAddr, AtomicU64>, Vec<IpAddr>),
}

/// The floor: one DashMap lookup and one atomic add.
struct Floor(FloorKeys);

impl Checker for Floor {
    #[inline]
    fn check(&self, key: usize) -> bool {
        match &self.0 {
            FloorKeys::Strings(m, keys) => m
                .get(&keys[key])
                .map(|c| c.fetch_add(1, Ordering::AcqRel) < u64::MAX)
                .unwrap_or(false),
            FloorKeys::Ips(m, keys) => m
                .get(&keys[key])
                .map(|c| c.fetch_add(1, Ordering::AcqRel) < u64::MAX)
                .unwrap_or(false),
        }
    }
}

fn our_limit(kind: &str, mode: Mode) -> Limit {
    let quota = match (kind, mode) {
        ("concurrency", _) => {
            Quota::concurrent(if mode == Mode::Allow { 1_000_000 } else { 1 }).unwrap()
        }
        ("sliding-log", Mode::Allow) => Quota::new(100_000, Duration::from_millis(1)).unwrap(),
        (_, Mode::Allow) => Quota::new(1_000_000_000, Duration::from_secs(1)).unwrap(),
        (_, Mode::Deny) => Quota::new(1, Duration::from_secs(3600)).unwrap(),
    };
    let algorithm = match kind {
        "fixed-window" => AlgorithmKind::FixedWindow,
        "sliding-window" => AlgorithmKind::SlidingWindow,
        "sliding-log" => AlgorithmKind::SlidingLog,
        _ => AlgorithmKind::Gcra,
    };
    Limit::new(kind, quota, algorithm).unwrap()
}

fn ours(kind: &str, mode: Mode, key_type: KeyType, n: usize) -> Box<dyn Checker> {
    let store = MemoryStore::builder().max_keys(n + 16).build();
    let handle = store.bind(&our_limit(kind, mode));
    let keys: Vec<Key<'static>> = (0..n)
        .map(|i| match key_type {
            KeyType::ApiKey => Key::owned(api_key(i), "bench").unwrap(),
            KeyType::Ipv4 => Key::ip(ipv4(i)),
        })
        .collect();
    let checker = Ours {
        store,
        handle,
        keys,
    };
    if kind == "concurrency" && mode == Mode::Deny {
        // Hold one permit per key for the whole run, so every check is refused.
        let mut held = Vec::with_capacity(n);
        for key in &checker.keys {
            let charge = [Charge::new(&checker.handle, key, 1)];
            if let Checked::Ready(Ok(v)) = checker.store.check(&charge) {
                assert!(v.decision.is_allowed());
                held.push(v.permits);
            }
        }
        std::mem::forget(held);
    } else {
        for i in 0..n {
            checker.check(i);
        }
    }
    Box::new(checker)
}

fn governor(mode: Mode, key_type: KeyType, n: usize) -> Box<dyn Checker> {
    let quota = match mode {
        Mode::Allow => governor::Quota::per_second(NonZeroU32::MAX),
        Mode::Deny => governor::Quota::per_hour(NonZeroU32::MIN),
    };
    let checker = match key_type {
        KeyType::ApiKey => Governor(GovKeys::Strings(
            governor::RateLimiter::keyed(quota),
            (0..n).map(api_key).collect(),
        )),
        KeyType::Ipv4 => Governor(GovKeys::Ips(
            governor::RateLimiter::keyed(quota),
            (0..n).map(ipv4).collect(),
        )),
    };
    for i in 0..n {
        checker.check(i);
    }
    Box::new(checker)
}

fn floor(key_type: KeyType, n: usize) -> Box<dyn Checker> {
    Box::new(match key_type {
        KeyType::ApiKey => {
            let keys: Vec<String> = (0..n).map(api_key).collect();
            let map = DashMap::new();
            for k in &keys {
                map.insert(k.clone(), AtomicU64::new(0));
            }
            Floor(FloorKeys::Strings(map, keys))
        }
        KeyType::Ipv4 => {
            let keys: Vec<IpAddr> = (0..n).map(ipv4).collect();
            let map = DashMap::new();
            for k in &keys {
                map.insert(*k, AtomicU64::new(0));
            }
            Floor(FloorKeys::Ips(map, keys))
        }
    })
}

const ALGORITHMS: [&str; 5] = [
    "gcra",
    "fixed-window",
    "sliding-window",
    "sliding-log",
    "concurrency",
];

fn single_thread(c: &mut Criterion) {
    for key_type in [KeyType::ApiKey, KeyType::Ipv4] {
        for mode in [Mode::Allow, Mode::Deny] {
            let mut group = c.benchmark_group(format!("check/{}/{}", key_type.name(), mode.name()));
            for n in KEY_COUNTS {
                let order = order(n);
                let mut cases: Vec<(String, Box<dyn Checker>)> = ALGORITHMS
                    .iter()
                    .map(|kind| (format!("tollgate-{kind}"), ours(kind, mode, key_type, n)))
                    .collect();
                cases.push(("governor".into(), governor(mode, key_type, n)));
                cases.push(("floor".into(), floor(key_type, n)));
                for (name, checker) in &cases {
                    let expect = name == "floor" || mode == Mode::Allow;
                    assert_eq!(checker.check(order[0] as usize), expect, "{name} {n} keys");
                    let mut i = 0usize;
                    group.bench_with_input(BenchmarkId::new(name.as_str(), n), &n, |b, _| {
                        b.iter(|| {
                            i = (i + 1) % order.len();
                            black_box(checker.check(order[i] as usize))
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

/// Two threads checking at once: one key (all contention) and 1,000 keys.
fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("check/contended/allow");
    for n in [1usize, 1_000] {
        let order = order(n);
        let cases: Vec<(&str, Box<dyn Checker>)> = vec![
            (
                "tollgate-gcra",
                ours("gcra", Mode::Allow, KeyType::ApiKey, n),
            ),
            ("governor", governor(Mode::Allow, KeyType::ApiKey, n)),
            ("floor", floor(KeyType::ApiKey, n)),
        ];
        for (name, checker) in &cases {
            assert!(checker.check(0), "{name}");
            for threads in [1usize, 2] {
                let id = BenchmarkId::new(format!("{name}/{threads}-threads"), n);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let barrier = Arc::new(Barrier::new(threads));
                        let checker: &dyn Checker = checker.as_ref();
                        let order = &order;
                        std::thread::scope(|s| {
                            let handles: Vec<_> = (0..threads)
                                .map(|t| {
                                    let barrier = Arc::clone(&barrier);
                                    s.spawn(move || {
                                        barrier.wait();
                                        let start = Instant::now();
                                        let mut i = t * 7;
                                        for _ in 0..iters {
                                            i = (i + 1) % order.len();
                                            black_box(checker.check(order[i] as usize));
                                        }
                                        start.elapsed()
                                    })
                                })
                                .collect();
                            // Time per check as each thread sees it.
                            handles
                                .into_iter()
                                .map(|h| h.join().unwrap())
                                .max()
                                .unwrap_or_default()
                        })
                    })
                });
            }
        }
    }
    group.finish();
}

// Short cases: `benches/run-all.sh` runs this bench in three interleaved
// rounds and reports each case's median over them, which steadies a noisy
// machine better than one long measurement.
criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30);
    targets = single_thread, two_threads
}
criterion_main!(benches);
