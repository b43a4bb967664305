//! Conformance: one test per normative statement of
//! `draft-ietf-httpapi-ratelimit-headers` the layer implements, each named
//! and commented with its section, over every algorithm (GCRA with a
//! burst, fixed window, sliding window counter, sliding log, concurrency,
//! and a plan of several limits and rules) on a manual clock, the fields
//! read by this suite's structured-field parser (`sf.rs`, RFC 9651).
//!
//! Sections are those of draft-11 (23 May 2026), as the issue quotes it;
//! the working group's repository, as fetched, ends at draft-10, whose
//! sections have the same numbers and whose text the statements below
//! quote (`t`: "the number of seconds until additional quota associated
//! with the quota policy is made available"; draft-11 calls it the
//! effective window).

use std::time::Duration;

use http::StatusCode;
use http_body_util::BodyExt;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::ClientIp;
use tollgate::store::MemoryStore;
use tollgate::{Plans, RateLimit, RateLimitLayer};
use tower::Layer;

use crate::sf::{self, Bare};
use crate::support::{builder, collect, from, respond, send, Ok200, Reply, TestStore, PEER};

const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";
const REDUCED: &str = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity";

/// A plan under test and the layer's second rule, if any.
struct Case {
    label: &'static str,
    plans: Plans,
    also: Option<Plans>,
}

fn rate(algorithm: AlgorithmKind, quotas: &str) -> Plans {
    Plans::builder()
        .tier_with("api", quotas, algorithm)
        .build()
        .expect("valid plan")
}

/// Every rate algorithm, and a plan of several limits and two rules.
fn rate_cases() -> Vec<Case> {
    let one = |label, algorithm, quotas| Case {
        label,
        plans: rate(algorithm, quotas),
        also: None,
    };
    vec![
        one("gcra", AlgorithmKind::Gcra, "3/10s burst 5"),
        one("fixed-window", AlgorithmKind::FixedWindow, "3/10s"),
        one("sliding-window", AlgorithmKind::SlidingWindow, "3/10s"),
        one("sliding-log", AlgorithmKind::SlidingLog, "3/10s"),
        Case {
            label: "several limits, two rules",
            plans: rate(AlgorithmKind::Gcra, "2/second burst 4; 12/minute"),
            also: Some(
                Plans::builder()
                    .tier_with("per-ip", "5/10s", AlgorithmKind::SlidingLog)
                    .build()
                    .expect("valid plan"),
            ),
        },
    ]
}

fn service(case: &Case, clock: &ManualClock) -> RateLimit<Ok200, TestStore> {
    let mut l = builder(case.plans.clone(), clock).headers_on_allowed(true);
    if let Some(also) = &case.also {
        l = l.also("also", also.clone(), ClientIp::new());
    }
    l.build().expect("layer").layer(Ok200::default())
}

/// A walk through a rate plan: bursts until refused, then waits of
/// several lengths; every answer, 200s and 429s.
async fn walk(case: &Case) -> Vec<Reply> {
    let clock = ManualClock::new();
    let mut svc = service(case, &clock);
    let mut replies = Vec::new();
    for wait_ms in [0, 400, 1300, 2500, 7000, 10_000, 600, 30_000, 61_000] {
        clock.advance(Duration::from_millis(wait_ms));
        for _ in 0..8 {
            let reply = send(&mut svc, from(PEER)).await;
            let refused = reply.status == StatusCode::TOO_MANY_REQUESTS;
            replies.push(reply);
            if refused {
                break;
            }
        }
    }
    assert!(
        replies.iter().any(|r| r.status == StatusCode::OK)
            && replies
                .iter()
                .any(|r| r.status == StatusCode::TOO_MANY_REQUESTS),
        "{}: the walk sees admissions and refusals",
        case.label
    );
    replies
}

/// Answers of a concurrency limit of 2: two held, the third refused, then
/// one admitted after a body ends.
async fn concurrency_walk() -> Vec<Reply> {
    let clock = ManualClock::new();
    let plans = Plans::single("api", "2 concurrent").expect("plan");
    let mut svc = builder(plans, &clock)
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    let a = respond(&mut svc, from(PEER)).await;
    let b = respond(&mut svc, from(PEER)).await;
    let refused = send(&mut svc, from(PEER)).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let mut replies = vec![collect(a).await, refused];
    let after = send(&mut svc, from(PEER)).await;
    assert_eq!(after.status, StatusCode::OK);
    replies.push(after);
    replies.push(collect(b).await);
    replies
}

