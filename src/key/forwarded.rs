//! Forwarding headers read hop by hop: plain `X-Forwarded-For` /
//! `X-Real-IP` hops and RFC 7239 `Forwarded` elements, from the right.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn trim_ows(bytes: &[u8]) -> &[u8] {
    trim_ows_end(trim_ows_start(bytes))
}

fn trim_ows_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn trim_ows_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// An `X-Forwarded-For` entry or an `X-Real-IP` value.
pub(super) fn parse_plain_hop(raw: &[u8]) -> Result<IpAddr, &'static str> {
    let text = std::str::from_utf8(raw).map_err(|_| "hop is not UTF-8")?;
    parse_node(text, false)
}

/// An address with an optional port: `IPv4`, `IPv4:port`, `IPv6`, `[IPv6]`,
/// `[IPv6]:port`. `obfuscated_port` also accepts RFC 7239's `_port`.
fn parse_node(text: &str, obfuscated_port: bool) -> Result<IpAddr, &'static str> {
    const NOT_IP: &str = "hop is not an IP address";
    const BAD_PORT: &str = "hop has an invalid port";
    if text.eq_ignore_ascii_case("unknown") {
        return Err("hop is \"unknown\"");
    }
    if text.starts_with('_') {
        return Err("hop is obfuscated");
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    if let Some(bracketed) = text.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']').ok_or(NOT_IP)?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| NOT_IP)?;
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok(IpAddr::V6(ip)),
            Some(port) if valid_port(port, obfuscated_port) => Ok(IpAddr::V6(ip)),
            Some(_) => Err(BAD_PORT),
            None => Err(NOT_IP),
        };
    }
    if let Some((host, port)) = text.split_once(':') {
        if let Ok(ip) = host.parse::<Ipv4Addr>() {
            return if valid_port(port, obfuscated_port) {
                Ok(IpAddr::V4(ip))
            } else {
                Err(BAD_PORT)
            };
        }
    }
    Err(NOT_IP)
}

fn valid_port(port: &str, obfuscated: bool) -> bool {
    let digits = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    let obf = obfuscated
        && port.len() > 1
        && port.starts_with('_')
        && port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    digits || obf
}

/// An RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The `for=` address of one RFC 7239 `Forwarded` element
/// (`for=...;proto=...;by=...`).
pub(super) fn parse_forwarded_element(element: &[u8]) -> Result<IpAddr, &'static str> {
    const BAD: &str = "malformed Forwarded element";
    let mut rest = element;
    let mut found: Option<(&[u8], bool)> = None;
    loop {
        rest = trim_ows_start(rest);
        // RFC 7239 allows empty pairs: `for=x;;proto=y;`.
        match rest.split_first() {
            None => break,
            Some((b';', more)) => {
                rest = more;
                continue;
            }
            Some(_) => {}
        }
        let name_len = rest
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(rest.len());
        let (name, after_name) = rest.split_at_checked(name_len).ok_or(BAD)?;
        let after_eq = after_name.strip_prefix(b"=").ok_or(BAD)?;
        if name.is_empty() {
            return Err(BAD);
        }
        let (value, escaped, after_value) = if let Some(quoted) = after_eq.strip_prefix(b"\"") {
            split_quoted(quoted).ok_or(BAD)?
        } else {
            let len = after_eq
                .iter()
                .position(|&b| !is_tchar(b))
                .unwrap_or(after_eq.len());
            let (token, after) = after_eq.split_at_checked(len).ok_or(BAD)?;
            if token.is_empty() {
                return Err(BAD);
            }
            (token, false, after)
        };
        if name.eq_ignore_ascii_case(b"for") {
            if found.is_some() {
                return Err("for= parameter repeated");
            }
            found = Some((value, escaped));
        }
        rest = trim_ows_start(after_value);
        match rest.split_first() {
            None => break,
            Some((b';', more)) => rest = more,
            Some(_) => return Err(BAD),
        }
    }
    let (value, escaped) = found.ok_or("Forwarded element has no for= parameter")?;
    if escaped {
        return Err("for= value has escaped characters");
    }
    let text = std::str::from_utf8(value).map_err(|_| "hop is not UTF-8")?;
    parse_node(text, true)
}

/// Splits a quoted-string body (after the opening quote) into its content,
/// whether it holds escapes, and what follows the closing quote.
fn split_quoted(body: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    let mut escaped = false;
    let mut iter = body.iter().enumerate();
    while let Some((i, &b)) = iter.next() {
        match b {
            b'\\' => {
                escaped = true;
                iter.next()?;
            }
            b'"' => {
                let content = body.get(..i)?;
                let after = body.get(i + 1..)?;
                return Some((content, escaped, after));
            }
            _ => {}
        }
    }
    None
}

/// The comma-separated elements of one `Forwarded` field line, last first;
/// commas inside quoted strings do not separate.
pub(super) struct RevElements<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> RevElements<'a> {
    pub(super) fn new(line: &'a [u8]) -> Self {
        Self { rest: Some(line) }
    }
}

impl<'a> Iterator for RevElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.rest?;
        let mut in_quotes = false;
        for (i, &b) in bytes.iter().enumerate().rev() {
            match b {
                b'"' if !in_quotes => in_quotes = true,
                b'"' if !is_escaped(bytes, i) => in_quotes = false,
                b',' if !in_quotes => {
                    self.rest = bytes.get(..i);
                    return bytes.get(i + 1..);
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(bytes)
    }
}

/// Whether the byte at `i` is preceded by an odd number of backslashes.
fn is_escaped(bytes: &[u8], i: usize) -> bool {
    let before = bytes.get(..i).unwrap_or_default();
    before.iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rev_elements_split_from_the_right() {
        let got: Vec<&[u8]> = RevElements::new(b"a, b=\"x,y\" ,c").collect();
        assert_eq!(got, vec![&b"c"[..], b" b=\"x,y\" ", b"a"]);
        let got: Vec<&[u8]> = RevElements::new(b"").collect();
        assert_eq!(got, vec![&b""[..]]);
    }
}
