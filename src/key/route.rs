//! Separate counters per route.

use std::net::IpAddr;

use super::identity::KeyRepr;
use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo};

const TAG_BYTES: u8 = 0;
const TAG_IPV4: u8 = 4;
const TAG_IPV6: u8 = 6;

/// Keys requests by method, route and an inner key, so each route has its
/// own counters per client.
///
/// The route is axum's `MatchedPath` when the request went through an axum
/// router (with the `axum` feature): the route template, so `/users/{id}`
/// is one route however many ids are requested. Otherwise it is the URI path,
/// which does give each distinct path its own counter.
///
/// The key is owned (one allocation per request): the method, a zero byte,
/// the route, a zero byte, then a tag byte and the inner key (the inner
/// key's bytes, or the 4 or 16 bytes of an IP address). Neither the method
/// nor a path holds a zero byte, and the tag keeps IP and byte keys apart.
/// A key over [`MAX_KEY_LEN`](super::MAX_KEY_LEN) is [`KeyError::TooLong`].
/// The inner identity's tier passes through; its errors are answered as they are.
///
/// ```
/// use std::net::SocketAddr;
/// use tollgate::key::{KeyExtractor, PeerAddr, PeerIp, RequestInfo, RouteAnd};
///
/// let extractor = RouteAnd::new(PeerIp::new());
/// let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
/// let request = http::Request::builder()
///     .method("POST")
///     .uri("/login")
///     .extension(PeerAddr(peer))
///     .body(())
///     .unwrap();
/// let identity = extractor.extract(&RequestInfo::new(&request)).unwrap();
/// assert_eq!(identity.key().as_bytes(), b"POST\0/login\0\x04\xc0\x00\x02\x01");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteAnd<E> {
    inner: E,
}

impl<E> RouteAnd<E> {
    /// Keys by route and `inner`'s key.
    pub fn new(inner: E) -> Self {
        Self { inner }
    }
}

impl<E: KeyExtractor> KeyExtractor for RouteAnd<E> {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let (inner, tier) = self.inner.extract(request)?.into_parts();
        let method = request.method().as_str().as_bytes();
        let route = route(request).as_bytes();
        let inner_len = match inner.repr() {
            KeyRepr::Ip(IpAddr::V4(_)) => 4,
            KeyRepr::Ip(IpAddr::V6(_)) => 16,
            KeyRepr::Bytes(bytes) => bytes.len(),
        };
        let mut key = Vec::with_capacity(method.len() + route.len() + 3 + inner_len);
        key.extend_from_slice(method);
        key.push(0);
        key.extend_from_slice(route);
        key.push(0);
        match inner.repr() {
            KeyRepr::Ip(IpAddr::V4(v4)) => {
                key.push(TAG_IPV4);
                key.extend_from_slice(&v4.octets());
            }
            KeyRepr::Ip(IpAddr::V6(v6)) => {
                key.push(TAG_IPV6);
                key.extend_from_slice(&v6.octets());
            }
            KeyRepr::Bytes(bytes) => {
                key.push(TAG_BYTES);
                key.extend_from_slice(bytes);
            }
        }
        let identity = Identity::new(Key::owned(key, "route key")?);
        Ok(match tier {
            Some(tier) => identity.with_tier(tier),
            None => identity,
        })
    }
}

