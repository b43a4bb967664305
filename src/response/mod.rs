//! What the layer answers instead of calling the inner service.
//!
//! A request refused by a limit gets `429 Too Many Requests` with
//! `Retry-After` (whole seconds, rounded up, never 0; absent only when the
//! request's cost exceeds the limit's whole capacity, so no wait helps), the IETF
//! `RateLimit-Policy` and `RateLimit` fields, optionally the legacy
//! `X-RateLimit-Limit/Remaining/Reset` fields (the `q`, `r` and `t` figures),
//! and an `application/problem+json` body naming the limit: the
//! [`QUOTA_EXCEEDED`] problem type of `draft-ietf-httpapi-ratelimit-headers`
//! (section 5.1), its [`VIOLATED_POLICIES`] member, and tollgate's own
//! members (`policy`, `tier`, `limit` and `window_seconds` as the policy
//! item's `q` and `w`, `remaining`, `retry_after_ms`, `detail`). A request
//! with no usable key gets the key error's status (400, 401 or 500) and an
//! `about:blank` problem body; a store failure under the fail-closed policy
//! gets `503` with `Retry-After` and the [`TEMPORARY_REDUCED_CAPACITY`]
//! problem type (section 5.2). Every answer is a response, never a service
//! error.
//!
//! What each figure means, per algorithm, is on
//! [`Decision::window`](crate::Decision::window) and in the README's "What
//! the fields mean".
//!
//! [`RateLimitLayerBuilder::on_reject`](crate::RateLimitLayerBuilder::on_reject) replaces
//! the default answer with a closure of yours that gets a [`Rejection`].

pub(crate) mod answer;
pub(crate) mod fields;
mod problem;

pub use self::problem::{QUOTA_EXCEEDED, TEMPORARY_REDUCED_CAPACITY, VIOLATED_POLICIES};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Response, StatusCode};

use self::problem::{Problem, ProblemType};
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
    pub(crate) text: &'a answer::PolicyText,
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
        let body = match self {
            Rejection::RateLimited(r) => answer::body(r.text, r.policy, r.decision),
            Rejection::Key(e) => Problem::new(ProblemType::Blank(status))
                .string("detail", &e.to_string())
                .finish(),
            // No policy was exceeded: the list is empty.
            Rejection::Store(e) => Problem::new(ProblemType::TemporaryReducedCapacity)
                .string("detail", &format!("rate limiting is unavailable: {e}"))
                .strings(VIOLATED_POLICIES, [])
                .finish(),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let h = response.headers_mut();
        match self {
            Rejection::RateLimited(r) => {
                h.extend(r.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            Rejection::Store(_) => {
                h.insert(RETRY_AFTER, fields::retry_after_value(1));
            }
            Rejection::Key(_) => {}
        }
        answer::insert_problem_headers(h);
        response
    }
}
