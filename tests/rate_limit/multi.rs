//! Several limits on one request are all or nothing: a limit that refuses
//! leaves the others uncharged, within a tier and across rules.

use std::time::Duration;

use http::StatusCode;
use tollgate::clock::ManualClock;
use tollgate::key::{ClientIp, HeaderKey};
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimitLayer};
use tower::Layer;

use crate::sf;
use crate::support::{builder, from, send, single, with_headers, Calls, Ok200, PEER};

fn ratelimit_item(reply: &crate::support::Reply) -> (String, i64) {
    let (_, limits) = sf::check_fields(&reply.headers).expect("valid fields");
    let item = limits
        .expect("RateLimit present")
        .into_iter()
        .next()
        .expect("one item");
    (item.name, item.r)
}

#[tokio::test]
async fn day_limit_refuses_and_the_minute_limit_is_not_charged() {
    let clock = ManualClock::new();
    // Sweeps only when asked, so the key count below is the test's to read.
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .idle_sweep_every(Duration::from_secs(365 * 86_400))
        .build();
    let plans = Plans::single("basic", "10/minute; 3/day").expect("valid plans");
    let calls = Calls::default();
    let mut svc = RateLimitLayer::builder(plans)
        .store(store.clone())
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));

    for remaining in [2, 1, 0] {
        let reply = send(&mut svc, from(PEER)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(ratelimit_item(&reply), ("basic-day".into(), remaining));
    }
    for _ in 0..7 {
        let refused = send(&mut svc, from(PEER)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["policy"], "basic-day");
        assert_eq!(ratelimit_item(&refused), ("basic-day".into(), 0));
        // 3/day: one every 8 hours.
        assert_eq!(refused.header("retry-after"), Some("28800"));
    }
    assert_eq!(calls.get(), 3);

    // Three admitted requests put the minute limit 18 s ahead; had the seven
    // refused ones been charged too, it would be 60 s ahead. After 30 s the
    // minute key is back to a full allowance (so it is swept) only if the
    // refused requests were not charged to it.
    assert_eq!(store.len(), 2, "one key in each limit");
    clock.advance(Duration::from_secs(30));
    assert_eq!(store.sweep(), 1, "the minute limit holds only 3 charges");
    assert_eq!(store.len(), 1, "the day limit still holds its charges");
}

#[tokio::test]
async fn minute_limit_refuses_and_the_day_limit_is_not_charged() {
    let clock = ManualClock::new();
    let plans = Plans::single("basic", "2/minute; 3/day").expect("valid plans");
    let mut svc = builder(plans, &clock)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());

    assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);
    let second = send(&mut svc, from(PEER)).await;
    assert_eq!(second.status, StatusCode::OK);
    for _ in 0..5 {
        let refused = send(&mut svc, from(PEER)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["policy"], "basic-minute");
        assert_eq!(refused.header("retry-after"), Some("30"));
    }
    // The day limit saw 2 requests, not 7: one more passes once the minute
    // limit has room again, and it reports the day limit's last unit.
    clock.advance(Duration::from_secs(30));
    let third = send(&mut svc, from(PEER)).await;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(ratelimit_item(&third), ("basic-day".into(), 0));
    clock.advance(Duration::from_secs(60));
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json()["policy"], "basic-day");
}

#[tokio::test]
async fn two_rules_are_all_or_nothing() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    // Rule 1 by tenant header, 3/day; rule 2 per client IP, 10/minute.
    let mut svc = builder(single("tenant", "3/day"), &clock)
        .key(HeaderKey::new("x-tenant"))
        .also("per-ip", single("per-ip", "10/minute"), ClientIp::new())
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::new(&calls));
    let tenant = |name: &'static [u8]| with_headers(Some(PEER), &[("x-tenant", name)]);

    for _ in 0..3 {
        assert_eq!(send(&mut svc, tenant(b"a")).await.status, StatusCode::OK);
    }
    // Tenant a is out for the day: seven refusals charge the IP nothing.
    for _ in 0..7 {
        let refused = send(&mut svc, tenant(b"a")).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["policy"], "tenant");
        assert_eq!(refused.json()["tier"], "tenant");
    }
    // Tenant b from the same IP passes and reports its own nearest limit.
    let b = send(&mut svc, tenant(b"b")).await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(ratelimit_item(&b), ("tenant".into(), 2));
    assert_eq!(
        b.header("ratelimit-policy"),
        Some("\"tenant\";q=3;w=86400, \"per-ip\";q=10;w=60")
    );

    // The IP has 10 - 3 - 1 = 6 left, not 0: the refusals of tenant a were
    // not charged to it. Six more tenants pass, the next is refused by the
    // IP rule, and those refusals leave its daily allowance untouched.
    for name in [&b"c"[..], b"d", b"e", b"f", b"g", b"h"] {
        assert_eq!(send(&mut svc, tenant(name)).await.status, StatusCode::OK);
    }
    for _ in 0..5 {
        let refused = send(&mut svc, tenant(b"z")).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.json()["policy"], "per-ip");
        assert_eq!(refused.json()["tier"], "per-ip");
    }
    assert_eq!(calls.get(), 10);
    clock.advance(Duration::from_secs(60));
    // Tenant z was refused five times yet still has its 3 for the day.
    for remaining in [2, 1, 0] {
        let z = send(&mut svc, tenant(b"z")).await;
        assert_eq!(z.status, StatusCode::OK);
        assert_eq!(ratelimit_item(&z), ("tenant".into(), remaining));
    }
    assert_eq!(
        send(&mut svc, tenant(b"z")).await.json()["policy"],
        "tenant"
    );
}