/// Every answer of every case, labelled.
async fn every_answer() -> Vec<(&'static str, Reply)> {
    let mut all = Vec::new();
    for case in rate_cases() {
        for reply in walk(&case).await {
            all.push((case.label, reply));
        }
    }
    for reply in concurrency_walk().await {
        all.push(("concurrency", reply));
    }
    all
}

fn items(reply: &Reply, field: &str) -> Vec<sf::Item> {
    let value = reply.headers.get(field).expect("field present");
    sf::parse_list(value.as_bytes()).expect("a structured-field list")
}

/// Section 3: "The RateLimit-Policy response header field is a non-empty
/// List of Quota Policy Items. The Item value MUST be a String."
/// Section 3.1.1: q "MUST be a non-negative Integer". Section 3.1.2: qu
/// "MUST be a String", a registered unit. Section 3.1.3: w "MUST be a
/// non-negative, non-zero, Integer value expressing an interval in
/// seconds".
#[tokio::test]
async fn s3_policy_items_are_strings_with_integer_q_and_w_or_a_registered_qu() {
    for (label, reply) in every_answer().await {
        let list = items(&reply, "ratelimit-policy");
        assert!(!list.is_empty(), "{label}");
        for item in list {
            assert!(matches!(item.value, Bare::String(_)), "{label}: {item:?}");
            assert!(
                matches!(item.param("q"), Some(Bare::Integer(q)) if *q >= 0),
                "{label}"
            );
            match (item.param("w"), item.param("qu")) {
                (Some(Bare::Integer(w)), None) => assert!(*w > 0, "{label}"),
                (None, Some(Bare::String(unit))) => assert!(
                    ["requests", "content-bytes", "concurrent-requests"].contains(&unit.as_str()),
                    "{label}: {unit}"
                ),
                other => panic!("{label}: w and qu {other:?}"),
            }
        }
    }
}

/// Section 3: "The field value SHOULD remain consistent over a sequence of
/// HTTP responses."
#[tokio::test]
async fn s3_the_policy_field_is_the_same_on_every_answer() {
    let all = every_answer().await;
    for (label, first) in &all {
        for (other, reply) in &all {
            if other == label {
                assert_eq!(
                    reply.headers.get("ratelimit-policy"),
                    first.headers.get("ratelimit-policy"),
                    "{label}"
                );
            }
        }
    }
}

/// Sections 3.1 and 4.1: "Implementation- or service-specific parameters
/// SHOULD be prefixed parameters with a vendor identifier". The layer sends
/// only the draft's own parameters.
#[tokio::test]
async fn s3_1_and_s4_1_only_the_drafts_parameters() {
    for (label, reply) in every_answer().await {
        for item in items(&reply, "ratelimit-policy") {
            for (key, _) in &item.params {
                assert!(["q", "qu", "w"].contains(&key.as_str()), "{label}: {key}");
            }
        }
        for item in items(&reply, "ratelimit") {
            for (key, _) in &item.params {
                assert!(["r", "t"].contains(&key.as_str()), "{label}: {key}");
            }
        }
    }
}

/// Section 4: the field "is expressed as a List of Service Limit Items";
/// each "identifies the quota policy"; section 4.1.1: r is "REQUIRED" and
/// "a non-negative Integer"; section 4.1.2: t "is a non-negative Integer"
/// (optional: a concurrency limit has no time at which room comes back).
#[tokio::test]
async fn s4_items_name_a_policy_with_integer_r_and_t() {
    for (label, reply) in every_answer().await {
        let (policies, limits) =
            sf::check_fields(&reply.headers).unwrap_or_else(|e| panic!("{label}: {e}"));
        let policies = policies.expect("policy");
        for item in limits.expect("RateLimit") {
            let policy = policies
                .iter()
                .find(|p| p.name == item.name)
                .unwrap_or_else(|| panic!("{label}: {} names no policy", item.name));
            assert!(item.r >= 0, "{label}");
            assert_eq!(item.t.is_none(), policy.concurrent, "{label}: t iff a rate");
        }
    }
}

