//! [`respond`]: the gRPC answer to a request the rate limits refuse.

use std::collections::HashMap;

use bytes::Bytes;
use http::{HeaderMap, Response};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, QuotaViolation, StatusExt};

use super::code;
use super::retry;
use super::trailers::trailers_only;
use super::DOMAIN;
use crate::key::KeyError;
use crate::response::{fields, RateLimited, Rejection};

/// How long a client is asked to wait after a store failure (the HTTP
/// answer's `Retry-After: 1`).
const STORE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The gRPC answer to `rejection`: [`status`] written as a trailers-only
/// response ([`trailers_only`]).
///
/// This is what [`RateLimitLayerBuilder::grpc`](crate::RateLimitLayerBuilder::grpc)
/// answers with; pass it to
/// [`RateLimitLayerBuilder::on_reject`](crate::RateLimitLayerBuilder::on_reject) yourself,
/// or wrap it, to change it.
pub fn respond(rejection: &Rejection<'_>) -> Response<Bytes> {
    trailers_only(status(rejection))
}

/// The gRPC status of `rejection`, with its details and metadata:
///
/// | rejection | code | details | metadata |
/// |---|---|---|---|
/// | a limit refused | `RESOURCE_EXHAUSTED` | `RetryInfo`, `QuotaFailure`, `ErrorInfo` `RATE_LIMIT_EXCEEDED` | `retry-after`, `grpc-retry-pushback-ms`, `ratelimit`, `ratelimit-policy` |
/// | the cost exceeds the limit's capacity | `RESOURCE_EXHAUSTED` | `QuotaFailure`, `ErrorInfo` `RATE_LIMIT_EXCEEDED` | `grpc-retry-pushback-ms: -1` (do not retry), `ratelimit`, `ratelimit-policy` |
/// | no usable key (400) | `INVALID_ARGUMENT` | `ErrorInfo` `KEY_MALFORMED` or `KEY_TOO_LONG` | |
/// | missing or unknown credentials (401) | `UNAUTHENTICATED` | `ErrorInfo` `KEY_MISSING` or `KEY_UNKNOWN` | |
/// | no peer address recorded (500) | `UNKNOWN` | `ErrorInfo` `KEY_MISSING` | |
/// | store failure, fail-closed | `UNAVAILABLE` | `RetryInfo` 1 s, `ErrorInfo` `RATE_LIMIT_UNAVAILABLE` | `retry-after: 1`, `grpc-retry-pushback-ms: 1000` |
///
/// A key error's code follows its HTTP status ([`KeyError::status`]);
/// statuses other than those above answer `UNKNOWN`. The message is the
/// HTTP answer's `detail`. `RetryInfo` carries the exact wait (at least
/// 1 ms); `retry-after` rounds it up to whole seconds and
/// `grpc-retry-pushback-ms` to whole milliseconds. Legacy
/// `x-ratelimit-*` fields, when enabled on the layer, are kept as metadata
/// too.
pub fn status(rejection: &Rejection<'_>) -> Status {
    match rejection {
        Rejection::RateLimited(limited) => rate_limited(limited),
        Rejection::Key(error) => key(error),
        Rejection::Store(error) => {
            let mut details = ErrorDetails::with_retry_info(Some(STORE_RETRY));
            details.set_error_info("RATE_LIMIT_UNAVAILABLE", DOMAIN, HashMap::new());
            let mut headers = HeaderMap::new();
            retry::insert_hints(&mut headers, STORE_RETRY);
            Status::with_error_details_and_metadata(
                Code::Unavailable,
                format!("rate limiting is unavailable: {error}"),
                details,
                MetadataMap::from_headers(headers),
            )
        }
    }
}

fn rate_limited(limited: &RateLimited<'_>) -> Status {
    let policy = limited.policy;
    let name = policy.name();
    let quota = policy.quota();
    let mut headers = limited.headers.clone();
    let mut details = ErrorDetails::new();
    let message = match limited.decision.retry_after() {
        Some(wait) => {
            retry::insert_hints(&mut headers, wait);
            details.set_retry_info(Some(retry::delay(wait)));
            let secs = fields::retry_after_secs(crate::clock::nanos_saturating(wait));
            format!("Rate limit \"{name}\" exceeded; retry in {secs} s.")
        }
        None => {
            retry::insert_no_retry(&mut headers);
            format!(
                "Rate limit \"{name}\" exceeded: the request costs more than the limit allows at once."
            )
        }
    };
    let violation = QuotaViolation {
        subject: format!("tier:{}", limited.tier),
        description: format!(
            "limit \"{name}\" ({quota}) of tier \"{}\" is used up",
            limited.tier
        ),
        quota_id: name.to_owned(),
        quota_dimensions: HashMap::from([("tier".to_owned(), limited.tier.to_owned())]),
        // The `q` of the limit's `RateLimit-Policy` item.
        quota_value: i64::try_from(fields::announced(policy).q).unwrap_or(i64::MAX),
        ..QuotaViolation::default()
    };
    details.set_quota_failure(vec![violation]);
    details.set_error_info(
        "RATE_LIMIT_EXCEEDED",
        DOMAIN,
        HashMap::from([
            ("policy".to_owned(), name.to_owned()),
            ("tier".to_owned(), limited.tier.to_owned()),
        ]),
    );
    Status::with_error_details_and_metadata(
        Code::ResourceExhausted,
        message,
        details,
        MetadataMap::from_headers(headers),
    )
}

