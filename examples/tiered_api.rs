//! A tiered SaaS API on axum, rate-limited by tollgate.
//!
//! Requests carry `X-Api-Key`: `basic-demo-key`, `premium-demo-key` and
//! `admin-demo-key` map to the tiers basic, premium and admin. No key means
//! anonymous, limited per client IP; an unknown key gets 401 and is not
//! counted. Every client IP, whatever its tier, is also held to 20/second
//! with a burst of 40.
//!
//! `POST /api/generate/image` stands for expensive work (about 200 ms that
//! sleeps, no CPU). Besides the limits above it has two more, rate limits
//! outside and shedding inside, so a request its rate limit refuses never
//! takes a place in the queue:
//!
//! - a concurrency limit per key (API key, or client IP when anonymous):
//!   2 generations at once, a third gets 429 (`qu="concurrent-requests"`);
//! - admission control for the route as a whole ([`LoadShedLayer`]): 4
//!   generations run at once, 4 more wait at most 50 ms, the rest get 503
//!   at once. Admin and premium requests have high priority, basic normal,
//!   anonymous low; half the places are kept for high priority, and a high
//!   request displaces a lower one from a full queue. Under a flood of
//!   anonymous clients, paying ones keep being served.
//!
//! `GET /api/search` (a cheap JSON answer) is shaped rather than refused,
//! per client IP: 5 requests a second, one at once and up to 10 more
//! waiting their turn 200 ms apart; beyond that, 429. This is nginx's
//! `limit_req_zone $binary_remote_addr zone=search:10m rate=5r/s` with
//! `limit_req zone=search burst=10` (no `nodelay`), written
//! `5/second burst 1 queue 10`. It has its own layer, outside the tiers.
//!
//! ```text
//! cargo run --example tiered_api --features serde
//! curl -i localhost:3000/api/hello
//! curl -i 'localhost:3000/api/search?q=cats'   # try 30 at once: 11 pass, 200 ms apart
//! curl -i -H 'x-api-key: premium-demo-key' localhost:3000/api/hello
//! curl -i -X POST -H 'x-api-key: premium-demo-key' localhost:3000/api/generate/image
//! curl -i -H 'x-api-key: basic-demo-key' localhost:3000/api/quota   # never charged
//! ```
//!
//! Flags: `--addr HOST:PORT` (default 127.0.0.1:3000), `--config FILE`
//! (plans in TOML replacing the built-in ones; see `tiered_api.toml`),
//! `--trust-proxy CIDR` (repeatable; forwarded headers are believed only
//! from these peers), `--redis URL` (counters in Redis instead of this
//! process's memory, so several copies enforce one combined quota; needs
//! `--features serde,redis`).
//!
//! The `--config` file is read again every second while the service runs:
//! an edit takes effect without a restart (limits whose definition did not
//! change keep their counters), and a bad edit is logged and ignored, the
//! plans in force staying. `mode = "shadow"` on a tier observes without
//! refusing; `mode = "off"` switches its limits off.
//!
//! With the `metrics` feature, `GET /metrics` (never limited) answers the
//! layers' counters in Prometheus text format (see `tollgate::metrics`):
//!
//! ```text
//! cargo run --example tiered_api --features serde,metrics
//! curl localhost:3000/metrics
//! ```
//!
//! ```text
//! cargo run --example tiered_api --features serde,redis -- --addr 127.0.0.1:3000 --redis redis://127.0.0.1:6379/
//! cargo run --example tiered_api --features serde,redis -- --addr 127.0.0.1:3001 --redis redis://127.0.0.1:6379/
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{RawQuery, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tollgate::key::{ApiKeyOrIp, ClientIp, TrustedProxies};
use tollgate::plan::config::PlansConfig;
use tollgate::shed::{LoadShedLayer, Priority};
use tollgate::store::{MemoryStore, Store};
use tollgate::{Plans, RateLimitLayer, Reloader};

/// The built-in plans of the example.
pub const DEFAULT_CONFIG: &str = include_str!("tiered_api.toml");

/// Maps a demo API key to its tier; any other key is unknown.
pub fn resolve_tier(key: &str) -> Option<&'static str> {
    match key {
        "basic-demo-key" => Some("basic"),
        "premium-demo-key" => Some("premium"),
        "admin-demo-key" => Some("admin"),
        _ => None,
    }
}

/// The example's configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The ceiling per client IP, whatever the tier.
    pub per_ip: String,
    /// The shaping of `GET /api/search` per client IP (a quota with a
    /// queue: the excess waits its turn).
    #[serde(default = "default_search")]
    pub search: String,
    /// The tiers.
    pub plans: PlansConfig,
}

