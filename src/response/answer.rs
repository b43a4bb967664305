//! The 429 answer, built from text written once per policy.
//!
//! Everything about a policy that does not change between requests (its
//! name, tier, quota and window, and the `RateLimit-Policy` items of its
//! tier) is written when the layer is built. A refusal then only writes its
//! own numbers: `RateLimit`, `Retry-After` and the end of the body.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{HeaderName, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::fields;
use super::problem::{Problem, ProblemType, PROBLEM_JSON, VIOLATED_POLICIES};
use crate::decision::Decision;
use crate::limit::Limit;

pub(crate) static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub(crate) static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub(crate) static X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub(crate) static X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub(crate) static X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The fixed text of one policy's refusals.
#[derive(Debug, Clone)]
pub(crate) struct PolicyText {
    /// The problem body up to its per-request members, without the closing brace.
    problem_prefix: Bytes,
    /// The `q` the limit announces, for `X-RateLimit-Limit`.
    limit: u64,
}

impl PolicyText {
    pub(crate) fn new(limit: &Limit, tier: &str) -> Self {
        // The figures of the limit's `RateLimit-Policy` item, so the body
        // and the fields say the same.
        let announced = fields::announced(limit);
        let mut problem = Problem::new(ProblemType::QuotaExceeded)
            .string("policy", limit.name())
            .string("tier", tier)
            .strings(VIOLATED_POLICIES, [limit.name()])
            .number("limit", announced.q);
        if let Some(w) = announced.w {
            problem = problem.number("window_seconds", w);
        }
        Self {
            problem_prefix: problem.unfinished(),
            limit: announced.q,
        }
    }
}

/// The problem body of a refusal by `limit`.
pub(crate) fn body(text: &PolicyText, limit: &Limit, decision: &Decision) -> Bytes {
    let mut out = Vec::with_capacity(body_capacity(text, limit));
    push_body(&mut out, text, limit, decision);
    Bytes::from(out)
}

/// Room for a body: the fixed prefix, the name in the detail, and the
/// numbers and words around them.
fn body_capacity(text: &PolicyText, limit: &Limit) -> usize {
    text.problem_prefix.len() + limit.name().len() + 112
}

fn push_body(out: &mut Vec<u8>, text: &PolicyText, limit: &Limit, decision: &Decision) {
    out.extend_from_slice(&text.problem_prefix);
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b",\"remaining\":");
    out.extend_from_slice(n.format(decision.remaining()).as_bytes());
    match decision.retry_after() {
        Some(wait) => {
            let millis = u64::try_from(wait.as_nanos().div_ceil(1_000_000))
                .unwrap_or(u64::MAX)
                .max(1);
            out.extend_from_slice(b",\"retry_after_ms\":");
            out.extend_from_slice(n.format(millis).as_bytes());
            out.extend_from_slice(b",\"detail\":\"Rate limit \\\"");
            out.extend_from_slice(limit.name().as_bytes());
            out.extend_from_slice(b"\\\" exceeded; retry in ");
            let secs = fields::retry_after_secs(decision.retry_after_nanos());
            out.extend_from_slice(n.format(secs).as_bytes());
            out.extend_from_slice(b" s.\"}");
        }
        None => {
            out.extend_from_slice(b",\"detail\":\"Rate limit \\\"");
            out.extend_from_slice(limit.name().as_bytes());
            out.extend_from_slice(
                b"\\\" exceeded: the request costs more than the limit allows at once.\"}",
            );
        }
    }
}

/// Writes the rate-limit fields of `decision` into `headers`.
pub(crate) fn insert_fields(
    headers: &mut HeaderMap,
    policy: HeaderValue,
    limit: Option<&Limit>,
    decision: &Decision,
    legacy: bool,
) {
    headers.insert(RATELIMIT_POLICY.clone(), policy);
    if let Some(limit) = limit {
        if let Some(value) = fields::ratelimit_item(
            limit.name(),
            decision.remaining(),
            fields::item_window(limit, decision.window_nanos()),
        ) {
            headers.insert(RATELIMIT.clone(), value);
        }
    }
    if !decision.is_allowed() && !decision.is_impossible() {
        headers.insert(
            RETRY_AFTER,
            fields::retry_after_value(fields::retry_after_secs(decision.retry_after_nanos())),
        );
    }
    if let (true, Some(limit)) = (legacy, limit) {
        headers.insert(
            X_LIMIT.clone(),
            HeaderValue::from(fields::announced(limit).q),
        );
        headers.insert(X_REMAINING.clone(), HeaderValue::from(decision.remaining()));
        headers.insert(
            X_RESET.clone(),
            HeaderValue::from(fields::ceil_secs(decision.window_nanos())),
        );
    }
}

/// Sets the media type and caching of a problem answer.
pub(crate) fn insert_problem_headers(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The header set of a 429, made once: a refusal clones it and writes its
/// own values into place by position, so no header name is hashed per
/// refusal. `with_retry` is false only for a cost no wait can satisfy.
fn template(legacy: bool, with_retry: bool) -> &'static HeaderMap {
    static TEMPLATES: [OnceLock<HeaderMap>; 4] = [const { OnceLock::new() }; 4];
    let slot = usize::from(legacy) * 2 + usize::from(with_retry);
    TEMPLATES[slot].get_or_init(|| {
        let zero = HeaderValue::from_static("0");
        let mut headers = HeaderMap::with_capacity(8);
        // The first three positions are written per refusal, in this order.
        headers.insert(RATELIMIT_POLICY.clone(), zero.clone());
        headers.insert(RATELIMIT.clone(), zero.clone());
        if with_retry {
            headers.insert(RETRY_AFTER, zero.clone());
        }
        if legacy {
            headers.insert(X_LIMIT.clone(), zero.clone());
            headers.insert(X_REMAINING.clone(), zero.clone());
            headers.insert(X_RESET.clone(), zero);
        }
        insert_problem_headers(&mut headers);
        headers
    })
}

/// The default 429 answer, written straight into its response.
pub(crate) fn too_many_requests(
    text: &PolicyText,
    policy: HeaderValue,
    limit: &Limit,
    decision: &Decision,
    legacy: bool,
) -> Response<Bytes> {
    let with_retry = !decision.is_impossible();
    // The body and the `RateLimit` value share one buffer: two allocations
    // (the buffer and its shared count) where each on its own takes two.
    let mut out = Vec::with_capacity(body_capacity(text, limit) + limit.name().len() + 32);
    push_body(&mut out, text, limit, decision);
    let body_len = out.len();
    fields::push_ratelimit_item(
        &mut out,
        limit.name(),
        decision.remaining(),
        fields::item_window(limit, decision.window_nanos()),
    );
    let mut both = Bytes::from(out);
    let item = both.split_off(body_len);
    let mut response = Response::new(both);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let mut headers = template(legacy, with_retry).clone();
    let mut values = headers.values_mut();
    let mut set = |value: HeaderValue| {
        if let Some(slot) = values.next() {
            *slot = value;
        }
    };
    set(policy);
    set(HeaderValue::from_maybe_shared(item).unwrap_or_else(|_| HeaderValue::from_static("")));
    if with_retry {
        set(fields::retry_after_value(fields::retry_after_secs(
            decision.retry_after_nanos(),
        )));
    }
    if legacy {
        set(HeaderValue::from(text.limit));
        set(HeaderValue::from(decision.remaining()));
        set(HeaderValue::from(fields::ceil_secs(
            decision.window_nanos(),
        )));
    }
    *response.headers_mut() = headers;
    response
}
