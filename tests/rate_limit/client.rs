//! A client that obeys the fields is never refused; one that exceeds them
//! is (`draft-ietf-httpapi-ratelimit-headers`, section 7: "A client SHOULD
//! NOT exceed the quota units conveyed by the remaining parameter before
//! the time window expressed in the reset parameter"; "the Retry-After
//! field MUST take precedence").
//!
//! A simulated client on a manual clock sends as fast as the latest answer
//! lets it: at once while `r` is at least 1, after `t` seconds when `r` is
//! 0, after `Retry-After` seconds following a 429, sometimes idling a
//! random while. Plans are random: every algorithm, one or two quotas per
//! tier, bursts, a second rule keyed by client IP, concurrency limits.

use std::time::Duration;

use http::StatusCode;
use proptest::prelude::*;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::ClientIp;
use tollgate::Plans;
use tower::Layer;

use crate::sf;
use crate::support::{builder, send, with_headers, Ok200, Reply, PEER};

const RATE: [AlgorithmKind; 4] = [
    AlgorithmKind::Gcra,
    AlgorithmKind::FixedWindow,
    AlgorithmKind::SlidingWindow,
    AlgorithmKind::SlidingLog,
];

/// Periods that give whole, fractional and sub-second windows.
const PERIODS: [&str; 5] = ["500ms", "1500ms", "second", "10s", "minute"];

/// One rate quota as text: `count/period`, a GCRA burst sometimes.
#[derive(Debug, Clone)]
struct QuotaSpec {
    count: u64,
    period: usize,
    burst: Option<u64>,
}

impl QuotaSpec {
    fn text(&self, algorithm: AlgorithmKind) -> String {
        let base = format!("{}/{}", self.count, PERIODS[self.period]);
        match (self.burst, algorithm) {
            (Some(burst), AlgorithmKind::Gcra) => format!("{base} burst {burst}"),
            _ => base,
        }
    }
}

fn quota_spec() -> impl Strategy<Value = QuotaSpec> {
    (1u64..=8, 0..PERIODS.len(), prop::option::of(1u64..=12)).prop_map(|(count, period, burst)| {
        QuotaSpec {
            count,
            period,
            burst,
        }
    })
}

/// A plan: a tier of one or two rate quotas (distinct periods, so distinct
/// policy names), maybe a concurrency limit in it, maybe a second rule.
#[derive(Debug, Clone)]
struct PlanSpec {
    algorithm: AlgorithmKind,
    quotas: Vec<QuotaSpec>,
    concurrent: Option<u64>,
    per_ip: Option<(AlgorithmKind, QuotaSpec)>,
}

impl PlanSpec {
    fn plans(&self) -> (Plans, Option<Plans>) {
        let mut text: Vec<String> = self.quotas.iter().map(|q| q.text(self.algorithm)).collect();
        if let Some(n) = self.concurrent {
            text.push(format!("{n} concurrent"));
        }
        let main = Plans::builder()
            .tier_with("api", &text.join("; "), self.algorithm)
            .build()
            .expect("valid plan");
        let also = self.per_ip.as_ref().map(|(algorithm, q)| {
            Plans::builder()
                .tier_with("per-ip", &q.text(*algorithm), *algorithm)
                .build()
                .expect("valid plan")
        });
        (main, also)
    }
}

fn plan_spec(with_concurrency: bool) -> impl Strategy<Value = PlanSpec> {
    let concurrent = if with_concurrency {
        prop::option::of(1u64..=3).boxed()
    } else {
        Just(None).boxed()
    };
    (
        prop::sample::select(RATE.to_vec()),
        prop::collection::vec(quota_spec(), 1..=2),
        concurrent,
        prop::option::of((prop::sample::select(RATE.to_vec()), quota_spec())),
    )
        .prop_map(|(algorithm, mut quotas, concurrent, per_ip)| {
            quotas.dedup_by_key(|q| q.period);
            PlanSpec {
                algorithm,
                quotas,
                concurrent,
                per_ip,
            }
        })
}

/// What the client read from its latest answer.
#[derive(Debug, Clone, Copy)]
struct Reading {
    r: i64,
    t: Option<i64>,
    retry_after: Option<u64>,
}

