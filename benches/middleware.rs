//! One request through a trivial tower service: with tollgate's layer, with
//! tower_governor's layer, and with no layer; allowed and refused paths.
//! The request is built outside the timed region.
//!
//! `cargo bench --bench middleware`

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::GovernorLayer;

/// Polls a future that is ready at once (every service here is).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("benchmark service was not ready at once"),
    }
}

fn request() -> Request<Body> {
    let mut request = Request::builder()
        .uri("/api/hello")
        .header("x-api-key", "ak_0123456789abcdef")
        .body(Body::empty())
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([10, 1, 2, 3], 40000))));
    request
}

fn inner(
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future = impl Send>
       + Clone
       + Send {
    tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("ok")))
    })
}

fn run<S, B>(service: &mut S, expect: StatusCode) -> impl FnMut(Request<Body>) -> Response<B> + '_
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    move |request| {
        let mut cx = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut cx).is_ready());
        let response = now(service.call(request)).unwrap();
        debug_assert_eq!(response.status(), expect);
        response
    }
}

fn bench<S, B>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut service: S,
    expect: StatusCode,
) where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let mut call = run(&mut service, expect);
    // Every case asserts its outcome before timing.
    assert_eq!(call(request()).status(), expect, "{name}");
    assert_eq!(call(request()).status(), expect, "{name}");
    c.bench_function(name, |b| {
        b.iter_batched(request, |r| black_box(call(r)), BatchSize::SmallInput)
    });
}

fn middleware(c: &mut Criterion) {
    let mut group = c.benchmark_group("middleware");

    bench(&mut group, "none", inner(), StatusCode::OK);

    let plenty = tollgate::Plans::single("bench", "1000000000/second").unwrap();
    let ours = tollgate::RateLimitLayer::new(plenty);
    bench(
        &mut group,
        "tollgate/allowed",
        ours.layer(inner()),
        StatusCode::OK,
    );

    let scarce = tollgate::Plans::single("bench", "1/hour").unwrap();
    let ours = tollgate::RateLimitLayer::new(scarce);
    let mut service = ours.layer(inner());
    // Spend the one request the quota allows.
    assert_eq!(
        run(&mut service, StatusCode::OK)(request()).status(),
        StatusCode::OK
    );
    bench(
        &mut group,
        "tollgate/429",
        service,
        StatusCode::TOO_MANY_REQUESTS,
    );

    let config = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(NonZeroU32::MAX.get())
        .finish()
        .unwrap();
    let governor = GovernorLayer::new(config);
    bench(
        &mut group,
        "tower_governor/allowed",
        governor.layer(inner()),
        StatusCode::OK,
    );

    let config = GovernorConfigBuilder::default()
        .per_second(3600)
        .burst_size(1)
        .finish()
        .unwrap();
    let governor = GovernorLayer::new(config);
    let mut service = governor.layer(inner());
    assert_eq!(
        run(&mut service, StatusCode::OK)(request()).status(),
        StatusCode::OK
    );
    bench(
        &mut group,
        "tower_governor/429",
        service,
        StatusCode::TOO_MANY_REQUESTS,
    );

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    targets = middleware
}
criterion_main!(benches);
