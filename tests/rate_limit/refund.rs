//! `refund_when`: charges given back after the answer, never before, so
//! concurrent requests cannot pass a limit together.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::sync::Semaphore;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::{Limit, Plans, Quota};
use tower::{Layer, Service, ServiceExt};

use crate::support::{builder, collect, single, with_headers, Calls, PEER};

/// Answers the status named by `x-status` (200 without it), after the gate
/// lets it through when there is one.
#[derive(Clone)]
struct Answers {
    calls: Calls,
    gate: Option<Arc<Semaphore>>,
}

impl Answers {
    fn new(calls: &Calls) -> Self {
        Self {
            calls: calls.clone(),
            gate: None,
        }
    }
}

impl Service<Request<()>> for Answers {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        self.calls.hit();
        let status = request
            .headers()
            .get("x-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u16>().ok())
            .and_then(|v| StatusCode::from_u16(v).ok())
            .unwrap_or(StatusCode::OK);
        let gate = self.gate.clone();
        Box::pin(async move {
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate open").forget();
            }
            let mut response = Response::new(Full::new(Bytes::from_static(b"answer")));
            *response.status_mut() = status;
            Ok(response)
        })
    }
}

fn answering(status: u16) -> Request<()> {
    let status = status.to_string();
    with_headers(Some(PEER), &[("x-status", status.as_bytes())])
}

async fn status_of<S>(svc: &mut S, request: Request<()>) -> u16
where
    S: Service<Request<()>, Response = Response<tollgate::body::ResponseBody<Full<Bytes>>>>,
    S::Error: std::fmt::Debug,
{
    let response = svc
        .ready()
        .await
        .expect("ready")
        .call(request)
        .await
        .expect("answer");
    collect(response).await.status.as_u16()
}

#[tokio::test]
async fn only_failures_count_when_successes_are_refunded() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut login = builder(single("login-failures", "3/minute"), &clock)
        .refund_when(|status, _| status.is_success())
        .build()
        .expect("layer")
        .layer(Answers::new(&calls));
    for _ in 0..10 {
        assert_eq!(status_of(&mut login, answering(200)).await, 200);
    }
    for _ in 0..3 {
        assert_eq!(status_of(&mut login, answering(401)).await, 401);
    }
    // Three failures: the fourth attempt is refused, whatever it would be.
    assert_eq!(status_of(&mut login, answering(200)).await, 429);
    assert_eq!(calls.get(), 13);
}

#[tokio::test]
async fn server_errors_are_refunded_and_client_errors_are_not() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("api", "2/minute"), &clock)
        .refund_when(|status, _| status.is_server_error())
        .headers_on_allowed(true)
        .build()
        .expect("layer")
        .layer(Answers::new(&calls));
    for _ in 0..5 {
        assert_eq!(status_of(&mut svc, answering(503)).await, 503);
    }
    assert_eq!(status_of(&mut svc, answering(404)).await, 404);
    assert_eq!(status_of(&mut svc, answering(200)).await, 200);
    assert_eq!(status_of(&mut svc, answering(200)).await, 429);
}

#[tokio::test]
async fn requests_in_flight_count_until_their_answer_refunds_them() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let gate = Arc::new(Semaphore::new(0));
    let svc = builder(single("api", "3/minute"), &clock)
        .refund_when(|status, _| status.is_success())
        .build()
        .expect("layer")
        .layer(Answers {
            calls: calls.clone(),
            gate: Some(Arc::clone(&gate)),
        });
    // Five at once, all of which will succeed (and be refunded): only three
    // may be in flight, since the refund comes with the answer.
    let mut waiting = Vec::new();
    for _ in 0..5 {
        let mut svc = svc.clone();
        waiting.push(tokio::spawn(async move {
            let response = svc.ready().await.expect("ready").call(answering(200)).await;
            response.expect("answer").status().as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.add_permits(5);
    let mut statuses = Vec::new();
    for task in waiting {
        statuses.push(task.await.expect("task"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    assert_eq!(calls.get(), 3);
    // All three were refunded: the full quota is back.
    let mut svc = svc;
    for _ in 0..3 {
        gate.add_permits(1);
        assert_eq!(status_of(&mut svc, answering(200)).await, 200);
    }
}

#[tokio::test]
async fn a_refund_goes_back_to_the_window_it_was_charged_in() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let gate = Arc::new(Semaphore::new(0));
    let window = Limit::new(
        "api",
        Quota::per_minute(2).expect("quota"),
        AlgorithmKind::FixedWindow,
    )
    .expect("limit");
    let plans = Plans::builder()
        .tier_limits("api", [window])
        .build()
        .expect("plans");
    let mut svc = builder(plans, &clock)
        .refund_when(|status, _| status.is_server_error())
        .build()
        .expect("layer")
        .layer(Answers {
            calls: calls.clone(),
            gate: Some(Arc::clone(&gate)),
        });
    clock.advance(Duration::from_secs(59));
    let mut slow = svc.clone();
    let held = tokio::spawn(async move {
        let response = slow
            .ready()
            .await
            .expect("ready")
            .call(answering(500))
            .await;
        response.expect("answer").status().as_u16()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The answer comes in the next window: refunding it there would hand
    // that window a third request.
    clock.advance(Duration::from_secs(2));
    gate.add_permits(1);
    assert_eq!(held.await.expect("task"), 500);
    gate.add_permits(3);
    assert_eq!(status_of(&mut svc, answering(200)).await, 200);
    assert_eq!(status_of(&mut svc, answering(200)).await, 200);
    assert_eq!(status_of(&mut svc, answering(200)).await, 429);
}

#[tokio::test]
async fn concurrency_limits_are_not_refunded_twice() {
    let clock = ManualClock::new();
    let calls = Calls::default();
    let mut svc = builder(single("slots", "1 concurrent"), &clock)
        .refund_when(|_, _| true)
        .build()
        .expect("layer")
        .layer(Answers::new(&calls));
    let first = svc
        .ready()
        .await
        .expect("ready")
        .call(answering(200))
        .await
        .expect("answer");
    // The refund came with the answer; the slot is still held by the body.
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(status_of(&mut svc, answering(200)).await, 429);
    drop(first);
    assert_eq!(status_of(&mut svc, answering(200)).await, 200);
    assert_eq!(status_of(&mut svc, answering(200)).await, 200);
}
