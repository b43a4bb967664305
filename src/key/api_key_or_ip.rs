//! An API key with its tier, or the client IP for anonymous requests.

use std::fmt;

use http::HeaderName;

use super::header::{single_value, visible_key};
use super::{ClientIp, Identity, Key, KeyError, KeyExtractor, RequestInfo, TierName};

const WHAT: &str = "API key";

/// Keys requests by API key, with the tier the key's plan names, and
/// anonymous requests by client IP.
///
/// When the API key header (`x-api-key` by default) is present it must be
/// one field line of visible ASCII ([`KeyError::Malformed`] otherwise, and
/// [`KeyError::TooLong`] past [`MAX_KEY_LEN`](super::MAX_KEY_LEN)). The
/// resolver maps it to a tier; a key it does not know is
/// [`KeyError::Unknown`] (401, not counted). A known key is the key,
/// borrowed from the header, with the resolver's tier.
///
/// Without the header, the key is the client IP from a [`ClientIp`]
/// (by default the peer address, trusting no proxy) with the tier
/// `"anonymous"`. An API key and an IP never share counters: one is a byte
/// key, the other an IP key.
///
/// ```
/// use std::net::SocketAddr;
/// use tollgate::key::{ApiKeyOrIp, KeyExtractor, PeerAddr, RequestInfo};
///
/// let extractor = ApiKeyOrIp::new(|key: &str| match key {
///     "ak_pro_1" => Some("pro"),
///     _ => None,
/// });
/// let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
/// let request = http::Request::builder()
///     .header("x-api-key", "ak_pro_1")
///     .extension(PeerAddr(peer))
///     .body(())
///     .unwrap();
/// let identity = extractor.extract(&RequestInfo::new(&request)).unwrap();
/// assert_eq!(identity.key().as_bytes(), b"ak_pro_1");
/// assert_eq!(identity.tier().unwrap().as_str(), "pro");
///
/// let anonymous = http::Request::builder().extension(PeerAddr(peer)).body(()).unwrap();
/// let identity = extractor.extract(&RequestInfo::new(&anonymous)).unwrap();
/// assert_eq!(identity.key().as_ip(), Some(peer.ip()));
/// assert_eq!(identity.tier().unwrap().as_str(), "anonymous");
/// ```
#[derive(Clone)]
pub struct ApiKeyOrIp<F> {
    resolve: F,
    header: HeaderName,
    client_ip: ClientIp,
    anonymous_tier: TierName<'static>,
}

impl<F> ApiKeyOrIp<F> {
    /// Resolves API keys read from `x-api-key` with `resolve`, which answers
    /// the key's tier or `None` for a key it does not know.
    pub fn new<T>(resolve: F) -> Self
    where
        F: Fn(&str) -> Option<T> + Send + Sync + 'static,
        T: Into<TierName<'static>>,
    {
        Self {
            resolve,
            header: HeaderName::from_static("x-api-key"),
            client_ip: ClientIp::new(),
            anonymous_tier: TierName::from("anonymous"),
        }
    }

    /// Reads the API key from this header instead of `x-api-key`.
    #[must_use]
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Finds the client IP of anonymous requests with this [`ClientIp`]
    /// (default: the peer address).
    #[must_use]
    pub fn client_ip(mut self, client_ip: ClientIp) -> Self {
        self.client_ip = client_ip;
        self
    }

    /// The tier of anonymous requests (default `"anonymous"`).
    ///
    /// The name is cloned per anonymous request: free for a `&'static str`,
    /// one allocation for a `String`.
    #[must_use]
    pub fn anonymous_tier(mut self, tier: impl Into<TierName<'static>>) -> Self {
        self.anonymous_tier = tier.into();
        self
    }
}

impl<F> fmt::Debug for ApiKeyOrIp<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyOrIp")
            .field("header", &self.header)
            .field("client_ip", &self.client_ip)
            .field("anonymous_tier", &self.anonymous_tier)
            .finish_non_exhaustive()
    }
}

