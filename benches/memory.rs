//! Memory per tracked key: the in-memory store, per algorithm, beside
//! governor's keyed limiter (DashMap state), for one million distinct keys of
//! two types, and how much memory comes back once the keys are idle.
//!
//! `cargo bench --bench memory` (no criterion: one measured pass per case).
//! Prints a markdown table and writes the same rows as JSON to
//! `$CARGO_TARGET_DIR/tollgate-bench/memory.json` (default `target/`).
//!
//! A counting global allocator tracks the bytes requested from the system
//! allocator (not its size-class rounding or chunk headers). Each case starts
//! from a baseline taken after its key strings are built, inserts every key
//! with one admission check and reads the growth. A second pass on a manual
//! clock makes every key idle, lets the store evict them and reads what
//! is still held.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator. The library itself forbids unsafe code.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::clock::FakeRelativeClock;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::{Clock, ManualClock};
use tollgate::key::Key;
use tollgate::store::{Charge, Checked, MemoryHandle, MemoryStore, Store};
use tollgate::{Limit, Quota};

/// Distinct keys inserted per case under `cargo bench`.
const KEYS: usize = 1_000_000;

/// Distinct keys per case when run without `--bench` (`cargo test
/// --all-targets` runs this binary once as a smoke test).
const SMOKE_KEYS: usize = 10_000;

/// The goal: state and overhead per key beyond the key's own bytes.
const GOAL_BYTES: f64 = 64.0;

/// Bytes of one API key string: `ak_` and 16 hex digits.
const API_KEY_LEN: usize = 19;

/// The quota period; the eviction pass moves the clock this many periods on.
const PERIOD: Duration = Duration::from_secs(1);
const IDLE_AFTER: u32 = 10;

// ---------------------------------------------------------------------------
// The counting allocator.

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A reading of the allocator's counters, taken as a baseline.
#[derive(Clone, Copy)]
struct Mark {
    current: usize,
    allocations: usize,
}

impl Mark {
    /// Takes a baseline and restarts the peak from it.
    fn now() -> Self {
        let current = CURRENT.load(Ordering::Relaxed);
        PEAK.store(current, Ordering::Relaxed);
        Self {
            current,
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
        }
    }

    /// Bytes held now beyond the baseline (negative if fewer).
    fn held(&self) -> i64 {
        CURRENT.load(Ordering::Relaxed) as i64 - self.current as i64
    }

    /// The most bytes held beyond the baseline since it was taken.
    fn peak(&self) -> i64 {
        PEAK.load(Ordering::Relaxed) as i64 - self.current as i64
    }

    fn allocations(&self) -> usize {
        ALLOCATIONS.load(Ordering::Relaxed) - self.allocations
    }
}

// ---------------------------------------------------------------------------
// Keys.

#[derive(Clone, Copy, PartialEq, Eq)]
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

    /// The key's own bytes: the string's, or none for an address stored inline.
    fn own_bytes(self) -> f64 {
        match self {
            KeyType::ApiKey => API_KEY_LEN as f64,
            KeyType::Ipv4 => 0.0,
        }
    }
}

/// The i-th API-key-like string: `ak_` and 16 hex digits.
fn api_key(i: usize) -> String {
    format!("ak_{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The i-th address, counting up from 10.0.0.0.
fn ipv4(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000u32.wrapping_add(i as u32)))
}

/// Every key of both types, plus one more of each that is never among them
/// (inserted after the others are idle, to run the automatic sweep).
struct Keys {
    strings: Vec<String>,
    ips: Vec<IpAddr>,
    extra_string: String,
    extra_ip: IpAddr,
}

