//! Checks per second through [`RedisStore`], beside the floor: a raw
//! `EVALSHA` of a trivial script (`return 1`) over one multiplexed
//! connection of the `redis` crate, at concurrency 1 and 64.
//!
//! `cargo bench --features redis --bench redis` (no criterion: throughput
//! over fixed-length rounds). Starts its own `redis-server` on a free
//! loopback port (`--save '' --appendonly no`, killed by PID at the end),
//! or uses the server `REDIS_URL` names. Prints a markdown table and writes
//! the same rows as JSON to `$CARGO_TARGET_DIR/tollgate-bench/redis.json`
//! (default `target/`). Arguments after `--` name the cases to run (the
//! floor always runs); such a run writes no results.
//!
//! Cases, each run by 1 task and by 64 tokio tasks sharing one store (or one
//! connection) on a multi-thread runtime:
//!
//! - `floor`: `EVALSHA <sha of "return 1"> 0`, the least a round trip with
//!   a script can cost;
//! - `script`: a raw `EVALSHA` of the store's own one-charge GCRA script
//!   (`prelude.lua` + `deadline.lua` + `gcra.lua` + `answer.lua`) with the arguments the
//!   store sends it, over the
//!   same kind of connection as the floor: what Redis's side of a check
//!   costs, so `store-allow` against it is the client's own overhead and it
//!   against the floor is the script's;
//! - `store-allow`: a GCRA check of a quota nothing reaches
//!   (1,000,000,000/second);
//! - `store-allow-defaults`: the same with every setting at the store's
//!   default (timeout, circuit breaker on, local fallback): a check Redis
//!   does not answer in time is counted (store errors, fallback answers,
//!   breaker openings) and reported, goal none;
//! - `store-allow-leased`: the same in leased mode,
//!   `.leased(TokenLease::new(100))`: most checks are answered from units
//!   this instance holds, one lease call per up to 100 checks of a key (so
//!   its ratio to the floor is not the per-request goal's);
//! - `store-deny`: a GCRA check of a `1/hour` quota spent before the round,
//!   over-limit cache off: every check is a round trip refused by Redis;
//! - `store-deny-cached`: the same with `.over_limit_cache(1024)`: the first
//!   refusal per key goes to Redis, the rest are answered locally.
//!
//! Keys: each task checks its own key (`task-<n>`), so 1 key at concurrency
//! 1 and 64 distinct keys at 64. Every store but the defaults case's has
//! the circuit breaker off and a 1 s timeout, so that a slow answer is
//! measured rather than turned into an error; any error, or an answer of
//! the wrong kind (a refusal in the allow case, an admission in a deny
//! case), stops the bench. Every check's latency is kept: the table gives
//! p50, p99, p99.9 and the slowest (the store's default timeout is chosen
//! from them).
//!
//! Each case runs [`ROUNDS`] rounds of [`ROUND`], interleaved (round 1 of
//! every case, then round 2, ...) so a slow moment of the machine spreads
//! over all cases; the median of the rounds is reported, and the ratio to
//! the floor is that median over the floor's median at the same
//! concurrency.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate::algorithm::AlgorithmKind;
use tollgate::key::Key;
use tollgate::store::redis::TokenLease;
use tollgate::store::{Charge, Checked, RedisHandle, RedisStore, Store};
use tollgate::{Limit, Quota};

const HOW_TO_GET_ONE: &str = "the Redis bench needs a redis-server: install one \
     (`apt-get install redis-server`) so the bench can start its own, \
     or set REDIS_URL=redis://127.0.0.1:6379/ to a server it may write to";

/// Rounds per case and concurrency under `cargo bench`.
const ROUNDS: usize = 3;
/// Length of one measured round.
const ROUND: Duration = Duration::from_millis(1500);
/// Untimed running before the rounds, per case and concurrency.
const WARM_UP: Duration = Duration::from_millis(300);
const CONCURRENCY: [usize; 2] = [1, 64];
/// The goal: the store reaches this fraction of the floor.
const GOAL: f64 = 0.8;

/// Units per lease in the leased case (as [`Case::what`] says).
const LEASE_TOKENS: u64 = 100;

