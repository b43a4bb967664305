//! [`RedisStoreBuilder`]: the settings of a [`RedisStore`].

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::{Breaker, BreakerSettings};
use super::connection::Backend;
use super::deadline::Deadlines;
use super::fallback::Fallback;
use super::lease_slots::LeaseSlots;
use super::over_limit::OverLimitCache;
use super::{
    Inner, LocalClock, RedisStore, TokenLease, WhenDown, DEFAULT_CONCURRENCY_SLOT_TTL,
    DEFAULT_PREFIX, DEFAULT_TIMEOUT,
};
use crate::clock::{Clock, MonotonicClock};
use crate::error::{ConfigError, StoreConfigError};

/// Builds a [`RedisStore`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    slot_ttl: Duration,
    over_limit_cache: usize,
    breaker: Option<BreakerSettings>,
    fallback: Option<u32>,
    clock: Option<LocalClock>,
    token_lease: Option<TokenLease>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: not shown.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("concurrency_slot_ttl", &self.slot_ttl)
            .field("over_limit_cache", &self.over_limit_cache)
            .field("breaker", &self.breaker)
            .field("fallback_local", &self.fallback)
            .field("leased", &self.token_lease)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Every setting at its default, for the Redis at `url`.
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            slot_ttl: DEFAULT_CONCURRENCY_SLOT_TTL,
            over_limit_cache: 0,
            breaker: Some(BreakerSettings::new()),
            fallback: Some(1),
            clock: None,
            token_lease: None,
        }
    }

    /// The prefix of every key (default [`DEFAULT_PREFIX`]): stores with
    /// the same prefix share counters; give each application or test its
    /// own. 1 to 128 bytes, no `{` or `}` (those mark Redis Cluster hash
    /// tags).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most a check may take, connecting included (default
    /// [`DEFAULT_TIMEOUT`], 50 ms, chosen from the call latency measured
    /// under load: see the [module docs](super#when-redis-is-away-or-slow));
    /// past it the check is answered by the store's failure policy
    /// ([`fallback_local`](Self::fallback_local) by default, or
    /// [`StoreError::Timeout`](crate::StoreError::Timeout) after
    /// [`no_fallback`](Self::no_fallback)). A script Redis starts later than
    /// that charges nothing (see the module docs on late scripts).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a concurrency slot stays taken when its permit's release
    /// never reaches Redis (default [`DEFAULT_CONCURRENCY_SLOT_TTL`], 60 s;
    /// at least 1 ms). Longer than the slowest response, or that response
    /// loses its slot early; short enough that a crashed instance's slots
    /// come back soon.
    #[must_use]
    pub fn concurrency_slot_ttl(mut self, ttl: Duration) -> Self {
        self.slot_ttl = ttl;
        self
    }

    /// Turns on the over-limit cache, holding at most `max_entries`
    /// refusals (each some 100 bytes plus the key name); 0, the default,
    /// turns it off. See the [module docs](super#over-limit-cache) for what
    /// it answers and why that is safe.
    #[must_use]
    pub fn over_limit_cache(mut self, max_entries: usize) -> Self {
        self.over_limit_cache = max_entries;
        self
    }

    /// The circuit breaker's settings (on by default, with
    /// [`BreakerSettings::new`]'s): it opens when at least a
    /// `failure_rate` of at least `min_calls` calls over the last `window`
    /// failed, then lets one probe through after the backoff. See the
    /// [module docs](super#circuit-breaker).
    #[must_use]
    pub fn breaker(mut self, settings: BreakerSettings) -> Self {
        self.breaker = Some(settings);
        self
    }

    /// Turns the circuit breaker off: every check calls Redis and, while
    /// Redis is away, waits for its timeout.
    #[must_use]
    pub fn no_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// The local fallback, on by default for 1 instance: while Redis
    /// cannot answer (the circuit breaker open, or a call timing out or
    /// failing), checks are answered by a local in-memory limiter enforcing
    /// this instance's share of each quota, `instances` being how many
    /// instances share the store (at least 1). A Redis outage so leaves the
    /// service limited, not down. See the [module docs](super#fallback) for
    /// the share's rounding and the admission bound.
    #[must_use]
    pub fn fallback_local(mut self, instances: u32) -> Self {
        self.fallback = Some(instances);
        self
    }

    /// Turns the local fallback off: a check Redis cannot answer is a
    /// [`StoreError`](crate::StoreError), and the layer answers it by its
    /// [`OnStoreError`](crate::OnStoreError) policy (503 by default, or
    /// fail open).
    #[must_use]
    pub fn no_fallback(mut self) -> Self {
        self.fallback = None;
        self
    }

    /// Turns on [leased mode](super#leased-mode) (off by default): GCRA and
    /// fixed-window limits are charged in leases of up to `lease.tokens()`
    /// units that this instance spends locally, one Redis call per lease
    /// instead of per request, within the bounds the module docs state.
    #[must_use]
    pub fn leased(mut self, lease: TokenLease) -> Self {
        self.token_lease = Some(lease);
        self
    }

    /// The local clock (default a [`MonotonicClock`]) for what the store
    /// times by itself: the over-limit cache's entries, the circuit
    /// breaker's backoff, the local fallback's limiter and the leases of
    /// [leased mode](super#leased-mode). Admission never reads it: every
    /// figure a check answers from Redis comes from Redis's `TIME`, and the
    /// local parts keep only durations Redis gave, counted from a local
    /// reading taken before the call, so its origin (and any offset from
    /// other instances' clocks) does not matter. It must not run slower
    /// than real time: a [`ManualClock`](crate::clock::ManualClock) in
    /// tests is advanced by hand.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The store. Connects on the first check, not here.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Store`] for a URL that cannot be read, a prefix with
    /// braces or of the wrong length, a zero timeout, a concurrency slot TTL under 1 ms,
    /// breaker settings [`BreakerSettings`] refuses, or a local fallback for
    /// 0 instances.
    pub fn build(self) -> Result<RedisStore, ConfigError> {
        let refuse = |setting: StoreConfigError| Err(ConfigError::Store(setting));
        if self.prefix.is_empty() || self.prefix.len() > 128 {
            return refuse(StoreConfigError::PrefixLength);
        }
        if self.prefix.contains(['{', '}']) {
            return refuse(StoreConfigError::PrefixBraces);
        }
        if self.timeout.is_zero() {
            return refuse(StoreConfigError::ZeroTimeout);
        }
        let slot_ttl_ms = u64::try_from(self.slot_ttl.as_millis()).unwrap_or(u64::MAX);
        if slot_ttl_ms == 0 {
            return refuse(StoreConfigError::SlotTtl);
        }
        if let Some(reason) = self.breaker.as_ref().and_then(BreakerSettings::invalid) {
            return refuse(StoreConfigError::Breaker(reason));
        }
        if self.fallback == Some(0) {
            return refuse(StoreConfigError::NoFallbackInstances);
        }
        if let Some(reason) = self.token_lease.as_ref().and_then(TokenLease::invalid) {
            return refuse(StoreConfigError::Lease(reason));
        }
        // Microseconds of a slot's expiry must stay exact in the script.
        let slot_ttl_ms = slot_ttl_ms.min(1 << 40);
        let backend = Backend::open(&self.url, self.timeout)?;
        let clock: LocalClock = self
            .clock
            .unwrap_or_else(|| Arc::new(MonotonicClock::new()));
        let nonce_base = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let when_down = match self.fallback {
            Some(instances) => WhenDown::LocalFallback { instances },
            None => WhenDown::StoreError,
        };
        tracing::info!(
            timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            breaker = self.breaker.is_some(),
            "Redis rate-limit store: while Redis cannot answer, {when_down}"
        );
        Ok(RedisStore {
            inner: Arc::new(Inner {
                backend,
                prefix: self.prefix.into_boxed_str(),
                timeout: self.timeout,
                slot_ttl_ms,
                nonce_base,
                nonce_next: AtomicU64::new(0),
                serial_next: AtomicU64::new(0),
                over_limit: OverLimitCache::new(self.over_limit_cache, Arc::clone(&clock)),
                breaker: self
                    .breaker
                    .map(|b| Breaker::with_clock(&b, Arc::clone(&clock))),
                deadlines: Deadlines::new(),
                fallback: self.fallback.map(|n| Fallback::new(n, Arc::clone(&clock))),
                clock,
                leases: self.token_lease.as_ref().map(LeaseSlots::new),
                #[cfg(feature = "metrics")]
                metrics: crate::metrics::RedisMetrics::new(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(builder: RedisStoreBuilder) -> StoreConfigError {
        match builder.build() {
            Err(ConfigError::Store(setting)) => setting,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_refused_setting_is_named_by_its_own_variant() {
        let url = "redis://:secret@127.0.0.1:6379/";
        let b = || RedisStore::builder(url);
        assert_eq!(refused(b().prefix("a{b}")), StoreConfigError::PrefixBraces);
        assert_eq!(refused(b().prefix("")), StoreConfigError::PrefixLength);
        assert_eq!(
            refused(b().timeout(Duration::ZERO)),
            StoreConfigError::ZeroTimeout
        );
        assert_eq!(
            refused(RedisStore::builder("redis+cluster://")),
            StoreConfigError::NoClusterNode
        );
        // An unreadable URL names the part and the error's kind, never the
        // URL, which may carry a password.
        let bad = RedisStore::builder("redis://:secret@[::1").build();
        let text = format!(
            "{:?} {}",
            bad.as_ref().err(),
            bad.as_ref()
                .err()
                .map_or(String::new(), ToString::to_string)
        );
        assert!(
            matches!(bad, Err(ConfigError::Store(StoreConfigError::Url { .. }))),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
