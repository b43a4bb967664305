//! `RateLimitLayer::peek`: what a request would get, charging nothing.

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{HeaderKey, KeyError};
use tollgate::{Mode, PeekError, Plans};
use tower::Layer;

use crate::support::{builder, from, layer, single, statuses, with_headers, Calls, Ok200, PEER};

#[tokio::test]
async fn peeking_charges_nothing_and_follows_the_counters() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let layer = layer(single("api", "3/minute"), &clock);
    for _ in 0..5 {
        let peeked = layer.peek(&from(PEER)).await.expect("peek");
        assert!(peeked.decision.is_allowed());
        assert_eq!(peeked.decision.remaining(), 2);
    }
    let mut svc = layer.clone().layer(Ok200::new(&calls));
    assert_eq!(statuses(&mut svc, PEER, 2).await, [200, 200]);
    let last = layer.peek(&from(PEER)).await.expect("peek");
    assert!(last.decision.is_allowed());
    assert_eq!(last.decision.remaining(), 0);
    assert_eq!(statuses(&mut svc, PEER, 1).await, [200]);

    let refused = layer.peek(&from(PEER)).await.expect("peek");
    assert!(!refused.decision.is_allowed());
    assert_eq!(refused.policy.as_ref().map(|p| p.name()), Some("api"));
    assert_eq!(refused.tier.as_deref(), Some("api"));
    assert_eq!(
        refused.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"20"[..])
    );
    assert_eq!(refused.headers["ratelimit-policy"], "\"api\";q=3;w=60");
    assert_eq!(calls.get(), 3);
    // The peeks spent nothing: the service still refuses only the 4th.
    assert_eq!(
        statuses(&mut svc, PEER, 1).await,
        [StatusCode::TOO_MANY_REQUESTS.as_u16()]
    );
}

#[tokio::test]
async fn peeking_names_the_tightest_limit_across_rules() {
    let clock = ManualClock::new();
    let layer = builder(single("per-peer", "10/minute"), &clock)
        .also(
            "per-tenant",
            single("per-tenant", "2/minute"),
            HeaderKey::new("x-tenant"),
        )
        .build()
        .expect("layer");
    let request = || with_headers(Some(PEER), &[("x-tenant", b"acme")]);
    let peeked = layer.peek(&request()).await.expect("peek");
    assert_eq!(peeked.policy.as_ref().map(|p| p.name()), Some("per-tenant"));
    assert_eq!(peeked.decision.remaining(), 1);
    assert_eq!(
        peeked.headers["ratelimit-policy"],
        "\"per-peer\";q=10;w=60, \"per-tenant\";q=2;w=60"
    );
}

#[tokio::test]
async fn peeking_without_a_key_is_a_typed_error() {
    let clock = ManualClock::new();
    let layer = builder(single("api", "3/minute"), &clock)
        .key(HeaderKey::new("x-api-key"))
        .build()
        .expect("layer");
    let error = layer
        .peek(&with_headers(Some(PEER), &[]))
        .await
        .expect_err("no key");
    assert!(
        matches!(error, PeekError::Key(KeyError::Missing { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn peeking_a_tier_that_is_off_finds_no_limit() {
    let clock = ManualClock::new();
    let plans = Plans::builder()
        .tier("api", "1/minute")
        .mode("api", Mode::Off)
        .build()
        .expect("plans");
    let peeked = layer(plans, &clock).peek(&from(PEER)).await.expect("peek");
    assert!(peeked.decision.is_allowed());
    assert!(peeked.policy.is_none());
    assert!(peeked.headers.is_empty());
}