/// Section 4.1.1 with section 6 ("MUST NOT convey values exposing an
/// unwanted volume of requests"): `r` counts the named policy's units, so
/// it never exceeds that policy's `q`, burst included.
#[tokio::test]
async fn s4_1_1_r_never_exceeds_the_named_policys_q() {
    for (label, reply) in every_answer().await {
        let (policies, limits) = sf::check_fields(&reply.headers).expect("fields");
        let policies = policies.expect("policy");
        for item in limits.expect("RateLimit") {
            let q = policies
                .iter()
                .find(|p| p.name == item.name)
                .expect("named")
                .q;
            assert!(item.r <= q, "{label}: r={} above q={q}", item.r);
        }
    }
}

/// Section 4.1.2: t is "the number of seconds until additional quota
/// associated with the quota policy is made available". Right after an
/// answer: its r units pass at once, one more does not until t (rounded
/// up to whole seconds: not a second before t), and at t it does.
#[tokio::test]
async fn s4_1_2_t_is_when_more_than_r_is_available() {
    for case in rate_cases() {
        let clock = ManualClock::new();
        let mut svc = service(&case, &clock);
        let mut reply = send(&mut svc, from(PEER)).await;
        for round in 0..6 {
            let context = format!("{}, round {round}", case.label);
            let (_, limits) = sf::check_fields(&reply.headers).expect("fields");
            let item = limits.expect("RateLimit").remove(0);
            let t = u64::try_from(item.t.expect("a rate limit has t")).expect("t");
            assert!(t >= 1, "{context}: t=0 would promise quota now");
            for _ in 0..item.r {
                assert_eq!(
                    send(&mut svc, from(PEER)).await.status,
                    StatusCode::OK,
                    "{context}"
                );
            }
            clock.advance(Duration::from_secs(t - 1));
            let early = send(&mut svc, from(PEER)).await;
            assert_eq!(
                early.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{context}: before t"
            );
            // At t it passes (and after an idle of a different length each
            // round; the answer it gets is the next round's reading).
            clock.advance(Duration::from_secs(1) + Duration::from_millis(round * 1700));
            reply = send(&mut svc, from(PEER)).await;
            assert_eq!(reply.status, StatusCode::OK, "{context}: at t");
        }
    }
}

/// Section 5.1: the "quota-exceeded" problem type, whose
/// "violated-policies" member is "an array of strings, whose value is the
/// names of policies where the quota was exceeded" (RFC 9457: served as
/// `application/problem+json`).
#[tokio::test]
async fn s5_1_refusals_are_quota_exceeded_problems_naming_the_policy() {
    let mut seen = 0;
    for (label, reply) in every_answer().await {
        if reply.status != StatusCode::TOO_MANY_REQUESTS {
            continue;
        }
        seen += 1;
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let body = reply.json();
        assert_eq!(body["type"], QUOTA_EXCEEDED, "{label}");
        assert_eq!(
            body["title"],
            "Request cannot be satisfied as assigned quota has been exceeded"
        );
        assert_eq!(body["status"], 429);
        let (policies, limits) = sf::check_fields(&reply.headers).expect("fields");
        let named = limits.expect("RateLimit").remove(0).name;
        assert_eq!(
            body["violated-policies"],
            serde_json::json!([named]),
            "{label}"
        );
        // tollgate's own members stay, with the policy item's figures.
        assert_eq!(body["policy"], named.as_str(), "{label}");
        let policy = policies
            .expect("policy")
            .into_iter()
            .find(|p| p.name == named)
            .expect("named");
        assert_eq!(body["limit"], policy.q, "{label}");
        if let Some(w) = policy.w {
            assert_eq!(body["window_seconds"], w, "{label}");
        }
    }
    assert!(seen >= 6, "every case refuses");
}

