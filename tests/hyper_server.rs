//! End to end: the `hyper_server` example (plain hyper, no axum) served on a
//! loopback socket and driven by hyper's client, one fresh server per
//! scenario. Clients connect from 127.0.0.1 or, bound before connecting,
//! from 127.0.0.2, so per-peer keys are seen from two addresses.

#[path = "../examples/hyper_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod hyper_server;

#[path = "rate_limit/sf.rs"]
#[allow(dead_code)]
mod sf;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tollgate::shed::{LoadShedLayer, ShedReason};

use hyper_server::{layers, parse_args, serve, Options, Settings};

const SECOND_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A running example server.
struct Server {
    addr: SocketAddr,
    shed: LoadShedLayer,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(settings: Settings) -> Server {
    let layers = layers(&settings).expect("valid settings");
    let shed = layers.shed.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        serve(listener, layers).await.expect("accepting");
    });
    Server { addr, shed, task }
}

/// A client whose connections come from `source` (the system's choice,
/// 127.0.0.1, when `None`).
fn client(source: Option<IpAddr>) -> Client<HttpConnector, Empty<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_local_address(source);
    Client::builder(TokioExecutor::new()).build(connector)
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

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    /// The `RateLimit` item: its policy name and remaining count, after
    /// checking both fields against the draft.
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

impl Server {
    async fn get(
        &self,
        client: &Client<HttpConnector, Empty<Bytes>>,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::get(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).expect("request");
        let response = client.request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

fn assert_refused(reply: &Reply, policy: &str, tier: &str) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], 429);
    assert_eq!(body["policy"], policy);
    assert_eq!(body["tier"], tier);
    assert_eq!(reply.ratelimit(), (policy.to_owned(), 0));
}

#[tokio::test]
async fn anonymous_clients_are_counted_per_peer_address() {
    let server = start(Settings::default()).await;
    let first_peer = client(None);
    for remaining in [4, 3, 2, 1, 0] {
        let reply = server.get(&first_peer, "/api/hello", &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        // The handler saw the peer address the accept loop recorded.
        assert_eq!(reply.text(), "hello from 127.0.0.1\n");
        assert_eq!(reply.ratelimit(), ("anonymous".to_owned(), remaining));
    }
    let refused = server.get(&first_peer, "/api/hello", &[]).await;
    assert_refused(&refused, "anonymous", "anonymous");
    // 5 a minute: the next place frees 12 s after the first request.
    assert_eq!(refused.header("retry-after"), Some("12"));
    assert_eq!(
        refused.header("ratelimit-policy"),
        // 10/second burst 20: a bucket of 20 refilled in 2 s.
        Some("\"anonymous\";q=5;w=60, \"per-ip\";q=20;w=2")
    );

    // Another peer address has counters of its own.
    let second_peer = client(Some(SECOND_PEER));
    let reply = server.get(&second_peer, "/api/hello", &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "hello from 127.0.0.2\n");
    assert_eq!(reply.ratelimit(), ("anonymous".to_owned(), 4));

    // And the first is still refused.
    let again = server.get(&first_peer, "/api/hello", &[]).await;
    assert_refused(&again, "anonymous", "anonymous");
}

#[tokio::test]
async fn an_api_key_gets_its_tier_and_an_unknown_key_401() {
    // A per-IP ceiling above the tier's, so `RateLimit` reports the tier's
    // (the field names the tightest limit).
    let server = start(Settings {
        per_ip: "1000/minute",
        ..Settings::default()
    })
    .await;
    let client = client(None);
    let key = [("x-api-key", "pro-demo-key")];
    for remaining in (90..100).rev() {
        let reply = server.get(&client, "/api/hello", &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        assert_eq!(reply.ratelimit(), ("pro".to_owned(), remaining));
    }
    let unknown = server
        .get(&client, "/api/hello", &[("x-api-key", "stolen-key")])
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // Not counted: the anonymous allowance of this peer is whole.
    let anonymous = server.get(&client, "/api/hello", &[]).await;
    assert_eq!(anonymous.ratelimit(), ("anonymous".to_owned(), 4));
}

#[tokio::test]
async fn the_per_ip_ceiling_holds_whatever_the_tier() {
    let server = start(Settings {
        per_ip: "8/minute",
        ..Settings::default()
    })
    .await;
    let first_peer = client(None);
    let key = [("x-api-key", "pro-demo-key")];
    for _ in 0..8 {
        let reply = server.get(&first_peer, "/api/hello", &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let refused = server.get(&first_peer, "/api/hello", &key).await;
    assert_refused(&refused, "per-ip", "per-ip");
    // The same key from another address is under its own ceiling.
    let second_peer = client(Some(SECOND_PEER));
    let reply = server.get(&second_peer, "/api/hello", &key).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn a_full_server_sheds_with_503() {
    let server = start(Settings {
        max_in_flight: 1,
        max_queue: 0,
        // Longer than the test: the slow request holds the only place.
        work: Duration::from_secs(600),
        ..Settings::default()
    })
    .await;
    let slow = {
        let client = client(None);
        let request = Request::get(format!("http://{}/api/slow", server.addr))
            .header("x-api-key", "pro-demo-key")
            .body(Empty::new())
            .expect("request");
        tokio::spawn(async move { client.request(request).await })
    };
    // Wait (bounded) until the slow request holds the place.
    for _ in 0..1000 {
        if server.shed.snapshot().in_flight == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(server.shed.snapshot().in_flight, 1, "the slow request runs");

    let shed = server
        .get(
            &client(None),
            "/api/hello",
            &[("x-api-key", "pro-demo-key")],
        )
        .await;
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.header("retry-after"), Some("1"));
    assert_eq!(
        shed.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(shed.json()["reason"], "queue_full");
    assert_eq!(server.shed.snapshot().shed.reason(ShedReason::QueueFull), 1);
    slow.abort();
}

#[test]
fn addr_flag() {
    let parse = |args: &[&str]| parse_args(args.iter().map(|a| a.to_string()));
    assert_eq!(
        parse(&[]),
        Ok(Options {
            addr: "127.0.0.1:3000".parse().expect("address")
        })
    );
    assert_eq!(
        parse(&["--addr", "127.0.0.1:0"]),
        Ok(Options {
            addr: "127.0.0.1:0".parse().expect("address")
        })
    );
    assert!(parse(&["--addr"]).is_err());
    assert!(parse(&["--addr", "nowhere"]).is_err());
    assert!(parse(&["--port", "1"]).is_err());
}
