//! Every algorithm behind the layer: the quota, draft-valid fields, a wait
//! that is enough, and costs up to `u64::MAX` answered without a panic.

use std::time::Duration;

use http::StatusCode;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::Plans;
use tower::Layer;

use crate::sf;
use crate::support::{builder, send, with_headers, Calls, Ok200, PEER};

const ALL: [AlgorithmKind; 4] = [
    AlgorithmKind::Gcra,
    AlgorithmKind::FixedWindow,
    AlgorithmKind::SlidingWindow,
    AlgorithmKind::SlidingLog,
];

fn cost_of(request: &tollgate::key::RequestInfo<'_>) -> u64 {
    request
        .headers()
        .get("x-cost")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

#[tokio::test]
async fn each_algorithm_admits_the_quota_and_its_wait_is_enough() {
    for algorithm in ALL {
        let clock = ManualClock::new();
        let calls = Calls::default();
        let plans = Plans::builder()
            .tier_with("api", "3/minute", algorithm)
            .build()
            .expect("valid plans");
        let mut svc = builder(plans, &clock)
            .cost(cost_of)
            .headers_on_allowed(true)
            .build()
            .expect("layer")
            .layer(Ok200::new(&calls));
        let plain = || with_headers(Some(PEER), &[]);

        for i in 0..3 {
            let reply = send(&mut svc, plain()).await;
            assert_eq!(reply.status, StatusCode::OK, "{algorithm}: request {i}");
            sf::check_fields(&reply.headers).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        }
        let refused = send(&mut svc, plain()).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{algorithm}");
        sf::check_fields(&refused.headers).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert!(refused.headers.contains_key("retry-after"), "{algorithm}");
        let wait = refused.json()["retry_after_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("{algorithm}: retry_after_ms"));
        assert!(wait >= 1, "{algorithm}");

        for cost in ["4", "18446744073709551615", "99999999999999999999"] {
            let reply = send(
                &mut svc,
                with_headers(Some(PEER), &[("x-cost", cost.as_bytes())]),
            )
            .await;
            assert_eq!(
                reply.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{algorithm}: cost {cost}"
            );
            sf::check_fields(&reply.headers).unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        }

        clock.advance(Duration::from_millis(wait));
        let again = send(&mut svc, plain()).await;
        assert_eq!(
            again.status,
            StatusCode::OK,
            "{algorithm}: refused again after waiting {wait} ms: {:?}",
            String::from_utf8_lossy(&again.body)
        );
        assert_eq!(calls.get(), 4, "{algorithm}");
    }
}

#[tokio::test]
async fn each_algorithm_is_all_or_nothing_with_a_second_rule() {
    for algorithm in ALL {
        let clock = ManualClock::new();
        let plans = Plans::builder()
            .tier_with("tenant", "2/hour", algorithm)
            .build()
            .expect("valid plans");
        let per_ip = Plans::builder()
            .tier_with("per-ip", "4/hour", algorithm)
            .build()
            .expect("valid plans");
        let mut svc = builder(plans, &clock)
            .key(tollgate::key::HeaderKey::new("x-tenant"))
            .also("also", per_ip, tollgate::key::ClientIp::new())
            .build()
            .expect("layer")
            .layer(Ok200::default());
        let tenant = |t: &'static [u8]| with_headers(Some(PEER), &[("x-tenant", t)]);
        let mut got = Vec::new();
        for t in [&b"a"[..], b"a", b"a", b"a", b"a", b"b", b"b", b"c"] {
            got.push(send(&mut svc, tenant(t)).await.status.as_u16());
        }
        // a: 2 then refused by its tenant limit, which charges the IP
        // nothing; b: 2 more (IP at 4); c: refused by the IP.
        assert_eq!(got, [200, 200, 429, 429, 429, 200, 200, 429], "{algorithm}");
        let c = send(&mut svc, tenant(b"c")).await;
        assert_eq!(c.json()["policy"], "per-ip", "{algorithm}");
    }
}
