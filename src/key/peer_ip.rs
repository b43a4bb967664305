//! The connection's peer address as the key.

use std::net::{IpAddr, SocketAddr};

use http::{Extensions, StatusCode};

use super::ip_group::IpGrouping;
use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo};

/// The address of the connection a request came in on.
///
/// Servers built directly on hyper insert it into each request's extensions
/// so [`PeerIp`] and [`ClientIp`](super::ClientIp) can read it; axum's
/// `ConnectInfo<SocketAddr>`, tonic's `TcpConnectInfo` and a bare
/// `SocketAddr` extension are read too.
///
/// ```
/// use std::net::SocketAddr;
/// use tollgate::key::PeerAddr;
///
/// let peer: SocketAddr = "192.0.2.10:51000".parse().unwrap();
/// let request = http::Request::builder()
///     .extension(PeerAddr(peer))
///     .body(())
///     .unwrap();
/// assert_eq!(request.extensions().get::<PeerAddr>(), Some(&PeerAddr(peer)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        PeerAddr(addr)
    }
}

/// Keys requests by the IP address of the connection's peer.
///
/// The address is read from the request extensions, in this order:
/// [`PeerAddr`], axum's `ConnectInfo<SocketAddr>` (with the `axum` feature),
/// the remote address of tonic's `TcpConnectInfo` (with the `tonic` feature;
/// tonic's server records it for plain TCP connections, not for TLS ones,
/// where a `map_request` layer can insert a [`PeerAddr`]) and a bare
/// `SocketAddr`. When none is there the server was not set up to record
/// it, and the request fails with [`KeyError::Missing`] and status 500.
///
/// Behind a reverse proxy every request has the proxy's address; use
/// [`ClientIp`](super::ClientIp) there.
///
/// Addresses are grouped by prefix: IPv4 addresses are kept whole (/32) and
/// IPv6 addresses are cut to their /64 by default, since one subscriber
/// usually holds a whole /64. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`)
/// count as the IPv4 address.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use tollgate::key::{KeyExtractor, PeerAddr, PeerIp, RequestInfo};
///
/// let peer: SocketAddr = "[2001:db8:1:2:aaaa::1]:443".parse().unwrap();
/// let request = http::Request::builder()
///     .extension(PeerAddr(peer))
///     .body(())
///     .unwrap();
/// let identity = PeerIp::new().extract(&RequestInfo::new(&request)).unwrap();
/// let expected: IpAddr = "2001:db8:1:2::".parse().unwrap();
/// assert_eq!(identity.key().as_ip(), Some(expected));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerIp {
    grouping: IpGrouping,
}

impl PeerIp {
    /// Keys by peer address, IPv4 whole and IPv6 by /64.
    pub fn new() -> Self {
        Self::default()
    }

    /// Groups IPv6 addresses by their first `prefix` bits (default 64).
    ///
    /// Values above 128 are clamped to 128 (every address its own key);
    /// 0 puts all IPv6 clients in one key.
    #[must_use]
    pub fn ipv6_prefix(mut self, prefix: u8) -> Self {
        self.grouping = self.grouping.with_v6(prefix);
        self
    }

    /// Groups IPv4 addresses by their first `prefix` bits (default 32).
    ///
    /// Values above 32 are clamped to 32 (every address its own key);
    /// 0 puts all IPv4 clients in one key.
    #[must_use]
    pub fn ipv4_prefix(mut self, prefix: u8) -> Self {
        self.grouping = self.grouping.with_v4(prefix);
        self
    }
}

impl KeyExtractor for PeerIp {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let peer = peer_addr(request.extensions()).ok_or(MISSING_PEER)?;
        Ok(Identity::new(Key::ip(self.grouping.apply(peer))))
    }
}

/// The error when the server recorded no peer address.
pub(crate) const MISSING_PEER: KeyError = KeyError::Missing {
    what: "peer address",
    status: StatusCode::INTERNAL_SERVER_ERROR,
};

