//! The `metrics` feature: exact counter and gauge values, labels included,
//! after known sequences of allowed, refused and shed requests, read from
//! a Prometheus recorder local to each test (so tests running at once do
//! not see each other's counts).
#![cfg(feature = "metrics")]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tollgate::clock::ManualClock;
use tollgate::key::{ApiKeyOrIp, HeaderKey, PeerAddr, PeerIp, RequestInfo};
use tollgate::shed::{LoadShedLayer, Priority};
use tollgate::store::MemoryStore;
use tollgate::{OnStoreError, Plans, RateLimitLayer};
use tower::{Layer, Service, ServiceExt};

#[cfg(feature = "serde")]
#[path = "../examples/tiered_api.rs"]
#[allow(dead_code, unreachable_pub)]
mod tiered_api;

/// Runs `test` on a current-thread runtime with a fresh Prometheus recorder
/// as this thread's recorder: everything the test builds registers there,
/// and every event it causes is reported there. `test` gets the recorder's
/// handle to render it; so does the caller, with the test's output.
fn with_recorder<F: Future>(
    test: impl FnOnce(PrometheusHandle) -> F,
) -> (PrometheusHandle, F::Output) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let output = metrics::with_local_recorder(&recorder, || runtime.block_on(test(handle.clone())));
    (handle, output)
}

/// The value of the sample `name{labels}` in a Prometheus text rendering
/// (labels in any order); `None` when there is no such sample.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, mut found) = match series.split_once('{') {
                Some((n, rest)) => (
                    n,
                    rest.trim_end_matches('}')
                        .split(',')
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                ),
                None => (series, Vec::new()),
            };
            found.sort();
            (series_name == name && found == wanted).then(|| value.parse().ok())?
        })
}

/// [`sample`], which must be there.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?} in:\n{text}"))
}

async fn ok(_request: Request<()>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

fn peer(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("an IP"), 40000)
}

/// A request from `from` (no peer address when `None`) with `api_key`.
fn request(from: Option<&str>, api_key: Option<&str>) -> Request<()> {
    let mut builder = Request::get("/");
    if let Some(ip) = from {
        builder = builder.extension(PeerAddr(peer(ip)));
    }
    if let Some(key) = api_key {
        builder = builder.header("x-api-key", key);
    }
    builder.body(()).expect("request")
}

/// Sends each request through `service`; answers the statuses.
async fn statuses<S>(service: &mut S, requests: Vec<Request<()>>) -> Vec<StatusCode>
where
    S: Service<Request<()>, Response = Response<tollgate::body::ResponseBody<Full<Bytes>>>>,
    S::Error: std::fmt::Debug,
{
    let mut out = Vec::new();
    for request in requests {
        let response = service
            .ready()
            .await
            .expect("ready")
            .call(request)
            .await
            .expect("answered");
        out.push(response.status());
    }
    out
}

const ALLOWED: &str = "tollgate_requests_allowed_total";
const REJECTED: &str = "tollgate_requests_rejected_total";
const SHADOW: &str = "tollgate_requests_shadow_rejected_total";
const KEY_REJECTED: &str = "tollgate_requests_key_rejected_total";
const STORE_ERRORS: &str = "tollgate_store_errors_total";
const SHED: &str = "tollgate_requests_shed_total";
const KEYS: &str = "tollgate_store_keys";

