//! An `Authorization: Bearer` token as the key.

use std::hash::{DefaultHasher, Hasher};

use http::header::AUTHORIZATION;
use http::StatusCode;

use super::header::single_value;
use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo};

/// Tokens up to this many bytes are the key as they are.
const MAX_PLAIN_LEN: usize = 64;
/// Longest token accepted, in bytes.
const MAX_TOKEN_LEN: usize = 8 * 1024;

const WHAT: &str = "bearer token";

/// Keys requests by their `Authorization: Bearer <token>` credential.
///
/// The scheme is matched without regard to case and the token must have
/// `token68` syntax (`[A-Za-z0-9-._~+/]+=*`, RFC 6750). The token is not
/// verified: that is the application's job, and rate limiting first keeps
/// floods of bad tokens from reaching it.
///
/// - No `Authorization` header, or another scheme (such as `Basic`):
///   [`KeyError::Missing`] with status 401, so [`KeyExtractor::or`] can
///   fall back to another key.
/// - Several `Authorization` field lines, an empty token or one with other
///   bytes: [`KeyError::Malformed`].
/// - A token over 8 KiB: [`KeyError::TooLong`].
///
/// Tokens up to 64 bytes are the key as they are, borrowed. Longer ones
/// (JWTs) are replaced by a 128-bit digest so the store never holds huge
/// keys: a zero byte followed by two 64-bit [`DefaultHasher`] hashes of the
/// token, one prefixed with byte 0 and one with byte 1. The digest is not
/// cryptographic and is only stable within one build of the program (the
/// standard library may change its hasher): do not share such keys between
/// processes running different builds, for example through a shared store
/// during a rolling deploy. Its leading zero byte keeps it apart from every
/// short token, which cannot contain one.
///
/// ```
/// use tollgate::key::{BearerToken, KeyExtractor, RequestInfo};
///
/// let request = http::Request::builder()
///     .header("authorization", "bearer abc.DEF-123")
///     .body(())
///     .unwrap();
/// let identity = BearerToken::new().extract(&RequestInfo::new(&request)).unwrap();
/// assert_eq!(identity.key().as_bytes(), b"abc.DEF-123");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BearerToken {
    _private: (),
}

impl BearerToken {
    /// Reads the bearer token.
    pub fn new() -> Self {
        Self::default()
    }
}