const CASES: [Case; 7] = [
    Case::Floor,
    Case::Script,
    Case::StoreAllow,
    Case::StoreAllowDefaults,
    Case::StoreAllowLeased,
    Case::StoreDeny,
    Case::StoreDenyCached,
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Floor,
    Script,
    StoreAllow,
    StoreAllowDefaults,
    StoreAllowLeased,
    StoreDeny,
    StoreDenyCached,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Floor => "floor",
            Case::Script => "script",
            Case::StoreAllow => "store-allow",
            Case::StoreAllowDefaults => "store-allow-defaults",
            Case::StoreAllowLeased => "store-allow-leased",
            Case::StoreDeny => "store-deny",
            Case::StoreDenyCached => "store-deny-cached",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Case::Floor => "raw EVALSHA of `return 1`, one multiplexed connection",
            Case::Script => {
                "raw EVALSHA of the store's one-charge GCRA script, allowed (1e9/second), \
                 the arguments a check sends, one multiplexed connection"
            }
            Case::StoreAllow => "RedisStore GCRA check, allowed (1e9/second)",
            Case::StoreAllowDefaults => {
                "RedisStore GCRA check, allowed (1e9/second), the store's default settings \
                 (timeout, circuit breaker, failure policy): any check not answered by Redis \
                 is counted"
            }
            Case::StoreAllowLeased => {
                "RedisStore GCRA check, allowed (1e9/second), leased mode: TokenLease::new(100)"
            }
            Case::StoreDeny => "RedisStore GCRA check, refused (1/hour spent), no over-limit cache",
            Case::StoreDenyCached => {
                "RedisStore GCRA check, refused (1/hour spent), over_limit_cache(1024)"
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The server.

/// A Redis to measure against: our own `redis-server`, killed by PID on
/// drop, or the one `REDIS_URL` names.
struct Server {
    url: String,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Server {
    fn start() -> Server {
        if let Ok(url) = std::env::var("REDIS_URL") {
            if !url.is_empty() {
                return Server {
                    url,
                    child: None,
                    dir: None,
                };
            }
        }
        if !on_path("redis-server") {
            panic!("redis-server is not on PATH; {HOW_TO_GET_ONE}");
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "tollgate-bench-redis-{}-{port}-{:016x}",
                std::process::id(),
                random()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = Server {
                url: format!("redis://127.0.0.1:{port}/"),
                child: None,
                dir: Some(dir.clone()),
            };
            match server.launch(port, &dir) {
                Ok(()) => return server,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}; {HOW_TO_GET_ONE}");
    }

    fn launch(&mut self, port: u16, dir: &std::path::Path) -> Result<(), String> {
        let log = std::fs::File::create(dir.join("redis.log")).map_err(|e| e.to_string())?;
        let port_text = port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port_text, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ping(port) {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("redis-server exited at once ({status})"));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        Err("redis-server did not answer PING within 5 s".into())
    }

    fn own(&self) -> bool {
        self.dir.is_some()
    }

    /// Kills our server by PID (SIGKILL) and waits for it.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).is_ok() && &answer == b"+PONG\r\n"
}

fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

// ---------------------------------------------------------------------------
// The cases.

/// What one case runs on, set up once and shared by its tasks.
#[derive(Clone)]
enum Target {
    Floor {
        con: redis::aio::MultiplexedConnection,
        sha: Arc<str>,
    },
    /// The store's own script, called without the store.
    Script {
        con: redis::aio::MultiplexedConnection,
        sha: Arc<str>,
        /// One Redis key per task.
        keys: Arc<[String]>,
        /// The arguments after the key.
        args: Arc<[String]>,
    },
    Store {
        store: RedisStore,
        handle: RedisHandle,
        /// One key per task.
        keys: Arc<[Key<'static>]>,
        allow: bool,
        /// Store errors counted instead of stopping the bench (the
        /// defaults case, whose errors are its figure).
        errors: Option<Arc<AtomicU64>>,
    },
}

impl Target {
    async fn new(case: Case, url: &str, prefix: &str, tasks: usize) -> Target {
        let limit = |quota: Quota| Limit::new("bench", quota, AlgorithmKind::Gcra).unwrap();
        let keys: Arc<[Key<'static>]> = (0..tasks)
            .map(|i| Key::owned(format!("task-{i}"), "bench").unwrap())
            .collect();
        let builder = || {
            RedisStore::builder(url)
                .prefix(format!("{prefix}:{}:{tasks}", case.name()))
                .timeout(Duration::from_secs(1))
                .no_breaker()
        };
        match case {
            Case::Floor => {
                let (con, sha) = connect_and_load(url, "return 1").await;
                Target::Floor { con, sha }
            }
            Case::Script => {
                let (con, sha) = connect_and_load(url, GCRA_SCRIPT).await;
                let quota = Quota::per_second(Quota::MAX_COUNT).unwrap();
                let interval = quota.emission_interval_nanos().max(1);
                let burst = quota.burst().max(1);
                // What the store sends `gcra.lua`: mode "2" (charge, answer
                // the TIME) with a deadline (far ahead here), cost,
                // interval, capacity, burst.
                let args = [
                    "9000000000000000".to_owned(),
                    "1".to_owned(),
                    interval.to_string(),
                    (interval * burst).to_string(),
                    burst.to_string(),
                ];
                let keys = (0..tasks)
                    .map(|i| format!("{prefix}:{}:{tasks}:{{task-{i}}}:bench@gcra", case.name()))
                    .collect();
                Target::Script {
                    con,
                    sha,
                    keys,
                    args: args.into(),
                }
            }
            Case::StoreAllow | Case::StoreAllowLeased | Case::StoreAllowDefaults => {
                let builder = builder();
                let store = match case {
                    Case::StoreAllowLeased => builder.leased(TokenLease::new(LEASE_TOKENS)),
                    Case::StoreAllowDefaults => {
                        RedisStore::builder(url).prefix(format!("{prefix}:{}:{tasks}", case.name()))
                    }
                    _ => builder,
                }
                .build()
                .unwrap();
                let handle = store.bind(&limit(Quota::per_second(Quota::MAX_COUNT).unwrap()));
                Target::Store {
                    store,
                    handle,
                    keys,
                    allow: true,
                    errors: (case == Case::StoreAllowDefaults).then(Arc::default),
                }
            }
            Case::StoreDeny | Case::StoreDenyCached => {
                let builder = builder();
                let store = if case == Case::StoreDenyCached {
                    builder.over_limit_cache(1024)
                } else {
                    builder
                }
                .build()
                .unwrap();
                let handle = store.bind(&limit(Quota::per_hour(1).unwrap()));
                // Spend each key's one request of the hour.
                for key in keys.iter() {
                    assert!(
                        checked(&store, &handle, key).await,
                        "the first check of a fresh key is allowed"
                    );
                }
                Target::Store {
                    store,
                    handle,
                    keys,
                    allow: false,
                    errors: None,
                }
            }
        }
    }

    /// One operation by task `task`.
    async fn op(&mut self, task: usize) {
        match self {
            Target::Floor { con, sha } => {
                let one: i64 = redis::cmd("EVALSHA")
                    .arg(&**sha)
                    .arg(0)
                    .query_async(con)
                    .await
                    .unwrap();
                assert_eq!(one, 1, "the trivial script answers 1");
            }
            Target::Script {
                con,
                sha,
                keys,
                args,
            } => {
                let answer: Vec<i64> = redis::cmd("EVALSHA")
                    .arg(&**sha)
                    .arg(1)
                    .arg(&keys[task])
                    .arg(&args[..])
                    .query_async(con)
                    .await
                    .unwrap();
                assert_eq!(answer.len(), 6, "allowed, remaining, reset, retry, TIME");
                assert_eq!(answer[0], 1, "the script admits");
            }
            Target::Store {
                store,
                handle,
                keys,
                allow,
                errors: Some(errors),
            } => match check(store, handle, &keys[task]).await {
                Ok(allowed) => assert_eq!(allowed, *allow, "the defaults case admits"),
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            },
            Target::Store {
                store,
                handle,
                keys,
                allow,
                errors: None,
            } => {
                let allowed = checked(store, handle, &keys[task]).await;
                assert_eq!(
                    allowed,
                    *allow,
                    "a check answered {} where the case expects the opposite",
                    if allowed { "allowed" } else { "refused" }
                );
            }
        }
    }
}

impl Target {
    /// The defaults case's counts so far of checks Redis did not answer.
    fn faults(&self) -> Option<Faults> {
        match self {
            Target::Store {
                store,
                errors: Some(errors),
                ..
            } => Some(Faults {
                errors: errors.load(Ordering::Relaxed),
                fallback: store.fallback_stats().answers,
                opened: store.breaker_stats().opened,
            }),
            _ => None,
        }
    }
}

impl Faults {
    fn since(self, base: Faults) -> Faults {
        Faults {
            errors: self.errors - base.errors,
            fallback: self.fallback - base.fallback,
            opened: self.opened - base.opened,
        }
    }
}

/// The store's one-charge GCRA script, as the store loads it.
const GCRA_SCRIPT: &str = concat!(
    include_str!("../src/store/redis/prelude.lua"),
    include_str!("../src/store/redis/deadline.lua"),
    include_str!("../src/store/redis/gcra.lua"),
    include_str!("../src/store/redis/answer.lua")
);

/// A multiplexed connection to `url` with `script` loaded; its SHA1.
async fn connect_and_load(
    url: &str,
    script: &str,
) -> (redis::aio::MultiplexedConnection, Arc<str>) {
    let mut con = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}; {HOW_TO_GET_ONE}"));
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(&mut con)
        .await
        .unwrap();
    (con, sha.into())
}

/// One charging check of cost 1; panics on a store error.
async fn checked(store: &RedisStore, handle: &RedisHandle, key: &Key<'_>) -> bool {
    check(store, handle, key)
        .await
        .unwrap_or_else(|e| panic!("store check failed: {e}"))
}

/// One charging check of cost 1: whether it was allowed.
async fn check(
    store: &RedisStore,
    handle: &RedisHandle,
    key: &Key<'_>,
) -> Result<bool, tollgate::StoreError> {
    let verdict = match store.check(&[Charge::new(handle, key, 1)]) {
        Checked::Ready(result) => result,
        Checked::Pending(future) => future.await,
    };
    verdict.map(|v| v.decision.is_allowed())
}

/// Runs `tasks` tasks on `target` for `length`: checks per second, and
/// each check's latency in microseconds.
async fn measure(target: &Target, tasks: usize, length: Duration) -> (f64, Vec<u32>) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let mut target = target.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut n = 0u64;
                let mut latencies = Vec::with_capacity(1 << 14);
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    target.op(task).await;
                    let micros = began.elapsed().as_micros();
                    latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    n += 1;
                    // The cached deny path never awaits anything pending:
                    // let the timer and the other tasks run.
                    if n.is_multiple_of(256) {
                        tokio::task::yield_now().await;
                    }
                }
                (n, latencies)
            })
        })
        .collect();
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0u64;
    let mut all = Vec::new();
    for h in handles {
        let (n, latencies) = h.await.unwrap();
        total += n;
        all.extend(latencies);
    }
    (total as f64 / started.elapsed().as_secs_f64(), all)
}