/// Section 5.2: "temporary-reduced-capacity": "the client's requests
/// currently cannot be satisfied due to a temporary reduction in server
/// capacity". A store that cannot make room answers 503 so (the load
/// shedder's 503 is checked in `tests/shed/answer.rs`).
#[tokio::test]
async fn s5_2_a_store_without_room_is_a_temporary_reduced_capacity_problem() {
    let clock = ManualClock::new();
    let full: TestStore = MemoryStore::builder().clock(clock).max_keys(1).build();
    let mut svc = RateLimitLayer::builder(Plans::single("api", "3/minute").expect("plan"))
        .store(full)
        .build()
        .expect("layer")
        .layer(Ok200::default());
    // A client that came back is not forgotten to make room.
    for _ in 0..2 {
        assert_eq!(send(&mut svc, from(PEER)).await.status, StatusCode::OK);
    }
    let other = send(&mut svc, from("198.51.100.9:1")).await;
    assert_eq!(other.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        other.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(other.header("retry-after"), Some("1"));
    let body = other.json();
    assert_eq!(body["type"], REDUCED);
    assert_eq!(
        body["title"],
        "Request cannot be satisfied due to temporary server capacity constraints"
    );
    assert_eq!(body["status"], 503);
    assert_eq!(body["violated-policies"], serde_json::json!([]));
}

/// Sections 3.1 and 4.1: "This field MUST NOT appear in a trailer section."
#[tokio::test]
async fn s3_1_and_s4_1_the_fields_are_never_trailers() {
    for case in rate_cases() {
        let clock = ManualClock::new();
        let mut svc = service(&case, &clock);
        for _ in 0..8 {
            let response = respond(&mut svc, from(PEER)).await;
            assert!(
                response.headers().contains_key("ratelimit"),
                "{}",
                case.label
            );
            let collected = response.into_body().collect().await.expect("body");
            if let Some(trailers) = collected.trailers() {
                for name in ["ratelimit", "ratelimit-policy"] {
                    assert!(!trailers.contains_key(name), "{}", case.label);
                }
            }
        }
    }
}

/// Section 6: "If a response contains both the Retry-After and the
/// RateLimit header fields, the Retry-After field value SHOULD NOT
/// reference a point in time earlier than the reset parameter." And it is
/// the first whole second at which the request passes: a second earlier
/// it is still refused.
#[tokio::test]
async fn s6_retry_after_is_not_before_t_and_is_the_first_second_that_passes() {
    for case in rate_cases() {
        let clock = ManualClock::new();
        let mut svc = service(&case, &clock);
        let mut refusals = 0;
        for _ in 0..40 {
            let reply = send(&mut svc, from(PEER)).await;
            if reply.status != StatusCode::TOO_MANY_REQUESTS {
                continue;
            }
            refusals += 1;
            let retry: u64 = reply
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("secs");
            let (_, limits) = sf::check_fields(&reply.headers).expect("fields");
            let t = limits.expect("RateLimit")[0].t.expect("t");
            assert!(
                i64::try_from(retry).expect("secs") >= t,
                "{}: {retry} < t={t}",
                case.label
            );
            clock.advance(Duration::from_secs(retry - 1));
            assert_eq!(
                send(&mut svc, from(PEER)).await.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{}: a second before Retry-After",
                case.label
            );
            clock.advance(Duration::from_secs(1));
        }
        assert!(refusals >= 5, "{}: {refusals} refusals", case.label);
    }
}

/// Section 7: "If a response contains both the RateLimit and Retry-After
/// fields, the Retry-After field MUST take precedence": so Retry-After is
/// the figure that must be right. Waiting exactly it, the request passes.
#[tokio::test]
async fn s7_waiting_retry_after_is_enough() {
    for case in rate_cases() {
        let clock = ManualClock::new();
        let mut svc = service(&case, &clock);
        let mut waited = 0;
        for _ in 0..40 {
            let reply = send(&mut svc, from(PEER)).await;
            if let Some(retry) = reply.header("retry-after") {
                clock.advance(Duration::from_secs(retry.parse().expect("secs")));
                assert_eq!(
                    send(&mut svc, from(PEER)).await.status,
                    StatusCode::OK,
                    "{}",
                    case.label
                );
                waited += 1;
            }
        }
        assert!(waited >= 5, "{}", case.label);
    }
}

/// Section 6.1 ("Servers should avoid returning partition keys that
/// contain sensitive information"): the layer sends no `pk` at all, so
/// neither a client's IP nor its API key (nor a hash of either, which an
/// IPv4 address's 2^32 values would let anyone reverse) leaves the server.
#[tokio::test]
async fn s6_1_no_partition_key_is_sent() {
    for (label, reply) in every_answer().await {
        for field in ["ratelimit", "ratelimit-policy"] {
            let text = reply.header(field).expect("field");
            assert!(!text.contains(";pk="), "{label}: {text}");
        }
    }
}
