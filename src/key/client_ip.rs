//! [`ClientIp`]: the client address behind trusted reverse proxies.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, FORWARDED};

use super::forwarded::{parse_forwarded_element, parse_plain_hop, trim_ows, RevElements};
use super::ip_group::IpGrouping;
use super::peer_ip::{peer_addr, MISSING_PEER};
use super::trusted::TrustedProxies;
use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Most hops examined in one forwarding header.
const MAX_HOPS: usize = 64;
/// Longest forwarding header accepted, all field lines together, in bytes.
const MAX_HEADER_LEN: usize = 8 * 1024;

const WHAT: &str = "forwarded client address";

/// Which header the trusted proxies record the client chain in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`: the de facto standard.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`: the
    /// `for=` parameter of each element.
    Forwarded,
    /// `X-Real-IP: client`: a single address set by the proxy.
    XRealIp,
}

/// Keys requests by the client's IP address, read from forwarding headers
/// only when the connection comes from a trusted proxy.
///
/// The walk starts at the connection's peer (read like [`PeerIp`](super::PeerIp);
/// none is [`KeyError::Missing`] with status 500):
///
/// - If the peer is not trusted, it is the client and every forwarding
///   header is ignored, so a client cannot choose its own key by sending
///   `X-Forwarded-For`.
/// - Otherwise the chosen header's hops are read from the right, the hop
///   the nearest proxy wrote. Each trusted hop moves the walk one further
///   left; the first untrusted hop is the client. When every hop is trusted
///   the leftmost is the client; when the header is absent (or lists no
///   hop) the peer is.
///
/// Hops are `IPv4`, `IPv4:port`, `IPv6`, `[IPv6]` or `[IPv6]:port`
/// (`Forwarded` values follow RFC 7239: token or quoted string, and an
/// obfuscated port is accepted after a real address). Several field lines
/// are read as one list, in order; empty list elements are skipped. A hop
/// reached by the walk that is not an address (garbage, `unknown`, an
/// obfuscated `_name`, bytes that are not UTF-8) ends it with
/// [`KeyError::Malformed`]; so does a header longer than 8 KiB, more than
/// 64 hops, or several `X-Real-IP` field lines. Nothing left of such a hop
/// is believed.
///
/// The client address is then grouped by prefix like [`PeerIp`](super::PeerIp)
/// does: IPv4 whole, IPv6 by /64, IPv4-mapped IPv6 as IPv4.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use tollgate::key::{ClientIp, KeyExtractor, PeerAddr, RequestInfo, TrustedProxies};
///
/// let extractor = ClientIp::new().trust(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
/// let proxy: SocketAddr = "10.0.0.1:40000".parse().unwrap();
/// let request = http::Request::builder()
///     .header("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.2")
///     .extension(PeerAddr(proxy))
///     .body(())
///     .unwrap();
/// let identity = extractor.extract(&RequestInfo::new(&request)).unwrap();
/// let client: IpAddr = "203.0.113.7".parse().unwrap();
/// assert_eq!(identity.key().as_ip(), Some(client));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIp {
    trusted: TrustedProxies,
    header: ForwardedHeader,
    grouping: IpGrouping,
}

impl ClientIp {
    /// Trusts no proxy: the key is the peer address, headers are ignored.
    pub fn new() -> Self {
        Self::default()
    }

    /// Believes forwarding headers from these proxies.
    #[must_use]
    pub fn trust(mut self, proxies: TrustedProxies) -> Self {
        self.trusted = proxies;
        self
    }

