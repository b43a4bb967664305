//! The rate-limit fields: syntax against the IETF draft, on refused and
//! (when asked) admitted responses, and the legacy `X-RateLimit-*` fields.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{ApiKeyOrIp, ClientIp};
use tollgate::Plans;
use tower::Layer;

use crate::sf;
use crate::support::{builder, from, layer, send, single, with_headers, Ok200, PEER};

fn tiers() -> Plans {
    Plans::builder()
        .tier("anonymous", "3/minute")
        .tier("basic", "10/minute; 1000/day")
        .tier("pro", "10/second burst 20; 2 concurrent")
        .build()
        .expect("valid test plans")
}

fn resolve(key: &str) -> Option<&'static str> {
    match key {
        "basic-key" => Some("basic"),
        "pro-key" => Some("pro"),
        _ => None,
    }
}

#[tokio::test]
async fn every_field_parses_as_the_draft_says_for_every_tier() {
    let clock = ManualClock::new();
    let mut svc = builder(tiers(), &clock)
        .key(ApiKeyOrIp::new(resolve))
        .also(
            "per-ip",
            single("per-ip", "20/second burst 40"),
            ClientIp::new(),
        )
        .headers_on_allowed(true)
        .legacy_headers(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());

    for key in [None, Some(&b"basic-key"[..]), Some(b"pro-key")] {
        let headers: Vec<(&str, &[u8])> = key.map(|k| ("x-api-key", k)).into_iter().collect();
        let mut refused = None;
        for _ in 0..40 {
            let reply = send(&mut svc, with_headers(Some(PEER), &headers)).await;
            let (policies, limits) = sf::check_fields(&reply.headers)
                .unwrap_or_else(|e| panic!("key {key:?}, status {}: {e}", reply.status));
            let policies = policies.expect("RateLimit-Policy on every answer");
            let limits = limits.expect("RateLimit on every answer");
            assert_eq!(limits.len(), 1, "one RateLimit item: the nearest limit");
            assert!(
                policies.iter().any(|p| p.name == "per-ip"),
                "both rules listed"
            );
            for name in [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ] {
                let value = reply.header(name).expect("legacy field present");
                assert!(value.parse::<u64>().is_ok(), "{name}: {value:?}");
            }
            if reply.status == StatusCode::TOO_MANY_REQUESTS {
                let retry = reply.header("retry-after").expect("Retry-After on 429");
                assert!(sf::retry_after(retry.as_bytes()).is_ok());
                refused = Some(policies);
                break;
            }
            assert_eq!(reply.status, StatusCode::OK);
            assert!(!reply.headers.contains_key("retry-after"));
        }
        let policies = refused.unwrap_or_else(|| panic!("key {key:?} was never refused"));
        if key == Some(b"pro-key") {
            let concurrent = policies
                .iter()
                .find(|p| p.name == "pro-concurrent")
                .expect("concurrency policy listed");
            assert!(concurrent.concurrent);
            assert_eq!((concurrent.q, concurrent.w), (2, None));
        }
        clock.advance(Duration::from_secs(3600));
    }
}

#[tokio::test]
async fn policy_lists_each_rule_in_order_with_whole_second_windows() {
    let clock = ManualClock::new();
    let mut svc = builder(tiers(), &clock)
        .key(ApiKeyOrIp::new(resolve))
        .also(
            "per-ip",
            single("per-ip", "20/second burst 40"),
            ClientIp::new(),
        )
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let reply = send(
        &mut svc,
        with_headers(Some(PEER), &[("x-api-key", b"basic-key")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let (policies, limits) = sf::check_fields(&reply.headers).expect("valid fields");
    let policies = policies.expect("policy field");
    let summary: Vec<(&str, i64, Option<i64>)> = policies
        .iter()
        .map(|p| (p.name.as_str(), p.q, p.w))
        .collect();
    assert_eq!(
        summary,
        [
            ("basic-minute", 10, Some(60)),
            ("basic-day", 1000, Some(86_400)),
            // A bucket of 40 refilled at 20/s: the announced q holds the
            // burst, so r (up to 39 here) never exceeds it.
            ("per-ip", 40, Some(2)),
        ]
    );
    // The nearest limit after one request: basic-minute, 9 left, the next in 6 s.
    let limits = limits.expect("ratelimit field");
    assert_eq!(
        limits,
        [sf::RateItem {
            name: "basic-minute".into(),
            r: 9,
            t: Some(6)
        }]
    );
}

#[tokio::test]
async fn admitted_responses_carry_no_fields_by_default() {
    let clock = ManualClock::new();
    let mut svc = layer(single("api", "3/minute"), &clock).layer(Ok200::default());
    for _ in 0..3 {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.has_no_rate_limit_fields(), "{:?}", reply.headers);
    }
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("ratelimit"));
    assert!(
        !refused.headers.contains_key("x-ratelimit-limit"),
        "legacy fields are off by default"
    );
}

#[tokio::test]
async fn headers_on_allowed_count_down() {
    let clock = ManualClock::new();
    let mut svc = builder(single("api", "3/minute"), &clock)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    // t: spending what remains, the next unit comes in 20 s (GCRA 3/minute).
    for (remaining, reset) in [(2, 20), (1, 20), (0, 20)] {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("ratelimit-policy"), Some("\"api\";q=3;w=60"));
        assert_eq!(
            reply.header("ratelimit"),
            Some(format!("\"api\";r={remaining};t={reset}").as_str())
        );
        assert!(!reply.headers.contains_key("retry-after"));
        assert!(!reply.headers.contains_key("x-ratelimit-limit"));
        sf::check_fields(&reply.headers).expect("valid fields");
    }
}

#[tokio::test]
async fn legacy_fields_on_refusals_and_with_headers_on_allowed() {
    let clock = ManualClock::new();
    let mut svc = builder(single("api", "3/minute"), &clock)
        .legacy_headers(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let first = send(&mut svc, from(PEER)).await;
    assert!(
        first.has_no_rate_limit_fields(),
        "legacy fields alone do not add fields to admitted responses"
    );
    send(&mut svc, from(PEER)).await;
    send(&mut svc, from(PEER)).await;
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    // The same figure as the RateLimit field's t.
    assert_eq!(refused.header("x-ratelimit-reset"), Some("20"));

    let clock = ManualClock::new();
    let mut svc = builder(single("api", "3/minute"), &clock)
        .legacy_headers(true)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let reply = send(&mut svc, from(PEER)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(reply.header("x-ratelimit-remaining"), Some("2"));
    assert_eq!(reply.header("x-ratelimit-reset"), Some("20"));
    assert!(reply.headers.contains_key("ratelimit"));
}
