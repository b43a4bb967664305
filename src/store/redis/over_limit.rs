//! The over-limit cache: rate-limit denials remembered locally until their
//! retry instant, so a client already refused costs no Redis call.
//!
//! An entry is keyed by the counter's Redis key (`<prefix>:{<tag>}:<id>`,
//! one per client key and policy) and holds the serial of the bound limit
//! that was refused, the cost refused, and the local monotonic instant until
//! which that request is certainly still refused: the local clock read
//! *before* the script was sent, plus the script's `retry_after` (a
//! duration, so clock skew with Redis does not matter, and the script's own
//! reading of time comes after ours, so the instant is never late).
//!
//! # Why a cached denial is never wrong
//!
//! A rate limit's state only moves toward refusal while time stands still:
//! charges (from this instance or any other) raise a TAT, a window's count
//! or a log; only time lowers them (and refunds, below). `retry_after` is
//! the time until a request of that cost would fit if nothing else were
//! charged, so until then it is refused whatever else happens, and a
//! larger cost is refused too. Hence an entry answers only a charge of
//! the same bound limit and client key with a cost at least the cached
//! one, and only before its instant. Not cached:
//!
//! - concurrency denials: a permit released early frees a slot at any time;
//! - denials that never end (cost above capacity, `RETRY_NEVER`);
//! - a charge whose counter appears twice in one check (the script lets the
//!   later one see the earlier one's cost, so its denial may not hold alone).
//!
//! The cache never admits: a miss goes to Redis. The ways it can refuse
//! what Redis would admit are a counter lowered other than by time: a
//! refund (`refund_when`; the store then [forgets](OverLimitCache::forget)
//! the refunded counters' entries once Redis has it, but another instance
//! keeps its own), or a counter reset behind its back (`DEL`, `FLUSHDB`, a
//! lost Redis). Then it refuses until the cached instant at most, as the
//! old state would have: extra refusals, never an admission.
//!
//! # Bounded
//!
//! At most `max_entries` entries. Expired entries are dropped when looked
//! up, and all at once when the cache is full and the earliest entry has
//! expired; when still full, a new denial is simply not cached. A full
//! cache of live entries costs one comparison per refused insert, no scan.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::LocalClock;
use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::clock::{Clock, Nanos};

/// Denials remembered per counter key; see the [module docs](self).
pub(super) struct OverLimitCache {
    max_entries: usize,
    clock: LocalClock,
    state: Mutex<State>,
    hits: AtomicU64,
}

struct State {
    entries: HashMap<Box<str>, Entry>,
    /// No entry expires before this instant (a lower bound).
    earliest: Nanos,
}

#[derive(Clone, Copy)]
struct Entry {
    /// The bound limit refused.
    serial: u64,
    /// The cost refused.
    cost: u64,
    /// Refused until this local instant (exclusive).
    until: Nanos,
    /// The limit's quota, as Redis reported it.
    limit: u64,
    /// The local instant the effective window ends (see `Decision::window`).
    window_at: Nanos,
}

impl OverLimitCache {
    /// A cache of at most `max_entries` entries counting on `clock`;
    /// `None` for 0 (no cache).
    pub(super) fn new(max_entries: usize, clock: LocalClock) -> Option<Self> {
        (max_entries > 0).then(|| Self {
            max_entries,
            clock,
            state: Mutex::new(State {
                entries: HashMap::new(),
                earliest: Nanos::MAX,
            }),
            hits: AtomicU64::new(0),
        })
    }

    /// The local monotonic clock the entries count in.
    pub(super) fn now(&self) -> Nanos {
        self.clock.now()
    }

    /// A denial for a charge of `cost` under the limit `serial` on
    /// `counter` at `now`, if a live entry covers it: remaining 0,
    /// `retry_after` the time left (at least 1 ns), `window` the cached one
    /// minus the time passed.
    pub(super) fn lookup(
        &self,
        counter: &str,
        serial: u64,
        cost: u64,
        now: Nanos,
    ) -> Option<Outcome> {
        let mut state = self.lock();
        let entry = *state.entries.get(counter)?;
        if now >= entry.until {
            state.entries.remove(counter);
            return None;
        }
        drop(state);
        if entry.serial != serial || cost < entry.cost {
            return None;
        }
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(Outcome::deny(
            entry.limit,
            0,
            entry.window_at.saturating_sub(now),
            entry.until - now,
        ))
    }

    /// Remembers Redis's `outcome` for a charge of `cost` under the limit
    /// `serial` on `counter`, the script having been sent at local instant
    /// `sent`. Only a rate-limit denial that ends is given here; admissions
    /// and `RETRY_NEVER` are ignored.
    pub(super) fn remember(
        &self,
        counter: &str,
        serial: u64,
        cost: u64,
        sent: Nanos,
        outcome: &Outcome,
    ) {
        if outcome.allowed || outcome.retry_after == 0 || outcome.retry_after == RETRY_NEVER {
            return;
        }
        let until = sent.saturating_add(outcome.retry_after);
        let now = self.now();
        if until <= now {
            return;
        }
        let entry = Entry {
            serial,
            cost,
            until,
            limit: outcome.limit,
            window_at: sent.saturating_add(outcome.window),
        };
        let mut state = self.lock();
        let state = &mut *state;
        if let Some(old) = state.entries.get_mut(counter) {
            *old = entry;
        } else {
            if state.entries.len() >= self.max_entries {
                if now < state.earliest {
                    return;
                }
                state.entries.retain(|_, e| now < e.until);
                state.earliest = state
                    .entries
                    .values()
                    .map(|e| e.until)
                    .min()
                    .unwrap_or(Nanos::MAX);
                if state.entries.len() >= self.max_entries {
                    return;
                }
            }
            state.entries.insert(counter.into(), entry);
        }
        state.earliest = state.earliest.min(until);
    }

