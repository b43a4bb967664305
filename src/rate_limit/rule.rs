//! A rule: who is counted (a key extractor) and under which plans.

use std::sync::Arc;

use crate::key::KeyExtractor;
use crate::limit::Limit;
use crate::plan::mode::Mode;
use crate::plan::Plans;
use http::HeaderValue;

use crate::response::answer::PolicyText;
use crate::response::fields::push_policy_item;
use crate::store::Store;

/// One key extractor and the plan set its keys are counted under, bound to
/// a store. A request charges every rule's limits, all or nothing.
pub(crate) struct Rule<H> {
    /// The name a [`Reloader`](crate::Reloader) replaces the rule by.
    pub(crate) name: Arc<str>,
    pub(crate) extractor: Arc<dyn KeyExtractor>,
    pub(crate) plans: Plans,
    /// The bound limits, per tier then per limit; none for a tier whose
    /// mode is [`Mode::Off`].
    pub(crate) handles: Vec<Vec<H>>,
    /// Each tier's `RateLimit-Policy` items, written once.
    pub(crate) policy_items: Vec<HeaderValue>,
    /// Each limit's refusal text, per tier then per limit.
    pub(crate) texts: Vec<Vec<PolicyText>>,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::RuleMetrics,
}

impl<H: Clone> Clone for Rule<H> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            extractor: Arc::clone(&self.extractor),
            plans: self.plans.clone(),
            handles: self.handles.clone(),
            policy_items: self.policy_items.clone(),
            texts: self.texts.clone(),
            #[cfg(feature = "metrics")]
            metrics: self.metrics.clone(),
        }
    }
}

impl<H> Rule<H> {
    pub(crate) fn bind<St: Store<Handle = H>>(
        store: &St,
        name: Arc<str>,
        plans: Plans,
        extractor: Arc<dyn KeyExtractor>,
    ) -> Self
    where
        H: Clone,
    {
        Self::rebind(store, name, plans, extractor, None)
    }

    /// Binds `plans`, keeping the counters of every limit `previous` already
    /// bound with the same definition (name, quota and algorithm) in the
    /// tier of the same name. Only there: two tiers holding identical
    /// definitions count apart before a reload, so they must after it.
    pub(crate) fn rebind<St: Store<Handle = H>>(
        store: &St,
        name: Arc<str>,
        plans: Plans,
        extractor: Arc<dyn KeyExtractor>,
        previous: Option<&Rule<H>>,
    ) -> Self
    where
        H: Clone,
    {
        let handles = plans
            .tiers()
            .iter()
            .map(|tier| {
                if tier.mode() == Mode::Off {
                    return Vec::new();
                }
                tier.limits()
                    .iter()
                    .map(|l| {
                        previous
                            .and_then(|p| p.handle_of(tier.name(), l))
                            .unwrap_or_else(|| store.bind(l))
                    })
                    .collect()
            })
            .collect();
        let policy_items = plans
            .tiers()
            .iter()
            .map(|tier| {
                let mut out = Vec::new();
                if tier.mode() == Mode::Off {
                    return HeaderValue::from_static("");
                }
                for (i, limit) in tier.limits().iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    push_policy_item(&mut out, limit);
                }
                // Policy names are restricted to header-safe characters.
                HeaderValue::from_maybe_shared(bytes::Bytes::from(out))
                    .unwrap_or_else(|_| HeaderValue::from_static(""))
            })
            .collect();
        let texts = plans
            .tiers()
            .iter()
            .map(|tier| {
                tier.limits()
                    .iter()
                    .map(|limit| PolicyText::new(limit, tier.name()))
                    .collect()
            })
            .collect();
        Self {
            name,
            extractor,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::RuleMetrics::new(&plans),
            plans,
            handles,
            policy_items,
            texts,
        }
    }
}

impl<H: Clone> Rule<H> {
    /// The handle bound in the tier named `tier` for a limit defined
    /// exactly as `limit` (names are unique within a tier).
    fn handle_of(&self, tier: &str, limit: &Limit) -> Option<H> {
        let (old, handles) = self
            .plans
            .tiers()
            .iter()
            .zip(&self.handles)
            .find(|(old, _)| old.name() == tier)?;
        let index = old.limits().iter().position(|l| l == limit)?;
        handles.get(index).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Key, PeerIp};
    use crate::store::{Charge, Checked, MemoryHandle, MemoryStore};

    fn admitted(store: &MemoryStore, handle: &MemoryHandle, key: &Key<'_>) -> bool {
        match store.check(&[Charge::new(handle, key, 1)]) {
            Checked::Ready(verdict) => verdict.expect("memory").decision.is_allowed(),
            Checked::Pending(never) => match never {},
        }
    }

    /// Found by reading, shown here: two tiers holding an identical limit
    /// definition count apart, and went on counting apart after a reload
    /// only once handles were looked up by tier as well as definition.
    #[test]
    fn identical_limits_of_two_tiers_keep_their_own_counters_across_a_reload() {
        let shared = || {
            crate::limit::Limit::new(
                "shared",
                "2/minute".parse().expect("quota"),
                crate::algorithm::AlgorithmKind::Gcra,
            )
            .expect("limit")
        };
        let plans = Plans::builder()
            .tier_limits("basic", [shared()])
            .tier_limits("team", [shared()])
            .build()
            .expect("plans");
        assert_eq!(plans.tiers()[0].limits(), plans.tiers()[1].limits());
        let store = MemoryStore::new();
        let extractor: Arc<dyn KeyExtractor> = Arc::new(PeerIp::new());
        let rule = Rule::bind(&store, "main".into(), plans.clone(), Arc::clone(&extractor));
        let key = Key::owned("client", "t").expect("key");
        let (basic, team) = (&rule.handles[0][0], &rule.handles[1][0]);
        assert!(admitted(&store, basic, &key) && admitted(&store, basic, &key));
        assert!(!admitted(&store, basic, &key), "basic spent");
        assert!(admitted(&store, team, &key), "team counts apart");

        let reloaded = Rule::rebind(&store, "main".into(), plans, extractor, Some(&rule));
        let (basic, team) = (&reloaded.handles[0][0], &reloaded.handles[1][0]);
        assert!(
            !admitted(&store, basic, &key),
            "basic kept its counter: still spent"
        );
        assert!(admitted(&store, team, &key), "team kept its own: one left");
        assert!(!admitted(&store, team, &key), "and now spent");
    }
}
