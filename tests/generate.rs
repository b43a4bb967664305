//! End to end: `POST /api/generate/image` of the `tiered_api` example, its
//! concurrency limit per key and its admission control, on a loopback
//! server driven by a real HTTP client.
//!
//! The overload tests trust the loopback peer as a proxy and give every
//! anonymous request its own client IP in `X-Forwarded-For`: anonymous
//! clients are held to 3 a minute and 2 at once per IP, so one IP sending
//! everything would be refused with 429 by its rate limits before it ever
//! reached the shedding. With one IP per request those limits stay out of
//! the way and every refusal is the route's own 503.
#![cfg(feature = "serde")]

#[path = "../examples/tiered_api.rs"]
#[allow(dead_code, unreachable_pub)]
mod tiered_api;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tollgate::key::TrustedProxies;
use tollgate::shed::Priority;

use tiered_api::{app, priority_of, Limits, DEFAULT_CONFIG, GENERATE_WORK};

/// A running example server and a client for it.
#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    client: Client<HttpConnector, Empty<Bytes>>,
    task: Arc<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

/// A response read whole, and how long it took.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    elapsed: Duration,
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
}

/// Starts the example's app with the built-in limits, trusting `trusted`.
async fn start(trusted: &[&str]) -> Server {
    let limits = Limits::from_toml(DEFAULT_CONFIG).expect("the shipped config parses");
    assert_eq!(limits.generate.work, GENERATE_WORK);
    let trusted = TrustedProxies::new(trusted).expect("valid proxies");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app(limits, trusted).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server runs");
    });
    let client = Client::builder(TokioExecutor::new()).build_http();
    Server {
        addr,
        client,
        task: Arc::new(task),
    }
}

impl Server {
    async fn generate(&self, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::post(format!("http://{}/api/generate/image", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).expect("request");
        let started = Instant::now();
        let response = self.client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            elapsed: started.elapsed(),
        }
    }

    /// An anonymous request from a client IP no other request uses.
    async fn generate_anonymous(&self, ips: &AtomicU32) -> Reply {
        let n = ips.fetch_add(1, Ordering::Relaxed);
        let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
        self.generate(&[("x-forwarded-for", &ip)]).await
    }
}

fn assert_generated(reply: &Reply, tier: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["tier"], tier);
    assert!(
        reply.elapsed >= GENERATE_WORK,
        "answered in {:?}, before the work was done",
        reply.elapsed
    );
}

