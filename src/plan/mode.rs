//! [`Mode`]: whether a tier's limits refuse, only observe, or are off.

use std::fmt;
use std::str::FromStr;

/// How a tier's limits act on its requests.
///
/// The per-tier switch that Envoy's and Stripe's limiters offer: roll a new
/// limit out in [`Shadow`](Mode::Shadow) first, watch what it would refuse,
/// then [`Enforce`](Mode::Enforce) it; turn a misbehaving limit
/// [`Off`](Mode::Off) without a deploy (with [`Reloader`](crate::Reloader)).
///
/// ```
/// use tollgate::{Mode, Plans};
///
/// let plans = Plans::builder()
///     .tier("anonymous", "3/minute")
///     .tier("basic", "10/minute")
///     .mode("basic", Mode::Shadow)
///     .build()?;
/// assert_eq!(plans.tier("basic").mode(), Mode::Shadow);
/// assert_eq!(plans.tier("anonymous").mode(), Mode::Enforce);
/// assert_eq!("off".parse::<Mode>(), Ok(Mode::Off));
/// # Ok::<(), tollgate::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Count, and refuse what is over the limits (the default).
    #[default]
    Enforce,
    /// Count, but let through what the limits would refuse; each such
    /// request is logged at debug level. The other rules of the layer still
    /// enforce their own limits.
    Shadow,
    /// Neither count nor refuse: the kill switch.
    Off,
}

impl Mode {
    /// The mode's name in configuration files: `enforce`, `shadow` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Mode`] that is none of `enforce`, `shadow`, `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: expected \"enforce\", \"shadow\" or \"off\"")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "shadow" => Ok(Mode::Shadow),
            "off" => Ok(Mode::Off),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}
