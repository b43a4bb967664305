//! Peeking: what a request's limits would answer, charging nothing
//! ([`Peeked`]).

use std::sync::Arc;

use http::{HeaderMap, Request};

use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::{KeyError, RequestInfo};
use crate::limit::Limit;
use crate::rate_limit::locate::{locate, policy_field};
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::Rules;
use crate::rate_limit::rules::Tiers;
use crate::rate_limit::state::Shared;
use crate::response::answer;
use crate::store::{Checked, Store};

/// What [`RateLimitLayer::peek`](crate::RateLimitLayer::peek) found: the
/// decision a request would get now, and nothing charged for it.
///
/// For an API that shows clients what they have left, such as a
/// `GET /quota` route outside the limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Peeked {
    /// Whether the request would be admitted, and the figures of the limit
    /// closest to running out (or of the one that would refuse).
    pub decision: Decision,
    /// That limit; `None` when no limit applies (every tier charged is
    /// [`Mode::Off`](crate::Mode::Off)).
    pub policy: Option<Limit>,
    /// The request's tier under the rule of that limit.
    pub tier: Option<String>,
    /// The `RateLimit-Policy` and `RateLimit` fields (and `Retry-After` when
    /// the request would be refused) the layer would send.
    pub headers: HeaderMap,
}

impl Peeked {
    /// The answer when no limit applies.
    pub(crate) fn unlimited() -> Self {
        Self {
            decision: Decision::unlimited(),
            policy: None,
            tier: None,
            headers: HeaderMap::new(),
        }
    }
}

/// Why [`RateLimitLayer::peek`](crate::RateLimitLayer::peek) has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeekError {
    /// No usable key could be read from the request.
    #[error("no usable key: {0}")]
    Key(#[from] KeyError),
    /// The store could not answer.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// A peek under way: the store's answer, now or later, and what reading
/// it needs.
pub(crate) struct Looked<St: Store> {
    /// `None` when no limit applies.
    pub(crate) checked: Option<Checked<St::Future>>,
    tiers: Tiers,
    rules: Arc<Rules<St::Handle>>,
}

impl<St: Store> Shared<St> {
    /// Reads the request's keys and tiers under the rules in force and asks
    /// the store what it would answer, charging nothing.
    pub(crate) fn look<B>(&self, request: &Request<B>) -> Result<Looked<St>, KeyError> {
        let info = RequestInfo::new(request);
        let rules = self.rules.load_full();
        self.gather(&rules, &info, 0, |charges, tiers, _, _| {
            let checked = (!charges.is_empty()).then(|| self.store.peek(charges));
            (checked, tiers.clone())
        })
        .map(|(checked, tiers)| Looked {
            checked,
            tiers,
            rules: Arc::clone(&rules),
        })
    }

    /// What a peek found, with the fields the layer would send.
    pub(crate) fn peeked(&self, looked: &Looked<St>, decision: Decision) -> Peeked {
        let rules: &[Rule<St::Handle>] = &looked.rules;
        let found = locate(rules, decision.policy(), &looked.tiers);
        let mut headers = HeaderMap::new();
        if let Some(found) = &found {
            answer::insert_fields(
                &mut headers,
                policy_field(rules, &looked.tiers),
                Some(found.limit),
                &decision,
                self.legacy_headers,
            );
        }
        Peeked {
            decision,
            policy: found.as_ref().map(|f| f.limit.clone()),
            tier: found.map(|f| f.rule.plans.tiers()[f.tier].name().to_owned()),
            headers,
        }
    }
}
