use std::borrow::Cow;
use std::net::IpAddr;

use super::KeyError;

/// The longest key accepted, in bytes. Longer values are refused with
/// [`KeyError::TooLong`] rather than stored, so a client cannot make the
/// store hold arbitrarily large keys.
pub const MAX_KEY_LEN: usize = 512;

/// The value a request's counters are kept under.
///
/// Either an IP address (already grouped by prefix where the extractor does
/// that) or a byte string. A byte key borrowed from the request costs no
/// allocation; the store copies it only when it first sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key<'r> {
    repr: KeyRepr<'r>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyRepr<'r> {
    Ip(IpAddr),
    Bytes(Cow<'r, [u8]>),
}

impl<'r> Key<'r> {
    /// A key for an IP address.
    pub fn ip(addr: IpAddr) -> Self {
        Self {
            repr: KeyRepr::Ip(addr),
        }
    }

    /// A byte key borrowed from the request.
    ///
    /// Fails with [`KeyError::Malformed`] when empty (an empty key would be one
    /// bucket shared by every such client) and [`KeyError::TooLong`] past
    /// [`MAX_KEY_LEN`].
    pub fn borrowed(bytes: &'r [u8], what: &'static str) -> Result<Self, KeyError> {
        check_len(bytes.len(), what)?;
        Ok(Self {
            repr: KeyRepr::Bytes(Cow::Borrowed(bytes)),
        })
    }

    /// An owned byte key, with the same checks as [`Key::borrowed`].
    pub fn owned(bytes: impl Into<Vec<u8>>, what: &'static str) -> Result<Key<'static>, KeyError> {
        let bytes = bytes.into();
        check_len(bytes.len(), what)?;
        Ok(Key {
            repr: KeyRepr::Bytes(Cow::Owned(bytes)),
        })
    }

    /// The IP address, if this is an IP key.
    pub fn as_ip(&self) -> Option<IpAddr> {
        match &self.repr {
            KeyRepr::Ip(ip) => Some(*ip),
            KeyRepr::Bytes(_) => None,
        }
    }

    /// The bytes of a byte key; an IP key answers an empty slice.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.repr {
            KeyRepr::Ip(_) => &[],
            KeyRepr::Bytes(bytes) => bytes,
        }
    }

    /// Copies a borrowed key so it outlives the request.
    pub fn into_owned(self) -> Key<'static> {
        Key {
            repr: match self.repr {
                KeyRepr::Ip(ip) => KeyRepr::Ip(ip),
                KeyRepr::Bytes(b) => KeyRepr::Bytes(Cow::Owned(b.into_owned())),
            },
        }
    }

    pub(crate) fn repr(&self) -> &KeyRepr<'r> {
        &self.repr
    }
}

fn check_len(len: usize, what: &'static str) -> Result<(), KeyError> {
    if len == 0 {
        return Err(KeyError::Malformed {
            what,
            reason: "empty value",
        });
    }
    if len > MAX_KEY_LEN {
        return Err(KeyError::TooLong {
            what,
            len,
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

/// The name of a tier (plan) as a resolver answers it.
///
/// Usually a `&'static str` from a `match`, or a `String` from a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TierName<'r>(Cow<'r, str>);

impl<'r> TierName<'r> {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for TierName<'_> {
    fn from(name: &'static str) -> Self {
        TierName(Cow::Borrowed(name))
    }
}

impl From<String> for TierName<'_> {
    fn from(name: String) -> Self {
        TierName(Cow::Owned(name))
    }
}

impl<'r> From<Cow<'r, str>> for TierName<'r> {
    fn from(name: Cow<'r, str>) -> Self {
        TierName(name)
    }
}

/// What a [`KeyExtractor`](super::KeyExtractor) answers: the key, and the
/// tier when the extractor knows it (otherwise the plans' default tier applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'r> {
    key: Key<'r>,
    tier: Option<TierName<'r>>,
}

impl<'r> Identity<'r> {
    /// An identity with no tier: the default tier applies.
    pub fn new(key: Key<'r>) -> Self {
        Self { key, tier: None }
    }

    /// Sets the tier.
    #[must_use]
    pub fn with_tier(mut self, tier: impl Into<TierName<'r>>) -> Self {
        self.tier = Some(tier.into());
        self
    }

    /// The key.
    pub fn key(&self) -> &Key<'r> {
        &self.key
    }

    /// The tier, if the extractor named one.
    pub fn tier(&self) -> Option<&TierName<'r>> {
        self.tier.as_ref()
    }

    /// Splits into key and tier.
    pub fn into_parts(self) -> (Key<'r>, Option<TierName<'r>>) {
        (self.key, self.tier)
    }
}