/// The shaping of `GET /api/search` when the file names none: nginx
/// `rate=5r/s burst=10` without `nodelay`.
pub const SEARCH: &str = "5/second burst 1 queue 10";

fn default_search() -> String {
    SEARCH.to_owned()
}

/// The name of the rule of the tiers, for a [`Reloader`].
pub const TIERS: &str = "tiers";

/// The name of the rule of the per-IP ceiling, for a [`Reloader`].
pub const PER_IP: &str = "per-ip";

/// How long one image generation takes by default.
pub const GENERATE_WORK: Duration = Duration::from_millis(200);

/// The plans in force: the tiers, the per-IP ceiling, and the limits of
/// `POST /api/generate/image`.
pub struct Limits {
    /// The tiers and their limits.
    pub tiers: Plans,
    /// The ceiling per client IP.
    pub per_ip: Plans,
    /// The shaping of `GET /api/search` per client IP.
    pub search: Plans,
    /// The image generation route.
    pub generate: Generate,
}

impl Limits {
    /// Parses a configuration in the `tiered_api.toml` format; the
    /// generation limits are [`Generate::new`]'s.
    pub fn from_toml(text: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let config: Config = toml::from_str(text)?;
        Ok(Self {
            tiers: config.plans.build()?,
            per_ip: Plans::single("per-ip", &config.per_ip)?,
            search: Plans::single("search", &config.search)?,
            generate: Generate::new()?,
        })
    }
}

/// The limits and the simulated work of `POST /api/generate/image`.
#[derive(Debug, Clone)]
pub struct Generate {
    /// How long one generation sleeps.
    pub work: Duration,
    /// The limit per key (API key, or client IP when anonymous).
    pub per_key: Plans,
    /// Generations running at once, whoever asks.
    pub max_in_flight: usize,
    /// Generations waiting for a place.
    pub max_queue: usize,
    /// The longest a generation waits for a place.
    pub max_queue_wait: Duration,
    /// The share of `max_in_flight`, in percent, kept for high priority
    /// (premium and admin).
    pub reserve_high: u8,
}

impl Generate {
    /// 2 at once per key; 4 in flight, 4 waiting at most 50 ms, half the
    /// places kept for premium and admin; [`GENERATE_WORK`] per generation.
    pub fn new() -> Result<Self, tollgate::ConfigError> {
        Ok(Self {
            work: GENERATE_WORK,
            per_key: Plans::single("generate", "2 concurrent")?,
            max_in_flight: 4,
            max_queue: 4,
            max_queue_wait: Duration::from_millis(50),
            reserve_high: 50,
        })
    }
}

impl std::fmt::Display for Generate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} per key; {} in flight ({}% kept for premium and admin), \
             {} waiting at most {} ms; work {} ms",
            self.per_key.default_tier().limits()[0],
            self.max_in_flight,
            self.reserve_high,
            self.max_queue,
            self.max_queue_wait.as_millis(),
            self.work.as_millis(),
        )
    }
}

/// The shedding priority of a tier: paying customers first, anonymous
/// clients last.
pub fn priority_of(tier: Option<&str>) -> Priority {
    match tier {
        Some("admin" | "premium") => Priority::High,
        Some("basic") => Priority::Normal,
        _ => Priority::Low,
    }
}

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// A plan file replacing the built-in plans.
    pub config: Option<PathBuf>,
    /// CIDRs of proxies whose forwarded headers are believed.
    pub trust_proxy: Vec<String>,
    /// A Redis URL: keep the counters there.
    pub redis: Option<String>,
}

