//! A small structured-field (RFC 9651) List parser and the checks the IETF
//! RateLimit fields (draft-ietf-httpapi-ratelimit-headers-09/10) need.
//!
//! Subset: list members are items (no inner lists); bare items are
//! sf-integers (at most 15 digits), sf-strings (`\"` and `\\` escapes),
//! tokens and booleans (`?0`/`?1`); decimals, byte sequences, dates and
//! display strings are refused as unsupported. Parameters are
//! `;key=value` (or `;key` for boolean true), keys `[a-z*][a-z0-9_.*-]*`.

use std::fmt;

/// A bare item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Bare {
    Integer(i64),
    String(String),
    Token(String),
    Boolean(bool),
}

impl fmt::Display for Bare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bare::Integer(n) => write!(f, "{n}"),
            Bare::String(s) => write!(f, "{s:?}"),
            Bare::Token(t) => write!(f, "{t}"),
            Bare::Boolean(b) => write!(f, "?{}", u8::from(*b)),
        }
    }
}

/// A list member: a bare item and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) value: Bare,
    pub(crate) params: Vec<(String, Bare)>,
}

impl Item {
    /// The parameter `key`.
    pub(crate) fn param(&self, key: &str) -> Option<&Bare> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The parameter `key` when it is an integer.
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.param(key) {
            Some(Bare::Integer(n)) => Some(*n),
            _ => None,
        }
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!(
            "{what} at byte {} of {:?}",
            self.pos,
            String::from_utf8_lossy(self.input)
        ))
    }

    fn list(&mut self) -> Result<Vec<Item>, String> {
        self.skip_sp();
        let mut items = Vec::new();
        if self.peek().is_none() {
            return Ok(items);
        }
        loop {
            items.push(self.item()?);
            self.skip_ows();
            match self.bump() {
                None => return Ok(items),
                Some(b',') => {}
                Some(_) => {
                    self.pos -= 1;
                    return self.error("expected \",\" or the end");
                }
            }
            self.skip_ows();
            if self.peek().is_none() {
                return self.error("trailing comma");
            }
        }
    }

    fn item(&mut self) -> Result<Item, String> {
        let value = self.bare()?;
        let params = self.params()?;
        Ok(Item { value, params })
    }

    fn params(&mut self) -> Result<Vec<(String, Bare)>, String> {
        let mut params: Vec<(String, Bare)> = Vec::new();
        while self.peek() == Some(b';') {
            self.pos += 1;
            self.skip_sp();
            let key = self.key()?;
            let value = if self.peek() == Some(b'=') {
                self.pos += 1;
                self.bare()?
            } else {
                Bare::Boolean(true)
            };
            // RFC 9651: a repeated key overwrites the value, keeping its place.
            match params.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => params.push((key, value)),
            }
        }
        Ok(params)
    }

    fn key(&mut self) -> Result<String, String> {
        let start = self.pos;
        match self.peek() {
            Some(b'a'..=b'z' | b'*') => self.pos += 1,
            _ => return self.error("expected a key"),
        }
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
            self.pos += 1;
        }
        Ok(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    fn bare(&mut self) -> Result<Bare, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b'"') => self.string(),
            Some(b'?') => self.boolean(),
            Some(c) if c.is_ascii_alphabetic() || c == b'*' => Ok(self.token()),
            Some(b':' | b'@' | b'%') => self.error("unsupported bare item"),
            _ => self.error("expected a bare item"),
        }
    }

    fn integer(&mut self) -> Result<Bare, String> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        let digits = &self.input[start..self.pos];
        if digits.is_empty() {
            return self.error("expected a digit");
        }
        if digits.len() > 15 {
            return self.error("integer longer than 15 digits");
        }
        if self.peek() == Some(b'.') {
            return self.error("decimals are unsupported");
        }
        let mut n: i64 = 0;
        for d in digits {
            n = n * 10 + i64::from(d - b'0');
        }
        Ok(Bare::Integer(if negative { -n } else { n }))
    }

    fn string(&mut self) -> Result<Bare, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return self.error("unterminated string"),
                Some(b'"') => return Ok(Bare::String(out)),
                Some(b'\\') => match self.bump() {
                    Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                    _ => return self.error("bad escape in string"),
                },
                Some(c @ 0x20..=0x7e) => out.push(char::from(c)),
                Some(_) => {
                    self.pos -= 1;
                    return self.error("bad character in string");
                }
            }
        }
    }

    fn token(&mut self) -> Bare {
        let start = self.pos;
        self.pos += 1;
        while let Some(c) = self.peek() {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&c);
            if !tchar {
                break;
            }
            self.pos += 1;
        }
        Bare::Token(String::from_utf8_lossy(&self.input[start..self.pos]).into_owned())
    }

    fn boolean(&mut self) -> Result<Bare, String> {
        self.pos += 1;
        match self.bump() {
            Some(b'0') => Ok(Bare::Boolean(false)),
            Some(b'1') => Ok(Bare::Boolean(true)),
            _ => self.error("expected ?0 or ?1"),
        }
    }
}

