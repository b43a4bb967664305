//! [`Limit`]: a named quota enforced by one algorithm.

use std::fmt;
use std::sync::Arc;

use crate::algorithm::{AlgorithmKind, SLIDING_LOG_MAX};
use crate::error::ConfigError;
use crate::quota::{Quota, QuotaKind};

/// The longest policy name accepted, in bytes.
pub const MAX_POLICY_NAME: usize = 64;

/// One limit: a quota, the algorithm that enforces it, and the policy name
/// that answers and headers show (`RateLimit-Policy: "basic-minute";q=10;w=60`).
///
/// Policy names are 1 to 64 characters of `A-Z a-z 0-9 - _ . :`, so they can
/// be written into headers and bodies as they are.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Limit {
    name: Arc<str>,
    quota: Quota,
    algorithm: AlgorithmKind,
}

/// What a [`Limit`] enforces, as a store runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// A rate quota enforced by the given algorithm.
    Rate(AlgorithmKind),
    /// At most `count` units in flight.
    Concurrency,
}

impl Limit {
    /// A limit named `name` enforcing `quota` with `algorithm` (ignored for
    /// concurrency quotas).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidName`]; [`ConfigError::BurstNeedsGcra`] and
    /// [`ConfigError::QueueNeedsGcra`] for a burst or a
    /// [queue](Quota::with_queue) on a window algorithm (only GCRA has a
    /// burst, and only GCRA can say when a waiting request conforms);
    /// [`ConfigError::SlidingLogTooLarge`].
    pub fn new(
        name: impl AsRef<str>,
        quota: Quota,
        algorithm: AlgorithmKind,
    ) -> Result<Self, ConfigError> {
        let name = name.as_ref();
        validate_name(name)?;
        if quota.kind() == QuotaKind::Rate {
            if algorithm != AlgorithmKind::Gcra && quota.burst() != quota.count() {
                return Err(ConfigError::BurstNeedsGcra {
                    policy: name.to_owned(),
                    algorithm,
                });
            }
            if algorithm != AlgorithmKind::Gcra && quota.queue() != 0 {
                return Err(ConfigError::QueueNeedsGcra {
                    policy: name.to_owned(),
                    algorithm,
                });
            }
            if algorithm == AlgorithmKind::SlidingLog && quota.count() > SLIDING_LOG_MAX {
                return Err(ConfigError::SlidingLogTooLarge {
                    policy: name.to_owned(),
                    count: quota.count(),
                    max: SLIDING_LOG_MAX,
                });
            }
        }
        Ok(Self {
            name: Arc::from(name),
            quota,
            algorithm,
        })
    }

    /// The policy name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The quota.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The algorithm chosen for a rate quota.
    pub fn algorithm(&self) -> AlgorithmKind {
        self.algorithm
    }

    /// Whether the limit delays requests beyond its burst rather than
    /// refusing them (a rate quota with a [queue](Quota::with_queue)).
    pub fn delays(&self) -> bool {
        self.quota.queue() != 0
    }

    /// What a store must run for this limit.
    pub fn kind(&self) -> LimitKind {
        match self.quota.kind() {
            QuotaKind::Rate => LimitKind::Rate(self.algorithm),
            QuotaKind::Concurrent => LimitKind::Concurrency,
        }
    }
}

impl fmt::Debug for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Limit({:?}: {} by {})",
            &*self.name, self.quota, self.algorithm
        )
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            LimitKind::Rate(kind) => write!(f, "{}: {} ({})", self.name, self.quota, kind),
            LimitKind::Concurrency => write!(f, "{}: {}", self.name, self.quota),
        }
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_POLICY_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidName {
            name: name.chars().take(MAX_POLICY_NAME + 8).collect(),
        })
    }
}
