//! End to end: the `grpc` example served by tonic on a loopback socket and
//! called with tonic's generated client, one fresh server per scenario.
#![cfg(feature = "tonic")]

#[path = "../examples/grpc.rs"]
#[allow(dead_code, unreachable_pub)]
mod grpc_example;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tollgate::shed::{LoadShedLayer, ShedReason};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use grpc_example::demo::greeter_client::GreeterClient;
use grpc_example::demo::HelloRequest;
use grpc_example::{load_shed, rate_limit, serve, Options, ANONYMOUS_TIER, API_KEY_TIER};

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

impl Server {
    async fn start(options: Options) -> Server {
        let limit = rate_limit(&options).expect("rate limit settings");
        let shed = load_shed(&options).expect("shed settings");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let layer = shed.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = serve(listener, limit, layer).await {
                panic!("server failed: {e}");
            }
        });
        Server { addr, shed, task }
    }

    /// A client on its own connection, from `local` when given.
    async fn client(&self, local: Option<IpAddr>) -> GreeterClient<Channel> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("endpoint")
            .local_address(local)
            .connect()
            .await
            .expect("connect");
        GreeterClient::new(channel)
    }

    /// Waits until `in_flight` calls hold a place (no timing assumption:
    /// polls the layer's own count, failing after 10 s).
    async fn wait_in_flight(&self, in_flight: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.shed.snapshot().in_flight != in_flight {
            assert!(
                tokio::time::Instant::now() < deadline,
                "in flight stayed {} instead of {in_flight}",
                self.shed.snapshot().in_flight
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn options() -> Options {
    Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        api_key_quota: "3/minute; 100/hour".to_owned(),
        anonymous_quota: "2/minute".to_owned(),
        max_in_flight: 16,
        max_queue: 16,
    }
}

fn hello(name: &str, key: Option<&str>, work_ms: u32) -> tonic::Request<HelloRequest> {
    let mut request = tonic::Request::new(HelloRequest {
        name: name.to_owned(),
        work_ms,
    });
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", key.parse().expect("ASCII key"));
    }
    request
}

async fn say(
    client: &mut GreeterClient<Channel>,
    name: &str,
    key: Option<&str>,
) -> Result<String, Status> {
    client
        .say_hello(hello(name, key, 0))
        .await
        .map(|r| r.into_inner().message)
}

async fn admitted(client: &mut GreeterClient<Channel>, name: &str, key: Option<&str>) {
    match say(client, name, key).await {
        Ok(message) => assert_eq!(message, format!("Hello, {name}!")),
        Err(status) => panic!("call {name} (key {key:?}) was refused: {status:?}"),
    }
}

async fn refused(client: &mut GreeterClient<Channel>, key: Option<&str>) -> Status {
    match say(client, "over", key).await {
        Ok(message) => panic!("call over the limit (key {key:?}) was answered {message:?}"),
        Err(status) => status,
    }
}

fn metadata<'a>(status: &'a Status, name: &str) -> &'a str {
    status
        .metadata()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} metadata in {status:?}"))
        .to_str()
        .expect("ASCII metadata")
}

/// Checks a `RESOURCE_EXHAUSTED` answer of `policy` in `tier` with quota
/// `quota`, and that its retry hints agree.
fn assert_rate_limited(status: &Status, policy: &str, tier: &str, quota: i64) {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry_after: u64 = metadata(status, "retry-after").parse().expect("seconds");
    assert_eq!(
        status.message(),
        format!("Rate limit \"{policy}\" exceeded; retry in {retry_after} s.")
    );

    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");
    assert!(delay > Duration::ZERO);
    assert_eq!(
        delay.as_nanos().div_ceil(1_000_000_000),
        u128::from(retry_after),
        "retry-after is the delay rounded up"
    );
    let pushback: u128 = metadata(status, "grpc-retry-pushback-ms")
        .parse()
        .expect("milliseconds");
    assert_eq!(pushback, delay.as_nanos().div_ceil(1_000_000));

    let quota_failure = status.get_details_quota_failure().expect("QuotaFailure");
    assert_eq!(quota_failure.violations.len(), 1);
    let violation = &quota_failure.violations[0];
    assert_eq!(violation.quota_id, policy);
    assert_eq!(violation.subject, format!("tier:{tier}"));
    assert_eq!(
        violation.quota_dimensions.get("tier").map(String::as_str),
        Some(tier)
    );
    assert_eq!(violation.quota_value, quota);
    assert!(
        violation.description.contains(&format!("\"{policy}\"")),
        "{violation:?}"
    );

    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "RATE_LIMIT_EXCEEDED");
    assert_eq!(info.domain, tollgate::grpc::DOMAIN);
    assert_eq!(
        info.metadata.get("policy").map(String::as_str),
        Some(policy)
    );

    let fields = metadata(status, "ratelimit");
    assert!(
        fields.starts_with(&format!("\"{policy}\";r=0;t=")),
        "{fields}"
    );
    // The metadata says what the HTTP fields say: for a call of one unit
    // with none left, t (the wait for the next unit) is the retry-after.
    let t: u64 = fields
        .rsplit_once(";t=")
        .and_then(|(_, t)| t.parse().ok())
        .expect("t");
    assert_eq!(t, retry_after, "{fields}");
    assert!(metadata(status, "ratelimit-policy").contains(&format!("\"{policy}\";q={quota};")));
}

