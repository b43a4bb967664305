//! End to end: the `tiered_api` example served on a loopback socket and
//! driven by a real HTTP client, one fresh server per scenario.
#![cfg(feature = "serde")]

#[path = "../examples/tiered_api.rs"]
#[allow(dead_code, unreachable_pub)]
mod tiered_api;

#[path = "rate_limit/sf.rs"]
#[allow(dead_code)]
mod sf;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tollgate::key::TrustedProxies;

use tiered_api::{
    app, app_reloadable, app_with_store, parse_args, resolve_tier, watch_config, Limits, Options,
    DEFAULT_CONFIG,
};

/// A running example server and a client for it.
struct Server {
    addr: SocketAddr,
    client: Client<HttpConnector, Empty<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Checks the rate-limit fields against the draft; answers the name and
    /// remaining count of the `RateLimit` item.
    fn ratelimit(&self) -> (String, i64) {
        let (policies, limits) = sf::check_fields(&self.headers)
            .unwrap_or_else(|e| panic!("status {}: {e}", self.status));
        assert!(policies.is_some(), "RateLimit-Policy present");
        let item = limits
            .expect("RateLimit present")
            .into_iter()
            .next()
            .expect("an item");
        (item.name, item.r)
    }
}

/// Starts the example's app with the built-in plans, trusting `trusted`.
async fn start(trusted: &[&str]) -> Server {
    let limits = Limits::from_toml(DEFAULT_CONFIG).expect("the shipped config parses");
    let trusted = TrustedProxies::new(trusted).expect("valid proxies");
    serve(app(limits, trusted)).await
}

/// Serves `router` on a free loopback port.
async fn serve(router: axum::Router) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    let client = Client::builder(TokioExecutor::new()).build_http();
    Server { addr, client, task }
}

impl Server {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).expect("request");
        let response = self.client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn hello(&self, headers: &[(&str, &str)]) -> Reply {
        self.get("/api/hello", headers).await
    }

    /// Sends `n` requests to `/api/hello` and answers how many were
    /// admitted before the first refusal, and that refusal.
    async fn until_refused(&self, headers: &[(&str, &str)], n: usize) -> (usize, Reply) {
        for admitted in 0..n {
            let reply = self.hello(headers).await;
            if reply.status != StatusCode::OK {
                return (admitted, reply);
            }
        }
        panic!("{n} requests admitted, none refused");
    }
}

fn assert_refusal(reply: &Reply, policy: &str, tier: &str) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let retry = reply.header("retry-after").expect("Retry-After");
    sf::retry_after(retry.as_bytes()).expect("positive delta-seconds");
    let body = reply.json();
    assert_eq!(body["status"], 429);
    assert_eq!(body["policy"], policy);
    assert_eq!(body["tier"], tier);
    assert_eq!(reply.ratelimit(), (policy.to_owned(), 0));
}

#[tokio::test]
async fn anonymous_gets_3_per_minute() {
    let server = start(&[]).await;
    for remaining in [2, 1, 0] {
        let reply = server.hello(&[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.json(),
            serde_json::json!({ "message": "hello", "tier": "anonymous" })
        );
        assert_eq!(reply.ratelimit(), ("anonymous".to_owned(), remaining));
    }
    let refused = server.hello(&[]).await;
    assert_refusal(&refused, "anonymous", "anonymous");
    assert_eq!(refused.header("retry-after"), Some("20"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"anonymous\";q=3;w=60, \"per-ip\";q=40;w=2")
    );
}

#[tokio::test]
async fn basic_gets_10_per_minute_then_basic_minute_refuses() {
    let server = start(&[]).await;
    let key = [("x-api-key", "basic-demo-key")];
    let first = server.hello(&key).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["tier"], "basic");
    assert_eq!(first.ratelimit(), ("basic-minute".to_owned(), 9));
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"basic-minute\";q=10;w=60, \"basic-day\";q=1000;w=86400, \"per-ip\";q=40;w=2")
    );
    let (admitted, refused) = server.until_refused(&key, 20).await;
    assert_eq!(admitted + 1, 10);
    assert_refusal(&refused, "basic-minute", "basic");
    assert_eq!(refused.header("retry-after"), Some("6"));
}

#[tokio::test]
async fn premium_gets_20_per_minute() {
    let server = start(&[]).await;
    let key = [("x-api-key", "premium-demo-key")];
    let (admitted, refused) = server.until_refused(&key, 30).await;
    assert_eq!(admitted, 20);
    assert_refusal(&refused, "premium", "premium");
    assert_eq!(refused.header("retry-after"), Some("3"));
}