/// Parses `--addr`, `--config` and `--trust-proxy` (repeatable).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
        config: None,
        trust_proxy: Vec::new(),
        redis: None,
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                options.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--config" => options.config = Some(PathBuf::from(value()?)),
            "--trust-proxy" => options.trust_proxy.push(value()?),
            "--redis" => options.redis = Some(value()?),
            "-h" | "--help" => {
                return Err(
                    "usage: tiered_api [--addr HOST:PORT] [--config FILE] [--trust-proxy CIDR]..."
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(options)
}

/// The API's router with its limits, counted in this process's memory.
pub fn app(limits: Limits, trusted: TrustedProxies) -> Router {
    app_with_store(limits, trusted, MemoryStore::new())
}

/// The API's router with its limits, counted in `store`.
pub fn app_with_store<St: Store>(limits: Limits, trusted: TrustedProxies, store: St) -> Router {
    app_reloadable(limits, trusted, store).0
}

/// The API's router, and the handle that replaces its tiers and per-IP
/// ceiling while it runs (the rules [`TIERS`] and [`PER_IP`]).
///
/// # Panics
///
/// If `limits.generate` names no place in flight or a queue without a wait
/// (a mistake in the example's own settings).
pub fn app_reloadable<St: Store>(
    limits: Limits,
    trusted: TrustedProxies,
    store: St,
) -> (Router, Reloader<St>) {
    let client_ip = ClientIp::new().trust(trusted);
    let key = ApiKeyOrIp::new(resolve_tier)
        .client_ip(client_ip.clone())
        .anonymous_tier("anonymous");
    let (layer, reloader) = RateLimitLayer::builder(limits.tiers)
        .store(store.clone())
        .name(TIERS)
        .key(key.clone())
        .also(PER_IP, limits.per_ip, client_ip.clone())
        .headers_on_allowed(true)
        .build_reloadable()
        .expect("two rules of distinct valid names");
    // Shaped per client IP: requests beyond the burst wait their turn.
    let search = RateLimitLayer::builder(limits.search)
        .store(store.clone())
        .name("search")
        .key(client_ip.clone())
        .headers_on_allowed(true)
        .build()
        .expect("one rule");
    let generate = limits.generate;
    let per_key = RateLimitLayer::builder(generate.per_key)
        .store(store)
        .key(key.clone())
        .build()
        .expect("one rule");
    let shed = LoadShedLayer::builder(generate.max_in_flight)
        .max_queue(generate.max_queue)
        .max_queue_wait(generate.max_queue_wait)
        .priority_from_tier(key, priority_of)
        .reserve(Priority::High, generate.reserve_high)
        .build()
        .expect("valid load shedding settings");
    let work = generate.work;
    // Rate limits outside, so a refused request never takes a place in the
    // queue: first the concurrency limit per key (a refusal charges nothing
    // else and its 429 keeps its own RateLimit fields), then the limits of
    // every route (a clone of `layer`: the same counters). Inside, admission
    // control for this route.
    let generate_route = post(move |headers: HeaderMap| generate_image(headers, work)).layer(
        tower::ServiceBuilder::new()
            .layer(per_key)
            .layer(layer.clone())
            .layer(shed),
    );
    let peek = layer.clone();
    let router = Router::new()
        .route("/api/hello", get(hello))
        .layer(layer)
        .route("/api/generate/image", generate_route)
        .route("/api/search", get(search_route).layer(search))
        // Added after the layer: never limited, and never charged.
        .route(
            "/api/quota",
            get(move |request: Request| quota(peek, request)),
        )
        .route("/health", get(|| async { "ok" }));
    (router, reloader)
}

/// `GET /api/quota`: what the caller has left, charging nothing.
async fn quota<St: Store>(layer: RateLimitLayer<St>, request: Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    match layer.peek(&request).await {
        Ok(peeked) => {
            let body = Json(serde_json::json!({
                "tier": peeked.tier,
                "policy": peeked.policy.as_ref().map(|p| p.name()),
                "limit": peeked.decision.limit(),
                // What a request sent now would leave, and whether it passes.
                "remaining_after_next": peeked.decision.remaining(),
                "next_allowed": peeked.decision.is_allowed(),
                // Seconds until more than that is available (the `t` of `RateLimit`).
                "window_seconds": peeked.decision.window().as_secs_f64().ceil(),
            }));
            (peeked.headers, body).into_response()
        }
        // Answered as the layer answers: problem+json, and for a store that
        // cannot answer 503 with Retry-After.
        Err(tollgate::PeekError::Key(error)) => tollgate::response::Rejection::Key(&error)
            .to_response()
            .map(axum::body::Body::from),
        Err(tollgate::PeekError::Store(error)) => tollgate::response::Rejection::Store(&error)
            .to_response()
            .map(axum::body::Body::from),
        Err(error) => (http::StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// Puts the tiers and per-IP ceiling of a configuration text in force.
/// Limits whose definition did not change keep their counters; a text that
/// does not parse changes nothing.
pub fn reload<St: Store>(
    reloader: &Reloader<St>,
    text: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let limits = Limits::from_toml(text)?;
    reloader.replace_all([(TIERS, limits.tiers), (PER_IP, limits.per_ip)])?;
    Ok(())
}

/// Reads `path` every `every` and reloads the plans when its text changed.
/// A bad edit is logged once and the plans in force stay.
pub async fn watch_config<St: Store>(path: PathBuf, reloader: Reloader<St>, every: Duration) {
    let mut last = std::fs::read_to_string(&path).ok();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                if last.is_some() {
                    tracing::error!(path = %path.display(), %error, "cannot read the config; the plans in force stay");
                    last = None;
                }
                continue;
            }
        };
        if last.as_deref() == Some(text.as_str()) {
            continue;
        }
        match reload(&reloader, &text) {
            Ok(()) => {
                let tiers = reloader.plans(TIERS).map(|p| p.to_string());
                tracing::info!(path = %path.display(), "config reloaded:\n{}", tiers.unwrap_or_default())
            }
            Err(error) => tracing::error!(
                path = %path.display(),
                %error,
                "config reload rejected; the plans in force stay"
            ),
        }
        last = Some(text);
    }
}

/// Watches the `--config` file, if any, for the life of the process.
fn watch<St: Store>(options: &Options, reloader: Reloader<St>) {
    if let Some(path) = &options.config {
        println!(
            "watching {} for changes (edits take effect without a restart)",
            path.display()
        );
        tokio::spawn(watch_config(path.clone(), reloader, Duration::from_secs(1)));
    }
}

/// Installs the Prometheus recorder for the whole process; call it before
/// building the layers, which register their counters when built.
#[cfg(feature = "metrics")]
pub fn install_metrics(
) -> Result<metrics_exporter_prometheus::PrometheusHandle, Box<dyn std::error::Error>> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(tollgate::metrics::STORE_LATENCY.into()),
            &[0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1],
        )?
        .install_recorder()?;
    tollgate::metrics::describe();
    // Scrapes drain histograms too; this keeps them small between scrapes.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(prometheus)
}

