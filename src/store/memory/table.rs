//! One limit's counters: a keyed table per algorithm.

use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::budget::Budget;
use super::byte_key::ByteKey;
use super::in_flight::InFlightTable;
use super::ip_key::IpKey;
use crate::algorithm::AlgorithmKind;
use crate::algorithm::{
    Algorithm, Concurrency, FixedWindow, Gcra, Outcome, PackedSlidingWindow, SlidingLog,
    SlidingWindow, WideFixedWindow, RETRY_NEVER,
};
use crate::clock::Nanos;
use crate::error::StoreError;
use crate::key::{Key, KeyRepr};
use crate::limit::{Limit, LimitKind};
use crate::store::Permits;

pub(crate) type Hasher = foldhash::fast::RandomState;

/// IP keys and byte keys live in separate maps, so an API key can never
/// collide with an address; neither kind of short key touches the heap.
pub(crate) struct Keyed<A: Algorithm> {
    algorithm: A,
    ips: DashMap<IpKey, A::State, Hasher>,
    bytes: DashMap<ByteKey, A::State, Hasher>,
}

impl<A: Algorithm> Keyed<A> {
    fn new(algorithm: A) -> Self {
        Self {
            algorithm,
            ips: DashMap::with_hasher(Hasher::default()),
            bytes: DashMap::with_hasher(Hasher::default()),
        }
    }

    /// Runs `f` on the key's state, inserting a fresh state for a new key
    /// (which takes one unit of the store's key budget).
    #[inline]
    fn with_state<R>(
        &self,
        key: &Key<'_>,
        budget: &Budget,
        now: Nanos,
        f: impl FnOnce(&A, &A::State) -> R,
    ) -> Result<R, StoreError> {
        let a = &self.algorithm;
        match key.repr() {
            KeyRepr::Ip(ip) => {
                let ip = IpKey::new(*ip);
                let fresh = || (ip, a.new_state());
                with_entry(&self.ips, &ip, fresh, budget, now, |_, s| f(a, s))
            }
            KeyRepr::Bytes(bytes) => {
                let bytes: &[u8] = bytes;
                let fresh = || (ByteKey::new(bytes), a.new_state());
                with_entry(&self.bytes, bytes, fresh, budget, now, |_, s| f(a, s))
            }
        }
    }

    /// Runs `f` on the key's state when the key is known; inserts nothing.
    #[inline]
    fn known<R>(&self, key: &Key<'_>, f: impl FnOnce(&A, &A::State) -> R) -> Option<R> {
        let a = &self.algorithm;
        match key.repr() {
            KeyRepr::Ip(ip) => self.ips.get(&IpKey::new(*ip)).map(|s| f(a, &s)),
            KeyRepr::Bytes(bytes) => self.bytes.get(bytes.as_ref()).map(|s| f(a, &s)),
        }
    }

    /// Answers what `acquire` would for the key, without inserting it.
    fn peek(&self, key: &Key<'_>, now: Nanos, cost: u64) -> Outcome {
        self.known(key, |a, s| a.peek(s, now, cost))
            .unwrap_or_else(|| {
                let a = &self.algorithm;
                a.peek(&a.new_state(), now, cost)
            })
    }

    /// Charges the key as of `at` (`now`, or later for a request that
    /// passes later); the key budget reads `now`.
    #[inline(always)]
    fn acquire(
        &self,
        key: &Key<'_>,
        budget: &Budget,
        now: Nanos,
        at: Nanos,
        cost: u64,
    ) -> Result<Outcome, StoreError> {
        self.with_state(key, budget, now, |a, s| a.acquire(s, at, cost))
    }

    fn refund(&self, key: &Key<'_>, charged_at: Nanos, cost: u64) {
        self.refund_later(key, charged_at, charged_at, cost);
    }

    fn refund_later(&self, key: &Key<'_>, charged_at: Nanos, now: Nanos, cost: u64) {
        self.known(key, |a, s| {
            if now == charged_at {
                a.refund(s, charged_at, cost);
            } else {
                a.refund_later(s, charged_at, now, cost);
            }
        });
    }

