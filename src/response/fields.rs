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

/// What a limit's `RateLimit-Policy` item announces: `q` units per `w`
/// seconds (no `w` for a concurrency quota).
///
/// The draft (section 3.1) has a quota `q` and a window `w` of whole
/// seconds; a limit has a capacity `C` (what can be spent at once: a
/// GCRA's burst, a window's count) that renews in a time `P` (the burst's
/// refill at the sustained rate, `burst · period / count`, or the window's
/// period). The item says `w = ⌈P⌉` seconds (at least 1, as the draft
/// allows no sub-second window) and `q = max(C, ⌊count · w / period⌋)`:
///
/// - `q ≥ C`, so the remaining units `r` a `RateLimit` item shows never
///   exceed `q` (`20/second burst 40` is `q=40;w=2`, not `q=20;w=1` beside
///   `r=39`);
/// - `q / w` is the sustained rate whenever `P` is a whole number of
///   seconds (`3/minute` is `q=3;w=60`, `20/second burst 40` 40 per 2 s);
///   a shorter `P` is announced per second (`10/second burst 3` is
///   `q=10;w=1`: ten per second, at most three at once, which `r` shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announced {
    /// The `q` parameter.
    pub(crate) q: u64,
    /// The `w` parameter in seconds; `None` for a concurrency quota.
    pub(crate) w: Option<u64>,
}

/// The `q` and `w` a limit announces (see [`Announced`]).
pub(crate) fn announced(limit: &Limit) -> Announced {
    let quota = limit.quota();
    let count = quota.count();
    match limit.kind() {
        LimitKind::Concurrency => Announced { q: count, w: None },
        LimitKind::Rate(_) => {
            let period = u128::from(quota.period_nanos().max(1));
            let capacity = quota.burst().max(1);
            // The capacity's renewal: burst · period / count, rounded up.
            let renewal = (u128::from(capacity) * period).div_ceil(u128::from(count.max(1)));
            let w = renewal.div_ceil(u128::from(NANOS_PER_SEC)).max(1);
            let per_w = u128::from(count) * w * u128::from(NANOS_PER_SEC) / period;
            Announced {
                q: u64::try_from(per_w).unwrap_or(u64::MAX).max(capacity),
                w: Some(u64::try_from(w).unwrap_or(u64::MAX)),
            }
        }
    }
}

/// Appends one quota policy item: `"name";q=10;w=60` (rate) or
/// `"name";q=2;qu="concurrent-requests"` (concurrency), with the figures
/// of [`announced`].
pub(crate) fn push_policy_item(out: &mut Vec<u8>, limit: &Limit) {
    let Announced { q, w } = announced(limit);
    out.push(b'"');
    out.extend_from_slice(limit.name().as_bytes());
    out.extend_from_slice(b"\";q=");
    push_u64(out, q);
    match w {
        Some(w) => {
            out.extend_from_slice(b";w=");
            push_u64(out, w);
        }
        None => out.extend_from_slice(b";qu=\"concurrent-requests\""),
    }
}

/// The `t` of a limit's `RateLimit` item: the decision's effective window
/// ([`Decision::window`](crate::Decision::window)), or `None` for a
/// concurrency limit, whose room comes back when requests finish, at no
/// time the server can name (the draft makes `t` optional, section 4.1).
#[inline]
pub(crate) fn item_window(limit: &Limit, window: Nanos) -> Option<Nanos> {
    match limit.kind() {
        LimitKind::Rate(_) => Some(window),
        LimitKind::Concurrency => None,
    }
}

/// The `RateLimit` item of one policy: `"name";r=0;t=42`, or
/// `"name";r=1` without a window.
pub(crate) fn ratelimit_item(
    name: &str,
    remaining: u64,
    window: Option<Nanos>,
) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(name.len() + 32);
    push_ratelimit_item(&mut out, name, remaining, window);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
}

/// Appends the `RateLimit` item of `name` (see [`ratelimit_item`]): `t` is
/// the window in whole seconds rounded up, so a client that waits `t` finds
/// the unit the window promised.
#[inline]
pub(crate) fn push_ratelimit_item(
    out: &mut Vec<u8>,
    name: &str,
    remaining: u64,
    window: Option<Nanos>,
) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\";r=");
    push_u64(out, remaining);
    if let Some(window) = window {
        out.extend_from_slice(b";t=");
        push_u64(out, ceil_secs(window));
    }
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

    fn announce(quota: &str, algorithm: AlgorithmKind) -> (u64, Option<u64>) {
        let limit = Limit::new("p", quota.parse().expect("quota"), algorithm).expect("limit");
        let a = announced(&limit);
        (a.q, a.w)
    }

    #[test]
    fn the_policy_announces_the_capacity_and_the_sustained_rate() {
        use AlgorithmKind::*;
        // A bucket of 40 refilled at 20/s: 40 per 2 s, never r=39 beside q=20.
        assert_eq!(announce("20/second burst 40", Gcra), (40, Some(2)));
        assert_eq!(announce("3/minute", Gcra), (3, Some(60)));
        assert_eq!(announce("1000/day", Gcra), (1000, Some(86_400)));
        assert_eq!(announce("7/second", Gcra), (7, Some(1)));
        assert_eq!(announce("100/minute burst 10", Gcra), (10, Some(6)));
        // A capacity renewed faster than a second is announced per second.
        assert_eq!(announce("10/second burst 3", Gcra), (10, Some(1)));
        assert_eq!(announce("5/500ms", FixedWindow), (10, Some(1)));
        assert_eq!(announce("60/minute", SlidingWindow), (60, Some(60)));
        assert_eq!(announce("5/90s", SlidingLog), (5, Some(90)));
        assert_eq!(announce("4 concurrent", Gcra), (4, None));
        // A window of a second and a half rounds up: 1 per 2 s.
        assert_eq!(announce("1/1500ms", FixedWindow), (1, Some(2)));
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
        let item = ratelimit_item("basic-day", 7, Some(1_500_000_000)).expect("value");
        assert_eq!(item, "\"basic-day\";r=7;t=2");
        let item = ratelimit_item("gen", 1, None).expect("value");
        assert_eq!(item, "\"gen\";r=1");
    }
}
