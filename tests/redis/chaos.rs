//! Faults injected into real `redis-server` processes under concurrent load
//! through the real layer, with the store's default failure policy (the
//! local fallback) and timeout: every answer must be a limit's (200 or
//! 429), none later than the timeout and a slack for a loaded two-core test
//! machine, and the store must be back on Redis within a second of Redis
//! answering again. Each loop is bounded in count and time.
//!
//! Faults: SIGSTOP / SIGCONT, SIGKILL and a restart on the same port,
//! `CLIENT PAUSE`, `DEBUG SLEEP`, every call slowed past the timeout (a
//! delaying proxy), and a healthy Redis under 64 tasks (which must cause
//! no fallback answer at all beyond a stall of the host). Concurrency
//! permits taken in Redis must all be given back.
//!
//! `bash benches/chaos.sh` runs the same faults longer (a soak) and prints
//! the figures the README quotes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use tollgate::key::PeerIp;
use tollgate::store::redis::{BreakerState, DEFAULT_TIMEOUT};
use tollgate::store::RedisStore;
use tollgate::{Plans, RateLimit, RateLimitLayer};
use tower::Layer;

use crate::proxy::Proxy;
use crate::support::{from, prefix, send, Ok200, Server};

/// What a loaded two-core machine running other tests may add to the
/// timeout before an answer (the soak script reports the real figures).
const SLACK: Duration = Duration::from_millis(150);

/// Closed-loop clients of the load.
const CLIENTS: usize = 16;

/// The most requests one client sends in a test (a bound besides time).
const MAX_PER_CLIENT: u64 = 200_000;

/// A store with every default but its prefix.
fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::builder(url)
        .prefix(prefix)
        .build()
        .expect("redis store")
}

/// The layer: 50 requests per second per client IP (so some clients are
/// refused by the limit and some admitted) and at most 4 in flight per
/// client IP, a concurrency limit whose permits live in Redis.
fn service(store: RedisStore) -> RateLimit<Ok200, RedisStore> {
    let plans = Plans::single("api", "50/second").expect("plans");
    let inflight = Plans::single("inflight", "4 concurrent").expect("plans");
    RateLimitLayer::builder(plans)
        .store(store)
        .also("also", inflight, PeerIp::new())
        .build()
        .expect("layer")
        .layer(Ok200::default())
}

/// One answer of the load.
#[derive(Clone, Copy, Debug)]
struct Answer {
    status: StatusCode,
    latency: Duration,
}

/// The load's answers and the fallback's count over time.
struct Run {
    answers: Vec<Answer>,
    /// `(time since start, fallback answers so far)`, every 5 ms.
    fallback: Vec<(Duration, u64)>,
    /// When the fault began and ended, since start.
    fault: (Duration, Duration),
}

impl Run {
    /// Every answer a limit's, in time; the fault seen (the fallback
    /// answered during it); back on Redis within a second of its end.
    fn judge(&self, what: &str, store: &RedisStore) {
        let total = self.answers.len();
        assert!(total > 100, "{what}: only {total} answers");
        let by_status = |s: StatusCode| self.answers.iter().filter(|a| a.status == s).count();
        let (ok, limited) = (
            by_status(StatusCode::OK),
            by_status(StatusCode::TOO_MANY_REQUESTS),
        );
        assert_eq!(
            ok + limited,
            total,
            "{what}: {} answers neither 200 nor 429 (of {total})",
            total - ok - limited
        );
        assert!(
            ok > 0 && limited > 0,
            "{what}: {ok} admitted, {limited} limited"
        );
        let slowest = self
            .answers
            .iter()
            .map(|a| a.latency)
            .max()
            .unwrap_or_default();
        assert!(
            slowest <= DEFAULT_TIMEOUT + SLACK,
            "{what}: an answer took {slowest:?} (timeout {DEFAULT_TIMEOUT:?})"
        );
        let (began, ended) = self.fault;
        let at = |t: Duration| {
            self.fallback
                .iter()
                .take_while(|(when, _)| *when <= t)
                .last()
                .map_or(0, |(_, n)| *n)
        };
        let during = at(ended) - at(began);
        assert!(
            during > 0,
            "{what}: the fallback never answered during the fault"
        );
        let last = self.fallback.last().map_or(0, |(_, n)| *n);
        let last_change = self
            .fallback
            .iter()
            .rev()
            .find(|(_, n)| *n < last)
            .map_or(Duration::ZERO, |(when, _)| *when);
        let recovery = last_change.saturating_sub(ended);
        assert!(
            recovery <= Duration::from_secs(1),
            "{what}: the fallback still answered {recovery:?} after the fault ended"
        );
        assert_eq!(store.breaker_state(), BreakerState::Closed, "{what}");
        let mut latencies: Vec<Duration> = self.answers.iter().map(|a| a.latency).collect();
        latencies.sort_unstable();
        let p99 = latencies[latencies.len() * 99 / 100];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // One line the soak (benches/chaos.sh) collects into its table.
        eprintln!(
            "chaos | {what} | {:.1} s | {total} | {ok} | {limited} | 0 | {:.1} | {:.1} | {during} | {:.0} |",
            (ended - began).as_secs_f64(),
            ms(p99),
            ms(slowest),
            ms(recovery)
        );
    }
}