impl Keys {
    fn build(n: usize) -> Self {
        let strings: Vec<String> = (0..n).map(api_key).collect();
        assert!(strings.iter().all(|k| k.len() == API_KEY_LEN));
        let extra_string = "ak_not_a_bench_key".to_string() + "x";
        assert_eq!(extra_string.len(), API_KEY_LEN);
        Self {
            strings,
            ips: (0..n).map(ipv4).collect(),
            extra_string,
            extra_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    /// Keys of each type.
    fn n(&self) -> usize {
        self.strings.len()
    }
}

// ---------------------------------------------------------------------------
// The limiters under test.

const ALGORITHMS: [&str; 5] = [
    "gcra",
    "fixed-window",
    "sliding-window",
    "sliding-log",
    "concurrency",
];

/// A limit every first check of a key passes: 10 per second (the sliding log
/// then logs one request per key), or 10 in flight.
fn limit(kind: &str) -> Limit {
    let (quota, algorithm) = match kind {
        "concurrency" => (Quota::concurrent(10).unwrap(), AlgorithmKind::Gcra),
        "fixed-window" => (Quota::new(10, PERIOD).unwrap(), AlgorithmKind::FixedWindow),
        "sliding-window" => (
            Quota::new(10, PERIOD).unwrap(),
            AlgorithmKind::SlidingWindow,
        ),
        "sliding-log" => (Quota::new(10, PERIOD).unwrap(), AlgorithmKind::SlidingLog),
        _ => (Quota::new(10, PERIOD).unwrap(), AlgorithmKind::Gcra),
    };
    Limit::new(kind, quota, algorithm).unwrap()
}

fn governor_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(10).unwrap())
}

/// One admission check; the verdict (and any concurrency permit) is dropped
/// at once.
fn admit<C: Clock>(store: &MemoryStore<C>, handle: &MemoryHandle, key: &Key<'_>) -> bool {
    let charge = [Charge::new(handle, key, 1)];
    match store.check(&charge) {
        Checked::Ready(Ok(verdict)) => verdict.decision.is_allowed(),
        Checked::Ready(Err(e)) => panic!("store error: {e}"),
        _ => panic!("the memory store answers at once"),
    }
}

fn insert_all<C: Clock>(
    store: &MemoryStore<C>,
    handle: &MemoryHandle,
    keys: &Keys,
    key_type: KeyType,
) {
    for i in 0..keys.n() {
        let allowed = match key_type {
            KeyType::ApiKey => {
                let key = Key::borrowed(keys.strings[i].as_bytes(), "bench").unwrap();
                admit(store, handle, &key)
            }
            KeyType::Ipv4 => admit(store, handle, &Key::ip(keys.ips[i])),
        };
        assert!(allowed, "key {i} was refused on its first check");
    }
}

/// Checks every key once through `check`, which answers whether it was admitted.
fn governor_insert_all<K>(keys: &[K], check: impl Fn(&K) -> bool) {
    for (i, key) in keys.iter().enumerate() {
        assert!(check(key), "key {i} was refused on its first check");
    }
}

// ---------------------------------------------------------------------------
// Measurements.

/// What inserting the keys cost.
struct Insertion {
    bytes: i64,
    peak: i64,
    allocations: usize,
    seconds: f64,
}

/// What came back after eviction.
struct Eviction {
    /// Bytes per key while all keys were tracked, on this pass's clock.
    bytes: i64,
    keys_left: usize,
    retained: i64,
    /// Governor only: after `shrink_to_fit`.
    after_shrink: Option<i64>,
    after_drop: i64,
}

struct Row {
    store: &'static str,
    algorithm: &'static str,
    key_type: KeyType,
    keys: usize,
    insertion: Insertion,
    eviction: Eviction,
}

impl Row {
    fn bytes_per_key(&self) -> f64 {
        self.insertion.bytes as f64 / self.keys as f64
    }

    fn overhead_per_key(&self) -> f64 {
        self.bytes_per_key() - self.key_type.own_bytes()
    }
}

/// Tollgate on the production clock: the bytes per key.
fn tollgate_insertion(kind: &str, keys: &Keys, key_type: KeyType) -> Insertion {
    let limit = limit(kind);
    let mark = Mark::now();
    let started = Instant::now();
    let store = MemoryStore::builder().max_keys(keys.n() + 1).build();
    let handle = store.bind(&limit);
    insert_all(&store, &handle, keys, key_type);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(store.len(), keys.n(), "{kind}: every key tracked");
    let insertion = Insertion {
        bytes: mark.held(),
        peak: mark.peak(),
        allocations: mark.allocations(),
        seconds,
    };
    drop(handle);
    drop(store);
    insertion
}