/// Parses a structured-field List.
pub(crate) fn parse_list(input: &[u8]) -> Result<Vec<Item>, String> {
    let mut parser = Parser { input, pos: 0 };
    let items = parser.list()?;
    // Trailing SP was consumed as OWS before the end.
    Ok(items)
}

/// One `RateLimit-Policy` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyItem {
    pub(crate) name: String,
    pub(crate) q: i64,
    pub(crate) w: Option<i64>,
    pub(crate) concurrent: bool,
}

/// One `RateLimit` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateItem {
    pub(crate) name: String,
    pub(crate) r: i64,
    pub(crate) t: Option<i64>,
}

fn name_of(item: &Item) -> Result<String, String> {
    match &item.value {
        Bare::String(name) => Ok(name.clone()),
        other => Err(format!("item {other} is not an sf-string")),
    }
}

/// Checks a `RateLimit-Policy` value: a non-empty list of sf-strings, each
/// with `q` (integer ≥ 1) and either `w` (integer ≥ 1) or
/// `qu="concurrent-requests"`.
pub(crate) fn policy(value: &[u8]) -> Result<Vec<PolicyItem>, String> {
    let items = parse_list(value)?;
    if items.is_empty() {
        return Err("empty RateLimit-Policy".into());
    }
    items
        .iter()
        .map(|item| {
            let name = name_of(item)?;
            let q = item
                .int("q")
                .filter(|q| *q >= 1)
                .ok_or_else(|| format!("policy {name:?}: q missing, not an integer or < 1"))?;
            let w = item.param("w");
            let concurrent = item.param("qu") == Some(&Bare::String("concurrent-requests".into()));
            let w = match w {
                Some(Bare::Integer(w)) if *w >= 1 => Some(*w),
                Some(other) => return Err(format!("policy {name:?}: bad w {other}")),
                None if concurrent => None,
                None => return Err(format!("policy {name:?}: neither w nor concurrent qu")),
            };
            Ok(PolicyItem {
                name,
                q,
                w,
                concurrent,
            })
        })
        .collect()
}

/// Checks a `RateLimit` value: a non-empty list of sf-strings, each with
/// `r` and optionally `t` (integers ≥ 0).
pub(crate) fn ratelimit(value: &[u8]) -> Result<Vec<RateItem>, String> {
    let items = parse_list(value)?;
    if items.is_empty() {
        return Err("empty RateLimit".into());
    }
    items
        .iter()
        .map(|item| {
            let name = name_of(item)?;
            let field = |key: &str| {
                item.int(key)
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("item {name:?}: {key} missing, not an integer or < 0"))
            };
            // `t` is optional (section 4.1): a concurrency limit has none.
            let t = match item.param("t") {
                None => None,
                Some(_) => Some(field("t")?),
            };
            Ok(RateItem {
                r: field("r")?,
                t,
                name: name.clone(),
            })
        })
        .collect()
}

/// Checks a `Retry-After` delta-seconds value: a positive integer.
pub(crate) fn retry_after(value: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(value).map_err(|e| e.to_string())?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Retry-After {text:?} is not delta-seconds"));
    }
    match text.parse::<u64>() {
        Ok(0) => Err("Retry-After is 0".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("Retry-After {text:?}: {e}")),
    }
}

/// The parsed `RateLimit-Policy` and `RateLimit` fields, when present.
pub(crate) type Fields = (Option<Vec<PolicyItem>>, Option<Vec<RateItem>>);

/// Checks every rate-limit field present in `headers`, and that each
/// `RateLimit` item names a policy of `RateLimit-Policy`. Answers the
/// parsed fields.
pub(crate) fn check_fields(headers: &http::HeaderMap) -> Result<Fields, String> {
    let one = |name: &str| -> Result<Option<&[u8]>, String> {
        let mut values = headers.get_all(name).iter();
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v.as_bytes())),
            _ => Err(format!("{name} sent on several lines")),
        }
    };
    let policies = one("ratelimit-policy")?.map(policy).transpose()?;
    let limits = one("ratelimit")?.map(ratelimit).transpose()?;
    let retry = one("retry-after")?.map(retry_after).transpose()?;
    if let Some(limits) = &limits {
        let policies = policies
            .as_ref()
            .ok_or("RateLimit without RateLimit-Policy")?;
        for item in limits {
            let Some(policy) = policies.iter().find(|p| p.name == item.name) else {
                return Err(format!("RateLimit names unknown policy {:?}", item.name));
            };
            // The remaining units are the named policy's: never above its q.
            if item.r > policy.q {
                return Err(format!(
                    "policy {:?}: r={} above q={}",
                    item.name, item.r, policy.q
                ));
            }
            // Section 6: Retry-After SHOULD NOT reference a point in time
            // earlier than the reset parameter.
            if let (Some(retry), Some(t)) = (retry, item.t) {
                if i64::try_from(retry).unwrap_or(i64::MAX) < t {
                    return Err(format!("Retry-After {retry} before t={t}"));
                }
            }
            if item.t.is_none() && !policy.concurrent {
                return Err(format!("policy {:?}: a rate limit without t", item.name));
            }
        }
    }
    Ok((policies, limits))
}
