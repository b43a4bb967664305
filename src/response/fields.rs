//! The `RateLimit-Policy`, `RateLimit` and `Retry-After` field values.
//!
//! Both RateLimit fields are structured-field lists (RFC 9651) of items
//! whose value is the policy name as an sf-string, as the IETF httpapi
//! draft (`draft-ietf-httpapi-ratelimit-headers`) defines them:
//!
//! ```text
//! RateLimit-Policy: "basic-minute";q=10;w=60, "basic-day";q=1000;w=86400
//! RateLimit: "basic-minute";r=0;t=42
//! ```
//!
//! Policy names are restricted at configuration time to characters that
//! need no escaping inside an sf-string.

use std::sync::OnceLock;

use http::HeaderValue;

use crate::clock::Nanos;
use crate::limit::{Limit, LimitKind};

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(nanos: Nanos) -> u64 {
    nanos.div_ceil(NANOS_PER_SEC)
}

/// The `Retry-After` value for `secs` seconds: values up to an hour
/// come from a table made once per process (cloning one costs no
/// allocation), longer ones are written.
pub(crate) fn retry_after_value(secs: u64) -> HeaderValue {
    const TABLE_MAX: usize = 3600;
    static TABLE: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut text = String::new();
        let mut bounds = Vec::with_capacity(TABLE_MAX + 1);
        for n in 0..=TABLE_MAX {
            let start = text.len();
            text.push_str(itoa::Buffer::new().format(n));
            bounds.push((start, text.len()));
        }
        // Leaked once (about 14 KiB): static values clone for free.
        let text: &'static str = Box::leak(text.into_boxed_str());
        bounds
            .into_iter()
            .map(|(a, b)| HeaderValue::from_static(&text[a..b]))
            .collect()
    });
    usize::try_from(secs)
        .ok()
        .and_then(|i| table.get(i))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(secs))
}

/// `Retry-After` delta-seconds: rounded up, never 0.
pub(crate) fn retry_after_secs(nanos: Nanos) -> u64 {
    ceil_secs(nanos).max(1)
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

/// Appends one quota policy item: `"name";q=10;w=60` (rate) or
/// `"name";q=2;qu="concurrent-requests"` (concurrency).
pub(crate) fn push_policy_item(out: &mut Vec<u8>, limit: &Limit) {
    out.push(b'"');
    out.extend_from_slice(limit.name().as_bytes());
    out.extend_from_slice(b"\";q=");
    push_u64(out, limit.quota().count());
    match limit.kind() {
        LimitKind::Rate(_) => {
            out.extend_from_slice(b";w=");
            push_u64(out, ceil_secs(limit.quota().period_nanos()).max(1));
        }
        LimitKind::Concurrency => out.extend_from_slice(b";qu=\"concurrent-requests\""),
    }
}

/// The `RateLimit` item of one policy: `"name";r=0;t=42`.
pub(crate) fn ratelimit_item(name: &str, remaining: u64, reset: Nanos) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(name.len() + 32);
    push_ratelimit_item(&mut out, name, remaining, reset);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
}

/// Appends the `RateLimit` item of `name` (see [`ratelimit_item`]).
#[inline]
pub(crate) fn push_ratelimit_item(out: &mut Vec<u8>, name: &str, remaining: u64, reset: Nanos) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\";r=");
    push_u64(out, remaining);
    out.extend_from_slice(b";t=");
    push_u64(out, ceil_secs(reset));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::AlgorithmKind;

    #[test]
    fn rounding_is_up_and_retry_after_is_never_zero() {
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(NANOS_PER_SEC), 1);
        assert_eq!(retry_after_secs(NANOS_PER_SEC + 1), 2);
        assert_eq!(ceil_secs(0), 0);
        assert_eq!(retry_after_value(1), "1");
        assert_eq!(retry_after_value(300), "300");
        assert_eq!(retry_after_value(3601), "3601");
        assert_eq!(retry_after_value(86_400), "86400");
    }

    #[test]
    fn items_are_sf_strings_with_integer_parameters() {
        let rate = Limit::new(
            "basic-day",
            "1000/day".parse().expect("q"),
            AlgorithmKind::Gcra,
        )
        .expect("limit");
        let conc = Limit::new(
            "gen",
            "2 concurrent".parse().expect("q"),
            AlgorithmKind::Gcra,
        )
        .expect("limit");
        let mut out = Vec::new();
        push_policy_item(&mut out, &rate);
        out.extend_from_slice(b", ");
        push_policy_item(&mut out, &conc);
        assert_eq!(
            std::str::from_utf8(&out).expect("ascii"),
            "\"basic-day\";q=1000;w=86400, \"gen\";q=2;qu=\"concurrent-requests\""
        );
        let item = ratelimit_item("basic-day", 7, 1_500_000_000).expect("value");
        assert_eq!(item, "\"basic-day\";r=7;t=2");
    }
}
