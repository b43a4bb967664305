//! A small axum server for end-to-end HTTP throughput runs (`benches/http.sh`
//! drives it with wrk). It serves `GET /api/hello`, a small JSON answer as in
//! `examples/tiered_api.rs`, behind one of several limiters, and `GET /health`
//! outside any limiter (for readiness checks that spend no quota).
//!
//! ```text
//! cargo bench --bench http_server --no-run
//! http_server --mode tollgate-allow --addr 127.0.0.1:18480
//! ```
//!
//! Modes: `none`, `tollgate-allow`, `tollgate-deny`, `tower_governor-allow`,
//! `tower_governor-deny`, and with `--features serde` also `tiered` (the
//! example's own router). Allow modes have a quota nothing reaches; deny
//! modes admit one request per peer IP per hour, so under load almost every
//! answer is a 429. Both limiters key by peer IP. The runtime is tokio's
//! current-thread runtime: the server uses one core.

#![allow(clippy::unwrap_used)] // a benchmark server that cannot set up should stop loudly

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use tollgate::key::PeerIp;
use tollgate::{Plans, RateLimitLayer};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

#[cfg(feature = "serde")]
#[allow(dead_code, unreachable_pub)] // the example's `main` and helpers go unused here
#[path = "../examples/tiered_api.rs"]
mod tiered_api;

const MODES: &[&str] = &[
    "none",
    "tollgate-allow",
    "tollgate-deny",
    "tower_governor-allow",
    "tower_governor-deny",
    #[cfg(feature = "serde")]
    "tiered",
];

const USAGE: &str = "usage: http_server --mode MODE [--addr 127.0.0.1:PORT]";

struct Options {
    addr: SocketAddr,
    mode: String,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 18480));
    let mut mode = None;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => {
                let v = value()?;
                addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "--mode" => mode = Some(value()?),
            // `cargo bench` passes `--bench` to every bench target.
            "--bench" => {}
            "-h" | "--help" => return Err(format!("{USAGE}\nmodes: {}", MODES.join(", "))),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let mode = mode.ok_or_else(|| format!("--mode is required\n{USAGE}"))?;
    if !MODES.contains(&mode.as_str()) {
        return Err(format!(
            "unknown mode {mode:?}; modes: {}",
            MODES.join(", ")
        ));
    }
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--addr {addr}: this server listens on loopback only"
        ));
    }
    Ok(Options { addr, mode })
}

/// The example's handler, minus tier resolution: every client here is
/// anonymous.
async fn hello(headers: HeaderMap) -> Json<serde_json::Value> {
    let tier = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map_or("anonymous", |_| "unknown");
    Json(serde_json::json!({ "message": "hello", "tier": tier }))
}

/// The example's router shape: the limited route, the layer, then an
/// unlimited health route.
fn router(mode: &str) -> Router {
    let api = Router::new().route("/api/hello", get(hello));
    let api = match mode {
        "none" => api,
        "tollgate-allow" => api.layer(
            RateLimitLayer::builder(Plans::single("bench", "1000000000/second").unwrap())
                .key(PeerIp::new())
                .build()
                .unwrap(),
        ),
        "tollgate-deny" => api.layer(
            RateLimitLayer::builder(Plans::single("bench", "1/hour").unwrap())
                .key(PeerIp::new())
                .build()
                .unwrap(),
        ),
        "tower_governor-allow" => api.layer(GovernorLayer::new(
            GovernorConfigBuilder::default()
                .per_nanosecond(1)
                .burst_size(NonZeroU32::MAX.get())
                .finish()
                .unwrap(),
        )),
        "tower_governor-deny" => api.layer(GovernorLayer::new(
            GovernorConfigBuilder::default()
                .per_second(3600)
                .burst_size(1)
                .finish()
                .unwrap(),
        )),
        #[cfg(feature = "serde")]
        "tiered" => {
            let limits = tiered_api::Limits::from_toml(tiered_api::DEFAULT_CONFIG).unwrap();
            return tiered_api::app(limits, tollgate::key::TrustedProxies::none());
        }
        other => unreachable!("mode {other:?} passed parse_args"),
    };
    api.route("/health", get(|| async { "ok" }))
}

fn main() {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let app = router(&options.mode);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap();
        eprintln!(
            "http_server: mode {} on http://{}",
            options.mode,
            listener.local_addr().unwrap()
        );
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
}
