//! A function as a key extractor.

use std::fmt;

use super::{Identity, KeyError, KeyExtractor, RequestInfo};

/// A key extractor made from a function of the request.
///
/// The function answers an owned [`Identity`] (`Identity<'static>`): build
/// the key with [`Key::owned`](super::Key::owned) or
/// [`Key::ip`](super::Key::ip). It must not panic on any input.
///
/// ```
/// use tollgate::key::{Identity, Key, KeyExtractor, KeyFn, RequestInfo};
///
/// let by_path = KeyFn::new(|req: &RequestInfo<'_>| {
///     Key::owned(req.uri().path(), "path").map(Identity::new)
/// });
/// let request = http::Request::builder().uri("/reports").body(()).unwrap();
/// let identity = by_path.extract(&RequestInfo::new(&request)).unwrap();
/// assert_eq!(identity.key().as_bytes(), b"/reports");
/// ```
#[derive(Clone)]
pub struct KeyFn<F> {
    f: F,
}

impl<F> KeyFn<F>
where
    F: Fn(&RequestInfo<'_>) -> Result<Identity<'static>, KeyError> + Send + Sync + 'static,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> fmt::Debug for KeyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFn").finish_non_exhaustive()
    }
}

impl<F> KeyExtractor for KeyFn<F>
where
    F: Fn(&RequestInfo<'_>) -> Result<Identity<'static>, KeyError> + Send + Sync + 'static,
{
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        (self.f)(request)
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, StatusCode};

    use super::super::Key;
    use super::*;

    #[test]
    fn closure_answers_identity_with_tier() {
        let extractor = KeyFn::new(|req: &RequestInfo<'_>| {
            let key = Key::owned(req.method().as_str(), "method")?;
            Ok(Identity::new(key).with_tier("gold"))
        });
        let req = Request::builder()
            .method("PUT")
            .body(())
            .expect("test request");
        let identity = extractor.extract(&RequestInfo::new(&req)).expect("key");
        assert_eq!(identity.key().as_bytes(), b"PUT");
        assert_eq!(identity.tier().map(|t| t.as_str()), Some("gold"));
    }

    #[test]
    fn closure_errors_pass_through() {
        let extractor = KeyFn::new(|_: &RequestInfo<'_>| {
            Err(KeyError::Missing {
                what: "tenant",
                status: StatusCode::FORBIDDEN,
            })
        });
        let req = Request::new(());
        assert_eq!(
            extractor.extract(&RequestInfo::new(&req)),
            Err(KeyError::Missing {
                what: "tenant",
                status: StatusCode::FORBIDDEN
            })
        );
        assert_eq!(format!("{extractor:?}"), "KeyFn { .. }");
    }

    #[test]
    fn fn_items_work_too() {
        fn by_path(req: &RequestInfo<'_>) -> Result<Identity<'static>, KeyError> {
            Key::owned(req.uri().path(), "path").map(Identity::new)
        }
        let extractor = KeyFn::new(by_path);
        let req = Request::builder()
            .uri("/a/b")
            .body(())
            .expect("test request");
        let identity = extractor.extract(&RequestInfo::new(&req)).expect("key");
        assert_eq!(identity.key().as_bytes(), b"/a/b");
    }
}
