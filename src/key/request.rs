use http::{Extensions, HeaderMap, Method, Request, Uri};

/// The parts of a request a [`KeyExtractor`](super::KeyExtractor) may read.
///
/// Built from any `http::Request<B>` without copying: it holds four borrows,
/// so extractors need not be generic over the body type.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'r> {
    method: &'r Method,
    uri: &'r Uri,
    headers: &'r HeaderMap,
    extensions: &'r Extensions,
}

impl<'r> RequestInfo<'r> {
    /// Borrows the parts of `request`.
    pub fn new<B>(request: &'r Request<B>) -> Self {
        Self {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// Borrows the parts of a request taken apart with `into_parts`.
    pub fn from_parts(parts: &'r http::request::Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    /// The request method.
    pub fn method(&self) -> &'r Method {
        self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &'r Uri {
        self.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &'r HeaderMap {
        self.headers
    }

    /// The request extensions (where servers put the peer address).
    pub fn extensions(&self) -> &'r Extensions {
        self.extensions
    }
}
