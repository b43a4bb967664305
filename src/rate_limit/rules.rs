//! The rules in force: fixed for the life of the layer, or live (swapped
//! whole by a [`Reloader`](crate::Reloader), read without a lock).

use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::rate_limit::rule::Rule;

/// The tier chosen under each rule, by position.
pub(crate) type Tiers = smallvec::SmallVec<[usize; 2]>;

/// Rules skipped by a recheck, by position: those whose tier is in shadow
/// mode and would have refused.
pub(crate) type Skip = u32;

/// Whether the rule at `position` is skipped.
pub(crate) fn skipped(skip: Skip, position: usize) -> bool {
    position < Skip::BITS as usize && skip & (1 << position) != 0
}

/// Every rule of a layer, in order.
pub(crate) type Rules<H> = Vec<Rule<H>>;

/// The rules of a layer. A fixed set costs nothing to read; a live one an
/// `arc-swap` load (about a hundred instructions), which is why layers are
/// fixed unless built with
/// [`build_reloadable`](crate::RateLimitLayerBuilder::build_reloadable).
pub(crate) enum RuleSet<H> {
    Fixed(Arc<Rules<H>>),
    Live(ArcSwap<Rules<H>>),
}

/// The rules a request is checked under, held while it is.
pub(crate) enum Held<'a, H> {
    Fixed(&'a Arc<Rules<H>>),
    Live(Guard<Arc<Rules<H>>>),
}

impl<H> RuleSet<H> {
    /// Rules fixed for the life of the layer.
    pub(crate) fn fixed(rules: Rules<H>) -> Self {
        RuleSet::Fixed(Arc::new(rules))
    }

    /// Rules a reload may swap while they are read.
    pub(crate) fn live(rules: Rules<H>) -> Self {
        RuleSet::Live(ArcSwap::from_pointee(rules))
    }

    /// The rules in force now.
    #[inline]
    pub(crate) fn load(&self) -> Held<'_, H> {
        match self {
            RuleSet::Fixed(rules) => Held::Fixed(rules),
            RuleSet::Live(rules) => Held::Live(rules.load()),
        }
    }

    /// The rules in force now, as an owned handle.
    pub(crate) fn load_full(&self) -> Arc<Rules<H>> {
        match self {
            RuleSet::Fixed(rules) => Arc::clone(rules),
            RuleSet::Live(rules) => rules.load_full(),
        }
    }

    /// Swaps `rules` in while the set is read. `false` when the set is
    /// fixed (nothing changes then).
    pub(crate) fn swap(&self, rules: Rules<H>) -> bool {
        match self {
            RuleSet::Fixed(_) => false,
            RuleSet::Live(live) => {
                live.store(Arc::new(rules));
                true
            }
        }
    }
}

impl<H> Held<'_, H> {
    /// An owned handle on the held rules, for a check that outlives the call.
    pub(crate) fn into_arc(self) -> Arc<Rules<H>> {
        match self {
            Held::Fixed(rules) => Arc::clone(rules),
            Held::Live(guard) => Guard::into_inner(guard),
        }
    }
}

impl<H> Deref for Held<'_, H> {
    type Target = Rules<H>;

    #[inline]
    fn deref(&self) -> &Rules<H> {
        match self {
            Held::Fixed(rules) => rules,
            Held::Live(guard) => guard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::skipped;

    #[test]
    fn skipped_is_false_past_the_set() {
        assert!(skipped(1 << 31, 31));
        assert!(!skipped(u32::MAX, 32));
        assert!(!skipped(0, 0));
    }
}