#[test]
fn allowed_and_rejected_are_counted_by_limit_and_tier() {
    let (_, (codes, text)) = with_recorder(|metrics| async move {
        let plans = Plans::builder()
            .tier("anonymous", "2/minute")
            .tier("basic", "3/minute; 100/day")
            .build()
            .expect("plans");
        let resolve = |key: &str| (key == "basic-key").then_some("basic");
        let layer = RateLimitLayer::builder(plans)
            .key(ApiKeyOrIp::new(resolve))
            .also(
                "per-ip",
                Plans::single("per-ip", "4/minute").expect("plans"),
                PeerIp::new(),
            )
            .build()
            .expect("layer");
        let mut service = layer.layer(tower::service_fn(ok));
        let a = Some("192.0.2.1");
        let b = Some("192.0.2.2");
        let key = Some("basic-key");
        let codes = statuses(
            &mut service,
            vec![
                // Anonymous from A: 2 allowed, then the tier refuses.
                request(a, None),
                request(a, None),
                request(a, None),
                // Basic from A: the per-IP ceiling has 2 left.
                request(a, key),
                request(a, key),
                request(a, key),
                // Basic from B: basic-minute has 1 left.
                request(b, key),
                request(b, key),
                // No usable key.
                request(b, Some("stolen-key")),
                request(None, None),
            ],
        )
        .await;
        // Rendered while the layer and its store live.
        (codes, metrics.render())
    });
    use StatusCode as S;
    assert_eq!(
        codes,
        [
            S::OK,
            S::OK,
            S::TOO_MANY_REQUESTS,
            S::OK,
            S::OK,
            S::TOO_MANY_REQUESTS,
            S::OK,
            S::TOO_MANY_REQUESTS,
            S::UNAUTHORIZED,
            S::INTERNAL_SERVER_ERROR,
        ]
    );
    // Each allowed request counts once under the tier each rule chose.
    assert_eq!(value(&text, ALLOWED, &[("tier", "anonymous")]), 2.0);
    assert_eq!(value(&text, ALLOWED, &[("tier", "basic")]), 3.0);
    assert_eq!(value(&text, ALLOWED, &[("tier", "per-ip")]), 5.0);
    let rejected = |limit, tier| value(&text, REJECTED, &[("limit", limit), ("tier", tier)]);
    assert_eq!(rejected("anonymous", "anonymous"), 1.0);
    assert_eq!(rejected("per-ip", "per-ip"), 1.0);
    assert_eq!(rejected("basic-minute", "basic"), 1.0);
    assert_eq!(rejected("basic-day", "basic"), 0.0);
    assert_eq!(
        value(
            &text,
            SHADOW,
            &[("limit", "anonymous"), ("tier", "anonymous")]
        ),
        0.0
    );
    assert_eq!(value(&text, KEY_REJECTED, &[("reason", "unknown")]), 1.0);
    assert_eq!(value(&text, KEY_REJECTED, &[("reason", "missing")]), 1.0);
    assert_eq!(value(&text, KEY_REJECTED, &[("reason", "malformed")]), 0.0);
    for error in ["full", "timeout", "unavailable"] {
        assert_eq!(value(&text, STORE_ERRORS, &[("error", error)]), 0.0);
    }
    // Keys tracked: A in the anonymous table, A and B in the per-IP one,
    // the API key in basic-minute and basic-day. Refusals insert none.
    assert_eq!(value(&text, KEYS, &[("store", "memory")]), 5.0);
}

#[test]
fn admissions_are_counted_with_fields_on_allowed_answers_too() {
    // An admission with fields to add takes the layer's other path; it is
    // counted there as on the short one.
    let (_, (codes, text)) = with_recorder(|metrics| async move {
        let plans = Plans::single("anonymous", "2/minute").expect("plans");
        let layer = RateLimitLayer::builder(plans)
            .headers_on_allowed(true)
            .build()
            .expect("layer");
        let mut service = layer.layer(tower::service_fn(ok));
        let a = Some("192.0.2.1");
        let codes = statuses(
            &mut service,
            vec![request(a, None), request(a, None), request(a, None)],
        )
        .await;
        (codes, metrics.render())
    });
    use StatusCode as S;
    assert_eq!(codes, [S::OK, S::OK, S::TOO_MANY_REQUESTS]);
    assert_eq!(value(&text, ALLOWED, &[("tier", "anonymous")]), 2.0);
    assert_eq!(
        value(
            &text,
            REJECTED,
            &[("limit", "anonymous"), ("tier", "anonymous")]
        ),
        1.0
    );
}

#[test]
fn shadow_mode_counts_what_it_would_refuse() {
    let (metrics, codes) = with_recorder(|_| async {
        let layer = RateLimitLayer::builder(Plans::single("per-ip", "1/minute").expect("plans"))
            .shadow(true)
            .build()
            .expect("layer");
        let mut service = layer.layer(tower::service_fn(ok));
        let a = Some("192.0.2.1");
        statuses(
            &mut service,
            vec![request(a, None), request(a, None), request(a, None)],
        )
        .await
    });
    assert_eq!(codes, [StatusCode::OK; 3]);
    let text = metrics.render();
    let labels = [("limit", "per-ip"), ("tier", "per-ip")];
    assert_eq!(value(&text, ALLOWED, &[("tier", "per-ip")]), 1.0);
    assert_eq!(value(&text, SHADOW, &labels), 2.0);
    assert_eq!(value(&text, REJECTED, &labels), 0.0);
}