    /// Reads the client chain from this header (default `X-Forwarded-For`).
    #[must_use]
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Groups IPv6 addresses by their first `prefix` bits (default 64).
    ///
    /// Values above 128 are clamped to 128; 0 puts all IPv6 clients in one key.
    #[must_use]
    pub fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.grouping = self.grouping.with_v6(prefix);
        self
    }

    /// Groups IPv4 addresses by their first `prefix` bits (default 32).
    ///
    /// Values above 32 are clamped to 32; 0 puts all IPv4 clients in one key.
    #[must_use]
    pub fn ipv4_prefix(mut self, prefix: u8) -> Self {
        self.grouping = self.grouping.with_v4(prefix);
        self
    }

    /// The client address of a request (ungrouped).
    pub(crate) fn client_addr(&self, request: &RequestInfo<'_>) -> Result<IpAddr, KeyError> {
        let peer = peer_addr(request.extensions()).ok_or(MISSING_PEER)?;
        if !self.trusted.contains(peer) {
            return Ok(peer);
        }
        let headers = request.headers();
        let found = match self.header {
            ForwardedHeader::XForwardedFor => {
                let lines = checked_lines(headers, &X_FORWARDED_FOR)?;
                let hops = lines
                    .iter()
                    .rev()
                    .flat_map(|line| line.as_bytes().rsplit(|&b| b == b','));
                walk(&self.trusted, hops, parse_plain_hop)?
            }
            ForwardedHeader::Forwarded => {
                let lines = checked_lines(headers, &FORWARDED)?;
                let hops = lines
                    .iter()
                    .rev()
                    .flat_map(|line| RevElements::new(line.as_bytes()));
                walk(&self.trusted, hops, parse_forwarded_element)?
            }
            ForwardedHeader::XRealIp => {
                let lines = checked_lines(headers, &X_REAL_IP)?;
                let mut iter = lines.iter();
                match (iter.next(), iter.next()) {
                    (None, _) => None,
                    (Some(_), Some(_)) => return Err(malformed("header repeated")),
                    (Some(value), None) => walk(
                        &self.trusted,
                        std::iter::once(value.as_bytes()),
                        parse_plain_hop,
                    )?,
                }
            }
        };
        Ok(found.unwrap_or(peer))
    }
}

impl KeyExtractor for ClientIp {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let client = self.client_addr(request)?;
        Ok(Identity::new(Key::ip(self.grouping.apply(client))))
    }
}

fn malformed(reason: &'static str) -> KeyError {
    KeyError::Malformed { what: WHAT, reason }
}

/// The field lines of `name`, refused when longer than [`MAX_HEADER_LEN`] together.
fn checked_lines<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<http::header::GetAll<'h, http::HeaderValue>, KeyError> {
    let lines = headers.get_all(name);
    let total = lines
        .iter()
        .fold(0usize, |sum, line| sum.saturating_add(line.len()));
    if total > MAX_HEADER_LEN {
        return Err(malformed("header longer than 8 KiB"));
    }
    Ok(lines)
}