    /// Forgets keys whose state is back to full and, when `light` is not
    /// zero, keys that use at most `light` units and still have room for a
    /// request; answers how many of each. Each removal is counted inside
    /// the shard lock that removes it, so concurrent inserts and sweeps
    /// never skew the count.
    fn sweep(&self, now: Nanos, light: u64) -> Swept {
        let mut swept = Swept::default();
        let a = &self.algorithm;
        let mut keep = |state: &A::State| {
            if a.is_idle(state, now) {
                swept.idle += 1;
                return false;
            }
            // A limited key is never forgotten: only one with room left for
            // a request that passes at once (a queued one would wait).
            let forget = light > 0 && a.used(state, now) <= light && {
                let next = a.peek(state, now, 1);
                next.allowed && next.delay() == 0
            };
            swept.light += usize::from(forget);
            !forget
        };
        self.ips.retain(|_, s| keep(s));
        self.bytes.retain(|_, s| keep(s));
        shrink_if_mostly_empty(&self.ips);
        shrink_if_mostly_empty(&self.bytes);
        swept
    }

    fn len(&self) -> usize {
        self.ips.len() + self.bytes.len()
    }
}

/// What one sweep of a table forgot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Keys back to a full allowance: forgetting them changes no answer.
    pub(crate) idle: usize,
    /// Keys that used at most the store's light-use units and had room
    /// left, forgotten for room.
    pub(crate) light: usize,
}

impl Swept {
    pub(crate) fn total(self) -> usize {
        self.idle + self.light
    }
}

impl std::ops::Add for Swept {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            idle: self.idle + other.idle,
            light: self.light + other.light,
        }
    }
}

/// A map keeps its capacity after removals: give memory back once most of
/// it stands empty.
pub(crate) fn shrink_if_mostly_empty<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V, Hasher>) {
    if map.capacity() > 4 * map.len().max(1024) {
        map.shrink_to_fit();
    }
}

/// Runs `f` on the entry under `key` in `map`, inserting the entry `fresh`
/// makes (and taking one unit of the key budget) when the key is new. A
/// known key is looked up first and takes only a shard read lock, held
/// while `f` runs (so a sweep, which needs the write lock, never forgets an
/// entry a request is charging); only a new key is copied.
#[inline]
pub(crate) fn with_entry<K, V, Q, R>(
    map: &DashMap<K, V, Hasher>,
    key: &Q,
    fresh: impl FnOnce() -> (K, V),
    budget: &Budget,
    now: Nanos,
    f: impl FnOnce(&K, &V) -> R,
) -> Result<R, StoreError>
where
    K: Eq + std::hash::Hash + std::borrow::Borrow<Q>,
    Q: Eq + std::hash::Hash + ?Sized,
{
    if let Some(entry) = map.get(key) {
        let (k, v) = entry.pair();
        return Ok(f(k, v));
    }
    budget.reserve(now)?;
    let (k, v) = fresh();
    match map.entry(k) {
        Entry::Occupied(e) => {
            budget.release(1);
            Ok(f(e.key(), e.get()))
        }
        Entry::Vacant(e) => {
            let entry = e.insert(v);
            let (k, v) = entry.pair();
            Ok(f(k, v))
        }
    }
}

/// The counters of one bound limit, and the budget their keys count against.
pub(crate) struct Table {
    counters: Counters,
    budget: Arc<Budget>,
}

impl Drop for Table {
    fn drop(&mut self) {
        self.budget.release(self.len());
    }
}

enum Counters {
    Gcra(Keyed<Gcra>),
    FixedWindow(Keyed<FixedWindow>),
    WideFixedWindow(Keyed<WideFixedWindow>),
    SlidingWindow(Keyed<SlidingWindow>),
    PackedSlidingWindow(Keyed<PackedSlidingWindow>),
    SlidingLog(Keyed<SlidingLog>),
    Concurrency(InFlightTable),
}