/// Adds `GET /metrics`, the metrics in Prometheus text format, after every
/// layer: never limited.
#[cfg(feature = "metrics")]
pub fn with_metrics(
    router: Router,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
) -> Router {
    router.route(
        "/metrics",
        get(move || std::future::ready(prometheus.render())),
    )
}

fn tier_of(headers: &HeaderMap) -> &'static str {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .and_then(resolve_tier)
        .unwrap_or("anonymous")
}

async fn hello(headers: HeaderMap) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "message": "hello", "tier": tier_of(&headers) }))
}

/// `GET /api/search`: a cheap answer echoing the query.
async fn search_route(RawQuery(query): RawQuery) -> Json<serde_json::Value> {
    let q = query
        .as_deref()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("q=")))
        .unwrap_or("");
    Json(serde_json::json!({ "query": q, "results": [] }))
}

/// Pretends to render an image: waits `work`, using no CPU.
async fn generate_image(headers: HeaderMap, work: Duration) -> Json<serde_json::Value> {
    tokio::time::sleep(work).await;
    Json(serde_json::json!({
        "image": "a-cat-in-a-hat.png",
        "tier": tier_of(&headers),
        "work_ms": work.as_millis(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let text = match &options.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => DEFAULT_CONFIG.to_owned(),
    };
    let limits = Limits::from_toml(&text)?;
    let trusted = TrustedProxies::new(&options.trust_proxy)?;
    println!("plans in force:\n{}", limits.tiers);
    println!(
        "per client IP: {}",
        limits.per_ip.default_tier().limits()[0]
    );
    println!("POST /api/generate/image: {}", limits.generate);
    println!(
        "GET /api/search: {} per client IP (beyond the burst, requests wait their turn; \
         nginx rate=5r/s burst=10 without nodelay)",
        limits.search.default_tier().limits()[0]
    );
    if trusted.is_empty() {
        println!("forwarded headers: ignored (no --trust-proxy)");
    } else {
        println!("forwarded headers: trusted from {:?}", options.trust_proxy);
    }
    #[cfg(feature = "metrics")]
    let prometheus = install_metrics()?;
    let router = match &options.redis {
        None => {
            println!("counters: in this process's memory");
            let (router, reloader) = app_reloadable(limits, trusted, MemoryStore::new());
            watch(&options, reloader);
            router
        }
        Some(url) => redis_app(url, limits, trusted, &options)?,
    };
    #[cfg(feature = "metrics")]
    let router = with_metrics(router, prometheus);
    let listener = tokio::net::TcpListener::bind(options.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

#[cfg(feature = "redis")]
fn redis_app(
    url: &str,
    limits: Limits,
    trusted: TrustedProxies,
    options: &Options,
) -> Result<Router, Box<dyn std::error::Error>> {
    let store = tollgate::store::RedisStore::builder(url)
        .prefix("tiered_api")
        .build()?;
    println!("counters: in Redis (shared by every copy using the same server)");
    println!(
        "while Redis cannot answer (timeout {} ms): {}",
        store.timeout().as_millis(),
        store.when_down()
    );
    let (router, reloader) = app_reloadable(limits, trusted, store);
    watch(options, reloader);
    Ok(router)
}

#[cfg(not(feature = "redis"))]
fn redis_app(
    _url: &str,
    _limits: Limits,
    _trusted: TrustedProxies,
    _options: &Options,
) -> Result<Router, Box<dyn std::error::Error>> {
    Err(
        "--redis needs the redis feature: cargo run --example tiered_api --features serde,redis"
            .into(),
    )
}