/// Runs the load for [`BEFORE`], then `fault` (which returns once the
/// fault is over), then [`AFTER`] more.
async fn run<F, Fut>(store: &RedisStore, fault: F) -> Run
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let svc = service(store.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (mut svc, stop, answers) = (svc.clone(), Arc::clone(&stop), Arc::clone(&answers));
        tasks.push(tokio::spawn(async move {
            let peer = format!("198.51.100.{}:4000", client + 1);
            let mut mine = Vec::new();
            for _ in 0..MAX_PER_CLIENT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let began = Instant::now();
                let reply = send(&mut svc, from(&peer)).await;
                mine.push(Answer {
                    status: reply.status,
                    latency: began.elapsed(),
                });
                // A refused client comes back a little later, as a client
                // would; the rest go on at once.
                if reply.status != StatusCode::OK {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            answers.lock().expect("answers").extend(mine);
        }));
    }
    let fallback = Arc::new(Mutex::new(Vec::new()));
    let monitor = {
        let (store, stop, fallback) = (store.clone(), Arc::clone(&stop), Arc::clone(&fallback));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                let n = store.fallback_stats().answers;
                fallback
                    .lock()
                    .expect("samples")
                    .push((started.elapsed(), n));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(BEFORE).await;
    let began = started.elapsed();
    fault().await;
    let ended = started.elapsed();
    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("no panic in the load");
    }
    monitor.await.expect("monitor");
    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    let fallback = std::mem::take(&mut *fallback.lock().expect("samples"));
    Run {
        answers,
        fallback,
        fault: (began, ended),
    }
}

/// Every concurrency slot taken in Redis under `prefix` is given back
/// (bounded wait: releases run in tasks of their own).
async fn no_permit_left(server: &Server, prefix: &str) {
    let mut raw = server.raw().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*inflight@*"))
            .query_async(&mut raw)
            .await
            .expect("KEYS");
        let mut held = 0u64;
        for key in keys.iter().filter(|k| !k.ends_with(":n")) {
            let n: u64 = redis::cmd("ZCARD")
                .arg(key)
                .query_async(&mut raw)
                .await
                .expect("ZCARD");
            held += n;
        }
        if held == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{held} concurrency slots still held in Redis 5 s after the load"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn raw_command(server: &Server, args: &[&str]) {
    let mut raw = server.raw().await;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(&mut raw).await.expect("the command runs");
}

const BEFORE: Duration = Duration::from_millis(700);
const AFTER: Duration = Duration::from_millis(1_500);