/// The peer IP from the request extensions, as recorded by the server.
pub(crate) fn peer_addr(ext: &Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = ext.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        ext.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = ext
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(addr.ip());
    }
    ext.get::<SocketAddr>().map(SocketAddr::ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    fn sock(s: &str) -> SocketAddr {
        s.parse().expect("test socket address")
    }

    fn extract_with(extractor: &PeerIp, ext: Extensions) -> Result<Identity<'static>, KeyError> {
        let mut request = http::Request::new(());
        *request.extensions_mut() = ext;
        extractor
            .extract(&RequestInfo::new(&request))
            .map(|id| Identity::new(id.key().clone().into_owned()))
    }

    fn ext_with<T: Clone + Send + Sync + 'static>(value: T) -> Extensions {
        let mut ext = Extensions::new();
        ext.insert(value);
        ext
    }

    #[test]
    fn reads_peer_addr() {
        let got = extract_with(&PeerIp::new(), ext_with(PeerAddr(sock("192.0.2.1:1234"))));
        assert_eq!(got, Ok(Identity::new(Key::ip(ip("192.0.2.1")))));
    }

    #[test]
    fn reads_bare_socket_addr() {
        let got = extract_with(&PeerIp::new(), ext_with(sock("198.51.100.7:80")));
        assert_eq!(got, Ok(Identity::new(Key::ip(ip("198.51.100.7")))));
    }

    #[cfg(feature = "axum")]
    #[test]
    fn reads_axum_connect_info() {
        let info = axum::extract::ConnectInfo(sock("203.0.113.9:5555"));
        let got = extract_with(&PeerIp::new(), ext_with(info));
        assert_eq!(got, Ok(Identity::new(Key::ip(ip("203.0.113.9")))));
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn reads_tonic_connect_info() {
        let info = tonic::transport::server::TcpConnectInfo {
            local_addr: Some(sock("127.0.0.1:50051")),
            remote_addr: Some(sock("203.0.113.44:6000")),
        };
        let got = extract_with(&PeerIp::new(), ext_with(info));
        assert_eq!(got, Ok(Identity::new(Key::ip(ip("203.0.113.44")))));
        let unknown = tonic::transport::server::TcpConnectInfo {
            local_addr: Some(sock("127.0.0.1:50051")),
            remote_addr: None,
        };
        let mut ext = ext_with(unknown);
        assert_eq!(peer_addr(&ext), None, "no remote address recorded");
        ext.insert(sock("198.51.100.7:80"));
        assert_eq!(peer_addr(&ext), Some(ip("198.51.100.7")));
    }

    #[test]
    fn peer_addr_wins_over_other_extensions() {
        let mut ext = ext_with(sock("198.51.100.7:80"));
        ext.insert(PeerAddr(sock("192.0.2.1:1")));
        #[cfg(feature = "axum")]
        ext.insert(axum::extract::ConnectInfo(sock("203.0.113.9:1")));
        assert_eq!(peer_addr(&ext), Some(ip("192.0.2.1")));
    }

    #[cfg(feature = "axum")]
    #[test]
    fn connect_info_wins_over_bare_socket_addr() {
        let mut ext = ext_with(sock("198.51.100.7:80"));
        ext.insert(axum::extract::ConnectInfo(sock("203.0.113.9:1")));
        assert_eq!(peer_addr(&ext), Some(ip("203.0.113.9")));
    }

    #[test]
    fn missing_peer_is_500() {
        let got = extract_with(&PeerIp::new(), Extensions::new());
        let err = got.expect_err("no peer address");
        assert_eq!(
            err,
            KeyError::Missing {
                what: "peer address",
                status: StatusCode::INTERNAL_SERVER_ERROR
            }
        );
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn ipv6_same_64_is_one_key_other_64_differs() {
        let p = PeerIp::new();
        let a = extract_with(&p, ext_with(PeerAddr(sock("[2001:db8:0:1::1]:1"))));
        let b = extract_with(&p, ext_with(PeerAddr(sock("[2001:db8:0:1:ffff::9]:2"))));
        let c = extract_with(&p, ext_with(PeerAddr(sock("[2001:db8:0:2::1]:1"))));
        assert_eq!(a, Ok(Identity::new(Key::ip(ip("2001:db8:0:1::")))));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn prefixes_are_settable() {
        let p = PeerIp::new().ipv4_prefix(24).ipv6_prefix(48);
        let v4 = extract_with(&p, ext_with(PeerAddr(sock("192.0.2.200:1"))));
        let v6 = extract_with(&p, ext_with(PeerAddr(sock("[2001:db8:7:1::1]:1"))));
        assert_eq!(v4, Ok(Identity::new(Key::ip(ip("192.0.2.0")))));
        assert_eq!(v6, Ok(Identity::new(Key::ip(ip("2001:db8:7::")))));
    }

    #[test]
    fn prefixes_are_clamped() {
        let p = PeerIp::new().ipv4_prefix(99).ipv6_prefix(255);
        let v4 = extract_with(&p, ext_with(PeerAddr(sock("192.0.2.200:1"))));
        let v6 = extract_with(&p, ext_with(PeerAddr(sock("[2001:db8::5]:1"))));
        assert_eq!(v4, Ok(Identity::new(Key::ip(ip("192.0.2.200")))));
        assert_eq!(v6, Ok(Identity::new(Key::ip(ip("2001:db8::5")))));
    }

    #[test]
    fn ipv4_mapped_peer_is_keyed_as_ipv4() {
        let got = extract_with(
            &PeerIp::new(),
            ext_with(PeerAddr(sock("[::ffff:192.0.2.33]:8080"))),
        );
        assert_eq!(got, Ok(Identity::new(Key::ip(ip("192.0.2.33")))));
    }
}
