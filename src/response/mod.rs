//! What the layer answers instead of calling the inner service.
//!
//! A request refused by a limit gets `429 Too Many Requests` with
//! `Retry-After` (whole seconds, rounded up, never 0; absent only when the
//! request's cost exceeds the limit's whole capacity, so no wait helps), the IETF
//! `RateLimit-Policy` and `RateLimit` fields, optionally the legacy
//! `X-RateLimit-Limit/Remaining/Reset` fields (reset in seconds from now),
//! and an `application/problem+json` body naming the limit. A request with
//! no usable key gets the key error's status (400, 401 or 500) and a problem
//! body; a store failure under the fail-closed policy gets `503` with
//! `Retry-After`. Every answer is a response, never a service error.
//!
//! [`RateLimitLayer::on_reject`](crate::RateLimitLayer::on_reject) replaces
//! the default answer with a closure of yours that gets a [`Rejection`].

pub(crate) mod fields;
mod problem;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use self::problem::{Problem, PROBLEM_JSON};
use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::KeyError;
use crate::limit::Limit;

/// Why the layer answers a request itself.
#[derive(Debug)]
#[non_exhaustive]
pub enum Rejection<'a> {
    /// A limit refused the request.
    RateLimited(RateLimited<'a>),
    /// No usable key could be read from the request; it was not counted.
    Key(&'a KeyError),
    /// The store could not answer and the failure policy is to refuse.
    Store(&'a StoreError),
}

/// The details of a [`Rejection::RateLimited`].
#[derive(Debug)]
pub struct RateLimited<'a> {
    /// The decision; its figures are those of `policy`.
    pub decision: &'a Decision,
    /// The limit that refused.
    pub policy: &'a Limit,
    /// The tier of the request under the rule that refused.
    pub tier: &'a str,
    /// The rate-limit fields (`RateLimit-Policy`, `RateLimit`, `Retry-After`
    /// and, when enabled, the legacy ones) the default answer carries.
    pub headers: &'a HeaderMap,
}

impl Rejection<'_> {
    /// The status of the default answer: 429, the key error's status, or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::Key(e) => e.status(),
            Rejection::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The default answer.
    pub fn to_response(&self) -> Response<Bytes> {
        let status = self.status();
        let (headers, body) = match self {
            Rejection::RateLimited(r) => (Some(r.headers), rate_limited_body(r)),
            Rejection::Key(e) => (
                None,
                Problem::new(status)
                    .string("detail", &e.to_string())
                    .finish(),
            ),
            Rejection::Store(e) => (
                None,
                Problem::new(status)
                    .string("detail", &format!("rate limiting is unavailable: {e}"))
                    .finish(),
            ),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let h = response.headers_mut();
        if let Some(headers) = headers {
            h.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Rejection::Store(_) = self {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        h.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

fn rate_limited_body(r: &RateLimited<'_>) -> Bytes {
    let quota = r.policy.quota();
    let mut detail = format!("Rate limit \"{}\" exceeded", r.policy.name());
    let mut problem = Problem::new(StatusCode::TOO_MANY_REQUESTS);
    match r.decision.retry_after() {
        Some(wait) => {
            detail.push_str(&format!(
                "; retry in {} s.",
                fields::retry_after_secs(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX))
            ));
            problem = problem.string("detail", &detail);
            problem = problem
                .string("policy", r.policy.name())
                .string("tier", r.tier);
            problem = problem.strings("violated_policies", [r.policy.name()]);
            problem = problem.number("limit", quota.count());
            if quota.period_nanos() > 0 {
                problem = problem.number("window_seconds", fields::ceil_secs(quota.period_nanos()));
            }
            problem
                .number("remaining", r.decision.remaining())
                .number(
                    "retry_after_ms",
                    u64::try_from(wait.as_nanos().div_ceil(1_000_000))
                        .unwrap_or(u64::MAX)
                        .max(1),
                )
                .finish()
        }
        None => {
            detail.push_str(": the request costs more than the limit allows at once.");
            problem
                .string("detail", &detail)
                .string("policy", r.policy.name())
                .string("tier", r.tier)
                .number("limit", quota.count())
                .finish()
        }
    }
}