/// The route template when axum matched one, else the URI path.
fn route<'r>(request: &RequestInfo<'r>) -> &'r str {
    #[cfg(feature = "axum")]
    if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
        return matched.as_str();
    }
    request.uri().path()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http::{Request, StatusCode};

    use super::super::{HeaderKey, KeyFn, PeerAddr, PeerIp, MAX_KEY_LEN};
    use super::*;

    fn request(method: &str, uri: &str, peer: &str) -> Request<()> {
        let peer: SocketAddr = peer.parse().expect("test socket address");
        Request::builder()
            .method(method)
            .uri(uri)
            .extension(PeerAddr(peer))
            .header("x-api-key", "k1")
            .body(())
            .expect("test request")
    }

    fn key_of(extractor: &impl KeyExtractor, req: &Request<()>) -> Result<Vec<u8>, KeyError> {
        extractor
            .extract(&RequestInfo::new(req))
            .map(|id| id.key().as_bytes().to_vec())
    }

    #[test]
    fn ipv4_and_ipv6_inner_keys() {
        let extractor = RouteAnd::new(PeerIp::new());
        let v4 = request("GET", "/a?q=1", "192.0.2.1:1");
        assert_eq!(
            key_of(&extractor, &v4),
            Ok(b"GET\0/a\0\x04\xc0\x00\x02\x01".to_vec())
        );
        let v6 = request("GET", "/a", "[2001:db8::1]:1");
        let mut expected = b"GET\0/a\0\x06".to_vec();
        expected.extend_from_slice(
            &"2001:db8::"
                .parse::<std::net::Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        assert_eq!(key_of(&extractor, &v6), Ok(expected));
    }

    #[test]
    fn byte_inner_key() {
        let extractor = RouteAnd::new(HeaderKey::new("x-api-key"));
        let req = request("DELETE", "/items/7", "192.0.2.1:1");
        assert_eq!(
            key_of(&extractor, &req),
            Ok(b"DELETE\0/items/7\0\0k1".to_vec())
        );
    }

    #[test]
    fn path_and_method_separate_keys_query_does_not() {
        let extractor = RouteAnd::new(PeerIp::new());
        let a = key_of(&extractor, &request("GET", "/a", "192.0.2.1:1"));
        assert_eq!(
            a,
            key_of(&extractor, &request("GET", "/a?x=2", "192.0.2.1:9"))
        );
        assert_ne!(a, key_of(&extractor, &request("GET", "/b", "192.0.2.1:1")));
        assert_ne!(a, key_of(&extractor, &request("POST", "/a", "192.0.2.1:1")));
        assert_ne!(a, key_of(&extractor, &request("GET", "/a", "192.0.2.2:1")));
    }

    #[test]
    fn ip_and_byte_inner_keys_never_collide() {
        // A byte key that spells an IPv4 key's bytes still differs by its tag.
        let ip_key = key_of(
            &RouteAnd::new(PeerIp::new()),
            &request("GET", "/", "192.0.2.1:1"),
        );
        let bytes_key = key_of(
            &RouteAnd::new(KeyFn::new(|_: &RequestInfo<'_>| {
                Key::owned(&b"\x04\xc0\x00\x02\x01"[..], "x").map(Identity::new)
            })),
            &request("GET", "/", "192.0.2.1:1"),
        );
        assert!(ip_key.is_ok());
        assert_ne!(ip_key, bytes_key);
    }

    #[test]
    fn tier_passes_through() {
        let extractor = RouteAnd::new(KeyFn::new(|_: &RequestInfo<'_>| {
            Key::owned("u1", "x").map(|k| Identity::new(k).with_tier("pro"))
        }));
        let req = request("GET", "/", "192.0.2.1:1");
        let identity = extractor.extract(&RequestInfo::new(&req)).expect("key");
        assert_eq!(identity.tier().map(|t| t.as_str()), Some("pro"));
        let plain = RouteAnd::new(PeerIp::new())
            .extract(&RequestInfo::new(&req))
            .expect("key");
        assert_eq!(plain.tier(), None);
    }

    #[test]
    fn inner_errors_pass_through() {
        let extractor = RouteAnd::new(HeaderKey::new("x-missing"));
        let req = request("GET", "/", "192.0.2.1:1");
        assert_eq!(
            key_of(&extractor, &req),
            Err(KeyError::Missing {
                what: "header",
                status: StatusCode::UNAUTHORIZED
            })
        );
    }

    #[test]
    fn long_path_is_too_long() {
        let uri = format!("/{}", "p".repeat(MAX_KEY_LEN));
        let req = request("GET", &uri, "192.0.2.1:1");
        assert!(matches!(
            key_of(&RouteAnd::new(PeerIp::new()), &req),
            Err(KeyError::TooLong {
                what: "route key",
                ..
            })
        ));
    }

    #[cfg(feature = "axum")]
    #[tokio::test]
    async fn axum_matched_path_is_the_route_template() {
        use axum::extract::Request as AxumRequest;
        use axum::routing::get;
        use tower::ServiceExt;

        async fn handler(request: AxumRequest) -> Vec<u8> {
            RouteAnd::new(PeerIp::new())
                .extract(&RequestInfo::new(&request))
                .map(|id| id.key().as_bytes().to_vec())
                .unwrap_or_default()
        }

        let app = axum::Router::new().route("/users/{id}", get(handler));
        let mut keys = Vec::new();
        for uri in ["/users/1", "/users/2"] {
            let request = Request::builder()
                .uri(uri)
                .extension(PeerAddr("192.0.2.1:1".parse().expect("addr")))
                .body(axum::body::Body::empty())
                .expect("test request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .expect("body");
            keys.push(body.to_vec());
        }
        assert_eq!(keys[0], b"GET\0/users/{id}\0\x04\xc0\x00\x02\x01".to_vec());
        assert_eq!(keys[0], keys[1]);
    }
}