    /// Drops the refusal remembered for `counter` under the limit
    /// `serial`, if any: a refund gave that counter room back, so the
    /// refusal may no longer hold. Dropping an entry never admits anything
    /// by itself: the next check asks Redis.
    pub(super) fn forget(&self, counter: &str, serial: u64) {
        let mut state = self.lock();
        if state
            .entries
            .get(counter)
            .is_some_and(|entry| entry.serial == serial)
        {
            state.entries.remove(counter);
        }
    }

    /// Checks answered from the cache so far.
    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Entries held, expired ones not yet dropped included.
    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub(super) fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    const SEC: Nanos = 1_000_000_000;

    fn denied(retry_after: Nanos) -> Outcome {
        Outcome {
            allowed: false,
            limit: 10,
            remaining: 0,
            window: 3 * SEC,
            retry_after,
        }
    }

    fn cache(max: usize) -> (OverLimitCache, ManualClock) {
        let clock = ManualClock::new();
        let cache = OverLimitCache::new(max, Arc::new(clock.clone())).expect("a cache");
        (cache, clock)
    }

    #[test]
    fn zero_entries_is_no_cache() {
        assert!(OverLimitCache::new(0, Arc::new(ManualClock::new())).is_none());
    }

    #[test]
    fn a_denial_is_answered_until_its_instant_never_with_zero() {
        let (c, _clock) = cache(4);
        let sent = c.now();
        c.remember("k", 1, 2, sent, &denied(SEC));
        let hit = c.lookup("k", 1, 2, sent + 400_000_000).expect("hit");
        assert!(!hit.allowed);
        assert_eq!((hit.limit, hit.remaining), (10, 0));
        assert_eq!(hit.retry_after, 600_000_000);
        assert_eq!(hit.window, 3 * SEC - 400_000_000);
        assert_eq!(
            c.lookup("k", 1, 2, sent + SEC - 1)
                .expect("hit")
                .retry_after,
            1
        );
        assert_eq!(c.hits(), 2);
        // At the instant the request may pass: a miss, and the entry goes.
        assert!(c.lookup("k", 1, 2, sent + SEC).is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn only_the_same_limit_at_no_lower_cost_hits() {
        let (c, _clock) = cache(4);
        let sent = c.now();
        c.remember("k", 1, 2, sent, &denied(SEC));
        assert!(c.lookup("k", 1, 1, sent).is_none());
        assert!(c.lookup("k", 2, 2, sent).is_none());
        assert!(c.lookup("other", 1, 2, sent).is_none());
        assert!(c.lookup("k", 1, 5, sent).is_some());
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn a_refund_forgets_the_refusal_of_its_limit_only() {
        let (c, _clock) = cache(4);
        let sent = c.now();
        c.remember("k", 1, 1, sent, &denied(SEC));
        c.remember("j", 1, 1, sent, &denied(SEC));
        // Another limit bound on the same counter name: not this one's.
        c.forget("k", 2);
        assert!(c.lookup("k", 1, 1, sent).is_some());
        c.forget("k", 1);
        assert!(c.lookup("k", 1, 1, sent).is_none());
        assert!(c.lookup("j", 1, 1, sent).is_some());
        assert_eq!(c.len(), 1);
        c.forget("absent", 1);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn admissions_and_endless_denials_are_not_cached() {
        let (c, _clock) = cache(4);
        let sent = c.now();
        let mut allowed = denied(0);
        allowed.allowed = true;
        c.remember("a", 1, 1, sent, &allowed);
        c.remember("n", 1, 1, sent, &denied(RETRY_NEVER));
        // Already over by the time the answer came.
        c.remember("old", 1, 1, 1, &denied(1));
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn never_more_than_max_entries() {
        let (c, clock) = cache(2);
        let sent = c.now();
        c.remember("short", 1, 1, sent, &denied(1_000_000));
        c.remember("a", 1, 1, sent, &denied(60 * SEC));
        assert_eq!(c.len(), 2);
        // Full; the short entry expires, so it makes room.
        clock.advance(std::time::Duration::from_millis(2));
        c.remember("b", 1, 1, sent, &denied(60 * SEC));
        assert_eq!(c.len(), 2);
        assert!(c.lookup("b", 1, 1, c.now()).is_some());
        // Full of live entries: not cached.
        c.remember("c", 1, 1, sent, &denied(60 * SEC));
        assert_eq!(c.len(), 2);
        assert!(c.lookup("c", 1, 1, c.now()).is_none());
        // A known key is updated in place.
        c.remember("a", 1, 3, sent, &denied(60 * SEC));
        assert_eq!(c.len(), 2);
        assert!(c.lookup("a", 1, 1, c.now()).is_none());
    }
}
