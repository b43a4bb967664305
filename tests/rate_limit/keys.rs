//! Requests without a usable key are answered (401, 400, 500), never
//! counted, never passed on, and never make the layer panic.

use http::StatusCode;
use proptest::prelude::*;
use tollgate::clock::ManualClock;
use tollgate::key::{
    ApiKeyOrIp, ClientIp, ForwardedHeader, HeaderKey, KeyExtractor, TrustedProxies,
};
use tollgate::Plans;
use tower::Layer;

use crate::support::{
    builder, from, layer, send, single, statuses, with_headers, Calls, Ok200, PEER,
};

fn plans() -> Plans {
    Plans::builder()
        .tier("anonymous", "3/minute")
        .tier("basic", "5/minute")
        .build()
        .expect("valid test plans")
}

fn resolve(key: &str) -> Option<&'static str> {
    (key == "basic-key").then_some("basic")
}

fn assert_problem(reply: &crate::support::Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "body {:?}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let body = reply.json();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["detail"].is_string());
    assert!(
        !reply.headers.contains_key("retry-after"),
        "waiting does not fix a bad key"
    );
    assert!(!reply.headers.contains_key("ratelimit"));
}

#[tokio::test]
async fn unknown_api_key_is_401_and_not_counted() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(plans(), &clock)
        .key(ApiKeyOrIp::new(resolve))
        .also("per-ip", single("per-ip", "4/minute"), ClientIp::new())
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));

    for _ in 0..10 {
        let reply = send(
            &mut svc,
            with_headers(Some(PEER), &[("x-api-key", b"no-such-key")]),
        )
        .await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["detail"], "unknown API key");
    }
    assert_eq!(calls.get(), 0);
    // Neither the anonymous quota nor the per-IP ceiling was charged.
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 429]);
    let known = send(
        &mut svc,
        with_headers(Some(PEER), &[("x-api-key", b"basic-key")]),
    )
    .await;
    assert_eq!(known.status, StatusCode::OK, "per-IP has one left");
    assert_eq!(calls.get(), 4);
}

#[tokio::test]
async fn missing_peer_address_is_500() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = layer(single("api", "3/minute"), &clock).layer(Ok200::new(&calls));
    for _ in 0..5 {
        let reply = send(&mut svc, with_headers(None, &[])).await;
        assert_problem(&reply, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(calls.get(), 0);
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 429]);
}

#[tokio::test]
async fn bad_api_key_values_are_400() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(plans(), &clock)
        .key(ApiKeyOrIp::new(resolve))
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let oversized = vec![b'k'; 10 * 1024];
    for value in [
        &b"two words"[..],
        b"\xff\xfe\xfd",
        b"caf\xc3\xa9",
        b"",
        b"tab\there",
        &oversized,
    ] {
        let reply = send(&mut svc, with_headers(Some(PEER), &[("x-api-key", value)])).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST);
    }
    let repeated = send(
        &mut svc,
        with_headers(
            Some(PEER),
            &[("x-api-key", b"basic-key"), ("x-api-key", b"basic-key")],
        ),
    )
    .await;
    assert_problem(&repeated, StatusCode::BAD_REQUEST);
    assert_eq!(calls.get(), 0);
    assert_eq!(statuses(&mut svc, PEER, 4).await, [200, 200, 200, 429]);
}