impl KeyExtractor for BearerToken {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        const MISSING: KeyError = KeyError::Missing {
            what: WHAT,
            status: StatusCode::UNAUTHORIZED,
        };
        let value = single_value(request.headers(), &AUTHORIZATION, WHAT)?.ok_or(MISSING)?;
        let (scheme, token) = match value.iter().position(|&b| b == b' ') {
            Some(space) => (
                value.get(..space).unwrap_or_default(),
                value.get(space + 1..).unwrap_or_default(),
            ),
            None => (value, &[][..]),
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return Err(MISSING);
        }
        let token = token.trim_ascii();
        if token.len() > MAX_TOKEN_LEN {
            return Err(KeyError::TooLong {
                what: WHAT,
                len: token.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if token.is_empty() {
            return Err(KeyError::Malformed {
                what: WHAT,
                reason: "empty token",
            });
        }
        if !is_token68(token) {
            return Err(KeyError::Malformed {
                what: WHAT,
                reason: "not token68 syntax",
            });
        }
        let key = if token.len() <= MAX_PLAIN_LEN {
            Key::borrowed(token, WHAT)?
        } else {
            Key::owned(digest(token), WHAT)?
        };
        Ok(Identity::new(key))
    }
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_token68(token: &[u8]) -> bool {
    let body_len = token
        .iter()
        .position(|&b| {
            !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
        })
        .unwrap_or(token.len());
    let padding = token.get(body_len..).unwrap_or_default();
    body_len > 0 && padding.iter().all(|&b| b == b'=')
}

/// A zero tag byte and two 64-bit hashes of `token`: 17 bytes.
fn digest(token: &[u8]) -> [u8; 17] {
    let hash = |prefix: u8| {
        let mut hasher = DefaultHasher::new();
        hasher.write_u8(prefix);
        hasher.write(token);
        hasher.finish().to_le_bytes()
    };
    let (first, second) = (hash(0), hash(1));
    let mut out = [0u8; 17];
    for (slot, byte) in out
        .iter_mut()
        .skip(1)
        .zip(first.iter().chain(second.iter()))
    {
        *slot = *byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Request};

    use super::*;

    fn request(headers: &[(&str, &[u8])]) -> Request<()> {
        let mut builder = Request::builder();
        for (name, value) in headers {
            let value = HeaderValue::from_bytes(value).expect("test header value");
            builder = builder.header(*name, value);
        }
        builder.body(()).expect("test request")
    }

    fn key_of(auth: &[u8]) -> Result<Vec<u8>, KeyError> {
        let req = request(&[("authorization", auth)]);
        let identity = BearerToken::new().extract(&RequestInfo::new(&req))?;
        assert_eq!(identity.tier(), None);
        Ok(identity.key().as_bytes().to_vec())
    }

    fn malformed(reason: &'static str) -> KeyError {
        KeyError::Malformed { what: WHAT, reason }
    }

    const MISSING: KeyError = KeyError::Missing {
        what: WHAT,
        status: StatusCode::UNAUTHORIZED,
    };

    #[test]
    fn reads_the_token_with_any_scheme_case() {
        for auth in [
            &b"Bearer tok_123"[..],
            b"bearer tok_123",
            b"BEARER tok_123",
            b"BeArEr  tok_123 ",
        ] {
            assert_eq!(key_of(auth), Ok(b"tok_123".to_vec()), "{auth:?}");
        }
    }

    #[test]
    fn token68_syntax_is_enforced() {
        assert_eq!(key_of(b"Bearer aZ09-._~+/=="), Ok(b"aZ09-._~+/==".to_vec()));
        for auth in [
            &b"Bearer a b"[..],
            b"Bearer a=b",
            b"Bearer ==",
            b"Bearer tok\"en",
            b"Bearer tok,en",
            b"Bearer \xff\xfe",
        ] {
            assert_eq!(
                key_of(auth),
                Err(malformed("not token68 syntax")),
                "{auth:?}"
            );
        }
    }

    #[test]
    fn empty_token_is_malformed() {
        assert_eq!(key_of(b"Bearer"), Err(malformed("empty token")));
        assert_eq!(key_of(b"Bearer    "), Err(malformed("empty token")));
    }

    #[test]
    fn missing_header_or_other_scheme_is_missing() {
        let req = request(&[]);
        let err = BearerToken::new()
            .extract(&RequestInfo::new(&req))
            .expect_err("no header");
        assert_eq!(err, MISSING);
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(key_of(b"Basic dXNlcjpwYXNz"), Err(MISSING));
        assert_eq!(key_of(b"Bearertoken"), Err(MISSING));
        assert_eq!(key_of(b"\xff\xfe token"), Err(MISSING));
    }

    #[test]
    fn repeated_authorization_is_malformed() {
        let req = request(&[
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer b"),
        ]);
        assert_eq!(
            BearerToken::new().extract(&RequestInfo::new(&req)),
            Err(KeyError::Malformed {
                what: WHAT,
                reason: "header repeated"
            })
        );
    }

    #[test]
    fn short_tokens_are_borrowed() {
        let token = "a".repeat(MAX_PLAIN_LEN);
        let auth = format!("Bearer {token}");
        let req = request(&[("authorization", auth.as_bytes())]);
        let identity = BearerToken::new()
            .extract(&RequestInfo::new(&req))
            .expect("token");
        let header = req
            .headers()
            .get("authorization")
            .expect("header")
            .as_bytes();
        assert_eq!(identity.key().as_bytes(), token.as_bytes());
        assert_eq!(identity.key().as_bytes().as_ptr(), header[7..].as_ptr());
    }

    #[test]
    fn long_jwt_is_digested_deterministically_and_distinctly() {
        let jwt = format!(
            "eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl",
            "eyJzdWIiOiIxMjM0NTY3ODkwIn0".repeat(40)
        );
        let other = format!("{jwt}x");
        let a = key_of(format!("Bearer {jwt}").as_bytes()).expect("jwt");
        let b = key_of(format!("bearer {jwt}").as_bytes()).expect("jwt");
        let c = key_of(format!("Bearer {other}").as_bytes()).expect("jwt");
        assert_eq!(a.len(), 17);
        assert_eq!(a.first(), Some(&0));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, digest(jwt.as_bytes()).to_vec());
        // The two halves are different hashes.
        assert_ne!(a[1..9], a[9..17]);
    }

    #[test]
    fn just_over_the_plain_limit_is_digested() {
        let token = "b".repeat(MAX_PLAIN_LEN + 1);
        let key = key_of(format!("Bearer {token}").as_bytes()).expect("token");
        assert_eq!(key, digest(token.as_bytes()).to_vec());
    }

    #[test]
    fn token_up_to_8_kib_works_and_longer_is_too_long() {
        let token = "c".repeat(MAX_TOKEN_LEN);
        assert_eq!(
            key_of(format!("Bearer {token}").as_bytes()).map(|k| k.len()),
            Ok(17)
        );
        let token = "c".repeat(10 * 1024);
        assert_eq!(
            key_of(format!("Bearer {token}").as_bytes()),
            Err(KeyError::TooLong {
                what: WHAT,
                len: 10 * 1024,
                max: MAX_TOKEN_LEN
            })
        );
    }

    #[test]
    fn or_falls_back_on_basic_auth() {
        use super::super::HeaderKey;
        let extractor = BearerToken::new().or(HeaderKey::new("x-api-key"));
        let req = request(&[
            ("authorization", b"Basic dXNlcjpwYXNz"),
            ("x-api-key", b"k1"),
        ]);
        let identity = extractor
            .extract(&RequestInfo::new(&req))
            .expect("fallback");
        assert_eq!(identity.key().as_bytes(), b"k1");
    }
}