macro_rules! each {
    ($table:expr, $keyed:ident => $body:expr) => {
        match $table {
            Counters::Gcra($keyed) => $body,
            Counters::FixedWindow($keyed) => $body,
            Counters::WideFixedWindow($keyed) => $body,
            Counters::SlidingWindow($keyed) => $body,
            Counters::PackedSlidingWindow($keyed) => $body,
            Counters::SlidingLog($keyed) => $body,
            Counters::Concurrency($keyed) => $body,
        }
    };
}

impl Table {
    pub(crate) fn new(limit: &Limit, budget: Arc<Budget>) -> Self {
        let quota = limit.quota();
        let counters = match limit.kind() {
            // One word per key when every window number of the clock's
            // range fits beside the count, two otherwise.
            LimitKind::Rate(AlgorithmKind::FixedWindow) => {
                if FixedWindow::is_exact(quota) {
                    Counters::FixedWindow(Keyed::new(FixedWindow::new(quota)))
                } else {
                    Counters::WideFixedWindow(Keyed::new(WideFixedWindow::new(quota)))
                }
            }
            // One 64-bit word per key when the quota's numbers fit, two otherwise.
            LimitKind::Rate(AlgorithmKind::SlidingWindow) => {
                match PackedSlidingWindow::new(quota) {
                    Some(packed) => Counters::PackedSlidingWindow(Keyed::new(packed)),
                    None => Counters::SlidingWindow(Keyed::new(SlidingWindow::new(quota))),
                }
            }
            LimitKind::Rate(AlgorithmKind::SlidingLog) => {
                Counters::SlidingLog(Keyed::new(SlidingLog::new(quota)))
            }
            // With the quota's queue, if any.
            LimitKind::Rate(_) => Counters::Gcra(Keyed::new(Gcra::new(quota))),
            LimitKind::Concurrency => {
                Counters::Concurrency(InFlightTable::new(Concurrency::new(quota)))
            }
        };
        Self { counters, budget }
    }

    /// Charges the key; a concurrency limit adds its permit to `permits`.
    #[inline]
    pub(crate) fn acquire(
        &self,
        key: &Key<'_>,
        now: Nanos,
        cost: u64,
        permits: &mut Permits,
    ) -> Result<Outcome, StoreError> {
        self.acquire_at(key, now, now, cost, permits)
    }

    /// [`acquire`](Self::acquire) for a request that passes at `at`: a GCRA
    /// counts it then; a window or a concurrency limit, which cannot count
    /// ahead, counts it `now`.
    #[inline(always)]
    pub(crate) fn acquire_at(
        &self,
        key: &Key<'_>,
        now: Nanos,
        at: Nanos,
        cost: u64,
        permits: &mut Permits,
    ) -> Result<Outcome, StoreError> {
        let budget = &*self.budget;
        match &self.counters {
            Counters::Concurrency(table) => table.acquire(key, budget, now, cost, permits),
            Counters::Gcra(keyed) => keyed.acquire(key, budget, now, at, cost),
            Counters::FixedWindow(keyed) => keyed.acquire(key, budget, now, now, cost),
            Counters::WideFixedWindow(keyed) => keyed.acquire(key, budget, now, now, cost),
            Counters::SlidingWindow(keyed) => keyed.acquire(key, budget, now, now, cost),
            Counters::PackedSlidingWindow(keyed) => keyed.acquire(key, budget, now, now, cost),
            Counters::SlidingLog(keyed) => keyed.acquire(key, budget, now, now, cost),
        }
    }

    /// Gives back the place of a request admitted at `charged_at` to pass
    /// `delay` later, when no later request reserved one after it (see
    /// [`Gcra::cancel`]); only a GCRA delays.
    pub(crate) fn cancel(&self, key: &Key<'_>, charged_at: Nanos, delay: Nanos, cost: u64) -> bool {
        let Counters::Gcra(keyed) = &self.counters else {
            return false;
        };
        keyed
            .known(key, |gcra, s| gcra.cancel(s, charged_at, delay, cost))
            .unwrap_or(false)
    }