// ---------------------------------------------------------------------------
// Results.

/// A case at one concurrency, as it runs.
struct Measured {
    case: Case,
    tasks: usize,
    target: Target,
    faults_base: Faults,
    rounds: Vec<f64>,
    latencies: Vec<u32>,
}

struct Row {
    case: Case,
    concurrency: usize,
    per_round: Vec<f64>,
    floor_median: f64,
    latency: Latency,
    /// The defaults case: what was not answered by Redis.
    faults: Option<Faults>,
}

/// Percentiles of one case's check latencies over all its rounds, in µs.
#[derive(Clone, Copy, Debug, Default)]
struct Latency {
    samples: usize,
    p50: u32,
    p99: u32,
    p999: u32,
    max: u32,
}

impl Latency {
    fn of(v: &mut [u32]) -> Latency {
        if v.is_empty() {
            return Latency::default();
        }
        v.sort_unstable();
        let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
        Latency {
            samples: v.len(),
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: v[v.len() - 1],
        }
    }
}

/// Checks of the defaults case that Redis did not answer.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    /// Answered with a store error.
    errors: u64,
    /// Answered by the local fallback.
    fallback: u64,
    /// Times the circuit breaker opened.
    opened: u64,
}

impl Row {
    fn median(&self) -> f64 {
        median(&self.per_round)
    }