/// Tollgate on a manual clock: every key goes idle, and the next new key's
/// insertion runs the automatic sweep.
fn tollgate_eviction(kind: &str, keys: &Keys, key_type: KeyType) -> Eviction {
    let limit = limit(kind);
    let clock = ManualClock::new();
    let mark = Mark::now();
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .max_keys(keys.n() + 1)
        .idle_sweep_every(Duration::from_secs(1))
        .build();
    let handle = store.bind(&limit);
    insert_all(&store, &handle, keys, key_type);
    assert_eq!(store.len(), keys.n(), "{kind}: every key tracked");
    let bytes = mark.held();

    clock.advance(PERIOD * IDLE_AFTER);
    let extra = match key_type {
        KeyType::ApiKey => Key::borrowed(keys.extra_string.as_bytes(), "bench").unwrap(),
        KeyType::Ipv4 => Key::ip(keys.extra_ip),
    };
    assert!(admit(&store, &handle, &extra), "{kind}: the new key");
    let keys_left = store.len();
    assert_eq!(
        keys_left, 1,
        "{kind}: the automatic sweep leaves only the new key"
    );
    let retained = mark.held();

    drop(handle);
    drop(store);
    Eviction {
        bytes,
        keys_left,
        retained,
        after_shrink: None,
        after_drop: mark.held(),
    }
}

/// governor's keyed limiter on its default clock: the bytes per key.
fn governor_insertion<K: Hash + Eq + Clone>(keys: &[K]) -> Insertion {
    let mark = Mark::now();
    let started = Instant::now();
    let limiter = governor::RateLimiter::keyed(governor_quota());
    governor_insert_all(keys, |k| limiter.check_key(k).is_ok());
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(limiter.len(), keys.len(), "governor: every key tracked");
    let insertion = Insertion {
        bytes: mark.held(),
        peak: mark.peak(),
        allocations: mark.allocations(),
        seconds,
    };
    drop(limiter);
    insertion
}

/// governor on a fake clock: every key goes idle, then `retain_recent`.
fn governor_eviction<K: Hash + Eq + Clone>(keys: &[K]) -> Eviction {
    let clock = FakeRelativeClock::default();
    let mark = Mark::now();
    let limiter = governor::RateLimiter::dashmap_with_clock(governor_quota(), clock.clone());
    governor_insert_all(keys, |k| limiter.check_key(k).is_ok());
    assert_eq!(limiter.len(), keys.len(), "governor: every key tracked");
    let bytes = mark.held();

    clock.advance(PERIOD * IDLE_AFTER);
    limiter.retain_recent();
    let keys_left = limiter.len();
    assert_eq!(keys_left, 0, "governor: retain_recent drops idle keys");
    let retained = mark.held();
    limiter.shrink_to_fit();
    let after_shrink = mark.held();

    drop(limiter);
    Eviction {
        bytes,
        keys_left,
        retained,
        after_shrink: Some(after_shrink),
        after_drop: mark.held(),
    }
}

// ---------------------------------------------------------------------------
// Output.

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown (no /proc/cpuinfo)".into());
    let shards = (cpus * 4).next_power_of_two();
    format!(
        "machine: {cpus} CPUs (nproc), model: {model}; {} {}; \
         DashMap default shards: {shards}",
        std::env::consts::OS,
        std::env::consts::ARCH,
    )
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn retained_cell(bytes: i64, before: i64) -> String {
    let pct = if before > 0 {
        100.0 * bytes as f64 / before as f64
    } else {
        0.0
    };
    format!("{} ({pct:.0}% of inserted)", mib(bytes))
}

