//! A `redis-server` of the test's own on a free loopback port (or the one
//! `REDIS_URL` names), raw commands against it, a random key prefix per
//! test, and the small HTTP helpers the layer tests need.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tollgate::algorithm::AlgorithmKind;
use tollgate::key::{Key, PeerAddr};
use tollgate::quota::Quota;
use tollgate::store::{Charge, Checked, RedisStore, Store, Verdict};
use tollgate::{Limit, StoreError};
use tower::{Service, ServiceExt};

const HOW_TO_GET_ONE: &str = "the Redis tests need redis-server and redis-cli: run \
     `apt-get install -y redis-server redis-tools` (as root the tests do it themselves) so the \
     tests can start their own, or set REDIS_URL=redis://127.0.0.1:6379/ to a server they may \
     write to (the outage and cluster tests still start their own)";

/// A Redis the tests may use: their own `redis-server` process, killed by
/// PID on drop, or the server `REDIS_URL` names.
pub(crate) struct Server {
    url: String,
    own: Option<Own>,
}

struct Own {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Extra `redis-server` arguments.
    extra: Vec<String>,
}

impl Server {
    /// The server of `REDIS_URL` when set, else a new one of our own.
    pub(crate) fn start() -> Server {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.is_empty() => Server { url, own: None },
            _ => Self::own(),
        }
    }

    /// Always a server of our own (a test that kills it needs that).
    pub(crate) fn own() -> Server {
        Self::own_with(&[])
    }

    /// A server of our own with `extra` `redis-server` arguments.
    pub(crate) fn own_with(extra: &[&str]) -> Server {
        let own = Own::start(extra, free_port);
        Server {
            url: format!("redis://127.0.0.1:{}/", own.port),
            own: Some(own),
        }
    }

    /// Our server's port.
    pub(crate) fn port(&self) -> u16 {
        self.own.as_ref().expect("a server of our own").port
    }

    /// Sends our server `signal` (`STOP`, `CONT`) by PID.
    pub(crate) fn signal(&self, signal: &str) {
        let own = self.own.as_ref().expect("a server of our own");
        let child = own.child.as_ref().expect("our server runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", child.id());
    }

    /// The URL to connect to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Kills our server (SIGKILL, by PID) and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(own) = &mut self.own {
            own.stop();
        }
    }

    /// Starts our server again on the same port.
    pub(crate) fn restart(&mut self) {
        let own = self.own.as_mut().expect("a server of our own");
        own.launch()
            .expect("redis-server restarts on the same port");
    }

    /// A raw connection for test commands.
    pub(crate) async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection to the test redis")
    }

    /// A store with a fresh random prefix and a timeout generous enough for
    /// a loaded test machine.
    pub(crate) fn store(&self) -> RedisStore {
        self.store_with(&prefix(), Duration::from_secs(2))
    }

    /// A store with this prefix and timeout.
    pub(crate) fn store_with(&self, prefix: &str, timeout: Duration) -> RedisStore {
        RedisStore::builder(self.url.as_str())
            .no_fallback()
            .prefix(prefix)
            .timeout(timeout)
            .build()
            .expect("redis store")
    }
}

impl Own {
    /// A server on a port from `port`, with `extra` arguments.
    fn start(extra: &[&str], port: fn() -> u16) -> Own {
        provision();
        let mut last = String::new();
        for _ in 0..5 {
            let port = port();
            let dir = std::env::temp_dir().join(format!(
                "tollgate-redis-{}-{port}-{:x}",
                std::process::id(),
                random()
            ));
            std::fs::create_dir_all(&dir).expect("temporary directory");
            let mut own = Own {
                child: None,
                port,
                dir,
                extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            };
            match own.launch() {
                Ok(()) => return own,
                Err(e) => last = e,
            }
        }
        panic!("could not start redis-server: {last}");
    }

    fn launch(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.join("redis.log")).map_err(|e| e.to_string())?;
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawning redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ping(self.port) {
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

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three primaries of our own, on free loopback ports
/// (each with its bus port, 10000 above, free too), killed by PID on drop.
pub(crate) struct Cluster {
    nodes: Vec<Own>,
}

impl Cluster {
    /// Three primaries, no replica.
    pub(crate) fn start() -> Cluster {
        Self::with_replicas(0)
    }

    /// Three primaries with `replicas` replicas each.
    pub(crate) fn with_replicas(replicas: usize) -> Cluster {
        provision();
        let cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ];
        let nodes: Vec<Own> = (0..3 * (1 + replicas))
            .map(|_| Own::start(&cluster_args, free_cluster_port))
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let output = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = Cluster { nodes };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster
            .nodes
            .iter()
            .all(|n| cluster_ok(n.port) && synced(n.port))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `redis+cluster://` and every node.
    pub(crate) fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    /// Each node's URL.
    pub(crate) fn node_urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect()
    }
}

impl Cluster {
    /// Kills (SIGKILL, by PID) the first node that is a primary; its port.
    pub(crate) fn kill_a_primary(&mut self) -> u16 {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| redis_cli(n.port, &["role"]).starts_with("master"))
            .expect("a primary");
        node.stop();
        node.port
    }