#[test]
fn store_errors_are_counted_by_kind_and_the_keys_gauge_follows_the_store() {
    let (metrics, codes) = with_recorder(|_| async {
        let clock = ManualClock::new();
        let store = MemoryStore::builder()
            .clock(clock.clone())
            .max_keys(2)
            .build();
        let layer = || {
            RateLimitLayer::builder(Plans::single("per-key", "1/minute").expect("plans"))
                .store(store.clone())
                .key(HeaderKey::new("x-api-key"))
        };
        let open = layer()
            .on_store_error(OnStoreError::FailOpen)
            .build()
            .expect("layer");
        let layer = layer().build().expect("layer");
        let mut closed = layer.layer(tower::service_fn(ok));
        let mut open = open.layer(tower::service_fn(ok));
        let mut codes = statuses(
            &mut closed,
            vec![
                request(None, Some("k1")),
                request(None, Some("k2")),
                // The store is full of busy keys: 503.
                request(None, Some("k3")),
            ],
        )
        .await;
        // Failing open lets it through, counted as a store error only.
        codes.extend(statuses(&mut open, vec![request(None, Some("k4"))]).await);
        let full = store.len();
        // A minute on, both keys are idle and swept out.
        clock.advance(Duration::from_secs(61));
        let swept = store.sweep();
        (codes, full, swept)
    });
    let (codes, full, swept) = codes;
    assert_eq!(
        codes,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    assert_eq!((full, swept), (2, 2));
    let text = metrics.render();
    assert_eq!(value(&text, STORE_ERRORS, &[("error", "full")]), 2.0);
    assert_eq!(value(&text, STORE_ERRORS, &[("error", "timeout")]), 0.0);
    assert_eq!(value(&text, ALLOWED, &[("tier", "per-key")]), 2.0);
    assert_eq!(value(&text, KEYS, &[("store", "memory")]), 0.0);
}

#[test]
fn a_dropped_store_takes_its_keys_off_the_gauge() {
    let (metrics, seen) = with_recorder(|metrics| async move {
        let keys = || value(&metrics.render(), KEYS, &[("store", "memory")]);
        let mut a = RateLimitLayer::new(Plans::single("a", "5/minute").expect("plans"))
            .layer(tower::service_fn(ok));
        let mut b = RateLimitLayer::new(Plans::single("b", "5/minute").expect("plans"))
            .layer(tower::service_fn(ok));
        let ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
        statuses(&mut a, vec![request(Some(ips[0]), None)]).await;
        statuses(
            &mut b,
            ips.iter().map(|ip| request(Some(ip), None)).collect(),
        )
        .await;
        let mut seen = vec![keys()];
        drop(b);
        seen.push(keys());
        drop(a);
        seen.push(keys());
        seen
    });
    assert_eq!(seen, [4.0, 1.0, 0.0]);
    assert_eq!(value(&metrics.render(), KEYS, &[("store", "memory")]), 0.0);
}

#[test]
fn shed_requests_are_counted_by_reason_and_priority() {
    let (metrics, outcome) = with_recorder(|_| async {
        // Time stands still: no waiter times out, no standing queue forms.
        let layer = LoadShedLayer::builder(1)
            .clock(ManualClock::new())
            .max_queue(1)
            .max_queue_wait(Duration::from_secs(600))
            .priority(|request: &RequestInfo<'_>| {
                match request.headers().get("x-priority").map(|v| v.as_bytes()) {
                    Some(b"high") => Priority::High,
                    _ => Priority::Low,
                }
            })
            .build()
            .expect("settings");
        let mut service = layer.layer(tower::service_fn(ok));
        let prioritised = |priority: &str| {
            Request::get("/")
                .header("x-priority", priority)
                .body(())
                .expect("request")
        };
        // The first holds the only place while its response lives.
        let first = service
            .ready()
            .await
            .expect("ready")
            .call(prioritised("low"))
            .await
            .expect("answered");
        // A low request waits in the queue...
        let waiting = service
            .ready()
            .await
            .expect("ready")
            .call(prioritised("low"));
        let mut waiting = Box::pin(waiting);
        assert!(
            futures_poll_once(waiting.as_mut()).await.is_none(),
            "queued"
        );
        // ...until a high one takes its place.
        let high = service
            .ready()
            .await
            .expect("ready")
            .call(prioritised("high"));
        let mut high = Box::pin(high);
        assert!(futures_poll_once(high.as_mut()).await.is_none(), "queued");
        let displaced = waiting.await.expect("answered");
        // The queue is full of high: another low and another high are shed.
        let low_full = service
            .ready()
            .await
            .expect("ready")
            .call(prioritised("low"))
            .await
            .expect("answered");
        let high_full = service
            .ready()
            .await
            .expect("ready")
            .call(prioritised("high"))
            .await
            .expect("answered");
        drop(first);
        let served = high.await.expect("answered");
        [
            displaced.status(),
            low_full.status(),
            high_full.status(),
            served.status(),
        ]
    });
    assert_eq!(
        outcome,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
    let text = metrics.render();
    let shed = |reason, priority| value(&text, SHED, &[("reason", reason), ("priority", priority)]);
    assert_eq!(shed("displaced", "low"), 1.0);
    assert_eq!(shed("queue_full", "low"), 1.0);
    assert_eq!(shed("queue_full", "high"), 1.0);
    assert_eq!(shed("displaced", "high"), 0.0);
    assert_eq!(shed("queue_timeout", "low"), 0.0);
    assert_eq!(shed("overloaded", "normal"), 0.0);
}

/// Polls `future` once: its output if it is ready at once.
async fn futures_poll_once<F: Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = future;
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

#[test]
fn handles_registered_without_a_recorder_stay_silent() {
    // Built with no recorder in force: its handles are no-ops for good.
    let early = RateLimitLayer::new(Plans::single("early", "1/minute").expect("plans"));
    let (metrics, codes) = with_recorder(|_| async move {
        let mut service = early.layer(tower::service_fn(ok));
        let a = Some("192.0.2.1");
        statuses(&mut service, vec![request(a, None), request(a, None)]).await
    });
    assert_eq!(codes, [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    let text = metrics.render();
    assert_eq!(sample(&text, ALLOWED, &[("tier", "early")]), None, "{text}");
    assert_eq!(
        sample(&text, REJECTED, &[("limit", "early"), ("tier", "early")]),
        None
    );
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;
    use tollgate::store::RedisStore;

    const LATENCY_COUNT: &str = "tollgate_store_latency_seconds_count";
    const CALL_ERRORS: &str = "tollgate_store_call_errors_total";
    const TRANSITIONS: &str = "tollgate_redis_breaker_transitions_total";

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    }

    #[test]
    fn redis_calls_are_timed_and_failures_counted() {
        let (metrics, codes) = with_recorder(|_| async {
            let store = RedisStore::builder(format!("redis://127.0.0.1:{}/", closed_port()))
                .no_fallback()
                .timeout(Duration::from_millis(300))
                // Opens after 3 failures and stays open for the test.
                .breaker(
                    tollgate::store::redis::BreakerSettings::new()
                        .min_calls(3)
                        .failure_rate(0.75)
                        .backoff(Duration::from_secs(600), Duration::from_secs(600)),
                )
                .build()
                .expect("store");
            let layer =
                RateLimitLayer::builder(Plans::single("per-ip", "10/minute").expect("plans"))
                    .store(store)
                    .build()
                    .expect("layer");
            let mut service = layer.layer(tower::service_fn(ok));
            let a = Some("192.0.2.1");
            statuses(&mut service, (0..5).map(|_| request(a, None)).collect()).await
        });
        assert_eq!(codes, [StatusCode::SERVICE_UNAVAILABLE; 5]);
        let text = metrics.render();
        // Three calls reached for Redis; the open breaker answered the rest.
        assert_eq!(value(&text, LATENCY_COUNT, &[("store", "redis")]), 3.0);
        let failed = value(
            &text,
            CALL_ERRORS,
            &[("store", "redis"), ("error", "timeout")],
        ) + value(
            &text,
            CALL_ERRORS,
            &[("store", "redis"), ("error", "unavailable")],
        );
        assert_eq!(failed, 3.0);
        assert_eq!(value(&text, TRANSITIONS, &[("transition", "opened")]), 1.0);
        assert_eq!(
            sample(&text, TRANSITIONS, &[("transition", "closed")]),
            None
        );
        // Every request was a store failure at the layer.
        let at_layer = value(&text, STORE_ERRORS, &[("error", "timeout")])
            + value(&text, STORE_ERRORS, &[("error", "unavailable")]);
        assert_eq!(at_layer, 5.0);
    }
}

#[cfg(feature = "serde")]
mod example {
    //! The tiered example's `GET /metrics`.

    use super::*;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tollgate::key::TrustedProxies;

    use super::tiered_api::{app, with_metrics, Limits, DEFAULT_CONFIG};

    #[test]
    fn the_example_serves_its_counters_at_metrics() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let prometheus = recorder.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (codes, text) = metrics::with_local_recorder(&recorder, || {
            runtime.block_on(async {
                let limits = Limits::from_toml(DEFAULT_CONFIG).expect("the shipped config");
                let router = with_metrics(app(limits, TrustedProxies::default()), prometheus);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("address");
                tokio::spawn(async move {
                    axum::serve(
                        listener,
                        router.into_make_service_with_connect_info::<SocketAddr>(),
                    )
                    .await
                    .expect("server runs");
                });
                let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
                let get = |path: &str| {
                    let request = Request::get(format!("http://{addr}{path}"))
                        .body(Empty::new())
                        .expect("request");
                    client.request(request)
                };
                let mut codes = Vec::new();
                // Anonymous: 3 a minute.
                for _ in 0..4 {
                    codes.push(get("/api/hello").await.expect("response").status());
                }
                let response = get("/metrics").await.expect("response");
                codes.push(response.status());
                let body = response.into_body().collect().await.expect("body");
                let text = String::from_utf8(body.to_bytes().to_vec()).expect("UTF-8");
                (codes, text)
            })
        });
        use StatusCode as S;
        assert_eq!(
            codes,
            [S::OK, S::OK, S::OK, S::TOO_MANY_REQUESTS, S::OK],
            "{text}"
        );
        assert!(
            text.contains("tollgate_requests_allowed_total{tier=\"anonymous\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "tollgate_requests_rejected_total{limit=\"anonymous\",tier=\"anonymous\"} 1\n"
            ),
            "{text}"
        );
        assert_eq!(value(&text, ALLOWED, &[("tier", "per-ip")]), 3.0);
        assert_eq!(value(&text, ALLOWED, &[("tier", "premium")]), 0.0);
        assert_eq!(
            value(
                &text,
                REJECTED,
                &[("limit", "basic-day"), ("tier", "basic")]
            ),
            0.0
        );
        assert_eq!(
            value(
                &text,
                SHED,
                &[("reason", "queue_full"), ("priority", "low")]
            ),
            0.0
        );
        // The anonymous client's IP in the tier's table and the per-IP one.
        assert_eq!(value(&text, KEYS, &[("store", "memory")]), 2.0);
    }
}

#[test]
fn delayed_requests_are_counted_with_their_wait() {
    let (_, (codes, text)) = with_recorder(|metrics| async move {
        // 100/second (T = 10 ms), one at once, three waiting.
        let plans = Plans::single("search", "100/second burst 1 queue 3").expect("plans");
        let layer = RateLimitLayer::builder(plans)
            .key(PeerIp::new())
            .build()
            .expect("layer");
        let service = layer.layer(tower::service_fn(ok));
        // Checked at once, one after another (`call` checks), then awaited.
        let mut calls = Vec::new();
        for _ in 0..5 {
            let mut service = service.clone();
            let ready = service.ready().await.expect("ready");
            calls.push(ready.call(request(Some("192.0.2.7"), None)));
        }
        let mut codes = Vec::new();
        for call in calls {
            codes.push(call.await.expect("answered").status());
        }
        (codes, metrics.render())
    });
    let ok = StatusCode::OK;
    assert_eq!(codes, [ok, ok, ok, ok, StatusCode::TOO_MANY_REQUESTS]);
    let tier = [("tier", "search")];
    assert_eq!(value(&text, ALLOWED, &tier), 4.0);
    assert_eq!(value(&text, "tollgate_requests_delayed_total", &tier), 3.0);
    assert_eq!(
        value(&text, "tollgate_request_delay_seconds_count", &tier),
        3.0
    );
    // The waits were 10, 20 and 30 ms, less the microseconds between the
    // requests' checks.
    let sum = value(&text, "tollgate_request_delay_seconds_sum", &tier);
    assert!((0.055..=0.060_001).contains(&sum), "sum of waits {sum}");
}