#[tokio::test]
async fn header_key_missing_is_401_and_or_falls_back() {
    let clock = ManualClock::new();
    let mut svc = builder(single("api", "1/minute"), &clock)
        .key(HeaderKey::new("x-tenant"))
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let missing = send(&mut svc, from(PEER)).await;
    assert_problem(&missing, StatusCode::UNAUTHORIZED);

    let clock = ManualClock::new();
    let mut svc = builder(single("api", "1/minute"), &clock)
        .key(HeaderKey::new("x-tenant").or(ClientIp::new()))
        .build()
        .expect("layer")
        .layer(Ok200::default());
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 429]);
    let tenant = send(&mut svc, with_headers(Some(PEER), &[("x-tenant", b"t1")])).await;
    assert_eq!(tenant.status, StatusCode::OK, "the tenant has its own key");
    // A malformed header is not missing: no fallback.
    let bad = send(&mut svc, with_headers(Some(PEER), &[("x-tenant", b"a b")])).await;
    assert_problem(&bad, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_forwarding_headers_from_a_trusted_proxy_are_400() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let trusted = TrustedProxies::new(["10.0.0.0/8"]).expect("valid proxies");
    let mut svc = builder(single("api", "3/minute"), &clock)
        .key(ClientIp::new().trust(trusted))
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let proxy = "10.0.0.1:443";
    let huge = b"203.0.113.5, ".repeat(1000);
    for value in [
        &b"not-an-ip"[..],
        b"unknown",
        b"203.0.113.5, \xff",
        b"203.0.113.5, garbage, 10.0.0.2",
        &huge,
    ] {
        let reply = send(
            &mut svc,
            with_headers(Some(proxy), &[("x-forwarded-for", value)]),
        )
        .await;
        assert_problem(&reply, StatusCode::BAD_REQUEST);
    }
    assert_eq!(calls.get(), 0);
    // From an untrusted peer the same header is ignored, not an error.
    let reply = send(
        &mut svc,
        with_headers(Some(PEER), &[("x-forwarded-for", b"not-an-ip")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
}

fn header_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // Every byte a header value may hold: visible ASCII, SP, HTAB, obs-text.
    prop::collection::vec(
        prop_oneof![
            6 => 0x20_u8..0x7f,
            2 => 0x80_u8..=0xff,
            1 => Just(b'\t'),
            2 => prop::sample::select(b",;=\"[]:. ".to_vec()),
        ],
        0..max,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_values_never_panic(
        api_key in prop::option::of(header_bytes(40)),
        xff in prop::option::of(header_bytes(80)),
        forwarded in prop::option::of(header_bytes(80)),
        long in prop::option::of(1_000_usize..12_000),
        peer in prop::sample::select(vec![None, Some("10.0.0.1:1"), Some("192.0.2.9:2"), Some("[2001:db8::1]:3")]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let trusted = TrustedProxies::new(["10.0.0.0/8"]).expect("valid proxies");
        let clock = ManualClock::new();
        let calls = Calls::default();
        let mut svc = builder(plans(), &clock)
            .key(ApiKeyOrIp::new(resolve).client_ip(ClientIp::new().trust(trusted.clone())))
            .also(
                "per-ip",
                single("per-ip", "2/minute"),
                ClientIp::new().trust(trusted).header(ForwardedHeader::Forwarded),
            )
            .build().expect("layer")
            .layer(Ok200::new(&calls));
        let long_value = long.map(|n| vec![b'9'; n]);
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(v) = &api_key {
            headers.push(("x-api-key", v));
        }
        if let Some(v) = &xff {
            headers.push(("x-forwarded-for", v));
        }
        if let Some(v) = &forwarded {
            headers.push(("forwarded", v));
        }
        if let Some(v) = &long_value {
            headers.push(("x-forwarded-for", v));
        }
        let statuses: Vec<u16> = runtime.block_on(async {
            let mut out = Vec::new();
            for _ in 0..3 {
                out.push(send(&mut svc, with_headers(peer, &headers)).await.status.as_u16());
            }
            out
        });
        for status in &statuses {
            prop_assert!([200, 400, 401, 429, 500].contains(status), "{statuses:?}");
        }
        if [400, 401, 500].contains(&statuses[0]) {
            // A key error does not depend on the counters: the same each time.
            prop_assert!(statuses.iter().all(|s| *s == statuses[0]), "{statuses:?}");
        }
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        prop_assert_eq!(admitted, calls.get());
        if peer.is_none() && api_key.is_none() {
            prop_assert!(statuses.iter().all(|s| *s == 500));
        }
    }
}