fn key(error: &KeyError) -> Status {
    let (reason, what) = match error {
        KeyError::Missing { what, .. } => ("KEY_MISSING", *what),
        KeyError::Malformed { what, .. } => ("KEY_MALFORMED", *what),
        KeyError::TooLong { what, .. } => ("KEY_TOO_LONG", *what),
        KeyError::Unknown { what } => ("KEY_UNKNOWN", *what),
    };
    let details = ErrorDetails::with_error_info(
        reason,
        DOMAIN,
        HashMap::from([("key".to_owned(), what.to_owned())]),
    );
    Status::with_error_details(code::for_http(error.status()), error.to_string(), details)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::algorithm::{AlgorithmKind, Outcome, RETRY_NEVER};
    use crate::decision::Decision;
    use crate::error::StoreError;
    use crate::limit::Limit;
    use crate::response::answer::{insert_fields, PolicyText};

    fn limit() -> Limit {
        Limit::new(
            "basic-minute",
            "10/minute".parse().expect("quota"),
            AlgorithmKind::Gcra,
        )
        .expect("limit")
    }

    /// The answer to a refusal by `limit` that asks to wait `retry_after` ns.
    fn refused(retry_after: u64) -> Response<Bytes> {
        let limit = limit();
        let decision = Decision::from_outcome(0, Outcome::deny(10, 0, 60_000_000_000, retry_after));
        let mut headers = HeaderMap::new();
        let policy = http::HeaderValue::from_static("\"basic-minute\";q=10;w=60");
        insert_fields(&mut headers, policy, Some(&limit), &decision, false);
        let text = PolicyText::new(&limit, "basic");
        respond(&Rejection::RateLimited(RateLimited {
            decision: &decision,
            policy: &limit,
            tier: "basic",
            headers: &headers,
            text: &text,
        }))
    }

    fn status_of(response: &Response<Bytes>) -> Status {
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "gRPC answers are HTTP 200"
        );
        assert_eq!(response.headers()["content-type"], "application/grpc");
        assert!(response.body().is_empty(), "trailers-only: no body");
        Status::from_header_map(response.headers()).expect("grpc-status in the headers")
    }

    #[test]
    fn a_refusal_is_resource_exhausted_with_retry_and_quota_details() {
        let response = refused(12_300_000_001);
        let h = response.headers();
        assert_eq!(h["grpc-status"], "8");
        assert_eq!(h["retry-after"], "13");
        assert_eq!(h["grpc-retry-pushback-ms"], "12301");
        assert_eq!(h["ratelimit-policy"], "\"basic-minute\";q=10;w=60");
        assert_eq!(h["ratelimit"], "\"basic-minute\";r=0;t=60");
        let status = status_of(&response);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "Rate limit \"basic-minute\" exceeded; retry in 13 s."
        );
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(
            retry.retry_delay,
            Some(Duration::from_nanos(12_300_000_001))
        );
        let quota = status.get_details_quota_failure().expect("QuotaFailure");
        assert_eq!(quota.violations.len(), 1);
        let violation = &quota.violations[0];
        assert_eq!(violation.subject, "tier:basic");
        assert_eq!(violation.quota_id, "basic-minute");
        assert_eq!(violation.quota_value, 10);
        assert_eq!(violation.quota_dimensions["tier"], "basic");
        assert_eq!(
            violation.description,
            "limit \"basic-minute\" (10/minute) of tier \"basic\" is used up"
        );
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(
            (info.reason.as_str(), info.domain.as_str()),
            ("RATE_LIMIT_EXCEEDED", DOMAIN)
        );
        assert_eq!(info.metadata["policy"], "basic-minute");
        assert_eq!(info.metadata["tier"], "basic");
    }

    #[test]
    fn an_impossible_cost_asks_not_to_retry() {
        let response = refused(RETRY_NEVER);
        assert_eq!(response.headers()["grpc-retry-pushback-ms"], "-1");
        assert!(response.headers().get("retry-after").is_none());
        let status = status_of(&response);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status
            .message()
            .contains("costs more than the limit allows"));
        assert!(status.get_details_retry_info().is_none());
        assert!(status.get_details_quota_failure().is_some());
    }

    #[test]
    fn key_errors_follow_their_http_status() {
        let cases = [
            (
                KeyError::Malformed {
                    what: "header x-api-key",
                    reason: "not visible ASCII",
                },
                Code::InvalidArgument,
                "KEY_MALFORMED",
            ),
            (
                KeyError::TooLong {
                    what: "header x-api-key",
                    len: 9000,
                    max: 256,
                },
                Code::InvalidArgument,
                "KEY_TOO_LONG",
            ),
            (
                KeyError::Missing {
                    what: "header x-api-key",
                    status: StatusCode::UNAUTHORIZED,
                },
                Code::Unauthenticated,
                "KEY_MISSING",
            ),
            (
                KeyError::Unknown { what: "API key" },
                Code::Unauthenticated,
                "KEY_UNKNOWN",
            ),
            (
                KeyError::Missing {
                    what: "peer address",
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                },
                Code::Unknown,
                "KEY_MISSING",
            ),
        ];
        for (error, code, reason) in cases {
            let status = status_of(&respond(&Rejection::Key(&error)));
            assert_eq!(status.code(), code, "{error}");
            assert_ne!(status.code(), Code::Internal);
            assert_eq!(status.message(), error.to_string());
            let info = status.get_details_error_info().expect("ErrorInfo");
            assert_eq!(info.reason, reason);
            assert!(status.get_details_retry_info().is_none());
        }
    }

    #[test]
    fn a_store_failure_is_unavailable_for_a_second() {
        let error = StoreError::Timeout(Duration::from_millis(10));
        let response = respond(&Rejection::Store(&error));
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["grpc-retry-pushback-ms"], "1000");
        let status = status_of(&response);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "rate limiting is unavailable: store timed out after 10ms"
        );
        let retry = status.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
        let info = status.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "RATE_LIMIT_UNAVAILABLE");
    }
}