impl<F, T> KeyExtractor for ApiKeyOrIp<F>
where
    F: Fn(&str) -> Option<T> + Send + Sync + 'static,
    T: Into<TierName<'static>>,
{
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let Some(bytes) = single_value(request.headers(), &self.header, WHAT)? else {
            let ip = self.client_ip.extract(request)?;
            return Ok(ip.with_tier(self.anonymous_tier.clone()));
        };
        let key: Key<'r> = visible_key(bytes, WHAT)?;
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Malformed {
            what: WHAT,
            reason: "not visible ASCII",
        })?;
        let tier: TierName<'static> = (self.resolve)(text)
            .ok_or(KeyError::Unknown { what: WHAT })?
            .into();
        Ok(Identity::new(key).with_tier(tier))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use http::{HeaderValue, Request, StatusCode};

    use super::super::{PeerAddr, TrustedProxies, MAX_KEY_LEN};
    use super::*;

    fn request(peer: Option<&str>, headers: &[(&str, &[u8])]) -> Request<()> {
        let mut builder = Request::builder();
        if let Some(peer) = peer {
            let peer: SocketAddr = peer.parse().expect("test socket address");
            builder = builder.extension(PeerAddr(peer));
        }
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value).expect("test header value");
            builder = builder.header(*name, value);
        }
        builder.body(()).expect("test request")
    }

    fn resolver(key: &str) -> Option<&'static str> {
        match key {
            "ak_pro" => Some("pro"),
            "ak_free" => Some("free"),
            _ => None,
        }
    }

    type Outcome = Result<(Option<IpAddr>, Vec<u8>, Option<String>), KeyError>;

    fn run<F, T>(extractor: &ApiKeyOrIp<F>, req: &Request<()>) -> Outcome
    where
        F: Fn(&str) -> Option<T> + Send + Sync + 'static,
        T: Into<TierName<'static>>,
    {
        let identity = extractor.extract(&RequestInfo::new(req))?;
        Ok((
            identity.key().as_ip(),
            identity.key().as_bytes().to_vec(),
            identity.tier().map(|t| t.as_str().to_owned()),
        ))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn known_key_gets_its_tier_and_borrows_the_header() {
        let extractor = ApiKeyOrIp::new(resolver);
        let req = request(Some("192.0.2.1:1"), &[("x-api-key", b"ak_pro")]);
        assert_eq!(
            run(&extractor, &req),
            Ok((None, b"ak_pro".to_vec(), Some("pro".to_owned())))
        );
        let identity = extractor.extract(&RequestInfo::new(&req)).expect("key");
        let header = req.headers().get("x-api-key").expect("header").as_bytes();
        assert_eq!(identity.key().as_bytes().as_ptr(), header.as_ptr());
    }

    #[test]
    fn unknown_key_is_unknown_401() {
        let extractor = ApiKeyOrIp::new(resolver);
        let req = request(Some("192.0.2.1:1"), &[("x-api-key", b"ak_nope")]);
        let err = run(&extractor, &req).expect_err("unknown");
        assert_eq!(err, KeyError::Unknown { what: WHAT });
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn absent_key_falls_back_to_peer_ip_as_anonymous() {
        let extractor = ApiKeyOrIp::new(resolver);
        let req = request(
            Some("[2001:db8:1:2::77]:1"),
            &[("x-forwarded-for", b"1.1.1.1")],
        );
        assert_eq!(
            run(&extractor, &req),
            Ok((
                Some(ip("2001:db8:1:2::")),
                Vec::new(),
                Some("anonymous".to_owned())
            ))
        );
    }

    #[test]
    fn anonymous_without_peer_is_missing_500() {
        let extractor = ApiKeyOrIp::new(resolver);
        let err = run(&extractor, &request(None, &[])).expect_err("no peer");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn settable_header_client_ip_and_anonymous_tier() {
        let extractor = ApiKeyOrIp::new(|key: &str| (key == "k").then(|| String::from("gold")))
            .header(HeaderName::from_static("x-key"))
            .client_ip(ClientIp::new().trust(TrustedProxies::new(["10.0.0.0/8"]).expect("proxies")))
            .anonymous_tier(String::from("guest"));
        let keyed = request(
            Some("10.0.0.1:1"),
            &[("x-key", b"k"), ("x-api-key", b"zzz")],
        );
        assert_eq!(
            run(&extractor, &keyed),
            Ok((None, b"k".to_vec(), Some("gold".to_owned())))
        );
        let anonymous = request(
            Some("10.0.0.1:1"),
            &[("x-api-key", b"k"), ("x-forwarded-for", b"203.0.113.5")],
        );
        assert_eq!(
            run(&extractor, &anonymous),
            Ok((
                Some(ip("203.0.113.5")),
                Vec::new(),
                Some("guest".to_owned())
            ))
        );
    }

    #[test]
    fn bad_key_values_are_malformed_not_anonymous() {
        let extractor = ApiKeyOrIp::new(resolver);
        for value in [&b"\xff\xfe"[..], b"ak pro", b"caf\xc3\xa9"] {
            let req = request(Some("192.0.2.1:1"), &[("x-api-key", value)]);
            assert_eq!(
                run(&extractor, &req),
                Err(KeyError::Malformed {
                    what: WHAT,
                    reason: "not visible ASCII"
                }),
                "value {value:?}"
            );
        }
        let empty = request(Some("192.0.2.1:1"), &[("x-api-key", b"")]);
        assert!(matches!(
            run(&extractor, &empty),
            Err(KeyError::Malformed { .. })
        ));

        let repeated = request(
            Some("192.0.2.1:1"),
            &[("x-api-key", b"ak_pro"), ("x-api-key", b"ak_free")],
        );
        assert_eq!(
            run(&extractor, &repeated),
            Err(KeyError::Malformed {
                what: WHAT,
                reason: "header repeated"
            })
        );
    }

    #[test]
    fn oversized_key_is_too_long_before_resolving() {
        let extractor = ApiKeyOrIp::new(|_: &str| -> Option<&'static str> {
            panic!("resolver must not see oversized keys")
        });
        let value = vec![b'k'; 10 * 1024];
        let req = request(Some("192.0.2.1:1"), &[("x-api-key", &value)]);
        assert_eq!(
            run(&extractor, &req),
            Err(KeyError::TooLong {
                what: WHAT,
                len: 10 * 1024,
                max: MAX_KEY_LEN
            })
        );
    }

    #[test]
    fn api_key_and_ip_keys_are_distinct() {
        let extractor = ApiKeyOrIp::new(|_: &str| Some("any"));
        let keyed = request(Some("192.0.2.1:1"), &[("x-api-key", b"192.0.2.1")]);
        let anonymous = request(Some("192.0.2.1:1"), &[]);
        let by_key = extractor.extract(&RequestInfo::new(&keyed)).expect("key");
        let by_ip = extractor
            .extract(&RequestInfo::new(&anonymous))
            .expect("ip");
        assert_ne!(by_key.key(), by_ip.key());
        assert_eq!(by_key.key().as_ip(), None);
        assert_eq!(by_ip.key().as_ip(), Some(ip("192.0.2.1")));
    }

    #[test]
    fn debug_does_not_need_debug_resolver() {
        let extractor = ApiKeyOrIp::new(resolver);
        assert!(format!("{extractor:?}").contains("x-api-key"));
    }
}
