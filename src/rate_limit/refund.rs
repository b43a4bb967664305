//! Charges given back after the response: Flask-Limiter's `deduct_when`,
//! without its race.
//!
//! A request is charged when it is admitted, as always, so concurrent
//! requests can never pass a limit together; once the inner service has
//! answered, a predicate on the answer may give the charge back
//! ([`RateLimitLayerBuilder::refund_when`](crate::RateLimitLayerBuilder::refund_when)).
//! Counting only failed logins is "refund every success"; not charging for
//! the server's own errors is "refund every 5xx".

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use smallvec::SmallVec;

use crate::key::Key;
use crate::rate_limit::rule::Rule;
use crate::store::{Charge, Receipt, Store};

/// Decides from the inner service's answer whether to give the charge back.
pub(crate) type RefundFn = Arc<dyn Fn(StatusCode, &HeaderMap) -> bool + Send + Sync>;

/// What an admitted request was charged, owned so it outlives the request.
pub(crate) struct Owned<H> {
    /// Each charge's limit and key.
    charges: SmallVec<[(H, Key<'static>); 2]>,
    cost: u64,
}

impl<H> Owned<H> {
    pub(crate) fn new(cost: u64) -> Self {
        Self {
            charges: SmallVec::new(),
            cost,
        }
    }

    pub(crate) fn push(&mut self, handle: H, key: Key<'static>) {
        self.charges.push((handle, key));
    }

    /// The charges of the rules in their `tiers`, with `keys`, owned.
    pub(crate) fn of(rules: &[Rule<H>], tiers: &[usize], keys: &[Key<'_>], cost: u64) -> Box<Self>
    where
        H: Clone,
    {
        let mut owned = Box::new(Owned::new(cost));
        for ((rule, tier), key) in rules.iter().zip(tiers).zip(keys) {
            for handle in rule.handles.get(*tier).into_iter().flatten() {
                owned.push(handle.clone(), key.clone().into_owned());
            }
        }
        owned
    }

    /// The charges, as a store takes them.
    pub(crate) fn as_charges(&self) -> SmallVec<[Charge<'_, H>; 8]> {
        self.charges
            .iter()
            .map(|(handle, key)| Charge::new(handle, key, self.cost))
            .collect()
    }
}

/// Settles an admitted request's charge once its answer is known.
pub(crate) trait Refund: Send + Sync {
    /// Gives the charge back if the layer's predicate says so.
    fn settle(self: Box<Self>, status: StatusCode, headers: &HeaderMap);
}

/// The charge of one admitted request, and what giving it back needs.
pub(crate) struct Ticket<St: Store> {
    store: St,
    when: RefundFn,
    owned: Box<Owned<St::Handle>>,
    receipt: Receipt,
}

impl<St: Store> Ticket<St> {
    pub(crate) fn new(
        store: St,
        when: RefundFn,
        owned: Box<Owned<St::Handle>>,
        receipt: Receipt,
    ) -> Self {
        Self {
            store,
            when,
            owned,
            receipt,
        }
    }
}

impl<St: Store> Refund for Ticket<St> {
    fn settle(self: Box<Self>, status: StatusCode, headers: &HeaderMap) {
        if !(self.when)(status, headers) {
            return;
        }
        self.store.refund(&self.owned.as_charges(), self.receipt);
    }
}

impl<St: Store> fmt::Debug for Ticket<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("charges", &self.owned.charges.len())
            .field("cost", &self.owned.cost)
            .finish_non_exhaustive()
    }
}

/// What an admitted request carries besides its permits: the fields to add
/// to its answer and the refund to settle, if any. Boxed, and only there
/// when needed, so the admitted path moves small values.
#[derive(Default)]
pub(crate) struct After {
    pub(crate) headers: Option<HeaderMap>,
    pub(crate) refund: Option<Box<dyn Refund>>,
}

impl After {
    /// Adds the fields and settles the refund for an answer.
    pub(crate) fn apply(self, status: StatusCode, headers: &mut HeaderMap) {
        if let Some(refund) = self.refund {
            refund.settle(status, headers);
        }
        if let Some(fields) = self.headers {
            headers.extend(fields);
        }
    }
}
