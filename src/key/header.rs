//! A request header's value as the key.

use http::{HeaderMap, HeaderName, StatusCode};

use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo};

/// Keys requests by the value of one header, such as `x-api-key`.
///
/// The key borrows the header's bytes: no allocation. The value must be one
/// field line of visible ASCII (`!` to `~`, no spaces), since a key is an
/// identifier:
///
/// - header absent: [`KeyError::Missing`] with status 401 (settable with
///   [`HeaderKey::missing_status`]), so [`KeyExtractor::or`] can fall back;
/// - header repeated, empty, or with other bytes: [`KeyError::Malformed`];
/// - longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN): [`KeyError::TooLong`].
///
/// ```
/// use tollgate::key::{HeaderKey, KeyError, KeyExtractor, RequestInfo};
///
/// let extractor = HeaderKey::new("x-tenant").missing_status(http::StatusCode::BAD_REQUEST);
/// let request = http::Request::builder().body(()).unwrap();
/// let err = extractor.extract(&RequestInfo::new(&request)).unwrap_err();
/// assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderKey {
    name: HeaderName,
    missing_status: StatusCode,
}

impl HeaderKey {
    /// Keys by the header `name`, a constant of the program such as `"x-api-key"`.
    ///
    /// # Panics
    ///
    /// When `name` is not a valid lowercase header name. The name is a
    /// constant, so this shows the first time the program runs, never per
    /// request; use [`HeaderKey::from_name`] with a checked [`HeaderName`]
    /// for names read from configuration.
    pub fn new(name: &'static str) -> Self {
        Self::from_name(HeaderName::from_static(name))
    }

    /// Keys by the header `name`.
    pub fn from_name(name: HeaderName) -> Self {
        Self {
            name,
            missing_status: StatusCode::UNAUTHORIZED,
        }
    }

    /// The status answered when the header is absent (default 401).
    #[must_use]
    pub fn missing_status(mut self, status: StatusCode) -> Self {
        self.missing_status = status;
        self
    }

    /// The header read.
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

impl KeyExtractor for HeaderKey {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let bytes =
            single_value(request.headers(), &self.name, "header")?.ok_or(KeyError::Missing {
                what: "header",
                status: self.missing_status,
            })?;
        Ok(Identity::new(visible_key(bytes, "header")?))
    }
}

/// The value of a header sent at most once; several field lines are
/// [`KeyError::Malformed`].
pub(crate) fn single_value<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    what: &'static str,
) -> Result<Option<&'h [u8]>, KeyError> {
    let mut lines = headers.get_all(name).iter();
    match (lines.next(), lines.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value.as_bytes())),
        (Some(_), Some(_)) => Err(KeyError::Malformed {
            what,
            reason: "header repeated",
        }),
    }
}

/// A borrowed key of visible ASCII bytes (`0x21..=0x7E`), with the checks
/// of [`Key::borrowed`].
pub(crate) fn visible_key<'r>(bytes: &'r [u8], what: &'static str) -> Result<Key<'r>, KeyError> {
    let key = Key::borrowed(bytes, what)?;
    if !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(KeyError::Malformed {
            what,
            reason: "not visible ASCII",
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Request};

    use super::super::MAX_KEY_LEN;
    use super::*;

    fn request(headers: &[(&str, &[u8])]) -> Request<()> {
        let mut builder = Request::builder();
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value).expect("test header value");
            builder = builder.header(*name, value);
        }
        builder.body(()).expect("test request")
    }

    fn key_bytes(extractor: &HeaderKey, request: &Request<()>) -> Result<Vec<u8>, KeyError> {
        let identity = extractor.extract(&RequestInfo::new(request))?;
        assert_eq!(identity.tier(), None);
        assert_eq!(identity.key().as_ip(), None);
        Ok(identity.key().as_bytes().to_vec())
    }

    #[test]
    fn reads_the_value_borrowed() {
        let req = request(&[("x-api-key", b"ak_0123")]);
        let info = RequestInfo::new(&req);
        let identity = HeaderKey::new("x-api-key").extract(&info).expect("key");
        let header = req.headers().get("x-api-key").expect("header").as_bytes();
        // Same memory as the header: borrowed, not copied.
        assert_eq!(identity.key().as_bytes().as_ptr(), header.as_ptr());
        assert_eq!(identity.key().as_bytes(), b"ak_0123");
    }

    #[test]
    fn from_name_reads_typed_names() {
        let req = request(&[("x-tenant", b"acme")]);
        let extractor = HeaderKey::from_name(HeaderName::from_static("x-tenant"));
        assert_eq!(extractor.name(), "x-tenant");
        assert_eq!(key_bytes(&extractor, &req), Ok(b"acme".to_vec()));
    }

    #[test]
    fn missing_is_401_by_default_and_settable() {
        let req = request(&[("x-other", b"v")]);
        let err = key_bytes(&HeaderKey::new("x-api-key"), &req).expect_err("missing");
        assert_eq!(
            err,
            KeyError::Missing {
                what: "header",
                status: StatusCode::UNAUTHORIZED
            }
        );
        let err = key_bytes(
            &HeaderKey::new("x-api-key").missing_status(StatusCode::FORBIDDEN),
            &req,
        )
        .expect_err("missing");
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn repeated_header_is_malformed() {
        let req = request(&[("x-api-key", b"a"), ("x-api-key", b"b")]);
        assert_eq!(
            key_bytes(&HeaderKey::new("x-api-key"), &req),
            Err(KeyError::Malformed {
                what: "header",
                reason: "header repeated"
            })
        );
    }

    #[test]
    fn empty_value_is_malformed() {
        let req = request(&[("x-api-key", b"")]);
        assert_eq!(
            key_bytes(&HeaderKey::new("x-api-key"), &req),
            Err(KeyError::Malformed {
                what: "header",
                reason: "empty value"
            })
        );
    }

    #[test]
    fn non_visible_bytes_are_malformed() {
        for value in [&b"\xff\xfe"[..], b"a b", b"tab\there", b"caf\xc3\xa9"] {
            let req = request(&[("x-api-key", value)]);
            assert_eq!(
                key_bytes(&HeaderKey::new("x-api-key"), &req),
                Err(KeyError::Malformed {
                    what: "header",
                    reason: "not visible ASCII"
                }),
                "value {value:?}"
            );
        }
    }

    #[test]
    fn oversized_value_is_too_long() {
        let value = vec![b'a'; 10 * 1024];
        let req = request(&[("x-api-key", &value)]);
        assert_eq!(
            key_bytes(&HeaderKey::new("x-api-key"), &req),
            Err(KeyError::TooLong {
                what: "header",
                len: 10 * 1024,
                max: MAX_KEY_LEN
            })
        );
        let value = vec![b'a'; MAX_KEY_LEN];
        let req = request(&[("x-api-key", &value)]);
        assert_eq!(key_bytes(&HeaderKey::new("x-api-key"), &req), Ok(value));
    }

    #[test]
    #[should_panic]
    fn invalid_constant_name_panics_at_construction() {
        let _ = HeaderKey::new("X-Api-Key");
    }
}
