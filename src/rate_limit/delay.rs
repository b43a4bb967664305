//! Admissions that wait their turn: a limit with a queue (delay mode)
//! admits a request beyond its burst to pass later, like nginx's
//! `limit_req` without `nodelay`.
//!
//! The place is taken when the request arrives (the store reserves it in
//! the same atomic step that admits it), so waiters are ordered and the
//! rate is exact. The response future then sleeps on a Tokio timer (no
//! lock, no thread: one timer entry and the boxed future per waiter) and
//! calls a fresh clone of the inner service once the turn comes, so a
//! waiting request holds nothing of the services inside: no concurrency
//! permit, no [`LoadShedLayer`](crate::shed::LoadShedLayer) place.
//!
//! A waiter dropped before its turn (its client went away) gives its
//! place back through [`Store::cancel`] where that cannot hand room to a
//! later request; after its turn, it is an admitted request like any other.
//! A refund (`refund_when`) is settled on an answer, so it only ever
//! applies to a request that passed: cancellation and refund never meet.
//!
//! Which limits may share a layer with a delaying limit: only GCRA limits,
//! each charged for the instant the request passes (the longest wait over
//! its limits). A window or a concurrency limit cannot count a request at
//! an instant still to come, so the builder refuses them beside a queue
//! ([`ConfigError::DelayBeside`](crate::ConfigError::DelayBeside)): give them a layer of their own, inside
//! (they see each request when it passes) or outside (when it arrives).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::{Request, Response};
use tower_service::Service;

use crate::body::ResponseBody;
use crate::clock::Nanos;
use crate::key::RequestInfo;
use crate::rate_limit::future::finish;
use crate::rate_limit::refund::{After, Owned};
use crate::rate_limit::rule::Rule;
use crate::rate_limit::rules::Skip;
use crate::rate_limit::state::Shared;
use crate::store::{Permits, Receipt, Store};

/// An admission that passes later: how long it waits, what its answer
/// carries, and how to give its place back if it leaves first.
pub(crate) struct Wait {
    pub(super) delay: Nanos,
    pub(super) after: Option<Box<After>>,
    pub(super) receipt: Option<Receipt>,
    pub(super) skip: Skip,
    pub(super) cancel: Option<Box<dyn Cancel>>,
}

/// Gives back the place of a waiter that leaves before its turn.
pub(crate) trait Cancel: Send + Sync {
    fn cancel(self: Box<Self>);
}

/// The charges of one waiter, owned, and the check that took them.
struct Place<St: Store> {
    store: St,
    owned: Box<Owned<St::Handle>>,
    receipt: Receipt,
    delay: Nanos,
}

impl<St: Store> Cancel for Place<St> {
    fn cancel(self: Box<Self>) {
        let delay = Duration::from_nanos(self.delay);
        self.store
            .cancel(&self.owned.as_charges(), self.receipt, delay);
    }
}

/// Cancels the place when dropped, unless the turn came ([`kept`](Self::kept)).
struct Holding(Option<Box<dyn Cancel>>);

impl Holding {
    fn kept(mut self) {
        self.0 = None;
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(place) = self.0.take() {
            place.cancel();
        }
    }
}

impl<St: Store> Shared<St> {
    /// Completes a wait with what cancelling it needs: the request's
    /// charges, owned (read again from the request: the keys and tiers a
    /// check reads are a function of the request alone).
    pub(super) fn hold(
        &self,
        rules: &[Rule<St::Handle>],
        info: &RequestInfo<'_>,
        mut wait: Box<Wait>,
    ) -> Box<Wait> {
        if let Some(receipt) = wait.receipt {
            let owned = self.gather(rules, info, wait.skip, |_, tiers, keys, cost| {
                Owned::of(rules, tiers, keys, cost)
            });
            if let Ok(owned) = owned {
                wait.cancel = Some(Box::new(Place {
                    store: self.store.clone(),
                    owned,
                    receipt,
                    delay: wait.delay,
                }));
            }
        }
        wait
    }
}

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

/// The response future of a waiter: sleeps until its turn, then drives
/// `inner` (a clone no one made ready) through `poll_ready` and `call`.
pub(crate) fn wait_then_call<S, ReqBody, ResBody>(
    mut inner: S,
    request: Request<ReqBody>,
    wait: Wait,
) -> Boxed<ResBody, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    let Wait {
        delay,
        after,
        cancel,
        ..
    } = wait;
    // Made before the future: one dropped before it was ever polled gives
    // its place back too.
    let holding = Holding(cancel);
    Box::pin(async move {
        let holding = holding;
        tokio::time::sleep(Duration::from_nanos(delay)).await;
        holding.kept();
        std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
        let response = inner.call(request).await?;
        Ok(finish(response, Permits::none(), after))
    })
}

/// Whether the request's task can sleep: a Tokio runtime is running.
pub(crate) fn can_wait() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}