#[tokio::test]
async fn calls_over_an_api_keys_limit_get_resource_exhausted_with_details() {
    let server = Server::start(options()).await;
    let mut client = server.client(None).await;
    for name in ["a", "b", "c"] {
        admitted(&mut client, name, Some("k1")).await;
    }
    let status = refused(&mut client, Some("k1")).await;
    assert_rate_limited(&status, "api-key-minute", API_KEY_TIER, 3);
    // GCRA at 3/minute: the next call is 20 s away.
    assert_eq!(metadata(&status, "retry-after"), "20");
    assert!(metadata(&status, "ratelimit-policy")
        .contains("\"api-key-minute\";q=3;w=60, \"api-key-hour\";q=100;w=3600"));

    // Another key counts apart, and so does the peer IP without a key.
    for name in ["d", "e", "f"] {
        admitted(&mut client, name, Some("k2")).await;
    }
    assert_eq!(
        refused(&mut client, Some("k2")).await.code(),
        Code::ResourceExhausted
    );
    admitted(&mut client, "anonymous", None).await;
}

#[tokio::test]
async fn calls_without_a_key_are_counted_per_peer_ip() {
    let server = Server::start(options()).await;
    let local: IpAddr = "127.0.0.1".parse().expect("ip");
    let other: IpAddr = "127.0.0.2".parse().expect("ip");
    let mut first = server.client(Some(local)).await;
    let mut second = server.client(Some(other)).await;

    admitted(&mut first, "a", None).await;
    admitted(&mut first, "b", None).await;
    let status = refused(&mut first, None).await;
    assert_rate_limited(&status, ANONYMOUS_TIER, ANONYMOUS_TIER, 2);
    assert_eq!(metadata(&status, "retry-after"), "30");

    // A new connection from the same address shares the count ...
    let mut again = server.client(Some(local)).await;
    assert_eq!(
        refused(&mut again, None).await.code(),
        Code::ResourceExhausted
    );
    // ... another address has its own ...
    admitted(&mut second, "c", None).await;
    admitted(&mut second, "d", None).await;
    assert_eq!(
        refused(&mut second, None).await.code(),
        Code::ResourceExhausted
    );
    // ... and an API key from the first address is counted by key.
    admitted(&mut first, "e", Some("k1")).await;
}

#[tokio::test]
async fn a_call_over_capacity_is_shed_with_unavailable() {
    let server = Server::start(Options {
        max_in_flight: 1,
        max_queue: 0,
        ..options()
    })
    .await;
    let mut slow_client = server.client(None).await;
    let slow = tokio::spawn(async move {
        // Far longer than the test: it is cancelled below.
        slow_client
            .say_hello(hello("slow", Some("slow"), 30_000))
            .await
    });
    server.wait_in_flight(1).await;

    let mut client = server.client(None).await;
    let status = refused(&mut client, Some("fast")).await;
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), ShedReason::QueueFull.detail());
    let delay = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo with a delay");
    assert_eq!(
        delay,
        Duration::from_secs(1),
        "the layer's default retry_after"
    );
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "QUEUE_FULL");
    assert_eq!(info.domain, tollgate::grpc::DOMAIN);
    assert_eq!(
        info.metadata.get("priority").map(String::as_str),
        Some("normal")
    );
    assert_eq!(metadata(&status, "retry-after"), "1");
    assert_eq!(metadata(&status, "grpc-retry-pushback-ms"), "1000");
    assert!(status.get_details_quota_failure().is_none());
    assert_eq!(server.shed.snapshot().shed.reason(ShedReason::QueueFull), 1);

    // The client gives up on the slow call: its place comes back.
    slow.abort();
    let _ = slow.await;
    server.wait_in_flight(0).await;
    admitted(&mut client, "after", Some("fast")).await;
}

/// Reads one call's answer off the wire with a bare HTTP/2 client.
async fn raw_call(addr: SocketAddr, key: &str) -> (http::Response<h2::RecvStream>, bool) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.expect("h2 ready");
    let request = http::Request::post(format!("http://{addr}/tollgate.demo.Greeter/SayHello"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("x-api-key", key)
        .body(())
        .expect("request");
    let message = HelloRequest {
        name: "raw".to_owned(),
        work_ms: 0,
    }
    .encode_to_vec();
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.push(0); // not compressed
    frame.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    frame.extend_from_slice(&message);
    let (response, mut stream) = send.send_request(request, false).expect("send");
    stream
        .send_data(Bytes::from(frame), true)
        .expect("send message");
    let response = response.await.expect("response");
    let ended = response.body().is_end_stream();
    (response, ended)
}

#[tokio::test]
async fn a_refusal_is_a_trailers_only_http_200() {
    let server = Server::start(options()).await;
    for _ in 0..3 {
        let (response, ended) = raw_call(server.addr, "raw").await;
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(
            response.headers().get("grpc-status").is_none(),
            "answered by the service"
        );
        assert!(!ended, "the service's answer has a body");
    }
    let (response, ended) = raw_call(server.addr, "raw").await;
    assert_eq!(response.status(), http::StatusCode::OK, "never an HTTP 429");
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "8");
    assert_eq!(
        response.headers()["grpc-message"],
        "Rate%20limit%20%22api-key-minute%22%20exceeded;%20retry%20in%2020%20s."
    );
    assert!(response.headers().contains_key("grpc-status-details-bin"));
    assert!(ended, "trailers-only: the headers end the stream");
}

#[test]
fn the_example_reads_its_address_flag() {
    let args = |list: &[&str]| grpc_example::parse_args(list.iter().map(|s| (*s).to_owned()));
    assert_eq!(args(&[]), Ok(Options::default()));
    let options = args(&["--addr", "0.0.0.0:6000"]).expect("valid flag");
    assert_eq!(options.addr, SocketAddr::from(([0, 0, 0, 0], 6000)));
    assert!(args(&["--addr"]).is_err_and(|e| e.contains("HOST:PORT")));
    assert!(args(&["--addr", "nowhere"]).is_err_and(|e| e.contains("nowhere")));
    assert!(args(&["--port", "1"]).is_err_and(|e| e.contains("--port")));
}
