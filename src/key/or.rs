//! Falling back to a second extractor.

use super::{Identity, KeyError, KeyExtractor, RequestInfo};

/// Answers the first extractor's identity, or the second's when the first
/// finds no key ([`KeyError::Missing`]). Every other error of the first is
/// answered as it is: a malformed credential does not silently become an
/// anonymous request.
///
/// Usually built with [`KeyExtractor::or`].
///
/// ```
/// use std::net::SocketAddr;
/// use tollgate::key::{BearerToken, KeyExtractor, PeerAddr, PeerIp, RequestInfo};
///
/// let extractor = BearerToken::new().or(PeerIp::new());
/// let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
/// let request = http::Request::builder()
///     .extension(PeerAddr(peer))
///     .body(())
///     .unwrap();
/// let identity = extractor.extract(&RequestInfo::new(&request)).unwrap();
/// assert_eq!(identity.key().as_ip(), Some(peer.ip()));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Or<A, B> {
    first: A,
    second: B,
}

impl<A, B> Or<A, B> {
    /// Tries `first`, then `second` when `first` finds no key.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

impl<A: KeyExtractor, B: KeyExtractor> KeyExtractor for Or<A, B> {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        match self.first.extract(request) {
            Err(KeyError::Missing { .. }) => self.second.extract(request),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, StatusCode};

    use super::super::{HeaderKey, Key, KeyFn};
    use super::*;

    fn fixed(result: Result<&'static str, KeyError>) -> impl KeyExtractor {
        KeyFn::new(move |_: &RequestInfo<'_>| {
            result
                .clone()
                .and_then(|k| Key::owned(k, "fixed"))
                .map(Identity::new)
        })
    }

    fn run(extractor: &impl KeyExtractor) -> Result<Vec<u8>, KeyError> {
        let req = Request::new(());
        extractor
            .extract(&RequestInfo::new(&req))
            .map(|id| id.key().as_bytes().to_vec())
    }

    const MISSING: KeyError = KeyError::Missing {
        what: "x",
        status: StatusCode::UNAUTHORIZED,
    };

    #[test]
    fn first_identity_wins() {
        let or = Or::new(fixed(Ok("a")), fixed(Ok("b")));
        assert_eq!(run(&or), Ok(b"a".to_vec()));
    }

    #[test]
    fn missing_falls_back() {
        let or = Or::new(fixed(Err(MISSING)), fixed(Ok("b")));
        assert_eq!(run(&or), Ok(b"b".to_vec()));
    }

    #[test]
    fn second_error_is_answered_when_both_miss() {
        let second = KeyError::Missing {
            what: "y",
            status: StatusCode::INTERNAL_SERVER_ERROR,
        };
        let or = Or::new(fixed(Err(MISSING)), fixed(Err(second.clone())));
        assert_eq!(run(&or), Err(second));
    }

    #[test]
    fn other_errors_do_not_fall_back() {
        for err in [
            KeyError::Malformed {
                what: "x",
                reason: "bad",
            },
            KeyError::TooLong {
                what: "x",
                len: 600,
                max: 512,
            },
            KeyError::Unknown { what: "x" },
        ] {
            let or = Or::new(fixed(Err(err.clone())), fixed(Ok("b")));
            assert_eq!(run(&or), Err(err));
        }
    }

    #[test]
    fn trait_method_builds_the_same() {
        let extractor = HeaderKey::new("x-a").or(HeaderKey::new("x-b"));
        let req = Request::builder()
            .header("x-b", "kb")
            .body(())
            .expect("test request");
        let identity = extractor.extract(&RequestInfo::new(&req)).expect("key");
        assert_eq!(identity.key().as_bytes(), b"kb");

        let req = Request::builder()
            .header("x-a", "")
            .header("x-b", "kb")
            .body(())
            .expect("test request");
        assert!(matches!(
            extractor.extract(&RequestInfo::new(&req)),
            Err(KeyError::Malformed { .. })
        ));
    }
}
