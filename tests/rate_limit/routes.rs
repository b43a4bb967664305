//! Per-route limits: a route group with its own layer and plan, on top of
//! the limits every route has.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use axum::Router;
use http::{Request, StatusCode};
use tollgate::clock::ManualClock;
use tollgate::key::{PeerIp, RouteAnd};
use tower::ServiceExt;

use crate::support::{builder, layer, single};

fn request(method: &str, path: &str) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 5000))));
    request
}

async fn status(app: &Router, method: &str, path: &str) -> StatusCode {
    app.clone()
        .oneshot(request(method, path))
        .await
        .expect("infallible")
        .status()
}

#[tokio::test]
async fn a_route_group_has_its_own_plan_on_top_of_the_global_one() {
    let clock = ManualClock::new();
    let uploads = Router::new()
        .route("/upload", post(|| async { "stored" }))
        .layer(layer(single("upload", "1/minute"), &clock));
    let app = Router::new()
        .route("/read", get(|| async { "data" }))
        .merge(uploads)
        .layer(layer(single("global", "5/minute"), &clock));

    assert_eq!(status(&app, "POST", "/upload").await, StatusCode::OK);
    // The upload plan refuses the second upload...
    assert_eq!(
        status(&app, "POST", "/upload").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...while reads only see the global plan, which both uploads charged.
    assert_eq!(status(&app, "GET", "/read").await, StatusCode::OK);
    assert_eq!(status(&app, "GET", "/read").await, StatusCode::OK);
    assert_eq!(status(&app, "GET", "/read").await, StatusCode::OK);
    assert_eq!(
        status(&app, "GET", "/read").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn route_and_key_gives_each_route_template_its_own_bucket() {
    let clock = ManualClock::new();
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .route("/items/{id}", get(|| async { "item" }))
        .layer(
            builder(single("per-route", "2/minute"), &clock)
                .key(RouteAnd::new(PeerIp::new()))
                .build()
                .expect("layer"),
        );

    // Different ids share the route template's bucket.
    assert_eq!(status(&app, "GET", "/users/1").await, StatusCode::OK);
    assert_eq!(status(&app, "GET", "/users/2").await, StatusCode::OK);
    assert_eq!(
        status(&app, "GET", "/users/3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another route has its own.
    assert_eq!(status(&app, "GET", "/items/1").await, StatusCode::OK);
}