fn report(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| store | algorithm | key type | bytes/key | state+overhead/key beyond key \
         | after eviction: keys left | bytes retained |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} |",
            r.store,
            r.algorithm,
            r.key_type.name(),
            r.bytes_per_key(),
            r.overhead_per_key(),
            r.eviction.keys_left,
            retained_cell(r.eviction.retained, r.eviction.bytes),
        );
    }

    let _ = writeln!(out, "\nDetails:\n");
    let _ = writeln!(
        out,
        "| store | algorithm | key type | peak/key during insertion | allocations/key (incl. freed) \
         | insert time | bytes/key (eviction pass clock) | after shrink_to_fit | after drop |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} s | {:.1} | {} | {} B |",
            r.store,
            r.algorithm,
            r.key_type.name(),
            r.insertion.peak as f64 / r.keys as f64,
            r.insertion.allocations as f64 / r.keys as f64,
            r.insertion.seconds,
            r.eviction.bytes as f64 / r.keys as f64,
            r.eviction
                .after_shrink
                .map_or_else(|| "n/a".to_string(), mib),
            r.eviction.after_drop,
        );
    }

    let _ = writeln!(
        out,
        "\nGoal: at most {GOAL_BYTES:.0} bytes of state and overhead per key beyond the key:\n"
    );
    for r in rows.iter().filter(|r| r.store == "tollgate") {
        let o = r.overhead_per_key();
        let verdict = if o <= GOAL_BYTES { "meets" } else { "MISSES" };
        let _ = writeln!(
            out,
            "- tollgate {} / {}: {o:.1} B -> {verdict}",
            r.algorithm,
            r.key_type.name()
        );
    }
    out
}

fn json(rows: &[Row]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "store": r.store,
                "algorithm": r.algorithm,
                "key_type": r.key_type.name(),
                "keys": r.keys,
                "bytes_per_key": r.bytes_per_key(),
                "overhead_per_key": r.overhead_per_key(),
                "keys_after_eviction": r.eviction.keys_left,
                "bytes_retained_after_eviction": r.eviction.retained,
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap()
}

fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("tollgate-bench").join("memory.json")
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // this is a quick smoke run that writes no results.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let n = if bench { KEYS } else { SMOKE_KEYS };
    let started = Instant::now();
    println!("# tollgate memory per key ({n} distinct keys per case)\n");
    println!("{}", machine());
    println!(
        "bytes: requested from the allocator (a counting GlobalAlloc; not the \
         allocator's own rounding or headers), growth over a baseline taken after the \
         key strings were built, / {n}. The key's own bytes are {API_KEY_LEN} for an \
         API key string, 0 for an IPv4 address (stored inline)."
    );

    // Warm up once-only globals (clock calibration, DashMap's shard count)
    // so no case pays for them.
    {
        let store = MemoryStore::new();
        let handle = store.bind(&limit("gcra"));
        assert!(admit(&store, &handle, &Key::ip(ipv4(0))));
        let limiter = governor::RateLimiter::<IpAddr, _, _>::keyed(governor_quota());
        assert!(limiter.check_key(&ipv4(0)).is_ok());
    }

    let keys = Keys::build(n);
    let mut rows = Vec::new();
    for key_type in [KeyType::ApiKey, KeyType::Ipv4] {
        for kind in ALGORITHMS {
            rows.push(Row {
                store: "tollgate",
                algorithm: kind,
                key_type,
                keys: n,
                insertion: tollgate_insertion(kind, &keys, key_type),
                eviction: tollgate_eviction(kind, &keys, key_type),
            });
        }
        let (insertion, eviction) = match key_type {
            KeyType::ApiKey => (
                governor_insertion(&keys.strings),
                governor_eviction(&keys.strings),
            ),
            KeyType::Ipv4 => (governor_insertion(&keys.ips), governor_eviction(&keys.ips)),
        };
        rows.push(Row {
            store: "governor",
            algorithm: "gcra",
            key_type,
            keys: n,
            insertion,
            eviction,
        });
    }
    drop(keys);

    print!("{}", report(&rows));
    println!(
        "\nNotes: tollgate's eviction pass runs on `ManualClock` with \
         `idle_sweep_every(1 s)`; the clock moves {IDLE_AFTER} periods on and one new \
         key is inserted, whose insertion runs the automatic sweep (so 1 key is left: \
         that new one). governor's runs on `FakeRelativeClock` and calls \
         `retain_recent()`. \"bytes retained\" is what is still held beyond the \
         baseline: DashMap keeps its table capacity after removals. governor clones \
         each String key into its map (a 24-byte String in the slot + 19 bytes on the \
         heap); tollgate copies a byte key into a Box<[u8]> (16 bytes in the slot + 19 \
         on the heap)."
    );

    if bench {
        let path = output_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, json(&rows)).unwrap();
        println!("\nwrote {}", path.display());
    } else {
        println!("\nsmoke run (no --bench): no results written");
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
