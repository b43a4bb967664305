//! The 503 answer of a shed request, written once per reason and priority.
//!
//! ```text
//! HTTP/1.1 503 Service Unavailable
//! retry-after: 1
//! ratelimit-policy: "load-shed";q=64;qu="concurrent-requests"
//! content-type: application/problem+json
//! cache-control: no-store
//!
//! {"type":"https://iana.org/assignments/http-problem-types#temporary-reduced-capacity",
//!  "title":"Request cannot be satisfied due to temporary server capacity constraints",
//!  "status":503,"detail":"The server is at capacity and its queue is full.",
//!  "reason":"queue_full","priority":"low","retry_after_seconds":1,
//!  "violated-policies":["load-shed"]}
//! ```
//!
//! `RateLimit-Policy` describes the layer's configured `max_in_flight` as
//! a quota of concurrent requests (an adaptive limit moves below it), so a
//! client reading the IETF fields learns why it was refused. Its name,
//! `load-shed`, is the [`POLICY`] constant. The body is the
//! `temporary-reduced-capacity` problem type of
//! `draft-ietf-httpapi-ratelimit-headers` (section 5.2), naming that policy
//! in the draft's `violated-policies` member.
//!
//! ```text
//! ```
//!
//! A shed costs a clone of a small header map and of a shared body. A hook
//! set with [`LoadShedBuilder::on_shed`](super::LoadShedBuilder::on_shed)
//! answers instead when there is one.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::hook::{Shed, ShedFn};
use super::priority::Priority;
use super::reason::ShedReason;
use crate::clock::nanos_saturating;
use crate::response::answer::RATELIMIT_POLICY;
use crate::response::fields;
use crate::response::{TEMPORARY_REDUCED_CAPACITY, VIOLATED_POLICIES};

/// The policy name load-shedding answers carry in `RateLimit-Policy` and in their
/// body's `violated-policies`.
pub const POLICY: &str = "load-shed";

/// The answers of one layer.
#[derive(Clone)]
pub(crate) struct Answers {
    headers: HeaderMap,
    /// By reason, then priority.
    bodies: Vec<Bytes>,
    /// As configured, before rounding.
    retry_after: Duration,
    /// Answers instead of the default when set.
    hook: Option<ShedFn>,
}

impl Answers {
    /// Answers carrying `Retry-After: retry_after` (whole seconds, rounded
    /// up, at least 1) and the policy of at most `max_in_flight` at once.
    pub(crate) fn new(retry_after: Duration, max_in_flight: usize) -> Self {
        let secs = fields::retry_after_secs(nanos_saturating(retry_after));
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(RETRY_AFTER, fields::retry_after_value(secs));
        let policy = format!("\"{POLICY}\";q={max_in_flight};qu=\"concurrent-requests\"");
        if let Ok(value) = HeaderValue::from_str(&policy) {
            headers.insert(RATELIMIT_POLICY.clone(), value);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let mut bodies = Vec::with_capacity(ShedReason::COUNT * Priority::COUNT);
        for reason in ShedReason::ALL {
            for priority in Priority::ALL {
                // Every piece is ASCII with nothing JSON must escape.
                bodies.push(Bytes::from(format!(
                    "{{\"type\":\"{TEMPORARY_REDUCED_CAPACITY}\",\
                     \"title\":\"Request cannot be satisfied due to temporary server capacity constraints\",\
                     \"status\":503,\"detail\":\"{}\",\"reason\":\"{}\",\"priority\":\"{}\",\
                     \"retry_after_seconds\":{secs},\"{VIOLATED_POLICIES}\":[\"{POLICY}\"]}}",
                    reason.detail(),
                    reason.as_str(),
                    priority.as_str(),
                )));
            }
        }
        Self {
            headers,
            bodies,
            retry_after,
            hook: None,
        }
    }

    /// Answers with `hook` instead of the default answer (when `Some`).
    pub(crate) fn with_hook(mut self, hook: Option<ShedFn>) -> Self {
        self.hook = hook;
        self
    }

    /// The `retry_after` the answers were made with, exact.
    pub(crate) fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The answer to a request of `priority` shed for `reason`: the hook's,
    /// or the default.
    pub(crate) fn response(&self, reason: ShedReason, priority: Priority) -> Response<Bytes> {
        match &self.hook {
            Some(hook) => hook(&Shed::new(reason, priority, self)),
            None => self.default_response(reason, priority),
        }
    }

    /// The default answer to a request of `priority` shed for `reason`.
    pub(crate) fn default_response(
        &self,
        reason: ShedReason,
        priority: Priority,
    ) -> Response<Bytes> {
        let body = self
            .bodies
            .get(reason.index() * Priority::COUNT + priority.index())
            .cloned()
            .unwrap_or_default();
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answers")
            .field("retry_after", &self.retry_after)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_a_503_problem() {
        let answers = Answers::new(Duration::from_millis(1500), 64);
        for reason in ShedReason::ALL {
            for priority in Priority::ALL {
                let r = answers.response(reason, priority);
                assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(r.headers()[RETRY_AFTER], "2");
                let v: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
                assert_eq!(v["status"], 503);
                assert_eq!(v["reason"], reason.as_str());
                assert_eq!(v["priority"], priority.as_str());
                assert_eq!(v["detail"], reason.detail());
                assert_eq!(v["retry_after_seconds"], 2);
                assert_eq!(v["violated-policies"], serde_json::json!(["load-shed"]));
                assert_eq!(
                    r.headers()["ratelimit-policy"],
                    "\"load-shed\";q=64;qu=\"concurrent-requests\""
                );
            }
        }
        let r = Answers::new(Duration::ZERO, 64).response(ShedReason::QueueFull, Priority::Low);
        assert_eq!(r.headers()[RETRY_AFTER], "1", "never 0");
    }

    #[test]
    fn a_hook_answers_instead_and_sees_the_shed() {
        let hook: ShedFn = std::sync::Arc::new(|shed: &Shed<'_>| {
            let mut response = Response::new(Bytes::from(format!(
                "{} {} {:?}",
                shed.reason(),
                shed.priority(),
                shed.retry_after()
            )));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
        });
        let answers = Answers::new(Duration::from_millis(1500), 64).with_hook(Some(hook));
        let r = answers.response(ShedReason::Displaced, Priority::High);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.body(), "displaced high 1.5s");
        let default = answers.default_response(ShedReason::Displaced, Priority::High);
        assert_eq!(default.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(default.headers()[RETRY_AFTER], "2");
    }
}
