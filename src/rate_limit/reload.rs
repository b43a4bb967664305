//! [`Reloader`]: new plans for a running layer.

use std::fmt;
use std::sync::Arc;

use crate::plan::Plans;
use crate::rate_limit::evaluate::Shared;
use crate::rate_limit::rule::Rule;
use crate::store::{MemoryStore, Store};

/// Replaces the plans of a running [`RateLimitLayer`](crate::RateLimitLayer)
/// and of every service made from it, without a restart.
///
/// A layer's rules are numbered in the order they were given: 0 for the
/// plans of the constructor, then one per [`also`](crate::RateLimitLayer::also).
/// A replacement takes effect for the next request; requests being checked
/// finish under the plans they started with. Limits whose definition (name,
/// quota and algorithm) did not change keep their counters, so a reload
/// never hands a client a fresh quota; a limit that changed starts afresh.
/// Plans are checked when they are built ([`Plans::from_toml`] and the
/// builder refuse bad ones with a typed error), so a bad edit never reaches
/// the layer and the plans in force stay.
///
/// ```
/// use tollgate::{Mode, Plans, RateLimitLayer};
///
/// let (layer, reloader) = RateLimitLayer::new(Plans::single("global", "100/second")?)
///     .reloadable();
///
/// // Later, from a config watcher or an admin endpoint:
/// let stricter = Plans::builder().tier("global", "50/second").build()?;
/// reloader.replace(0, stricter)?;
/// assert_eq!(layer.plans().default_tier().limits()[0].quota().count(), 50);
///
/// // The kill switch: stop checking without a deploy.
/// let off = Plans::builder().tier("global", "50/second").mode("global", Mode::Off).build()?;
/// reloader.replace(0, off)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reloader<St: Store = MemoryStore> {
    shared: Arc<Shared<St>>,
}

/// Why a [`Reloader`] refused new plans; the plans in force stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// No rule has this number.
    #[error("no rule {rule}: the layer has {rules}")]
    NoSuchRule {
        /// The number given.
        rule: usize,
        /// How many rules the layer has.
        rules: usize,
    },
    /// A plan set for every rule was expected.
    #[error("{given} plan sets given for {rules} rules")]
    WrongCount {
        /// How many plan sets were given.
        given: usize,
        /// How many rules the layer has.
        rules: usize,
    },
}

impl<St: Store> Reloader<St> {
    pub(crate) fn new(shared: Arc<Shared<St>>) -> Self {
        Self { shared }
    }

    /// The plans in force, one per rule, in rule order.
    pub fn plans(&self) -> Vec<Plans> {
        self.shared
            .rules
            .load()
            .iter()
            .map(|rule| rule.plans.clone())
            .collect()
    }

    /// Replaces the plans of rule `rule` (0 for the constructor's).
    pub fn replace(&self, rule: usize, plans: Plans) -> Result<(), ReloadError> {
        self.swap(|count| {
            if rule < count {
                Ok(vec![(rule, plans)])
            } else {
                Err(ReloadError::NoSuchRule { rule, rules: count })
            }
        })
    }

    /// Replaces the plans of every rule at once: one plan set per rule, in
    /// rule order. Requests see either all the old plans or all the new.
    pub fn replace_all(&self, plans: impl IntoIterator<Item = Plans>) -> Result<(), ReloadError> {
        let plans: Vec<Plans> = plans.into_iter().collect();
        self.swap(|count| {
            if plans.len() == count {
                Ok(plans.into_iter().enumerate().collect())
            } else {
                Err(ReloadError::WrongCount {
                    given: plans.len(),
                    rules: count,
                })
            }
        })
    }

    fn swap(
        &self,
        choose: impl FnOnce(usize) -> Result<Vec<(usize, Plans)>, ReloadError>,
    ) -> Result<(), ReloadError> {
        // One reload at a time, so none is lost between load and store.
        let _one = self
            .shared
            .reloading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.shared.rules.load_full();
        let changes = choose(current.len())?;
        let mut rules = Vec::clone(&current);
        let mut changed = 0;
        for (position, plans) in changes {
            let Some(old) = current.get(position) else {
                continue;
            };
            if old.plans == plans {
                continue;
            }
            changed += 1;
            rules[position] = Rule::rebind(
                &self.shared.store,
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
            .field("rules", &self.shared.rules.load().len())
            .finish_non_exhaustive()
    }
}
