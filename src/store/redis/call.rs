//! The one path of every call a check makes to Redis: the circuit
//! breaker's admission, the call itself (with a charging script's
//! deadline), the metrics, the report to the breaker and to the fallback's
//! switch; and the answer a check gets when Redis cannot give one.
//!
//! A check asks [`Inner::admit`] before it makes its future: `None` (the
//! breaker open) means it must not call Redis, and [`Inner::degrade`]
//! answers it at once. Otherwise the [`Gate`] it gets goes into the future
//! and every call of the check goes through it: one call on one node, one
//! per slot on a cluster, a lease or two in leased mode. The check reports
//! its outcome to the breaker once ([`Gate::report`]); a gate dropped
//! unreported (the check cancelled, even before its first poll) hands a
//! probe on to the next check, so a cancelled probe never leaves the
//! breaker half-open for good.

use std::sync::Arc;

use super::breaker::{Admit, CircuitOpen};
use super::fallback::LocalCharge;
use super::scripts::{self, Run};
use super::Inner;
use crate::error::StoreError;
use crate::store::Verdict;

/// A check let through by the circuit breaker, until its outcome is
/// reported; see the [module docs](self).
pub(super) struct Gate {
    inner: Arc<Inner>,
    probe: bool,
    reported: bool,
}

impl Inner {
    /// The breaker's word on a check: a [`Gate`] for its calls, or `None`
    /// while it is open (the check must not call Redis).
    pub(super) fn admit(self: &Arc<Self>) -> Option<Gate> {
        let probe = match self.breaker.as_ref().map(|b| b.admit()) {
            None | Some(Admit::Call) => false,
            Some(Admit::Probe) => true,
            Some(Admit::Reject) => return None,
        };
        Some(Gate {
            inner: Arc::clone(self),
            probe,
            reported: false,
        })
    }

    /// The answer of a check Redis could not give: the local fallback's,
    /// when it is on, the check has its local charges and the error is a
    /// timeout or an unavailable Redis; else the error.
    pub(super) fn degrade(
        &self,
        error: StoreError,
        local: Option<&[LocalCharge]>,
        take: bool,
    ) -> Result<Verdict, StoreError> {
        match (error, &self.fallback, local) {
            (
                error @ (StoreError::Timeout(_) | StoreError::Unavailable(_)),
                Some(fallback),
                Some(local),
            ) => fallback.answer_owned(local, take, &error),
            (error, _, _) => Err(error),
        }
    }

    /// [`degrade`](Self::degrade) for a check the open breaker kept from
    /// Redis.
    pub(super) fn circuit_open(
        &self,
        local: Option<&[LocalCharge]>,
        take: bool,
    ) -> Result<Verdict, StoreError> {
        self.degrade(StoreError::Unavailable(Box::new(CircuitOpen)), local, take)
    }
}

impl Gate {
    /// The store the check runs in.
    pub(super) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// One run of a charging script (a check's or a lease's); see
    /// [`scripts::run`].
    pub(super) async fn script(
        &self,
        which: Run,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Vec<i64>, StoreError> {
        let inner = &*self.inner;
        let call = scripts::run(
            &inner.backend,
            &inner.deadlines,
            which,
            keys,
            args,
            inner.timeout,
        );
        self.timed(call).await
    }

    /// Runs `call`: counted in the metrics, and an answer tells the
    /// fallback Redis is back.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let inner = &*self.inner;
        #[cfg(feature = "metrics")]
        let started = inner.metrics.started();
        let answer = call.await;
        #[cfg(feature = "metrics")]
        inner.metrics.finished(started, &answer);
        if let (Ok(_), Some(fallback)) = (&answer, &inner.fallback) {
            fallback.redis_answered();
        }
        answer
    }

    /// Reports the check's outcome to the breaker: `ok` when Redis answered
    /// every call it made (whatever it answered). Only the first report
    /// counts.
    pub(super) fn report(&mut self, ok: bool) {
        if std::mem::replace(&mut self.reported, true) {
            return;
        }
        if let Some(breaker) = &self.inner.breaker {
            breaker.record(self.probe, ok);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let (false, true, Some(breaker)) = (self.reported, self.probe, &self.inner.breaker) {
            breaker.abandon_probe();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{BreakerSettings, BreakerState, RedisStore};
    use crate::clock::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn store(clock: &ManualClock) -> RedisStore {
        RedisStore::builder("redis://127.0.0.1:1/")
            .clock(clock.clone())
            .breaker(BreakerSettings::new().min_calls(1).backoff(MS, MS))
            .build()
            .expect("store")
    }

    /// A check cancelled before its future was ever polled must not leave
    /// the breaker half-open with a probe nobody runs.
    #[test]
    fn a_probe_dropped_unreported_hands_the_probe_on() {
        let clock = ManualClock::new();
        let store = store(&clock);
        let inner = &store.inner;
        let mut first = inner.admit().expect("closed: calls Redis");
        first.report(false);
        assert_eq!(store.breaker_state(), BreakerState::Open);
        assert!(inner.admit().is_none(), "open: no call");
        clock.advance(2 * MS);
        let probe = inner.admit().expect("after the backoff: the probe");
        assert!(inner.admit().is_none(), "one probe at a time");
        drop(probe);
        let mut next = inner.admit().expect("the next check probes");
        next.report(true);
        assert_eq!(store.breaker_state(), BreakerState::Closed);
    }

    #[test]
    fn only_the_first_report_counts() {
        let clock = ManualClock::new();
        let store = store(&clock);
        let mut gate = store.inner.admit().expect("closed");
        gate.report(true);
        gate.report(false);
        drop(gate);
        assert_eq!(store.breaker_state(), BreakerState::Closed);
    }
}
