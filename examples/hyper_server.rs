//! A plain hyper 1.x server, no axum, rate-limited and load-shed by tollgate.
//!
//! The layers are applied with `tower::ServiceBuilder` to a `service_fn`,
//! and the stack is handed to hyper through hyper-util's
//! `TowerToHyperService`. hyper knows nothing of peer addresses, so the
//! accept loop builds one stack per connection whose first step records
//! the connection's peer address in every request as
//! [`tollgate::key::PeerAddr`]: that is where the key extractors look.
//!
//! - Anonymous clients are counted by peer IP, 5 requests a minute; an
//!   `X-Api-Key: pro-demo-key` gets the `pro` tier, 100 a minute; any other
//!   key gets 401. Every peer IP is also held to 10 a second, burst 20.
//! - At most 32 requests run at once, 32 more wait at most 50 ms; the rest
//!   get 503.
//!
//! ```text
//! cargo run --example hyper_server -- --addr 127.0.0.1:3000
//! curl -i localhost:3000/api/hello
//! curl -i -H 'x-api-key: pro-demo-key' localhost:3000/api/hello
//! curl -i localhost:3000/api/slow
//! ```
//!
//! It needs no crate feature (`--no-default-features` builds it too).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tollgate::key::{ApiKeyOrIp, PeerAddr, PeerIp};
use tollgate::shed::LoadShedLayer;
use tollgate::{Plans, RateLimitLayer};

/// Maps the demo API key to its tier; any other key is unknown (401).
pub fn resolve_tier(key: &str) -> Option<&'static str> {
    (key == "pro-demo-key").then_some("pro")
}

/// What the server limits, and how long `/api/slow` works.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The ceiling per peer IP, whatever the tier.
    pub per_ip: &'static str,
    /// Requests running at once.
    pub max_in_flight: usize,
    /// Requests waiting for a place.
    pub max_queue: usize,
    /// The longest a request waits for a place.
    pub max_queue_wait: Duration,
    /// How long `GET /api/slow` takes.
    pub work: Duration,
}

impl Default for Settings {
    /// 10/second burst 20 per IP; 32 in flight, 32 waiting at most 50 ms;
    /// 200 ms of work.
    fn default() -> Self {
        Self {
            per_ip: "10/second burst 20",
            max_in_flight: 32,
            max_queue: 32,
            max_queue_wait: Duration::from_millis(50),
            work: Duration::from_millis(200),
        }
    }
}

/// The layers every connection shares: one set of counters, one limit on
/// requests in flight.
#[derive(Debug, Clone)]
pub struct Layers {
    /// The tiers (by API key, or peer IP when anonymous) and the per-IP
    /// ceiling.
    pub rate_limit: RateLimitLayer,
    /// Admission control for the whole server.
    pub shed: LoadShedLayer,
    /// How long `GET /api/slow` takes.
    pub work: Duration,
}

/// Builds the layers for `settings`.
pub fn layers(settings: &Settings) -> Result<Layers, Box<dyn std::error::Error>> {
    let tiers = Plans::builder()
        .tier("anonymous", "5/minute")
        .tier("pro", "100/minute")
        .build()?;
    // No trusted proxy: the client IP is the connection's peer address.
    let key = ApiKeyOrIp::new(resolve_tier);
    let rate_limit = RateLimitLayer::builder(tiers)
        .name("tiers")
        .key(key)
        .also(
            "per-ip",
            Plans::single("per-ip", settings.per_ip)?,
            PeerIp::new(),
        )
        .headers_on_allowed(true)
        .build()?;
    let shed = LoadShedLayer::builder(settings.max_in_flight)
        .max_queue(settings.max_queue)
        .max_queue_wait(settings.max_queue_wait)
        .build()?;
    Ok(Layers {
        rate_limit,
        shed,
        work: settings.work,
    })
}

/// Records the connection's peer address in a request, for the key
/// extractors.
fn with_peer<B>(peer: SocketAddr) -> impl Fn(Request<B>) -> Request<B> + Clone {
    move |mut request| {
        request.extensions_mut().insert(PeerAddr(peer));
        request
    }
}

/// Accepts connections on `listener` and serves each with `layers` in
/// front of [`handle`], until accepting fails.
pub async fn serve(listener: TcpListener, layers: Layers) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        // Rate limits outside, so a refused request never takes a place in
        // flight; every clone of a layer shares its state.
        let work = layers.work;
        let stack = tower::ServiceBuilder::new()
            .map_request(with_peer(peer))
            .layer(layers.rate_limit.clone())
            .layer(layers.shed.clone())
            .service_fn(move |request| handle(request, work));
        let service = TowerToHyperService::new(stack);
        tokio::spawn(async move {
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
}

/// The application: `GET /api/hello` greets the peer, `GET /api/slow`
/// works for `work` first.
pub async fn handle<B>(
    request: Request<B>,
    work: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let peer = request
        .extensions()
        .get::<PeerAddr>()
        .map_or_else(|| "unknown".to_owned(), |p| p.0.ip().to_string());
    let text = match (request.method(), request.uri().path()) {
        (&Method::GET, "/api/hello") => format!("hello from {peer}\n"),
        (&Method::GET, "/api/slow") => {
            tokio::time::sleep(work).await;
            format!("done after {} ms\n", work.as_millis())
        }
        _ => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return Ok(response);
        }
    };
    Ok(Response::new(Full::new(Bytes::from(text))))
}

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
}

/// Parses `--addr HOST:PORT` (default 127.0.0.1:3000).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" => {
                let v = args.next().ok_or("--addr needs a value")?;
                options.addr = v.parse().map_err(|e| format!("--addr {v}: {e}"))?;
            }
            "-h" | "--help" => return Err("usage: hyper_server [--addr HOST:PORT]".into()),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(options)
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
    let layers = layers(&Settings::default())?;
    let listener = TcpListener::bind(options.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, layers).await?;
    Ok(())
}
