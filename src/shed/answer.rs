//! The 503 answer of a shed request, written once per reason and priority.
//!
//! ```text
//! HTTP/1.1 503 Service Unavailable
//! retry-after: 1
//! content-type: application/problem+json
//! cache-control: no-store
//!
//! {"type":"about:blank","title":"Service Unavailable","status":503,
//!  "detail":"The server is at capacity and its queue is full.",
//!  "reason":"queue_full","priority":"low","retry_after_seconds":1}
//! ```
//!
//! A shed costs a clone of a small header map and of a shared body.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::codel::nanos;
use super::priority::Priority;
use super::reason::ShedReason;
use crate::response::fields;

/// The answers of one layer.
#[derive(Debug, Clone)]
pub(crate) struct Answers {
    headers: HeaderMap,
    /// By reason, then priority.
    bodies: Vec<Bytes>,
}

impl Answers {
    /// Answers carrying `Retry-After: retry_after` (whole seconds, rounded
    /// up, at least 1).
    pub(crate) fn new(retry_after: Duration) -> Self {
        let secs = fields::retry_after_secs(nanos(retry_after));
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(RETRY_AFTER, fields::retry_after_value(secs));
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
                    "{{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\
                     \"detail\":\"{}\",\"reason\":\"{}\",\"priority\":\"{}\",\
                     \"retry_after_seconds\":{secs}}}",
                    reason.detail(),
                    reason.as_str(),
                    priority.as_str(),
                )));
            }
        }
        Self { headers, bodies }
    }

    /// The answer to a request of `priority` shed for `reason`.
    pub(crate) fn response(&self, reason: ShedReason, priority: Priority) -> Response<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_a_503_problem() {
        let answers = Answers::new(Duration::from_millis(1500));
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
            }
        }
        let r = Answers::new(Duration::ZERO).response(ShedReason::QueueFull, Priority::Low);
        assert_eq!(r.headers()[RETRY_AFTER], "1", "never 0");
    }
}
