//! `application/problem+json` bodies (RFC 9457).

use std::fmt::Write as _;

use bytes::Bytes;

/// The media type of problem details.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The problem type of `draft-ietf-httpapi-ratelimit-headers` section 5.1:
/// the request exceeds one or more quota policies (a 429 from a limit).
pub const QUOTA_EXCEEDED: &str = "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// The problem type of the draft's section 5.2: the request cannot be
/// served for a temporary reduction in capacity (a 503: load shedding, or a
/// store that cannot answer under the fail-closed policy).
pub const TEMPORARY_REDUCED_CAPACITY: &str =
    "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity";

/// The draft's extension member naming the policies a request exceeded.
pub const VIOLATED_POLICIES: &str = "violated-policies";

/// The `type` of a problem answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProblemType {
    /// [`QUOTA_EXCEEDED`], status 429.
    QuotaExceeded,
    /// [`TEMPORARY_REDUCED_CAPACITY`], status 503.
    TemporaryReducedCapacity,
    /// `about:blank` with this status: the title is its reason phrase.
    Blank(http::StatusCode),
}

impl ProblemType {
    fn parts(self) -> (&'static str, &'static str, u16) {
        match self {
            // The titles are the draft's own (sections 5.1 and 5.2).
            ProblemType::QuotaExceeded => (
                QUOTA_EXCEEDED,
                "Request cannot be satisfied as assigned quota has been exceeded",
                429,
            ),
            ProblemType::TemporaryReducedCapacity => (
                TEMPORARY_REDUCED_CAPACITY,
                "Request cannot be satisfied due to temporary server capacity constraints",
                503,
            ),
            ProblemType::Blank(status) => (
                "about:blank",
                status.canonical_reason().unwrap_or("Error"),
                status.as_u16(),
            ),
        }
    }
}

/// Builds one problem object; members are written in the order added.
pub(crate) struct Problem {
    out: String,
}

impl Problem {
    /// `{"type":..,"title":..,"status":..` for `kind`.
    pub(crate) fn new(kind: ProblemType) -> Self {
        let (uri, title, status) = kind.parts();
        let mut out = String::with_capacity(256);
        out.push_str("{\"type\":");
        push_string(&mut out, uri);
        out.push_str(",\"title\":");
        push_string(&mut out, title);
        let _ = write!(out, ",\"status\":{status}");
        Self { out }
    }

    pub(crate) fn string(mut self, name: &str, value: &str) -> Self {
        self.member(name);
        push_string(&mut self.out, value);
        self
    }

    pub(crate) fn number(mut self, name: &str, value: u64) -> Self {
        self.member(name);
        let _ = write!(self.out, "{value}");
        self
    }

    pub(crate) fn strings<'a>(
        mut self,
        name: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.member(name);
        self.out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            push_string(&mut self.out, v);
        }
        self.out.push(']');
        self
    }

    fn member(&mut self, name: &str) {
        self.out.push(',');
        push_string(&mut self.out, name);
        self.out.push(':');
    }

    /// The object so far, left open for more members.
    pub(crate) fn unfinished(self) -> Bytes {
        Bytes::from(self.out)
    }

    pub(crate) fn finish(mut self) -> Bytes {
        self.out.push('}');
        Bytes::from(self.out)
    }
}

/// Writes `s` as a JSON string, escaping what JSON requires.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json_with_escapes() {
        let body = Problem::new(ProblemType::Blank(http::StatusCode::TOO_MANY_REQUESTS))
            .string("detail", "a \"quoted\"\n\\ \u{1} value")
            .number("limit", 10)
            .strings(VIOLATED_POLICIES, ["a", "b"])
            .finish();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Too Many Requests");
        assert_eq!(v["status"], 429);
        assert_eq!(v["detail"], "a \"quoted\"\n\\ \u{1} value");
        assert_eq!(v["violated-policies"][1], "b");
    }

    #[test]
    fn the_drafts_problem_types_carry_their_uri_title_and_status() {
        let v: serde_json::Value =
            serde_json::from_slice(&Problem::new(ProblemType::QuotaExceeded).finish())
                .expect("json");
        assert_eq!(v["type"], QUOTA_EXCEEDED);
        assert_eq!(v["status"], 429);
        let v: serde_json::Value =
            serde_json::from_slice(&Problem::new(ProblemType::TemporaryReducedCapacity).finish())
                .expect("json");
        assert_eq!(v["type"], TEMPORARY_REDUCED_CAPACITY);
        assert_eq!(v["status"], 503);
    }
}
