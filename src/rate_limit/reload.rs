//! [`Reloader`]: new plans for a running layer.

use std::fmt;
use std::sync::Arc;

use crate::plan::Plans;
use crate::rate_limit::rule::Rule;
use crate::rate_limit::state::Shared;
use crate::store::{MemoryStore, Store};

/// Replaces the plans of a running [`RateLimitLayer`](crate::RateLimitLayer)
/// and of every service made from it, without a restart.
///
/// [`RateLimitLayerBuilder::build_reloadable`](crate::RateLimitLayerBuilder::build_reloadable)
/// makes one. Rules are replaced by name: the name given to
/// [`name`](crate::RateLimitLayerBuilder::name) (default
/// [`MAIN_RULE`](crate::MAIN_RULE), `main`) or to
/// [`also`](crate::RateLimitLayerBuilder::also).
/// A replacement takes effect for the next request; requests being checked
/// finish under the plans they started with. Limits whose definition (name,
/// quota and algorithm) did not change keep their counters, so a reload
/// never hands a client a fresh quota; a limit that changed starts afresh.
/// Plans are checked when they are built ([`Plans::from_toml`] and the
/// builder refuse bad ones with a typed error), so a bad edit never reaches
/// the layer and the plans in force stay.
///
/// ```
/// use tollgate::key::ClientIp;
/// use tollgate::{Mode, Plans, RateLimitLayer};
///
/// let (layer, reloader) = RateLimitLayer::builder(Plans::single("global", "100/second")?)
///     .name("global")
///     .also("per-ip", Plans::single("per-ip", "10/second")?, ClientIp::new())
///     .build_reloadable()?;
///
/// // Later, from a config watcher or an admin endpoint:
/// let stricter = Plans::builder().tier("global", "50/second").build()?;
/// reloader.replace("global", stricter)?;
/// assert_eq!(layer.plans().default_tier().limits()[0].quota().count(), 50);
///
/// // Both rules in one swap: requests see all the old plans or all the new.
/// reloader.replace_all([
///     ("global", Plans::single("global", "80/second")?),
///     ("per-ip", Plans::single("per-ip", "5/second")?),
/// ])?;
/// assert_eq!(reloader.plans("per-ip").unwrap().default_tier().limits()[0].quota().count(), 5);
///
/// // The kill switch: stop checking without a deploy.
/// let off = Plans::builder().tier("global", "50/second").mode("global", Mode::Off).build()?;
/// reloader.replace("global", off)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reloader<St: Store = MemoryStore> {
    shared: Arc<Shared<St>>,
}

/// Why a [`Reloader`] refused new plans; the plans in force stay, all of
/// them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// No rule has this name.
    #[error("no rule named {rule:?}; the layer's rules are {rules:?}")]
    NoSuchRule {
        /// The name given.
        rule: String,
        /// The names of the layer's rules.
        rules: Vec<String>,
    },
    /// One rule given twice in one reload.
    #[error("rule {rule:?} given twice")]
    Duplicate {
        /// The name given twice.
        rule: String,
    },
    /// The new plans, beside the rules kept, make a layer the builder
    /// would refuse (a limit that delays beside a window or concurrency
    /// limit: [`ConfigError::DelayBeside`](crate::ConfigError::DelayBeside)).
    #[error("{reason}")]
    Plans {
        /// Why, as the builder's error says it.
        reason: String,
    },
}

impl<St: Store> Reloader<St> {
    pub(crate) fn new(shared: Arc<Shared<St>>) -> Self {
        Self { shared }
    }

    /// The names of the layer's rules, in order (the builder's first).
    pub fn rules(&self) -> Vec<String> {
        let rules = self.shared.rules.load();
        rules.iter().map(|rule| rule.name.to_string()).collect()
    }

    /// The plans in force for the rule named `rule`, if the layer has one.
    pub fn plans(&self, rule: &str) -> Option<Plans> {
        let rules = self.shared.rules.load();
        let found = rules.iter().find(|r| &*r.name == rule)?;
        Some(found.plans.clone())
    }

    /// Replaces the plans of the rule named `rule`.
    ///
    /// # Errors
    ///
    /// [`ReloadError::NoSuchRule`] when the layer has no rule of that name.
    pub fn replace(&self, rule: &str, plans: Plans) -> Result<(), ReloadError> {
        self.replace_all([(rule, plans)])
    }

    /// Replaces the plans of every rule named, in one swap: requests see
    /// either all the old plans or all the new. Rules not named keep theirs.
    ///
    /// # Errors
    ///
    /// [`ReloadError::NoSuchRule`], [`ReloadError::Duplicate`] or
    /// [`ReloadError::Plans`]; then nothing is replaced.
    pub fn replace_all<N: AsRef<str>>(
        &self,
        plans: impl IntoIterator<Item = (N, Plans)>,
    ) -> Result<(), ReloadError> {
        // One reload at a time, so none is lost between load and store.
        let _one = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.shared.rules.load_full();
        let mut changes: Vec<(usize, Plans)> = Vec::new();
        for (name, plans) in plans {
            let name = name.as_ref();
            let Some(position) = current.iter().position(|r| &*r.name == name) else {
                return Err(ReloadError::NoSuchRule {
                    rule: name.to_owned(),
                    rules: current.iter().map(|r| r.name.to_string()).collect(),
                });
            };
            if changes.iter().any(|(p, _)| *p == position) {
                return Err(ReloadError::Duplicate {
                    rule: name.to_owned(),
                });
            }
            changes.push((position, plans));
        }
        // The plans after the swap: a limit that delays may share the layer
        // only with GCRA limits.
        let after = current.iter().enumerate().map(|(position, rule)| {
            changes
                .iter()
                .find(|(p, _)| *p == position)
                .map_or(&rule.plans, |(_, plans)| plans)
        });
        if let Err(error) = crate::plan::mix::check_delay_mix(after) {
            return Err(ReloadError::Plans {
                reason: error.to_string(),
            });
        }
        let mut rules = Vec::clone(&current);
        let mut changed = 0;
        for (position, plans) in changes {
            let old = &current[position];
            if old.plans == plans {
                continue;
            }
            changed += 1;
            rules[position] = Rule::rebind(
                &self.shared.store,
                Arc::clone(&old.name),
                plans,
                Arc::clone(&old.extractor),
                Some(old),
            );
        }
        if changed > 0 && self.shared.rules.swap(rules) {
            tracing::info!(rules_changed = changed, "rate-limit plans reloaded");
        }
        Ok(())
    }
}

impl<St: Store> Clone for Reloader<St> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<St: Store> fmt::Debug for Reloader<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("rules", &self.rules())
            .finish_non_exhaustive()
    }
}
