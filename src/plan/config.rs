//! Plans from configuration files (feature `serde`).
//!
//! The schema, in TOML:
//!
//! ```toml
//! default = "anonymous"        # optional: the first tier otherwise
//! algorithm = "gcra"           # optional: gcra (default), fixed-window,
//!                              # sliding-window or sliding-log
//! mode = "enforce"             # optional: enforce (default), shadow or off
//!
//! [[tier]]
//! name = "anonymous"
//! limits = "3/minute"
//!
//! [[tier]]
//! name = "basic"
//! limits = "10/minute; 1000/day"
//! algorithm = "sliding-window" # optional, for this tier only
//! mode = "shadow"              # optional, for this tier only
//! ```
//!
//! `mode` is the per-tier switch of [`Mode`]: `shadow` counts and logs what
//! would be refused without refusing it, `off` is the kill switch.
//!
//! ```
//! let plans = tollgate::Plans::from_toml(r#"
//!     [[tier]]
//!     name = "free"
//!     limits = "5/minute"
//! "#)?;
//! assert_eq!(plans.default_tier().name(), "free");
//! # Ok::<(), tollgate::ConfigError>(())
//! ```
//!
//! Unknown fields are refused, so a misspelt key is an error rather than a
//! silently ignored setting. [`PlansConfig`] can be embedded in a larger
//! configuration of your own.

use serde::Deserialize;

use crate::algorithm::AlgorithmKind;
use crate::error::ConfigError;
use crate::plan::mode::Mode;
use crate::plan::Plans;

/// A plan set as written in a configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlansConfig {
    /// The default tier's name; the first tier when absent.
    #[serde(default)]
    pub default: Option<String>,
    /// The algorithm for every tier that names none.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// The mode of every tier that names none: `enforce`, `shadow`, `off`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The tiers, in order.
    #[serde(rename = "tier")]
    pub tiers: Vec<TierConfig>,
}

/// One tier as written in a configuration file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// The tier's name.
    pub name: String,
    /// Its quotas, such as `"10/minute; 1000/day"`.
    pub limits: String,
    /// The algorithm for this tier's quotas.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// This tier's mode: `enforce`, `shadow` or `off`.
    #[serde(default)]
    pub mode: Option<String>,
}

fn algorithm(tier: Option<&str>, name: &str) -> Result<AlgorithmKind, ConfigError> {
    name.parse().map_err(|source| ConfigError::Algorithm {
        tier: tier.map(str::to_owned),
        source,
    })
}

fn mode(tier: Option<&str>, name: &str) -> Result<Mode, ConfigError> {
    name.parse().map_err(|source| ConfigError::Mode {
        tier: tier.map(str::to_owned),
        source,
    })
}

impl PlansConfig {
    /// Checks and builds the plan set.
    pub fn build(&self) -> Result<Plans, ConfigError> {
        let mut builder = Plans::builder();
        if let Some(name) = &self.algorithm {
            builder = builder.algorithm(algorithm(None, name)?);
        }
        for tier in &self.tiers {
            builder = match &tier.algorithm {
                Some(name) => {
                    builder.tier_with(&tier.name, &tier.limits, algorithm(Some(&tier.name), name)?)
                }
                None => builder.tier(&tier.name, &tier.limits),
            };
        }
        if let Some(default) = &self.default {
            builder = builder.default_tier(default);
        }
        if let Some(name) = &self.mode {
            builder = builder.default_mode(mode(None, name)?);
        }
        for tier in &self.tiers {
            if let Some(name) = &tier.mode {
                builder = builder.mode(&tier.name, mode(Some(&tier.name), name)?);
            }
        }
        builder.build()
    }
}

impl Plans {
    /// Loads a plan set from TOML; see [`PlansConfig`] for the schema.
    ///
    /// ```
    /// let plans = tollgate::Plans::from_toml(
    ///     r#"
    ///     default = "anonymous"
    ///     [[tier]]
    ///     name = "anonymous"
    ///     limits = "10/minute"
    ///     [[tier]]
    ///     name = "premium"
    ///     limits = "1000/minute"
    ///     "#,
    /// )?;
    /// assert_eq!(plans.tiers().len(), 2);
    /// # Ok::<(), tollgate::ConfigError>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub fn from_toml(text: &str) -> Result<Plans, ConfigError> {
        let config: PlansConfig = toml::from_str(text)?;
        config.build()
    }
}

impl TryFrom<PlansConfig> for Plans {
    type Error = ConfigError;

    fn try_from(config: PlansConfig) -> Result<Plans, ConfigError> {
        config.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_tiers_in_order_with_algorithms() {
        let plans = Plans::from_toml(
            r#"
            default = "anonymous"
            algorithm = "fixed-window"
            [[tier]]
            name = "basic"
            limits = "10/minute; 1000/day"
            [[tier]]
            name = "anonymous"
            limits = "3/minute"
            algorithm = "sliding-log"
            "#,
        )
        .expect("plans");
        assert_eq!(plans.default_tier().name(), "anonymous");
        assert_eq!(plans.tiers()[0].name(), "basic");
        assert_eq!(
            plans.tier("basic").limits()[0].algorithm(),
            AlgorithmKind::FixedWindow
        );
        assert_eq!(
            plans.tier("anonymous").limits()[0].algorithm(),
            AlgorithmKind::SlidingLog
        );
    }

    #[test]
    fn reads_modes_per_tier_and_for_all() {
        let plans = Plans::from_toml(
            r#"
            mode = "shadow"
            [[tier]]
            name = "a"
            limits = "1/second"
            [[tier]]
            name = "b"
            limits = "1/second"
            mode = "off"
            "#,
        )
        .expect("plans");
        assert_eq!(plans.tier("a").mode(), Mode::Shadow);
        assert_eq!(plans.tier("b").mode(), Mode::Off);
        let bad = Plans::from_toml("[[tier]]\nname = \"a\"\nlimits = \"1/s\"\nmode = \"loud\"\n");
        let Err(ConfigError::Mode { tier, source }) = bad else {
            panic!("{bad:?}")
        };
        assert_eq!((tier.as_deref(), source.0.as_str()), (Some("a"), "loud"));
    }

    #[test]
    fn refuses_unknown_fields_bad_algorithms_and_bad_quotas() {
        let typo = Plans::from_toml("[[tier]]\nname = \"a\"\nlimit = \"1/s\"\n");
        assert!(matches!(&typo, Err(ConfigError::Toml(e)) if e.to_string().contains("limit")));
        // The TOML error is the source, for callers that want its span.
        let err = typo.expect_err("typo");
        assert!(std::error::Error::source(&err).is_some());
        let algo =
            Plans::from_toml("[[tier]]\nname = \"a\"\nlimits = \"1/s\"\nalgorithm = \"leaky\"\n");
        assert!(matches!(
            &algo,
            Err(ConfigError::Algorithm { tier: Some(t), source }) if t == "a" && source.0 == "leaky"
        ));
        let quota = Plans::from_toml("[[tier]]\nname = \"a\"\nlimits = \"1/fortnight\"\n");
        assert!(matches!(quota, Err(ConfigError::Quota { .. })));
        assert!(matches!(
            Plans::from_toml("not toml ["),
            Err(ConfigError::Toml(_))
        ));
    }
}
