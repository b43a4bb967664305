//! Errors: configuration refused at build time, and store failures.

use crate::algorithm::AlgorithmKind;
use crate::quota::QuotaParseError;

/// A configuration the layer refuses to build with. Nothing here is ever
/// raised per request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A quota string did not parse.
    #[error("tier {tier:?}: {source}")]
    Quota {
        /// The tier (or rule) whose quota it is.
        tier: String,
        /// What was wrong with it.
        #[source]
        source: QuotaParseError,
    },
    /// A tier or policy name with characters a header cannot carry as they are.
    #[error("invalid name {name:?}: use 1 to 64 of A-Z a-z 0-9 - _ . :")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Two tiers, two limits of one request, or two rules of one layer,
    /// with the same name.
    #[error("duplicate name {name:?}")]
    Duplicate {
        /// The name given twice.
        name: String,
    },
    /// A plan set with no tier.
    #[error("no tier defined")]
    NoTiers,
    /// A tier with no limit.
    #[error("tier {tier:?} has no limit")]
    EmptyTier {
        /// The tier.
        tier: String,
    },
    /// The default tier names no defined tier.
    #[error("default tier {tier:?} is not defined")]
    UnknownDefault {
        /// The name given as default.
        tier: String,
    },
    /// A setting names a tier that is not defined.
    #[error("tier {tier:?} is not defined")]
    UnknownTier {
        /// The name given.
        tier: String,
    },
    /// A burst different from the count on an algorithm that has no burst.
    #[error("policy {policy:?}: a burst applies to gcra only, not {algorithm}")]
    BurstNeedsGcra {
        /// The policy.
        policy: String,
        /// The algorithm chosen.
        algorithm: AlgorithmKind,
    },
    /// A queue (delay mode) on an algorithm that cannot say when a waiting
    /// request conforms.
    #[error("policy {policy:?}: a queue applies to gcra only, not {algorithm}")]
    QueueNeedsGcra {
        /// The policy.
        policy: String,
        /// The algorithm chosen.
        algorithm: AlgorithmKind,
    },
    /// A layer holding a limit that delays also holds a limit that cannot
    /// count a request at the instant it passes (a window or a concurrency
    /// limit). Put that limit in a layer of its own: inside the delaying
    /// layer it sees each request when it passes (and a waiting request
    /// holds none of its permits), outside it sees it on arrival.
    #[error("policy {queued:?} delays requests, so this layer may hold only gcra limits; {other:?} is {kind}: give it a layer of its own")]
    DelayBeside {
        /// The limit with a queue.
        queued: String,
        /// The limit that cannot share its layer.
        other: String,
        /// What the other limit is (`fixed_window`, `concurrency`, ...).
        kind: &'static str,
    },
    /// A sliding log longer than it may be kept.
    #[error("policy {policy:?}: a sliding log keeps one entry per request; {count} is over the maximum of {max}")]
    SlidingLogTooLarge {
        /// The policy.
        policy: String,
        /// The count asked for.
        count: u64,
        /// The maximum.
        max: u64,
    },
    /// More limits on one request than a check may carry.
    #[error("{count} limits apply to one request; at most {max} may")]
    TooManyLimits {
        /// How many were configured.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// More rules on one layer than it may hold
    /// ([`MAX_RULES`](crate::MAX_RULES)).
    #[error("{count} rules on one layer; at most {max} may")]
    TooManyRules {
        /// How many were configured.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// A plan file that is not TOML of the plans' form (a syntax error, a
    /// misspelt or missing field).
    #[cfg(feature = "serde")]
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    #[error("plan file: {0}")]
    Toml(#[from] toml::de::Error),
    /// An algorithm name that names no algorithm.
    #[error("{}{source}", tier.as_ref().map(|t| format!("tier {t:?}: ")).unwrap_or_default())]
    Algorithm {
        /// The tier it was given for (`None`: the file's default).
        tier: Option<String>,
        /// The name and the names expected.
        #[source]
        source: crate::algorithm::UnknownAlgorithm,
    },
    /// A mode name that names no mode.
    #[error("{}{source}", tier.as_ref().map(|t| format!("tier {t:?}: ")).unwrap_or_default())]
    Mode {
        /// The tier it was given for (`None`: the file's default).
        tier: Option<String>,
        /// The name and the names expected.
        #[source]
        source: crate::plan::mode::UnknownMode,
    },
    /// A store setting that cannot work: an unreadable connection URL, a key
    /// prefix with hash-tag braces, a zero timeout.
    #[error("store: {0}")]
    Store(#[from] StoreConfigError),
}

/// Which store setting cannot work ([`ConfigError::Store`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreConfigError {
    /// The connection URL cannot be read. Only which part and the client
    /// library's error kind are kept, never the URL itself, which may carry
    /// a password.
    #[error("{what} ({kind})")]
    Url {
        /// What was being read: `invalid URL`, `invalid cluster URL`.
        what: &'static str,
        /// The client library's error kind, as it names it.
        kind: String,
    },
    /// A cluster URL that lists no node.
    #[error("a cluster URL names no node")]
    NoClusterNode,
    /// A key prefix empty or longer than 128 bytes.
    #[error("the key prefix must be 1 to 128 bytes")]
    PrefixLength,
    /// A key prefix holding `{` or `}`, which would change the hash tag.
    #[error("the key prefix must not contain '{{' or '}}'")]
    PrefixBraces,
    /// A zero timeout.
    #[error("the timeout must be above zero")]
    ZeroTimeout,
    /// A concurrency slot TTL under 1 ms.
    #[error("the concurrency slot TTL must be at least 1 ms")]
    SlotTtl,
    /// Circuit-breaker settings that do not hold together.
    #[error("{0}")]
    Breaker(&'static str),
    /// A local fallback for 0 instances.
    #[error("the local fallback needs at least 1 instance")]
    NoFallbackInstances,
    /// Token-lease settings that do not hold together.
    #[error("{0}")]
    Lease(&'static str),
}

/// Why a store could not answer a check.
///
/// The layer answers it according to its failure policy (by default 503
/// with `Retry-After`); it never lets a request through unchecked unless
/// told to fail open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store tracks its maximum number of keys and none is idle enough
    /// to be evicted.
    #[error("store is full: {max_keys} keys tracked and none idle")]
    Full {
        /// The configured maximum.
        max_keys: usize,
    },
    /// The store did not answer within its timeout.
    #[error("store timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The store is unreachable or answered an error.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}
