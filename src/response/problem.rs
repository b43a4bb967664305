//! `application/problem+json` bodies (RFC 9457).

use std::fmt::Write as _;

use bytes::Bytes;

/// The media type of problem details.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// Builds one problem object; members are written in the order added.
pub(crate) struct Problem {
    out: String,
}

impl Problem {
    /// `{"type":"about:blank","title":..,"status":..` — `about:blank` means
    /// the title is the status code's reason phrase.
    pub(crate) fn new(status: http::StatusCode) -> Self {
        let mut out = String::with_capacity(256);
        out.push_str("{\"type\":\"about:blank\",\"title\":");
        push_string(&mut out, status.canonical_reason().unwrap_or("Error"));
        let _ = write!(out, ",\"status\":{}", status.as_u16());
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
        let body = Problem::new(http::StatusCode::TOO_MANY_REQUESTS)
            .string("detail", "a \"quoted\"\n\\ \u{1} value")
            .number("limit", 10)
            .strings("violated_policies", ["a", "b"])
            .finish();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["title"], "Too Many Requests");
        assert_eq!(v["status"], 429);
        assert_eq!(v["detail"], "a \"quoted\"\n\\ \u{1} value");
        assert_eq!(v["violated_policies"][1], "b");
    }
}