#[tokio::test]
async fn unknown_key_is_401_and_not_counted() {
    let server = start(&[]).await;
    for _ in 0..5 {
        let reply = server.hello(&[("x-api-key", "stolen-key")]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["status"], 401);
        assert!(!reply.headers.contains_key("ratelimit"));
    }
    let (admitted, refused) = server.until_refused(&[], 10).await;
    assert_eq!(admitted, 3, "the anonymous quota is untouched");
    assert_refusal(&refused, "anonymous", "anonymous");
}

#[tokio::test]
async fn health_is_never_limited() {
    let server = start(&[]).await;
    let (admitted, _) = server.until_refused(&[], 10).await;
    assert_eq!(admitted, 3);
    for _ in 0..10 {
        let reply = server.get("/health", &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(&reply.body[..], b"ok");
        assert!(!reply.headers.contains_key("ratelimit"));
    }
    assert_eq!(
        server.hello(&[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_from_one_ip_trips_the_per_ip_ceiling_first() {
    let server = start(&[]).await;
    let key = [("x-api-key", "admin-demo-key")];
    let started = Instant::now();
    let (admitted, refused) = server.until_refused(&key, 200).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_refusal(&refused, "per-ip", "per-ip");
    // Burst 40, then 20 a second for however long the run took.
    let most = 40.0 + 20.0 * elapsed + 1.0;
    assert!(
        admitted >= 40 && admitted as f64 <= most,
        "{admitted} admitted in {elapsed:.3} s"
    );
    assert!(
        admitted < 50,
        "the admin tier's 50/minute did not trip first"
    );
}

#[tokio::test]
async fn trusted_proxy_gives_each_forwarded_client_its_quota() {
    let server = start(&["127.0.0.1/32"]).await;
    for client in ["203.0.113.1", "203.0.113.2"] {
        let forwarded = [("x-forwarded-for", client)];
        let (admitted, refused) = server.until_refused(&forwarded, 10).await;
        assert_eq!(admitted, 3, "client {client}");
        assert_refusal(&refused, "anonymous", "anonymous");
    }
    // The proxy's own requests (no header) are the proxy's.
    let (admitted, _) = server.until_refused(&[], 10).await;
    assert_eq!(admitted, 3);
    // A chain through another, untrusted hop: the hop nearest us is the client.
    let chain = [("x-forwarded-for", "198.51.100.9, 203.0.113.3")];
    let (admitted, _) = server.until_refused(&chain, 10).await;
    assert_eq!(admitted, 3);
    let spoofed = [("x-forwarded-for", "198.51.100.10, 203.0.113.3")];
    assert_eq!(
        server.hello(&spoofed).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the entry a client wrote is not believed"
    );
    // Garbage from a trusted proxy is a bad request, not a fresh key.
    let garbage = server.hello(&[("x-forwarded-for", "not-an-ip")]).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
}

/// The flood, scaled to a 4,000-key store: 20,000 requests from
/// distinct client IPs through the trusted proxy (each costs two keys, tier
/// and per-IP: ten times `max_keys`), 16 at a time. While it runs, fresh
/// clients send two requests each, one after another, and 20 clients that spent their quota
/// before the flood keep trying. No fresh client is refused for lack of
/// room (at most 1%, the goal; 503 is that refusal), no limited client is
/// let through, and the store stays within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_client_ips_refuses_no_fresh_client_and_resets_no_limited_one() {
    const MAX_KEYS: usize = 4_000;
    const FLOOD: u32 = 20_000;
    const TASKS: u32 = 16;
    let store = tollgate::store::MemoryStore::builder()
        .max_keys(MAX_KEYS)
        .build();
    let limits = Limits::from_toml(DEFAULT_CONFIG).expect("the shipped config parses");
    let trusted = TrustedProxies::new(["127.0.0.1/32"]).expect("valid proxies");
    let server = std::sync::Arc::new(serve(app_with_store(limits, trusted, store.clone())).await);
    let limited: Vec<String> = (0..20).map(|i| format!("10.0.0.{i}")).collect();
    for ip in &limited {
        let (admitted, _) = server.until_refused(&[("x-forwarded-for", ip)], 10).await;
        assert_eq!(admitted, 3, "{ip}");
    }
    let flood: Vec<_> = (0..TASKS)
        .map(|task| {
            let server = std::sync::Arc::clone(&server);
            tokio::spawn(async move {
                let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
                for i in (task..FLOOD).step_by(TASKS as usize) {
                    // 11.0.0.0 upwards: never one of the test's own clients.
                    let [_, b, c, d] = i.to_be_bytes();
                    let ip = format!("{}.{b}.{c}.{d}", 11 + (i >> 24));
                    let reply = server.hello(&[("x-forwarded-for", &ip)]).await;
                    *statuses.entry(reply.status.as_u16()).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let (mut fresh_requests, mut fresh_503, mut fresh_other) = (0, 0, Vec::new());
    let mut limited_admitted = Vec::new();
    let started = Instant::now();
    let mut client = 0u32;
    while flood.iter().any(|task| !task.is_finished()) {
        assert!(client < 5_000, "the flood runs for ever");
        let ip = format!("10.1.{}.{}", client / 256, client % 256);
        for _ in 0..2 {
            let reply = server.hello(&[("x-forwarded-for", &ip)]).await;
            fresh_requests += 1;
            match reply.status {
                StatusCode::OK => {}
                StatusCode::SERVICE_UNAVAILABLE => fresh_503 += 1,
                other => fresh_other.push((ip.clone(), other)),
            }
        }
        if client % 20 == 19 {
            for ip in &limited {
                let reply = server.hello(&[("x-forwarded-for", ip)]).await;
                if reply.status != StatusCode::TOO_MANY_REQUESTS {
                    limited_admitted.push((ip.clone(), reply.status));
                }
            }
        }
        assert!(store.len() <= MAX_KEYS, "{} keys", store.len());
        client += 1;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut flooded = std::collections::BTreeMap::<u16, u32>::new();
    for task in flood {
        for (status, n) in task.await.expect("flood task") {
            *flooded.entry(status).or_default() += n;
        }
    }
    let took = started.elapsed();
    eprintln!(
        "{FLOOD} flood requests in {took:?} ({flooded:?}); {client} fresh clients, \
         {fresh_503} of {fresh_requests} requests refused for room; {} keys forgotten for room",
        store.forgotten_under_pressure()
    );
    assert_eq!(flooded.values().sum::<u32>(), FLOOD);
    assert!(
        client >= 50,
        "only {client} fresh clients ran during the flood"
    );
    assert!(
        store.forgotten_under_pressure() > 0,
        "the flood never pressed the store: {flooded:?} in {took:?}"
    );
    assert!(
        fresh_503 * 100 <= fresh_requests,
        "{fresh_503} of {fresh_requests} fresh requests refused for room ({flooded:?})"
    );
    assert!(fresh_other.is_empty(), "{fresh_other:?}");
    assert!(limited_admitted.is_empty(), "{limited_admitted:?}");
    assert!(store.len() <= MAX_KEYS);
    // Three per minute from a fresh address: the flood is admitted too.
    assert_eq!(flooded.get(&200), Some(&FLOOD), "{flooded:?}");
}

#[tokio::test]
async fn untrusted_peer_cannot_spoof_a_new_quota() {
    let server = start(&[]).await;
    let (admitted, _) = server
        .until_refused(&[("x-forwarded-for", "203.0.113.1")], 10)
        .await;
    assert_eq!(admitted, 3);
    for spoof in ["203.0.113.2", "198.51.100.1, 203.0.113.99", "not-an-ip"] {
        let reply = server.hello(&[("x-forwarded-for", spoof)]).await;
        assert_refusal(&reply, "anonymous", "anonymous");
    }
    assert_eq!(
        server.hello(&[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn parse_args_defaults_and_flags() {
    assert_eq!(
        parse_args(args(&[])),
        Ok(Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            config: None,
            trust_proxy: Vec::new(),
            redis: None,
        })
    );
    let options = parse_args(args(&[
        "--addr",
        "[::1]:8080",
        "--trust-proxy",
        "10.0.0.0/8",
        "--config",
        "plans.toml",
        "--trust-proxy",
        "2001:db8::/32",
        "--redis",
        "redis://127.0.0.1:6379/",
    ]))
    .expect("valid flags");
    assert_eq!(options.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
    assert_eq!(options.addr, "[::1]:8080".parse().expect("address"));
    assert_eq!(options.config, Some(PathBuf::from("plans.toml")));
    assert_eq!(options.trust_proxy, ["10.0.0.0/8", "2001:db8::/32"]);
}

#[test]
fn parse_args_errors() {
    let bad_addr = parse_args(args(&["--addr", "localhost"])).expect_err("bad address");
    assert!(bad_addr.starts_with("--addr localhost"), "{bad_addr}");
    let missing = parse_args(args(&["--trust-proxy"])).expect_err("no value");
    assert!(missing.contains("needs a value"), "{missing}");
    let unknown = parse_args(args(&["--verbose"])).expect_err("unknown flag");
    assert!(unknown.contains("--verbose"), "{unknown}");
    let help = parse_args(args(&["--help"])).expect_err("help");
    assert!(help.starts_with("usage:"), "{help}");
}

#[test]
fn shipped_config_parses_and_matches_the_file() {
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tiered_api.toml"),
    )
    .expect("the example config is shipped");
    assert_eq!(on_disk, DEFAULT_CONFIG);
    let limits = Limits::from_toml(&on_disk).expect("parses");
    let tiers: Vec<&str> = limits.tiers.tiers().iter().map(|t| t.name()).collect();
    assert_eq!(tiers, ["anonymous", "basic", "premium", "admin"]);
    assert_eq!(limits.tiers.default_tier().name(), "anonymous");
    let basic: Vec<&str> = limits
        .tiers
        .tier("basic")
        .limits()
        .iter()
        .map(|l| l.name())
        .collect();
    assert_eq!(basic, ["basic-minute", "basic-day"]);
    let per_ip = &limits.per_ip.default_tier().limits()[0];
    assert_eq!(per_ip.name(), "per-ip");
    assert_eq!(per_ip.quota().count(), 20);
    assert_eq!(per_ip.quota().burst(), 40);
    // nginx rate=5r/s burst=10 without nodelay.
    let search = limits.search.default_tier().limits()[0].quota();
    assert_eq!((search.count(), search.burst(), search.queue()), (5, 1, 10));
    assert_eq!(search.to_string(), tiered_api::SEARCH);

    assert!(Limits::from_toml(&format!("{DEFAULT_CONFIG}\nsurprise = 1\n")).is_err());
    assert!(Limits::from_toml("per_ip = \"20/second\"").is_err());
}

#[test]
fn demo_keys_resolve_to_their_tiers() {
    assert_eq!(resolve_tier("basic-demo-key"), Some("basic"));
    assert_eq!(resolve_tier("premium-demo-key"), Some("premium"));
    assert_eq!(resolve_tier("admin-demo-key"), Some("admin"));
    assert_eq!(resolve_tier("BASIC-DEMO-KEY"), None);
    assert_eq!(resolve_tier(""), None);
}

/// A config file in a fresh temporary directory, removed on drop.
struct ConfigFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-reload-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(rand_seed())
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("plans.toml");
        std::fs::write(&path, text).expect("write config");
        Self { dir, path }
    }

    fn write(&self, text: &str) {
        // Write then rename, as editors do, so a reader never sees half a file.
        let next = self.dir.join("plans.toml.new");
        std::fs::write(&next, text).expect("write config");
        std::fs::rename(&next, &self.path).expect("replace config");
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

/// Waits (at most 5 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn edited_config_takes_effect_without_a_restart_and_bad_edits_are_ignored() {
    let file = ConfigFile::new(DEFAULT_CONFIG);
    let limits = Limits::from_toml(DEFAULT_CONFIG).expect("the shipped config parses");
    let trusted = TrustedProxies::new(&[] as &[&str]).expect("no proxies");
    let (router, reloader) = app_reloadable(limits, trusted, tollgate::store::MemoryStore::new());
    let watcher = tokio::spawn(watch_config(
        file.path.clone(),
        reloader.clone(),
        std::time::Duration::from_millis(20),
    ));
    let server = serve(router).await;
    let (admitted, _) = server.until_refused(&[], 10).await;
    assert_eq!(admitted, 3, "anonymous: 3/minute");

    // Premium changes, anonymous does not: its spent quota stays spent.
    file.write(&DEFAULT_CONFIG.replace("limits = \"20/minute\"", "limits = \"30/minute\""));
    eventually("the premium edit", || {
        reloader
            .plans(tiered_api::TIERS)
            .expect("tiers")
            .tier("premium")
            .limits()[0]
            .quota()
            .count()
            == 30
    })
    .await;
    assert_eq!(
        server.hello(&[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A bad edit: logged, ignored, the plans in force stay.
    file.write("[plans\nthis is not toml");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        reloader
            .plans(tiered_api::TIERS)
            .expect("tiers")
            .tier("premium")
            .limits()[0]
            .quota()
            .count(),
        30
    );
    assert_eq!(
        server.hello(&[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let unknown_algorithm = DEFAULT_CONFIG.replace("algorithm = \"gcra\"", "algorithm = \"leaky\"");
    file.write(&unknown_algorithm);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        reloader.plans(tiered_api::TIERS).expect("tiers").tiers()[0].limits()[0].algorithm(),
        tollgate::algorithm::AlgorithmKind::Gcra
    );

    // Anonymous gets a new quota: a new limit, counted afresh.
    file.write(&DEFAULT_CONFIG.replace("limits = \"3/minute\"", "limits = \"5/minute\""));
    eventually("the anonymous edit", || {
        reloader
            .plans(tiered_api::TIERS)
            .expect("tiers")
            .tier("anonymous")
            .limits()[0]
            .quota()
            .count()
            == 5
    })
    .await;
    let (admitted, refused) = server.until_refused(&[], 10).await;
    assert_eq!(admitted, 5, "anonymous: 5/minute after the edit");
    assert_refusal(&refused, "anonymous", "anonymous");

    // The kill switch: anonymous off, nothing refused.
    file.write(&DEFAULT_CONFIG.replace(
        "name = \"anonymous\"\nlimits = \"3/minute\"",
        "name = \"anonymous\"\nlimits = \"3/minute\"\nmode = \"off\"",
    ));
    eventually("the kill switch", || {
        reloader
            .plans(tiered_api::TIERS)
            .expect("tiers")
            .tier("anonymous")
            .mode()
            == tollgate::Mode::Off
    })
    .await;
    for _ in 0..8 {
        assert_eq!(server.hello(&[]).await.status, StatusCode::OK);
    }
    watcher.abort();
}

#[tokio::test]
async fn quota_shows_what_is_left_and_charges_nothing() {
    let server = start(&[]).await;
    let basic = [("x-api-key", "basic-demo-key")];
    for _ in 0..3 {
        let quota = server.get("/api/quota", &basic).await;
        assert_eq!(quota.status, StatusCode::OK);
        let body = quota.json();
        assert_eq!(body["tier"], "basic");
        assert_eq!(body["policy"], "basic-minute");
        assert_eq!(body["remaining_after_next"], 9);
        assert_eq!(body["next_allowed"], true);
        assert_eq!(quota.ratelimit(), ("basic-minute".to_owned(), 9));
    }
    for _ in 0..4 {
        assert_eq!(server.hello(&basic).await.status, StatusCode::OK);
    }
    let body = server.get("/api/quota", &basic).await.json();
    assert_eq!(body["remaining_after_next"], 5);
    let (admitted, refused) = server.until_refused(&basic, 20).await;
    assert_eq!(admitted, 6, "the quota calls spent nothing: 10 - 4 left");
    assert_refusal(&refused, "basic-minute", "basic");
    let after = server.get("/api/quota", &basic).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.json()["next_allowed"], false);
    assert!(after.header("retry-after").is_some());
    let unknown = server.get("/api/quota", &[("x-api-key", "nope")]).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
}

/// `GET /api/search` over real HTTP: thirty requests at once from one
/// client (127.0.0.1). One passes at once, ten wait their turn 200 ms
/// apart (each no earlier than its slot), nineteen are refused at once with
/// `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_is_shaped_one_at_once_ten_queued_200_ms_apart_nineteen_refused() {
    let server = std::sync::Arc::new(start(&[]).await);
    let begin = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let server = std::sync::Arc::clone(&server);
            tokio::spawn(async move {
                let reply = server.get(&format!("/api/search?q=cat{i}"), &[]).await;
                (reply, begin.elapsed())
            })
        })
        .collect();
    let mut passed = Vec::new();
    let mut refused = Vec::new();
    for task in tasks {
        let (reply, at) = task.await.expect("task");
        match reply.status {
            StatusCode::OK => passed.push((reply, at)),
            StatusCode::TOO_MANY_REQUESTS => refused.push((reply, at)),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((passed.len(), refused.len()), (11, 19));
    for (reply, at) in &refused {
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(reply.ratelimit(), ("search".to_owned(), 0));
        // Refused at once: long before the first waiter's turn.
        assert!(
            *at < std::time::Duration::from_millis(190),
            "refused after {at:?}"
        );
    }
    let mut times: Vec<std::time::Duration> = passed.iter().map(|(_, at)| *at).collect();
    times.sort_unstable();
    for (i, at) in times.iter().enumerate() {
        let slot = std::time::Duration::from_millis(200 * i as u64);
        // The arrivals spread over a few milliseconds: each passes no earlier
        // than its slot counted from the first arrival, and not much later.
        assert!(
            *at + std::time::Duration::from_millis(30) >= slot,
            "request {i} answered at {at:?}, before its slot {slot:?}"
        );
        assert!(
            *at < slot + std::time::Duration::from_millis(400),
            "request {i} answered at {at:?}, long after its slot {slot:?}"
        );
    }
    for (reply, _) in &passed {
        assert!(reply.json()["query"]
            .as_str()
            .is_some_and(|q| q.starts_with("cat")));
    }
}