/// Walks hops, nearest first: the first untrusted hop, else the last
/// (leftmost) trusted one, else `None` when there is no hop.
fn walk<'a>(
    trusted: &TrustedProxies,
    hops: impl Iterator<Item = &'a [u8]>,
    parse: fn(&[u8]) -> Result<IpAddr, &'static str>,
) -> Result<Option<IpAddr>, KeyError> {
    let mut leftmost_trusted = None;
    for (examined, raw) in hops.enumerate() {
        if examined >= MAX_HOPS {
            return Err(malformed("more than 64 forwarded hops"));
        }
        let raw = trim_ows(raw);
        if raw.is_empty() {
            continue;
        }
        let hop = parse(raw).map_err(malformed)?.to_canonical();
        if !trusted.contains(hop) {
            return Ok(Some(hop));
        }
        leftmost_trusted = Some(hop);
    }
    Ok(leftmost_trusted)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http::{HeaderValue, Request, StatusCode};

    use super::super::PeerAddr;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn request(peer: &str, headers: &[(&str, &[u8])]) -> Request<()> {
        let peer: SocketAddr = peer.parse().expect("test socket address");
        let mut builder = Request::builder().extension(PeerAddr(peer));
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value).expect("test header value");
            builder = builder.header(*name, value);
        }
        builder.body(()).expect("test request")
    }

    fn key_of(extractor: &ClientIp, request: &Request<()>) -> Result<IpAddr, KeyError> {
        let identity = extractor.extract(&RequestInfo::new(request))?;
        assert_eq!(identity.tier(), None);
        identity.key().as_ip().ok_or(malformed("not an ip key"))
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "2001:db8:ffff::/48"]).expect("test proxies")
    }

    fn behind(header: ForwardedHeader) -> ClientIp {
        ClientIp::new().trust(proxies()).header(header)
    }

    fn xff() -> ClientIp {
        behind(ForwardedHeader::XForwardedFor)
    }

    fn fwd() -> ClientIp {
        behind(ForwardedHeader::Forwarded)
    }

    fn is_malformed(result: Result<IpAddr, KeyError>) -> bool {
        matches!(result, Err(KeyError::Malformed { what: WHAT, .. }))
    }

    // ---- no trust: spoofing defence ----

    #[test]
    fn untrusted_peer_ignores_every_header() {
        let req = request(
            "198.51.100.9:1234",
            &[
                ("x-forwarded-for", b"1.1.1.1"),
                ("forwarded", b"for=1.1.1.1"),
                ("x-real-ip", b"1.1.1.1"),
            ],
        );
        for header in [
            ForwardedHeader::XForwardedFor,
            ForwardedHeader::Forwarded,
            ForwardedHeader::XRealIp,
        ] {
            assert_eq!(key_of(&behind(header), &req), Ok(ip("198.51.100.9")));
            assert_eq!(
                key_of(&ClientIp::new().header(header), &req),
                Ok(ip("198.51.100.9"))
            );
        }
        assert_eq!(key_of(&ClientIp::default(), &req), Ok(ip("198.51.100.9")));
    }

    #[test]
    fn untrusted_peer_ignores_even_garbage_headers() {
        let req = request(
            "198.51.100.9:1234",
            &[
                ("x-forwarded-for", &[0xff, 0xfe]),
                ("x-real-ip", b"a"),
                ("x-real-ip", b"b"),
            ],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("198.51.100.9")));
        assert_eq!(
            key_of(&behind(ForwardedHeader::XRealIp), &req),
            Ok(ip("198.51.100.9"))
        );
    }

    #[test]
    fn missing_peer_is_500() {
        let req = Request::builder()
            .header("x-forwarded-for", "203.0.113.5")
            .body(())
            .expect("test request");
        let err = key_of(&xff(), &req).expect_err("no peer");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(matches!(
            err,
            KeyError::Missing {
                what: "peer address",
                ..
            }
        ));
    }

    // ---- X-Forwarded-For ----

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        let req = request("10.0.0.1:80", &[]);
        assert_eq!(key_of(&xff(), &req), Ok(ip("10.0.0.1")));
        assert_eq!(key_of(&fwd(), &req), Ok(ip("10.0.0.1")));
        assert_eq!(
            key_of(&behind(ForwardedHeader::XRealIp), &req),
            Ok(ip("10.0.0.1"))
        );
    }

    #[test]
    fn header_listing_no_hop_leaves_the_peer() {
        let req = request("10.0.0.1:80", &[("x-forwarded-for", b" , ,")]);
        assert_eq!(key_of(&xff(), &req), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn several_trusted_hops_are_skipped() {
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"203.0.113.5, 10.0.0.3,10.0.0.2")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn client_supplied_entries_left_of_the_client_are_ignored() {
        // The client sent "1.1.1.1, 8.8.8.8"; the trusted proxy appended what it saw.
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"1.1.1.1, 8.8.8.8, 203.0.113.5")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn untrusted_hop_in_the_middle_is_the_client() {
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"10.0.0.9, 198.51.100.2, 10.0.0.3")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("198.51.100.2")));
    }

    #[test]
    fn all_trusted_chain_answers_the_leftmost() {
        let req = request("10.0.0.1:80", &[("x-forwarded-for", b"10.0.0.9, 10.0.0.3")]);
        assert_eq!(key_of(&xff(), &req), Ok(ip("10.0.0.9")));
    }

    #[test]
    fn field_lines_are_concatenated_in_order() {
        let req = request(
            "10.0.0.1:80",
            &[
                ("x-forwarded-for", b"1.1.1.1, 203.0.113.5"),
                ("x-forwarded-for", b"10.0.0.4"),
                ("x-forwarded-for", b"10.0.0.3, 10.0.0.2"),
            ],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn entry_forms_are_understood() {
        for (entry, expected) in [
            ("203.0.113.5", "203.0.113.5"),
            ("203.0.113.5:4711", "203.0.113.5"),
            ("2001:db8::1", "2001:db8::"),
            ("[2001:db8::1]", "2001:db8::"),
            ("[2001:db8::1]:4711", "2001:db8::"),
            ("\t203.0.113.5 ", "203.0.113.5"),
            ("::ffff:203.0.113.5", "203.0.113.5"),
        ] {
            let req = request("10.0.0.1:80", &[("x-forwarded-for", entry.as_bytes())]);
            assert_eq!(key_of(&xff(), &req), Ok(ip(expected)), "entry {entry:?}");
        }
    }

    #[test]
    fn unparseable_hops_are_malformed() {
        for entry in [
            &b"garbage"[..],
            b"unknown",
            b"_hidden",
            b"203.0.113.5:port",
            b"203.0.113.5:123456",
            b"[2001:db8::1",
            b"[2001:db8::1]x",
            b"[203.0.113.5]",
            b"203.0.113.5 203.0.113.6",
            b"\xff\xfe203.0.113.5",
            b"203.0.113.5\xc3",
        ] {
            let req = request("10.0.0.1:80", &[("x-forwarded-for", entry)]);
            assert!(is_malformed(key_of(&xff(), &req)), "entry {entry:?}");
        }
    }

    #[test]
    fn bad_hop_stops_the_walk_and_nothing_left_of_it_is_trusted() {
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"203.0.113.5, garbage, 10.0.0.2")],
        );
        assert!(is_malformed(key_of(&xff(), &req)));
    }

    #[test]
    fn garbage_left_of_the_client_is_never_read() {
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"\xff\xff, unknown, _x, 203.0.113.5")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn oversized_header_is_malformed() {
        let mut value = b"203.0.113.5, ".repeat(800);
        value.extend_from_slice(b"203.0.113.5");
        assert!(value.len() > 10 * 1024);
        let req = request("10.0.0.1:80", &[("x-forwarded-for", &value)]);
        assert_eq!(
            key_of(&xff(), &req),
            Err(malformed("header longer than 8 KiB"))
        );

        // The cap counts all field lines together.
        let half = vec![b'1'; 5 * 1024];
        let req = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", &half), ("x-forwarded-for", &half)],
        );
        assert!(is_malformed(key_of(&xff(), &req)));
    }

    #[test]
    fn more_than_64_trusted_hops_is_malformed() {
        let chain = vec!["10.0.0.2"; 70].join(",");
        let req = request("10.0.0.1:80", &[("x-forwarded-for", chain.as_bytes())]);
        assert_eq!(
            key_of(&xff(), &req),
            Err(malformed("more than 64 forwarded hops"))
        );

        let exact = vec!["10.0.0.2"; 64].join(",");
        let req = request("10.0.0.1:80", &[("x-forwarded-for", exact.as_bytes())]);
        assert_eq!(key_of(&xff(), &req), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn long_untrusted_prefix_does_not_hit_the_hop_cap() {
        let mut chain = vec!["1.1.1.1"; 200].join(",");
        chain.push_str(", 203.0.113.5");
        let req = request("10.0.0.1:80", &[("x-forwarded-for", chain.as_bytes())]);
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn forwarded_ipv6_clients_group_by_64() {
        let a = request("10.0.0.1:80", &[("x-forwarded-for", b"2001:db8:1:2::1")]);
        let b = request(
            "10.0.0.1:80",
            &[("x-forwarded-for", b"[2001:db8:1:2:ffff::9]:80")],
        );
        let c = request("10.0.0.1:80", &[("x-forwarded-for", b"2001:db8:1:3::1")]);
        let ka = key_of(&xff(), &a);
        assert_eq!(ka, Ok(ip("2001:db8:1:2::")));
        assert_eq!(ka, key_of(&xff(), &b));
        assert_ne!(ka, key_of(&xff(), &c));
    }

    #[test]
    fn prefixes_are_settable() {
        let extractor = xff().ipv4_prefix(24).ipv6_prefix(128);
        let v4 = request("10.0.0.1:80", &[("x-forwarded-for", b"203.0.113.77")]);
        let v6 = request("10.0.0.1:80", &[("x-forwarded-for", b"2001:db8::77")]);
        assert_eq!(key_of(&extractor, &v4), Ok(ip("203.0.113.0")));
        assert_eq!(key_of(&extractor, &v6), Ok(ip("2001:db8::77")));
    }

    #[test]
    fn trusted_ipv6_proxies_and_mapped_peers() {
        let req = request(
            "[2001:db8:ffff::1]:443",
            &[("x-forwarded-for", b"203.0.113.5, 2001:db8:ffff::2")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));

        // A dual-stack listener reports IPv4 proxies as IPv4-mapped IPv6.
        let req = request(
            "[::ffff:10.0.0.1]:443",
            &[("x-forwarded-for", b"203.0.113.5")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));

        // A mapped hop is trusted like its IPv4 address.
        let req = request(
            "10.0.0.1:443",
            &[("x-forwarded-for", b"203.0.113.5, ::ffff:10.0.0.2")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn untrusted_mapped_peer_is_keyed_as_ipv4() {
        let req = request(
            "[::ffff:198.51.100.9]:443",
            &[("x-forwarded-for", b"1.1.1.1")],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("198.51.100.9")));
    }

    // ---- Forwarded ----

    #[test]
    fn forwarded_rfc_examples() {
        for (value, expected) in [
            (
                &b"for=192.0.2.60;proto=http;by=203.0.113.43"[..],
                "192.0.2.60",
            ),
            (b"For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::"),
            (b"for=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
            (b"for=\"192.0.2.1:80\"", "192.0.2.1"),
            (b"proto=https; FOR=192.0.2.61 ;by=10.0.0.1", "192.0.2.61"),
            (b"for=\"[2001:db8::1]:_abc\"", "2001:db8::"),
            (b"for=\"192.0.2.1\"", "192.0.2.1"),
            (b"for=192.0.2.2;;proto=http;", "192.0.2.2"),
        ] {
            let req = request("10.0.0.1:80", &[("forwarded", value)]);
            assert_eq!(
                key_of(&fwd(), &req),
                Ok(ip(expected)),
                "value {:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn forwarded_walks_trusted_hops_across_lines() {
        let req = request(
            "10.0.0.1:80",
            &[
                ("forwarded", b"for=1.1.1.1, for=203.0.113.5;proto=https"),
                ("forwarded", b"for=\"[2001:db8:ffff::3]\", for=10.0.0.2"),
            ],
        );
        assert_eq!(key_of(&fwd(), &req), Ok(ip("203.0.113.5")));

        let all_trusted = request(
            "10.0.0.1:80",
            &[("forwarded", b"for=10.0.0.7, for=10.0.0.2")],
        );
        assert_eq!(key_of(&fwd(), &all_trusted), Ok(ip("10.0.0.7")));

        let middle = request(
            "10.0.0.1:80",
            &[("forwarded", b"for=10.0.0.7, for=198.51.100.2, for=10.0.0.2")],
        );
        assert_eq!(key_of(&fwd(), &middle), Ok(ip("198.51.100.2")));
    }

    #[test]
    fn forwarded_commas_in_quotes_do_not_split() {
        let req = request(
            "10.0.0.1:80",
            &[(
                "forwarded",
                b"for=203.0.113.5;ext=\"a,b\\\",c\", for=10.0.0.2",
            )],
        );
        assert_eq!(key_of(&fwd(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn forwarded_client_garbage_cannot_swallow_the_proxy_element() {
        // The client sent an unterminated quote; the proxy appended its element.
        let req = request(
            "10.0.0.1:80",
            &[("forwarded", b"for=\"1.1.1.1, for=203.0.113.5")],
        );
        assert_eq!(key_of(&fwd(), &req), Ok(ip("203.0.113.5")));
    }

    #[test]
    fn forwarded_bad_elements_are_malformed() {
        for value in [
            &b"for=unknown"[..],
            b"for=_hidden",
            b"for=\"_hidden:80\"",
            b"by=10.0.0.1;proto=http",
            b"for=203.0.113.5;for=203.0.113.6",
            b"for=[2001:db8::1]",
            b"for=203.0.113.5:80",
            b"for=\"203.0.113\\.5\"",
            b"for=\"203.0.113.5",
            b"for=",
            b"for =203.0.113.5",
            b"=203.0.113.5",
            b"for=203.0.113.5 x",
            b";",
            b"for=\"\xff203.0.113.5\"",
            b"garbage",
        ] {
            let req = request("10.0.0.1:80", &[("forwarded", value)]);
            assert!(
                is_malformed(key_of(&fwd(), &req)),
                "value {:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn forwarded_bad_hop_stops_the_walk() {
        let req = request(
            "10.0.0.1:80",
            &[("forwarded", b"for=203.0.113.5, for=unknown, for=10.0.0.2")],
        );
        assert_eq!(key_of(&fwd(), &req), Err(malformed("hop is \"unknown\"")));
    }

    #[test]
    fn forwarded_oversized_is_malformed() {
        let value = b"for=203.0.113.5, ".repeat(640);
        assert!(value.len() > 10 * 1024);
        let req = request("10.0.0.1:80", &[("forwarded", &value)]);
        assert!(is_malformed(key_of(&fwd(), &req)));
    }

    #[test]
    fn forwarded_hop_cap() {
        let chain = vec!["for=10.0.0.2"; 65].join(",");
        let req = request("10.0.0.1:80", &[("forwarded", chain.as_bytes())]);
        assert!(is_malformed(key_of(&fwd(), &req)));
    }

    #[test]
    fn forwarded_backslash_runs_do_not_confuse_quotes() {
        // `"a\\"` ends with an escaped backslash, so its last quote closes it.
        let req = request(
            "10.0.0.1:80",
            &[("forwarded", b"for=203.0.113.5;x=\"a\\\\\", for=10.0.0.2")],
        );
        assert_eq!(key_of(&fwd(), &req), Ok(ip("203.0.113.5")));
    }

    // ---- X-Real-IP ----

    #[test]
    fn x_real_ip_from_trusted_peer() {
        let extractor = behind(ForwardedHeader::XRealIp);
        let req = request("10.0.0.1:80", &[("x-real-ip", b" 203.0.113.5 ")]);
        assert_eq!(key_of(&extractor, &req), Ok(ip("203.0.113.5")));

        let trusted_value = request("10.0.0.1:80", &[("x-real-ip", b"10.0.0.5")]);
        assert_eq!(key_of(&extractor, &trusted_value), Ok(ip("10.0.0.5")));

        let v6 = request("10.0.0.1:80", &[("x-real-ip", b"[2001:db8::1]:80")]);
        assert_eq!(key_of(&extractor, &v6), Ok(ip("2001:db8::")));
    }

    #[test]
    fn x_real_ip_repeated_or_bad_is_malformed() {
        let extractor = behind(ForwardedHeader::XRealIp);
        let repeated = request(
            "10.0.0.1:80",
            &[("x-real-ip", b"203.0.113.5"), ("x-real-ip", b"203.0.113.6")],
        );
        assert_eq!(
            key_of(&extractor, &repeated),
            Err(malformed("header repeated"))
        );

        for value in [
            &b"203.0.113.5, 203.0.113.6"[..],
            b"nope",
            b"\xff",
            b"unknown",
        ] {
            let req = request("10.0.0.1:80", &[("x-real-ip", value)]);
            assert!(is_malformed(key_of(&extractor, &req)), "value {value:?}");
        }

        let huge = vec![b'1'; 10 * 1024];
        let req = request("10.0.0.1:80", &[("x-real-ip", &huge)]);
        assert!(is_malformed(key_of(&extractor, &req)));
    }

    #[test]
    fn only_the_chosen_header_is_read() {
        let req = request(
            "10.0.0.1:80",
            &[
                ("forwarded", b"for=203.0.113.5"),
                ("x-real-ip", b"203.0.113.6"),
            ],
        );
        assert_eq!(key_of(&xff(), &req), Ok(ip("10.0.0.1")));
        assert_eq!(key_of(&fwd(), &req), Ok(ip("203.0.113.5")));
    }
}
