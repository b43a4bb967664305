use std::fmt;
use std::str::FromStr;

/// Which algorithm enforces a rate quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AlgorithmKind {
    /// Token bucket as GCRA: smooth refill, bursts up to the quota's burst.
    #[default]
    Gcra,
    /// Fixed window counter, reset at each window boundary.
    FixedWindow,
    /// Sliding window counter: the two-window weighted estimate (under
    /// constant demand it settles at `count - 1` per period; see
    /// [`SlidingWindow`](crate::algorithm::SlidingWindow)).
    SlidingWindow,
    /// Sliding window log: exact, one timestamp per request kept for a period.
    SlidingLog,
}

impl AlgorithmKind {
    /// The name used in configuration: `gcra`, `fixed-window`, `sliding-window`, `sliding-log`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlgorithmKind::Gcra => "gcra",
            AlgorithmKind::FixedWindow => "fixed-window",
            AlgorithmKind::SlidingWindow => "sliding-window",
            AlgorithmKind::SlidingLog => "sliding-log",
        }
    }
}

impl fmt::Display for AlgorithmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An algorithm name that is not one of `gcra` (or `token-bucket`),
/// `fixed-window`, `sliding-window`, `sliding-log`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown algorithm {0:?} (expected gcra, token-bucket, fixed-window, sliding-window or sliding-log)")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for AlgorithmKind {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normal = s.trim().to_ascii_lowercase().replace('_', "-");
        match normal.as_str() {
            "gcra" | "token-bucket" => Ok(AlgorithmKind::Gcra),
            "fixed-window" => Ok(AlgorithmKind::FixedWindow),
            "sliding-window" => Ok(AlgorithmKind::SlidingWindow),
            "sliding-log" => Ok(AlgorithmKind::SlidingLog),
            _ => Err(UnknownAlgorithm(s.chars().take(64).collect())),
        }
    }
}