    pub(crate) fn peek(&self, key: &Key<'_>, now: Nanos, cost: u64) -> Outcome {
        each!(&self.counters, keyed => keyed.peek(key, now, cost))
    }

    /// [`peek`](Self::peek) for a request that would pass at `at`, answered
    /// from `now`: a GCRA looks at `at` (a wait it would add there, or its
    /// refusal's wait, is counted from `now`, and a wait beyond `at` is a
    /// refusal: the request passes at `at` or not at all); a window or a
    /// concurrency limit looks `now`.
    pub(crate) fn peek_at(&self, key: &Key<'_>, now: Nanos, at: Nanos, cost: u64) -> Outcome {
        let Counters::Gcra(keyed) = &self.counters else {
            return self.peek(key, now, cost);
        };
        let outcome = keyed.peek(key, at, cost);
        let ahead = at.saturating_sub(now);
        if ahead == 0 {
            return outcome;
        }
        if outcome.allowed && outcome.delay() == 0 {
            return outcome;
        }
        let retry = if !outcome.allowed && outcome.retry_after == RETRY_NEVER {
            RETRY_NEVER
        } else {
            outcome.retry_after.saturating_add(ahead)
        };
        Outcome::deny(outcome.limit, outcome.remaining, outcome.window, retry)
    }

    /// Gives back at `now` what a check took at `charged_at` (a refund
    /// decided after the answer).
    pub(crate) fn refund_later(&self, key: &Key<'_>, charged_at: Nanos, now: Nanos, cost: u64) {
        match &self.counters {
            Counters::Concurrency(_) => {}
            Counters::Gcra(keyed) => keyed.refund_later(key, charged_at, now, cost),
            Counters::FixedWindow(keyed) => keyed.refund_later(key, charged_at, now, cost),
            Counters::WideFixedWindow(keyed) => keyed.refund_later(key, charged_at, now, cost),
            Counters::SlidingWindow(keyed) => keyed.refund_later(key, charged_at, now, cost),
            Counters::PackedSlidingWindow(keyed) => keyed.refund_later(key, charged_at, now, cost),
            Counters::SlidingLog(keyed) => keyed.refund_later(key, charged_at, now, cost),
        }
    }

    /// Undoes a charge of a rolled-back check taken `now` for a request
    /// passing `at` (as [`acquire_at`](Self::acquire_at) took it).
    /// Concurrency charges are undone by dropping their permits instead.
    pub(crate) fn undo(&self, key: &Key<'_>, now: Nanos, at: Nanos, cost: u64) {
        match &self.counters {
            Counters::Concurrency(_) => {}
            Counters::Gcra(keyed) => keyed.refund(key, at, cost),
            Counters::FixedWindow(keyed) => keyed.refund(key, now, cost),
            Counters::WideFixedWindow(keyed) => keyed.refund(key, now, cost),
            Counters::SlidingWindow(keyed) => keyed.refund(key, now, cost),
            Counters::PackedSlidingWindow(keyed) => keyed.refund(key, now, cost),
            Counters::SlidingLog(keyed) => keyed.refund(key, now, cost),
        }
    }

    /// Forgets idle keys, and keys using at most `light` units (see
    /// [`Keyed::sweep`]); a concurrency limit forgets only idle keys.
    pub(crate) fn sweep(&self, now: Nanos, light: u64) -> Swept {
        match &self.counters {
            Counters::Concurrency(table) => Swept {
                idle: table.sweep(now),
                light: 0,
            },
            Counters::Gcra(keyed) => keyed.sweep(now, light),
            Counters::FixedWindow(keyed) => keyed.sweep(now, light),
            Counters::WideFixedWindow(keyed) => keyed.sweep(now, light),
            Counters::SlidingWindow(keyed) => keyed.sweep(now, light),
            Counters::PackedSlidingWindow(keyed) => keyed.sweep(now, light),
            Counters::SlidingLog(keyed) => keyed.sweep(now, light),
        }
    }

    pub(crate) fn len(&self) -> usize {
        each!(&self.counters, keyed => keyed.len())
    }
}
