//! Redis key names: `<prefix>:{<tag>}:<policy>@<algorithm>`.
//!
//! The tag stands for the client key and is written only with `[0-9a-f]`
//! after a one-letter kind, so no client can put a brace into a key name
//! (which would move the hash tag) or make two client keys share a name:
//!
//! | client key | tag |
//! |---|---|
//! | an IP address (IPv4 mapped into IPv6, as the memory store does) | `i` + 32 hex digits |
//! | bytes, at most 32 | `b` + the bytes in hex |
//! | bytes, longer | `h` + the SHA-1 of the bytes in hex (40 digits) |
//!
//! Every key of one client shares the tag, so on Redis Cluster they share a
//! slot. The script adds `:<window>` (fixed and sliding windows) and `:n`
//! (the cost sum of a sorted set) to the key it is given; those keys carry
//! the same tag, so they live in the same slot.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::key::{Key, KeyRepr};

/// Byte keys up to this length are written out in hex; longer ones hashed.
const HEX_MAX: usize = 32;

/// Appends the tag of `key` to `out`.
pub(super) fn push_tag(out: &mut String, key: &Key<'_>) {
    match key.repr() {
        KeyRepr::Ip(ip) => {
            let bits = match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                IpAddr::V6(v6) => v6.octets(),
            };
            out.push('i');
            push_hex(out, &bits);
        }
        KeyRepr::Bytes(bytes) if bytes.len() <= HEX_MAX => {
            out.push('b');
            push_hex(out, bytes);
        }
        KeyRepr::Bytes(bytes) => {
            out.push('h');
            push_hex(out, &sha1_smol::Sha1::from(&bytes[..]).digest().bytes());
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// The key of one counter: `<prefix>:{<tag>}:<id>`.
pub(super) fn counter(prefix: &str, tag: &str, id: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + tag.len() + id.len() + 4);
    key.push_str(prefix);
    key.push_str(":{");
    key.push_str(tag);
    key.push_str("}:");
    key.push_str(id);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &Key<'_>) -> String {
        let mut out = String::new();
        push_tag(&mut out, key);
        out
    }

    #[test]
    fn tags_are_hex_and_distinct_per_kind() {
        let v4 = Key::ip("192.0.2.1".parse().expect("ip"));
        let mapped = Key::ip("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(tag(&v4), "i00000000000000000000ffffc0000201");
        assert_eq!(tag(&v4), tag(&mapped));
        let braces = Key::borrowed(b"}{x", "test").expect("key");
        assert_eq!(tag(&braces), "b7d7b78");
        let long = Key::borrowed(&[b'k'; 33], "test").expect("key");
        let hashed = tag(&long);
        assert_eq!(hashed.len(), 41);
        assert!(hashed.starts_with('h'));
        // Bytes that spell an address are not the address.
        let bytes = Key::borrowed(&[0; 16], "test").expect("key");
        let zero = Key::ip("::".parse().expect("ip"));
        assert_ne!(tag(&bytes), tag(&zero));
        for t in [tag(&v4), tag(&braces), hashed] {
            assert!(t[1..].bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn counter_key_layout() {
        assert_eq!(
            counter("tollgate", "b6b31", "api@gcra"),
            "tollgate:{b6b31}:api@gcra"
        );
    }
}