    fn ratio(&self) -> f64 {
        self.median() / self.floor_median
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn report(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| case | concurrency | checks/s (median) | ratio to floor | rounds (checks/s) | \
         latency p50 / p99 / p99.9 / max (µs) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    for r in rows {
        let rounds: Vec<String> = r.per_round.iter().map(|v| format!("{v:.0}")).collect();
        let l = r.latency;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2}x | {} | {} / {} / {} / {} |",
            r.case.name(),
            r.concurrency,
            r.median(),
            r.ratio(),
            rounds.join(", "),
            l.p50,
            l.p99,
            l.p999,
            l.max
        );
    }
    let _ = writeln!(
        out,
        "\nWith the store's defaults (timeout {} ms), checks not answered by Redis \
         (goal: none):\n",
        tollgate::store::redis::DEFAULT_TIMEOUT.as_millis()
    );
    for r in rows {
        if let Some(f) = r.faults {
            let _ = writeln!(
                out,
                "- {} at concurrency {}: {} checks; {} store errors, {} answered by the \
                 local fallback, breaker opened {} times",
                r.case.name(),
                r.concurrency,
                r.latency.samples,
                f.errors,
                f.fallback,
                f.opened
            );
        }
    }
    let _ = writeln!(
        out,
        "\nGoal: the store reaches at least {GOAL}x the floor:\n"
    );
    for r in rows.iter().filter(|r| r.case == Case::StoreAllow) {
        let verdict = if r.ratio() >= GOAL { "meets" } else { "MISSES" };
        let _ = writeln!(
            out,
            "- store-allow at concurrency {}: {:.2}x -> {verdict}",
            r.concurrency,
            r.ratio()
        );
    }
    let _ = writeln!(
        out,
        "\nLeased mode (one lease call per up to {LEASE_TOKENS} checks of a key; not the \
         per-request goal):\n"
    );
    for r in rows.iter().filter(|r| r.case == Case::StoreAllowLeased) {
        let _ = writeln!(
            out,
            "- store-allow-leased at concurrency {}: {:.0} checks/s, {:.2}x the floor",
            r.concurrency,
            r.median(),
            r.ratio()
        );
    }
    out
}

