//! Who a request is counted against: the [`KeyExtractor`] trait and its built-ins.
//!
//! An extractor reads a request and answers an [`Identity`]: the [`Key`] whose
//! counters the request charges, and optionally the name of the tier (plan)
//! the request belongs to. A request whose key cannot be read gets a typed
//! [`KeyError`], which the layer answers with a response (400, 401 or 500 by
//! default); it is never counted against a shared empty key.
//!
//! ```
//! use tollgate::key::{HeaderKey, KeyExtractor, RequestInfo};
//!
//! let extractor = HeaderKey::new("x-api-key");
//! let request = http::Request::builder()
//!     .header("x-api-key", "ak_0123456789abcdef")
//!     .body(())
//!     .unwrap();
//! let identity = extractor.extract(&RequestInfo::new(&request)).unwrap();
//! assert_eq!(identity.key().as_bytes(), b"ak_0123456789abcdef");
//! ```

mod api_key_or_ip;
mod bearer;
mod client_ip;
mod closure;
mod error;
mod forwarded;
mod header;
mod identity;
mod ip_group;
mod or;
mod peer_ip;
mod request;
mod route;
mod tiered;
mod trusted;

pub use api_key_or_ip::ApiKeyOrIp;
pub use bearer::BearerToken;
pub use client_ip::{ClientIp, ForwardedHeader};
pub use closure::KeyFn;
pub use error::KeyError;
pub use header::HeaderKey;
pub(crate) use identity::KeyRepr;
pub use identity::{Identity, Key, TierName, MAX_KEY_LEN};
pub use or::Or;
pub use peer_ip::{PeerAddr, PeerIp};
pub use request::RequestInfo;
pub use route::RouteAnd;
pub use tiered::Tiered;
pub use trusted::{TrustedProxies, TrustedProxiesError};

/// Reads the key (and optionally the tier) of a request.
///
/// Implementations must not panic on any input: headers may be missing,
/// repeated, huge, not UTF-8 or lying. Borrow from the request where you can;
/// a key that borrows costs no allocation.
pub trait KeyExtractor: Send + Sync + 'static {
    /// Reads the identity of one request.
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError>;

    /// Falls back to `other` when this extractor finds no key
    /// ([`KeyError::Missing`]); any other error is answered as it is.
    fn or<E: KeyExtractor>(self, other: E) -> Or<Self, E>
    where
        Self: Sized,
    {
        Or::new(self, other)
    }

    /// Chooses the tier of each identity with `tier` (see [`Tiered`]).
    fn tiered<F>(self, tier: F) -> Tiered<Self, F>
    where
        Self: Sized,
        F: for<'r> Fn(&RequestInfo<'r>, &Key<'r>) -> Option<TierName<'static>>
            + Send
            + Sync
            + 'static,
    {
        Tiered::new(self, tier)
    }
}

impl<K: KeyExtractor + ?Sized> KeyExtractor for std::sync::Arc<K> {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        (**self).extract(request)
    }
}

impl<K: KeyExtractor + ?Sized> KeyExtractor for Box<K> {
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        (**self).extract(request)
    }
}