    /// Whether a replica has taken the dead primary's place: three of the
    /// nodes still running are primaries, and all say `cluster_state:ok`.
    pub(crate) fn healed(&self, dead: u16) -> bool {
        let live = || self.nodes.iter().filter(|n| n.port != dead);
        live()
            .filter(|n| redis_cli(n.port, &["role"]).starts_with("master"))
            .count()
            == 3
            && live().all(|n| cluster_ok(n.port))
    }
}

/// `redis-cli -p port args...`'s output ("" when it cannot run).
fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A replica has its primary's data (a primary always has).
fn synced(port: u16) -> bool {
    let info = redis_cli(port, &["info", "replication"]);
    !info.contains("role:slave") || info.contains("master_link_status:up")
}

fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 50_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "cluster",
            "info",
        ])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
}

/// Makes sure `redis-server` and `redis-cli` are on PATH, so the README's
/// test command passes on a fresh machine of this project's kind with
/// nothing done by hand: when they are missing and this process may install
/// packages (root, `apt-get` present, `TOLLGATE_NO_INSTALL` unset), Debian's
/// `redis-server` and `redis-tools` are installed once; otherwise the tests
/// fail at once naming the one command to run. Never a skip.
fn provision() {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let done = DONE.get_or_init(|| {
        let present = || on_path("redis-server") && on_path("redis-cli");
        if present() {
            return Ok(());
        }
        let how = format!("redis-server or redis-cli is not on PATH; {HOW_TO_GET_ONE}");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if std::env::var_os("TOLLGATE_NO_INSTALL").is_some() || !root || !on_path("apt-get") {
            return Err(how);
        }
        eprintln!("tollgate tests: installing redis-server and redis-tools (apt-get)");
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let installed =
            apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "redis-server", "redis-tools"]);
        if installed && present() {
            Ok(())
        } else {
            Err(format!("installing them with apt-get failed; {how}"))
        }
    });
    if let Err(why) = done {
        panic!("{why}");
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A loopback port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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

/// 64 random bits.
pub(crate) fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// A key prefix no other test (or run) uses.
pub(crate) fn prefix() -> String {
    format!("tollgate-test:{:016x}", random())
}

/// Redis's clock, in nanoseconds since the epoch.
pub(crate) async fn redis_now(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query_async(raw).await.expect("TIME");
    s * 1_000_000_000 + us * 1_000
}

/// The keys under `prefix`.
pub(crate) async fn keys(raw: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(raw)
        .await
        .expect("KEYS");
    keys.sort();
    keys
}

/// A rate limit from quota text.
pub(crate) fn rate(name: &str, quota: &str, kind: AlgorithmKind) -> Limit {
    let quota: Quota = quota.parse().expect("quota text");
    Limit::new(name, quota, kind).expect("limit")
}

/// A concurrency limit of `n` in flight.
pub(crate) fn concurrent(name: &str, n: u64) -> Limit {
    Limit::new(
        name,
        Quota::concurrent(n).expect("quota"),
        AlgorithmKind::Gcra,
    )
    .expect("limit")
}

/// A byte key.
pub(crate) fn key(text: &str) -> Key<'static> {
    Key::owned(text, "test").expect("key")
}

/// Runs a check to its answer, whatever the store.
pub(crate) async fn run<St: Store>(checked: Checked<St::Future>) -> Result<Verdict, StoreError> {
    match checked {
        Checked::Ready(result) => result,
        Checked::Pending(future) => future.await,
    }
}

/// Checks (charging) `charges` in `store`.
pub(crate) async fn check<St: Store>(
    store: &St,
    charges: &[Charge<'_, St::Handle>],
) -> Result<Verdict, StoreError> {
    run::<St>(store.check(charges)).await
}

/// Looks at `charges` in `store` without charging.
pub(crate) async fn peek<St: Store>(
    store: &St,
    charges: &[Charge<'_, St::Handle>],
) -> Result<Verdict, StoreError> {
    run::<St>(store.peek(charges)).await
}

/// Counts the calls of the inner service.
#[derive(Clone, Debug, Default)]
pub(crate) struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The trivial inner service: counts the call and answers `200 ok`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ok200(pub(crate) Calls);

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
        ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    }
}

/// A GET request from `peer`.
pub(crate) fn from(peer: &str) -> Request<()> {
    Request::builder()
        .uri("/api")
        .extension(PeerAddr(peer.parse().expect("socket address")))
        .body(())
        .expect("request")
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Calls `service` with `request` and reads the reply whole.
pub(crate) async fn send<S, B>(service: &mut S, request: Request<()>) -> Reply
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    let response = service
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}