fn read(reply: &Reply, context: &str) -> Result<Reading, TestCaseError> {
    let (_, limits) = sf::check_fields(&reply.headers)
        .map_err(|e| TestCaseError::fail(format!("{context}: {e}")))?;
    let limits = limits.ok_or_else(|| TestCaseError::fail(format!("{context}: no RateLimit")))?;
    prop_assert_eq!(limits.len(), 1, "{}: one item, the nearest limit", context);
    let retry_after = reply
        .header("retry-after")
        .map(|v| v.parse::<u64>().expect("delta-seconds"));
    Ok(Reading {
        r: limits[0].r,
        t: limits[0].t,
        retry_after,
    })
}

/// Runs one plan: the obedient client for `steps` requests, and, when
/// `misbehave` is set, every so often a burst of `r + 1` requests (the
/// last refused), or `r` requests then one more a second before `t` ends
/// (refused too).
async fn run(spec: &PlanSpec, idles: &[u16], misbehave: bool) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let (main, also) = spec.plans();
    let mut layer = builder(main, &clock).headers_on_allowed(true);
    if let Some(also) = also {
        layer = layer.also("also", also, ClientIp::new());
    }
    let mut svc = layer.build().expect("layer").layer(Ok200::default());
    let request = || with_headers(Some(PEER), &[]);
    let mut last: Option<Reading> = None;
    for (step, &idle) in idles.iter().enumerate() {
        let context = format!("{spec:?}, step {step}, after {last:?}");
        let can_misbehave = misbehave && step % 7 == 6;
        if let (
            true,
            Some(Reading {
                r,
                t: Some(t),
                retry_after: None,
            }),
        ) = (can_misbehave, last)
        {
            // Exceed r, right after the answer that gave it: spend r at
            // once, then one more, either at once or a second before t ends
            // (t is rounded up: the true window ends after t - 1 seconds).
            for i in 0..r {
                let reply = send(&mut svc, request()).await;
                prop_assert_eq!(reply.status, StatusCode::OK, "{}: unit {} of r", context, i);
            }
            if idle % 2 == 1 && t >= 2 {
                clock.advance(Duration::from_secs(u64::try_from(t - 1).expect("t")));
            }
            let over = send(&mut svc, request()).await;
            prop_assert_eq!(
                over.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{}: r + 1 units within t were admitted",
                context
            );
            last = Some(read(&over, &context)?);
            continue;
        }
        // Wait as the latest answer says.
        match last {
            Some(Reading {
                retry_after: Some(secs),
                ..
            }) => clock.advance(Duration::from_secs(secs)),
            Some(Reading {
                r: 0, t: Some(t), ..
            }) => clock.advance(Duration::from_secs(u64::try_from(t).expect("t >= 0"))),
            _ => {}
        }
        // Sometimes idle too (idle in tens of milliseconds, most often 0).
        if idle % 4 == 0 {
            clock.advance(Duration::from_millis(u64::from(idle) * 10));
        }

        let reply = send(&mut svc, request()).await;
        prop_assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: an obedient client was refused: {:?}",
            context,
            String::from_utf8_lossy(&reply.body)
        );
        last = Some(read(&reply, &context)?);
    }
    Ok(())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    /// Every algorithm and random plans: the client that obeys `r`, `t`
    /// and `Retry-After` never gets a 429.
    #[test]
    fn a_client_that_obeys_the_fields_is_never_refused(
        spec in plan_spec(true),
        idles in prop::collection::vec(0u16..400, 40..120),
    ) {
        block_on(run(&spec, &idles, false))?;
    }

    /// The converse: exceeding `r` within `t` is refused, and waiting the
    /// `Retry-After` that refusal gives is enough again. (Without
    /// concurrency limits: a sequential client never holds two requests in
    /// flight, so it cannot exceed one.)
    #[test]
    fn a_client_that_exceeds_r_within_t_is_refused_then_obeys_retry_after(
        spec in plan_spec(false),
        idles in prop::collection::vec(0u16..400, 40..120),
    ) {
        block_on(run(&spec, &idles, true))?;
    }
}
