use std::fmt;

use super::{Identity, Key, KeyError, KeyExtractor, RequestInfo, TierName};

/// Gives the identities of another extractor a tier chosen by a closure.
///
/// The closure sees the request and the key; it answers the tier name, or
/// `None` for the plans' default tier. Build it with
/// [`KeyExtractor::tiered`] or [`Tiered::new`].
///
/// ```
/// use tollgate::key::{KeyExtractor, PeerIp, RequestInfo, Key, TierName};
///
/// // A gateway in front of the service has authenticated the caller and
/// // put its plan in `x-plan`: trust it for the tier, count per peer IP.
/// let extractor = PeerIp::new().tiered(|req: &RequestInfo<'_>, _key: &Key<'_>| {
///     req.headers()
///         .get("x-plan")
///         .and_then(|v| v.to_str().ok())
///         .map(|plan| TierName::from(plan.to_owned()))
/// });
/// # let _ = extractor;
/// ```
#[derive(Clone)]
pub struct Tiered<E, F> {
    inner: E,
    tier: F,
}

impl<E, F> Tiered<E, F> {
    /// Wraps `inner`, choosing tiers with `tier`.
    pub fn new(inner: E, tier: F) -> Self {
        Self { inner, tier }
    }
}

impl<E: fmt::Debug, F> fmt::Debug for Tiered<E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tiered")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<E, F> KeyExtractor for Tiered<E, F>
where
    E: KeyExtractor,
    F: for<'r> Fn(&RequestInfo<'r>, &Key<'r>) -> Option<TierName<'static>> + Send + Sync + 'static,
{
    fn extract<'r>(&self, request: &RequestInfo<'r>) -> Result<Identity<'r>, KeyError> {
        let (key, _) = self.inner.extract(request)?.into_parts();
        let identity = match (self.tier)(request, &key) {
            Some(tier) => Identity::new(key).with_tier(tier),
            None => Identity::new(key),
        };
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::key::{PeerAddr, PeerIp};

    #[test]
    fn the_closure_chooses_the_tier_and_the_key_is_kept() {
        let extractor = PeerIp::new().tiered(|req: &RequestInfo<'_>, key: &Key<'_>| {
            assert!(key.as_ip().is_some());
            req.headers().get("x-plan").map(|_| TierName::from("gold"))
        });
        let mut req = http::Request::builder()
            .header("x-plan", "yes")
            .body(())
            .expect("request");
        req.extensions_mut()
            .insert(PeerAddr(SocketAddr::from(([192, 0, 2, 1], 1))));
        let id = extractor
            .extract(&RequestInfo::new(&req))
            .expect("identity");
        assert_eq!(id.tier().map(TierName::as_str), Some("gold"));
        assert_eq!(id.key().as_ip(), Some("192.0.2.1".parse().expect("ip")));

        req.headers_mut().remove("x-plan");
        let id = extractor
            .extract(&RequestInfo::new(&req))
            .expect("identity");
        assert!(id.tier().is_none());
    }
}