fn json(rows: &[Row]) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "case": r.case.name(),
                "concurrency": r.concurrency,
                "checks_per_sec_median": r.median(),
                "ratio_to_floor": r.ratio(),
                "rounds": r.per_round.len(),
                "checks_per_sec_rounds": r.per_round,
                "latency_us": {
                    "samples": r.latency.samples,
                    "p50": r.latency.p50,
                    "p99": r.latency.p99,
                    "p999": r.latency.p999,
                    "max": r.latency.max,
                },
                "not_answered_by_redis": r.faults.map(|f| serde_json::json!({
                    "store_errors": f.errors,
                    "fallback_answers": f.fallback,
                    "breaker_opened": f.opened,
                })),
            })
        })
        .collect();
    serde_json::to_string_pretty(&rows).unwrap()
}

fn output_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("tollgate-bench").join("redis.json")
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets
    // --all-features`) this is a short smoke run that writes no results.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    // Any other argument names the cases to run (the floor always runs):
    // `cargo bench --features redis --bench redis -- store-allow`.
    let only: Vec<&str> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let cases: Vec<Case> = CASES
        .into_iter()
        .filter(|c| *c == Case::Floor || only.is_empty() || only.contains(&c.name()))
        .collect();
    let (rounds, round, warm_up) = if bench {
        (ROUNDS, ROUND, WARM_UP)
    } else {
        (1, Duration::from_millis(100), Duration::from_millis(20))
    };
    let started = Instant::now();
    let server = Server::start();
    let prefix = format!("tollgate-bench:{:016x}", random());
    println!("# tollgate Redis store: checks per second\n");
    println!(
        "redis: {} ({}); {} worker threads; {rounds} rounds of {:.1} s per case and \
         concurrency, median reported; one key per task.\n",
        if server.own() {
            "own redis-server on a free loopback port"
        } else {
            "REDIS_URL"
        },
        server.url.split('@').next_back().unwrap_or(""),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        round.as_secs_f64(),
    );
    for case in &cases {
        println!("- {}: {}", case.name(), case.what());
    }
    println!();

    let mut targets = Vec::new();
    for &tasks in &CONCURRENCY {
        for &case in &cases {
            let target = Target::new(case, &server.url, &prefix, tasks).await;
            measure(&target, tasks, warm_up).await;
            // The warm-up's answers are not part of the figure.
            let faults_base = target.faults().unwrap_or_default();
            targets.push(Measured {
                case,
                tasks,
                target,
                faults_base,
                rounds: Vec::with_capacity(rounds),
                latencies: Vec::new(),
            });
        }
    }
    for _ in 0..rounds {
        for m in &mut targets {
            let (rate, latencies) = measure(&m.target, m.tasks, round).await;
            m.rounds.push(rate);
            m.latencies.extend(latencies);
        }
    }

    let rows: Vec<Row> = CONCURRENCY
        .iter()
        .flat_map(|&c| {
            let floor = targets
                .iter()
                .find(|m| m.case == Case::Floor && m.tasks == c)
                .map(|m| median(&m.rounds))
                .unwrap();
            targets
                .iter_mut()
                .filter(|m| m.tasks == c)
                .map(|m| Row {
                    case: m.case,
                    concurrency: m.tasks,
                    per_round: m.rounds.clone(),
                    floor_median: floor,
                    latency: Latency::of(&mut m.latencies),
                    faults: m.target.faults().map(|f| f.since(m.faults_base)),
                })
                .collect::<Vec<_>>()
        })
        .collect();
    drop(targets);
    print!("{}", report(&rows));

    if bench && only.is_empty() {
        let path = output_path();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, json(&rows)).unwrap();
        println!("\nwrote {}", path.display());
    } else if bench {
        println!("\ncases named: no results written (only a run of every case writes them)");
    } else {
        println!("\nsmoke run (no --bench): no results written");
    }
    drop(server);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
