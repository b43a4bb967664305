//! [`TokenLease`]: the settings of leased mode, and [`LeaseStats`], what it
//! has done. See the [module docs](super#leased-mode).

use std::time::Duration;

/// The default time a GCRA lease may be spent in: 1 s.
pub const DEFAULT_LEASE_MAX_AGE: Duration = Duration::from_secs(1);

/// The default number of (limit, client key) pairs with a lease held at
/// once: 100 000.
pub const DEFAULT_LEASE_MAX_KEYS: usize = 100_000;

/// The most tokens one lease may hold.
pub const MAX_LEASE_TOKENS: u64 = 1 << 32;

/// Leased mode for [`RedisStoreBuilder::leased`](super::RedisStoreBuilder::leased):
/// an instance takes up to `tokens` units of a limit from Redis in one call
/// and spends them locally, so a hot key costs one Redis call per lease
/// instead of one per request. See the [module docs](super#leased-mode)
/// for what it applies to and its bounds.
///
/// ```
/// use std::time::Duration;
/// use tollgate::store::redis::TokenLease;
///
/// let lease = TokenLease::new(20).max_age(Duration::from_millis(500));
/// assert_eq!(lease.tokens(), 20);
/// assert_eq!(lease.lease_max_age(), Duration::from_millis(500));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenLease {
    tokens: u64,
    max_age: Duration,
    max_keys: usize,
}

impl TokenLease {
    /// Leases of at most `tokens` units (1 to [`MAX_LEASE_TOKENS`]; the
    /// builder refuses others), with [`DEFAULT_LEASE_MAX_AGE`] and
    /// [`DEFAULT_LEASE_MAX_KEYS`].
    pub fn new(tokens: u64) -> Self {
        Self {
            tokens,
            max_age: DEFAULT_LEASE_MAX_AGE,
            max_keys: DEFAULT_LEASE_MAX_KEYS,
        }
    }

    /// How long the units of a GCRA lease may be spent after the lease was
    /// asked for (default [`DEFAULT_LEASE_MAX_AGE`]; at least 1 ms). A
    /// fixed-window lease ends with its window instead.
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The most (limit, client key) pairs this instance holds leases for
    /// at once (default [`DEFAULT_LEASE_MAX_KEYS`]; at least 1). Past it,
    /// new keys are checked per request until idle ones are dropped.
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// The most units one lease holds.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }

    /// How long a GCRA lease may be spent.
    pub fn lease_max_age(&self) -> Duration {
        self.max_age
    }

    /// The most keys with a lease at once.
    pub fn lease_max_keys(&self) -> usize {
        self.max_keys
    }

    /// Why these settings cannot work, if they cannot.
    pub(super) fn invalid(&self) -> Option<&'static str> {
        if self.tokens == 0 || self.tokens > MAX_LEASE_TOKENS {
            Some("a token lease must hold 1 to 2^32 tokens")
        } else if self.max_age < Duration::from_millis(1) {
            Some("a token lease must last at least 1 ms")
        } else if self.max_keys == 0 {
            Some("a token lease needs room for at least 1 key")
        } else {
            None
        }
    }
}

/// What leased mode has done since the store was built; all zero when it
/// is off. See the [module docs](super#leased-mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseStats {
    /// Checks answered from leases held here, admitted or refused, without
    /// calling Redis.
    pub local: u64,
    /// Lease calls made to Redis (one per check that ran out, whatever the
    /// number of limits it refilled; one per slot on a cluster).
    pub calls: u64,
    /// Units Redis granted in leases.
    pub granted: u64,
    /// Asks Redis refused (not even the request's cost was left).
    pub refused: u64,
    /// Checks in leased mode answered per request instead: a limit of an
    /// algorithm without leases, a limit charged twice, a full lease table,
    /// a key contended past a few rounds, or a look without units held.
    pub per_request: u64,
}