/// How long each fault lasts: 1.5 s, or `TOLLGATE_CHAOS_FAULT_MS` (the
/// soak, `benches/chaos.sh`, runs them longer).
fn fault_length() -> Duration {
    let ms = std::env::var("TOLLGATE_CHAOS_FAULT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500u64)
        .clamp(100, 120_000);
    Duration::from_millis(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_redis_under_64_tasks_answers_every_check() {
    let server = Server::own();
    let prefix = prefix();
    let store = store(server.url(), &prefix);
    let svc = service(store.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..64 {
        let (mut svc, stop, other) = (svc.clone(), Arc::clone(&stop), Arc::clone(&statuses));
        tasks.push(tokio::spawn(async move {
            let peer = format!("203.0.113.{}:4000", client + 1);
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) && (latencies.len() as u64) < MAX_PER_CLIENT {
                let began = Instant::now();
                let status = send(&mut svc, from(&peer)).await.status;
                latencies.push(began.elapsed());
                if status != StatusCode::OK && status != StatusCode::TOO_MANY_REQUESTS {
                    other.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let length = fault_length().max(Duration::from_secs(2));
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("no panic"));
    }
    latencies.sort_unstable();
    let total = latencies.len() as u64;
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    assert!(total > 1_000, "only {total} requests in {length:?}");
    assert_eq!(
        statuses.load(Ordering::Relaxed),
        0,
        "answers not 200 or 429"
    );
    assert_eq!(
        store.breaker_stats().opened,
        0,
        "the breaker opened on a healthy Redis"
    );
    // A stall of this shared machine longer than the timeout would make
    // the checks in flight then answered locally (correctly, by the limit):
    // tolerated up to 1%, and reported.
    let local = store.fallback_stats().answers;
    assert!(
        local * 100 <= total,
        "{local} of {total} checks not answered by a healthy Redis"
    );
    eprintln!(
        "chaos | healthy Redis, 64 tasks (p99.9 {:.1} ms) | {:.1} s | {total} | - | - | 0 | {:.1} | {:.1} | {local} | - |",
        ms(at(0.999)),
        length.as_secs_f64(),
        ms(at(0.99)),
        ms(at(1.0))
    );
    no_permit_left(&server, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_by_sigstop_then_continued() {
    let server = Server::own();
    let prefix = prefix();
    let store = store(server.url(), &prefix);
    let run = run(&store, || async {
        server.signal("STOP");
        tokio::time::sleep(fault_length()).await;
        server.signal("CONT");
    })
    .await;
    run.judge("SIGSTOP", &store);
    no_permit_left(&server, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted_on_its_port() {
    let mut server = Server::own();
    let prefix = prefix();
    let store = store(server.url(), &prefix);
    let server = Mutex::new(&mut server);
    let run = run(&store, || async {
        server.lock().expect("server").kill();
        tokio::time::sleep(fault_length()).await;
        server.lock().expect("server").restart();
    })
    .await;
    run.judge("SIGKILL and restart", &store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_by_client_pause() {
    let server = Server::own();
    let prefix = prefix();
    let store = store(server.url(), &prefix);
    let run = run(&store, || async {
        let ms = fault_length().as_millis().to_string();
        raw_command(&server, &["CLIENT", "PAUSE", &ms, "ALL"]).await;
        tokio::time::sleep(fault_length()).await;
    })
    .await;
    run.judge("CLIENT PAUSE", &store);
    no_permit_left(&server, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_blocked_by_debug_sleep() {
    let server = Server::own_with(&["--enable-debug-command", "local"]);
    let prefix = prefix();
    let store = store(server.url(), &prefix);
    let run = run(&store, || async {
        // DEBUG SLEEP blocks the server, and this call, until it ends
        // (redis-cli waits for it without a response timeout).
        let secs = format!("{:.3}", fault_length().as_secs_f64());
        let port = server.port().to_string();
        let status = tokio::task::spawn_blocking(move || {
            std::process::Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port, "DEBUG", "SLEEP", &secs])
                .stdout(std::process::Stdio::null())
                .status()
        })
        .await
        .expect("redis-cli task")
        .expect("redis-cli runs");
        assert!(status.success(), "DEBUG SLEEP: {status}");
    })
    .await;
    run.judge("DEBUG SLEEP", &store);
    no_permit_left(&server, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_slowed_past_the_timeout() {
    let server = Server::own();
    let proxy = Proxy::start(server.port()).await;
    let prefix = prefix();
    let store = store(&proxy.url(), &prefix);
    let run = run(&store, || async {
        proxy.delay(DEFAULT_TIMEOUT * 2);
        tokio::time::sleep(fault_length()).await;
        proxy.delay(Duration::ZERO);
    })
    .await;
    run.judge("slow calls", &store);
    no_permit_left(&server, &prefix).await;
}

/// A check answered while Redis was paused (its call timed out; the local
/// fallback answered) is not charged when Redis runs its script late; and
/// once Redis is back, its counters are the one truth again: a fresh
/// client through two instances gets exactly its quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_without_redis_is_not_charged_when_redis_resumes() {
    let server = Server::own();
    let prefix = prefix();
    let one = store(server.url(), &prefix);
    let two = store(server.url(), &prefix);
    let plans = || Plans::single("api", "3/minute").expect("plans");
    let mut a = RateLimitLayer::builder(plans())
        .store(one.clone())
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let mut b = RateLimitLayer::builder(plans())
        .store(two.clone())
        .build()
        .expect("layer")
        .layer(Ok200::default());
    // An answer from Redis first: the store learns Redis's clock, so its
    // checks carry deadlines.
    assert_eq!(
        send(&mut a, from("192.0.2.200:1")).await.status,
        StatusCode::OK
    );

    server.signal("STOP");
    let began = Instant::now();
    let paused = send(&mut a, from("192.0.2.7:1")).await;
    let waited = began.elapsed();
    assert_eq!(
        paused.status,
        StatusCode::OK,
        "answered by the local fallback"
    );
    assert!(
        waited >= DEFAULT_TIMEOUT,
        "answered after the timeout: {waited:?}"
    );
    assert!(waited <= DEFAULT_TIMEOUT + SLACK, "{waited:?}");
    assert_eq!(one.fallback_stats().answers, 1);
    // Redis stays paused well past that check's deadline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.signal("CONT");

    // The late script charged nothing: the client has its whole quota.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut statuses = Vec::new();
    for i in 0..4 {
        let svc = if i % 2 == 0 { &mut a } else { &mut b };
        loop {
            let before = one.fallback_stats().answers + two.fallback_stats().answers;
            let reply = send(svc, from("192.0.2.7:1")).await;
            let after = one.fallback_stats().answers + two.fallback_stats().answers;
            if after == before {
                statuses.push(reply.status.as_u16());
                break;
            }
            assert!(Instant::now() < deadline, "not back on Redis within 5 s");
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 429],
        "exactly the quota, from Redis"
    );

    // A fresh client through both instances: exactly 3.
    let mut fresh = Vec::new();
    for i in 0..6 {
        let svc = if i % 2 == 0 { &mut a } else { &mut b };
        fresh.push(send(svc, from("192.0.2.8:1")).await.status.as_u16());
    }
    assert_eq!(fresh, [200, 200, 200, 429, 429, 429]);
    assert_eq!(
        one.fallback_stats().answers + two.fallback_stats().answers,
        1,
        "only the paused check was answered locally"
    );
}

/// A Redis Cluster of three primaries with a replica each loses a primary
/// under load; its replica takes over (after the cluster's node timeout,
/// 2 s here). Meanwhile the checks of that primary's slots are answered by
/// the local fallback, in time; afterwards the store follows the new
/// topology and Redis answers every check again. Admissions per client stay
/// within the documented bound: what Redis admitted plus the fallback's
/// share (the quota, for one instance), plus writes the failover lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_lost_under_load_while_its_replica_takes_over() {
    let mut cluster = crate::support::Cluster::with_replicas(1);
    let store = RedisStore::builder(cluster.url())
        .prefix(prefix())
        .build()
        .expect("cluster store");
    // 300 a minute per client (GCRA: a burst of 300, then 5 a second).
    const QUOTA: f64 = 300.0;
    const PER_SECOND: f64 = 5.0;
    let plans = Plans::single("api", "300/minute").expect("plans");
    let svc = RateLimitLayer::builder(plans)
        .store(store.clone())
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (mut svc, stop) = (svc.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let peer = format!("198.51.100.{}:4000", client + 1);
            let (mut ok, mut limited, mut slowest) = (0usize, 0usize, Duration::ZERO);
            for _ in 0..MAX_PER_CLIENT {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let began = Instant::now();
                let status = send(&mut svc, from(&peer)).await.status;
                slowest = slowest.max(began.elapsed());
                match status {
                    StatusCode::OK => ok += 1,
                    StatusCode::TOO_MANY_REQUESTS => limited += 1,
                    other => panic!("client {client}: answered {other}"),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (ok, limited, slowest)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = store.fallback_stats().answers;
    assert_eq!(before, 0, "a healthy cluster answers every check");
    let dead = cluster.kill_a_primary();
    let killed = Instant::now();
    // The replica takes over: bounded wait for the cluster to heal.
    while !cluster.healed(dead) {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let healed = killed.elapsed();
    // Then the store must follow: the fallback stops answering.
    let mut last = store.fallback_stats().answers;
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        assert!(
            killed.elapsed() < healed + Duration::from_secs(15),
            "the store still fell back 15 s after the cluster healed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = store.fallback_stats().answers;
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let followed = killed.elapsed() - Duration::from_secs(1);
    stop.store(true, Ordering::Relaxed);
    // The documented bound: what Redis admitted (the quota, refilled over
    // the test) plus the fallback's share (the same for one instance), plus
    // a few writes the failover may lose (asynchronous replication).
    let allowed = QUOTA + PER_SECOND * started.elapsed().as_secs_f64();
    let bound = (2.0 * allowed).ceil() as usize + 10;
    let mut slowest = Duration::ZERO;
    let (mut ok, mut limited) = (0, 0);
    for task in tasks {
        let (o, l, s) = task.await.expect("no panic in the load");
        assert!(
            o <= bound,
            "a client was admitted {o} times (bound {bound})"
        );
        ok += o;
        limited += l;
        slowest = slowest.max(s);
    }
    assert!(
        last > 0,
        "the lost primary's slots were answered by the fallback"
    );
    assert!(
        slowest <= DEFAULT_TIMEOUT + SLACK,
        "an answer took {slowest:?}"
    );
    eprintln!(
        "chaos | cluster primary killed, replica promoted after {:.1} s | - | {} | {ok} | {limited} | 0 | - | {:.1} | {last} | {:.0} |",
        healed.as_secs_f64(),
        ok + limited,
        slowest.as_secs_f64() * 1e3,
        (followed.saturating_sub(healed)).as_secs_f64() * 1e3,
    );
}