/// A shed answer: 503 from the route's admission control, not a 429.
fn assert_shed(reply: &Reply, priority: &str) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], 503);
    assert_eq!(body["priority"], priority);
    let reason = body["reason"].as_str().expect("a reason");
    assert!(
        ["queue_full", "queue_timeout", "overloaded", "displaced"].contains(&reason),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_generation_at_once_for_one_key_is_429_concurrent() {
    let server = start(&[]).await;
    let key = [("x-api-key", "basic-demo-key")];
    let (a, b, c) = tokio::join!(
        server.generate(&key),
        server.generate(&key),
        server.generate(&key)
    );
    let mut replies = [a, b, c];
    replies.sort_by_key(|r| r.status);
    let [first, second, refused] = replies;
    assert_generated(&first, "basic");
    assert_generated(&second, "basic");

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.elapsed < GENERATE_WORK,
        "refused at once, not after waiting: {:?}",
        refused.elapsed
    );
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"generate\";q=2;qu=\"concurrent-requests\"")
    );
    assert!(refused.header("retry-after").is_some());
    let body = refused.json();
    assert_eq!(body["status"], 429);
    assert_eq!(body["policy"], "generate");

    // The permits went back with the bodies: the key may generate again.
    // The refusal charged nothing: 2 of basic's 10 a minute went before.
    let again = server.generate(&key).await;
    assert_generated(&again, "basic");
    let ratelimit = again.header("ratelimit").expect("RateLimit on admitted");
    assert!(
        ratelimit.starts_with("\"basic-minute\";r=7;"),
        "{ratelimit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_anonymous_clients_are_shed_fast_and_the_admitted_finish() {
    let server = start(&["127.0.0.1/32"]).await;
    let ips = Arc::new(AtomicU32::new(1));
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (server, ips) = (server.clone(), Arc::clone(&ips));
            tokio::spawn(async move { server.generate_anonymous(&ips).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("client task"));
    }
    let wall = started.elapsed();
    if std::env::var_os("GENERATE_STATS").is_some() {
        let mut all: Vec<_> = replies
            .iter()
            .map(|r| (r.status.as_u16(), r.elapsed))
            .collect();
        all.sort();
        eprintln!("wave {wall:?}: {all:?}");
    }

    let (ok, shed): (Vec<_>, Vec<_>) = replies.iter().partition(|r| r.status == StatusCode::OK);
    for reply in &ok {
        assert_generated(reply, "anonymous");
    }
    // The queue gives up after 50 ms; nobody shed waits for the work: every
    // shed answer comes before the first admitted one (which took the work,
    // at least GENERATE_WORK). Relative, so a loaded machine that stretches
    // both does not fail it.
    let first_done = ok.iter().map(|r| r.elapsed).min().unwrap_or(GENERATE_WORK);
    assert!(first_done >= GENERATE_WORK, "admitted after {first_done:?}");
    for reply in &shed {
        assert_shed(reply, "low");
        assert!(
            reply.elapsed < first_done,
            "shed after {:?}, the first admitted answered after {first_done:?}",
            reply.elapsed
        );
    }
    // Low priority may use 2 of the 4 places.
    assert!(
        (1..=4).contains(&ok.len()),
        "{} admitted, {} shed",
        ok.len(),
        shed.len()
    );
    assert!(shed.len() >= 40, "{} shed", shed.len());
    assert!(wall < Duration::from_secs(2), "the wave took {wall:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn premium_and_admin_are_served_while_anonymous_is_shed() {
    let server = start(&["127.0.0.1/32"]).await;
    let ips = Arc::new(AtomicU32::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    // 30 anonymous clients, each asking again 10 ms after every answer.
    let flood: Vec<_> = (0..30)
        .map(|_| {
            let (server, ips, stop) = (server.clone(), Arc::clone(&ips), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut ok, mut shed) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    let reply = server.generate_anonymous(&ips).await;
                    if reply.status == StatusCode::OK {
                        ok += 1;
                    } else {
                        assert_shed(&reply, "low");
                        shed += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (ok, shed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // One premium and one admin client, each generating one image after
    // another, under the flood.
    let paying = |key: &'static str| {
        let server = server.clone();
        tokio::spawn(async move {
            let mut replies = Vec::new();
            for _ in 0..4 {
                replies.push(server.generate(&[("x-api-key", key)]).await);
            }
            replies
        })
    };
    let premium = paying("premium-demo-key");
    let admin = paying("admin-demo-key");
    let premium = premium.await.expect("premium client");
    let admin = admin.await.expect("admin client");
    stop.store(true, Ordering::Relaxed);
    let (mut anonymous_ok, mut anonymous_shed) = (0, 0);
    for task in flood {
        let (ok, shed) = task.await.expect("flood client");
        anonymous_ok += ok;
        anonymous_shed += shed;
    }

    for reply in &premium {
        assert_generated(reply, "premium");
        assert!(reply.elapsed < GENERATE_WORK * 2, "{:?}", reply.elapsed);
    }
    for reply in &admin {
        assert_generated(reply, "admin");
        assert!(reply.elapsed < GENERATE_WORK * 2, "{:?}", reply.elapsed);
    }
    assert!(
        anonymous_shed > 10 * anonymous_ok.max(1),
        "anonymous: {anonymous_ok} served, {anonymous_shed} shed"
    );
}

#[test]
fn tiers_map_to_priorities() {
    assert_eq!(priority_of(Some("admin")), Priority::High);
    assert_eq!(priority_of(Some("premium")), Priority::High);
    assert_eq!(priority_of(Some("basic")), Priority::Normal);
    assert_eq!(priority_of(Some("anonymous")), Priority::Low);
    assert_eq!(priority_of(None), Priority::Low);
}

#[test]
fn generate_limits_are_printable() {
    let limits = Limits::from_toml(DEFAULT_CONFIG).expect("parses");
    let generate = &limits.generate;
    assert_eq!(generate.work, Duration::from_millis(200));
    let per_key = &generate.per_key.default_tier().limits()[0];
    assert_eq!(per_key.name(), "generate");
    assert_eq!(per_key.quota().count(), 2);
    assert_eq!(
        generate.to_string(),
        "generate: 2 concurrent per key; 4 in flight (50% kept for premium and admin), \
         4 waiting at most 50 ms; work 200 ms"
    );
}
