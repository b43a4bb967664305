//! The retry hints of a gRPC answer: `RetryInfo`, `retry-after` and
//! `grpc-retry-pushback-ms`.

use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::response::fields;

/// gRPC's retry pushback (gRFC A6): how long a client's retry policy
/// waits before the next attempt, in milliseconds; a negative value asks
/// it not to retry.
pub(crate) static PUSHBACK: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");

/// The shortest delay a gRPC answer advertises: a retry hint of 0 would
/// invite an immediate retry.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// The delay advertised for a wait of `wait`: exact, but at least 1 ms.
pub(crate) fn delay(wait: Duration) -> Duration {
    wait.max(MIN_DELAY)
}

/// Sets `retry-after` (whole seconds, rounded up, at least 1, as the HTTP
/// answers do) and `grpc-retry-pushback-ms` (milliseconds, rounded up,
/// at least 1) for a wait of `wait`.
pub(crate) fn insert_hints(headers: &mut HeaderMap, wait: Duration) {
    let nanos = crate::clock::nanos_saturating(wait);
    headers.insert(
        RETRY_AFTER,
        fields::retry_after_value(fields::retry_after_secs(nanos)),
    );
    let millis = nanos.div_ceil(1_000_000).max(1);
    headers.insert(PUSHBACK.clone(), HeaderValue::from(millis));
}

/// Asks gRPC clients not to retry (pushback -1): no wait will help.
pub(crate) fn insert_no_retry(headers: &mut HeaderMap) {
    headers.insert(PUSHBACK.clone(), HeaderValue::from_static("-1"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_up_and_are_never_zero() {
        let mut headers = HeaderMap::new();
        insert_hints(&mut headers, Duration::from_nanos(1_500_000_001));
        assert_eq!(headers[RETRY_AFTER], "2");
        assert_eq!(headers[&PUSHBACK], "1501");
        insert_hints(&mut headers, Duration::ZERO);
        assert_eq!(headers[RETRY_AFTER], "1");
        assert_eq!(headers[&PUSHBACK], "1");
        assert_eq!(delay(Duration::ZERO), MIN_DELAY);
        assert_eq!(delay(Duration::from_secs(3)), Duration::from_secs(3));
        insert_no_retry(&mut headers);
        assert_eq!(headers[&PUSHBACK], "-1");
    }
}
