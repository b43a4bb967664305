//! The leases an instance holds: per (limit, client key) counter, the units
//! left, the local instant they stop being spendable, Redis's last figures
//! and a remembered refusal. See the [module docs](super#leased-mode).
//!
//! Each slot has its own small mutex, held only while its fields are read
//! or written (never across an await). A check over several counters locks
//! their slots in one order (by counter name), so two checks never wait on
//! each other in a cycle. One check at a time refills a slot: the others
//! that lack units wait for its answer (bounded by the store's timeout)
//! instead of asking Redis too, so an instance holds at most one lease per
//! counter: at most `tokens` units (or one request's cost, when larger).
//!
//! Lease size adapts per slot: the first lease covers the request alone;
//! each lease spent out before it ended doubles the next, up to `tokens`;
//! each that ended with units unspent halves it. A quiet key so costs one
//! Redis call per request, as without leases, and wastes nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Notify;

use super::lease::{LeaseStats, TokenLease};
use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::decision::Decision;

/// The least time between two sweeps of a full table.
const SWEEP_GAP: Nanos = 100_000_000;

/// The leases held, by counter key.
pub(super) struct LeaseSlots {
    tokens: u64,
    max_age: Nanos,
    max_keys: usize,
    map: DashMap<Box<str>, Arc<Slot>>,
    next_sweep: AtomicU64,
    next_refill: AtomicU64,
    local: AtomicU64,
    calls: AtomicU64,
    granted: AtomicU64,
    refused: AtomicU64,
    per_request: AtomicU64,
}

/// One counter's lease.
pub(super) struct Slot {
    /// The bound limit it was made for.
    serial: u64,
    /// A fixed window: the lease ends with its window.
    window: bool,
    state: Mutex<State>,
    refilled: Notify,
}

struct State {
    /// Units held, spendable before `expires`.
    tokens: u64,
    /// The local instant the units stop being spendable (exclusive).
    expires: Nanos,
    /// A lease has been held (so `expires` means something).
    leased: bool,
    /// The last lease ended with units unspent.
    wasted: bool,
    /// Units the next lease asks for (1 to `tokens`).
    size: u64,
    /// Redis's last figures: the quota, what it had left after its answer,
    /// and the local instant its effective window ends (see `Decision::window`).
    limit: u64,
    remaining: u64,
    window_at: Nanos,
    /// A refusal: costs of at least `blocked_cost` are refused until
    /// `blocked_until` (0: none).
    blocked_cost: u64,
    blocked_until: Nanos,
    /// The refill under way (0: none).
    refiller: u64,
    /// Counts refills ended, so a waiter sees one that ended before it
    /// began to wait.
    generation: u64,
}

/// What a check does next.
pub(super) enum Settled {
    /// Answered from the leases held; when units were taken, the local
    /// instant until which all of them were spendable (the earliest end of
    /// their leases), for a refund to give them back with
    /// [`give_back`](LeaseSlots::give_back).
    Answer(Decision, Option<Nanos>),
    /// The charge at `position` lacks units and another check is
    /// refilling its slot: wait for that, then settle again.
    Wait { position: usize, generation: u64 },
    /// Ask Redis for these leases; the guard marks their slots as this
    /// check's refill until dropped.
    Refill { asks: Vec<Ask>, guard: RefillGuard },
    /// Leases cannot answer (a look at a counter without units held):
    /// check per request.
    PerRequest,
}

/// A lease to ask Redis for.
pub(super) struct Ask {
    pub(super) position: usize,
    /// Units the request still lacks: less is a refusal.
    pub(super) need: u64,
    /// Units to take if Redis has them.
    pub(super) want: u64,
}

/// Redis's answer to an [`Ask`].
pub(super) struct Grant {
    pub(super) position: usize,
    /// Units granted (0: refused).
    pub(super) granted: u64,
    /// Redis's figures: limit, remaining after the grant, effective window and, when
    /// refused, retry-after.
    pub(super) outcome: Outcome,
    /// The local instant the call was sent.
    pub(super) sent: Nanos,
}

/// Ends a refill: clears its mark on each slot (unless another refill
/// took over) and wakes the waiters, also when the check is dropped.
pub(super) struct RefillGuard {
    id: u64,
    slots: Vec<Arc<Slot>>,
}

impl RefillGuard {
    pub(super) fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for RefillGuard {
    fn drop(&mut self) {
        for slot in &self.slots {
            slot.end_refill(self.id);
            slot.refilled.notify_waiters();
        }
    }
}

impl Slot {
    fn new(serial: u64, window: bool) -> Self {
        Self {
            serial,
            window,
            state: Mutex::new(State {
                tokens: 0,
                expires: 0,
                leased: false,
                wasted: false,
                size: 1,
                limit: 0,
                remaining: 0,
                window_at: 0,
                blocked_cost: 0,
                blocked_until: 0,
                refiller: 0,
                generation: 0,
            }),
            refilled: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every field is valid after each statement: a panic elsewhere
        // cannot leave the state half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end_refill(&self, id: u64) {
        let mut st = self.lock();
        if st.refiller == id {
            st.refiller = 0;
            st.generation = st.generation.wrapping_add(1);
        }
    }

    /// Waits (at most `timeout`) for the refill under way when the slot's
    /// generation was `generation` to end.
    pub(super) async fn refill_ended(&self, generation: u64, timeout: Duration) {
        let notified = self.refilled.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if self.lock().generation != generation {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }
}

impl State {
    /// Drops units past their end, remembering they were wasted.
    fn expire(&mut self, now: Nanos) {
        if self.tokens > 0 && now >= self.expires {
            self.tokens = 0;
            self.wasted = true;
        }
    }

    fn blocks(&self, cost: u64, now: Nanos) -> bool {
        self.blocked_cost > 0 && cost >= self.blocked_cost && now < self.blocked_until
    }

    /// What Redis had left at its last answer plus the units held.
    fn left(&self) -> u64 {
        self.remaining.saturating_add(self.tokens)
    }

    fn allow(&self, cost_after: u64, now: Nanos) -> Outcome {
        Outcome::allow(
            self.limit,
            self.left().saturating_sub(cost_after),
            self.window_at.saturating_sub(now),
        )
    }

    fn idle(&self, now: Nanos) -> bool {
        self.refiller == 0 && (self.tokens == 0 || now >= self.expires) && now >= self.blocked_until
    }
}

/// The decision over per-charge outcomes, as the script merges them.
fn decide(outcomes: impl IntoIterator<Item = Outcome>) -> Decision {
    let mut decision: Option<Decision> = None;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        decision = Some(match decision {
            None => Decision::from_outcome(i, outcome),
            Some(d) => d.merge(i, outcome),
        });
    }
    decision.unwrap_or_else(Decision::unlimited)
}

impl LeaseSlots {
    /// The table for `lease` (valid: the builder checks).
    pub(super) fn new(lease: &TokenLease) -> Self {
        let max_age = crate::clock::nanos_saturating(lease.lease_max_age());
        Self {
            tokens: lease.tokens().max(1),
            max_age: max_age.max(1),
            max_keys: lease.lease_max_keys().max(1),
            map: DashMap::new(),
            next_sweep: AtomicU64::new(0),
            next_refill: AtomicU64::new(1),
            local: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            granted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            per_request: AtomicU64::new(0),
        }
    }

    pub(super) fn stats(&self) -> LeaseStats {
        LeaseStats {
            local: self.local.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            granted: self.granted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            per_request: self.per_request.load(Ordering::Relaxed),
        }
    }

    /// Counts a check answered from the leases held, without a call.
    pub(super) fn count_local(&self) {
        self.local.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a check answered per request.
    pub(super) fn count_per_request(&self) {
        self.per_request.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a lease call made.
    pub(super) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Leases held now (slots with units, idle ones not yet dropped
    /// included: at most `max_keys`).
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// The slot of `counter` for the limit `serial`; `None` when the table
    /// is full or the counter's slot belongs to another bound limit (then
    /// the check goes per request).
    pub(super) fn slot(
        &self,
        counter: &str,
        serial: u64,
        window: bool,
        now: Nanos,
    ) -> Option<Arc<Slot>> {
        if let Some(slot) = self.map.get(counter) {
            return (slot.serial == serial).then(|| Arc::clone(&slot));
        }
        if self.map.len() >= self.max_keys {
            self.sweep(now);
            if self.map.len() >= self.max_keys {
                return None;
            }
        }
        let slot = self
            .map
            .entry(counter.into())
            .or_insert_with(|| Arc::new(Slot::new(serial, window)));
        (slot.serial == serial).then(|| Arc::clone(&slot))
    }

    /// Drops idle slots (no units to spend, no refusal to remember, no
    /// check using them), at most once per [`SWEEP_GAP`].
    fn sweep(&self, now: Nanos) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due
            || self
                .next_sweep
                .compare_exchange(
                    due,
                    now.saturating_add(SWEEP_GAP),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        self.map
            .retain(|_, slot| Arc::strong_count(slot) > 1 || !slot.lock().idle(now));
    }

    /// Answers the charges (`costs[p]` on `slots[p]`, slots locked in
    /// `order`) from the leases held, or says what to do instead.
    /// `refusals` are refusals Redis just answered for some positions: the
    /// check is then refused with them.
    pub(super) fn settle(
        &self,
        slots: &[Arc<Slot>],
        costs: &[u64],
        order: &[usize],
        now: Nanos,
        take: bool,
        refusals: &[(usize, Outcome)],
    ) -> Settled {
        let mut locked: Vec<(usize, MutexGuard<'_, State>)> =
            order.iter().map(|&p| (p, slots[p].lock())).collect();
        locked.sort_unstable_by_key(|(p, _)| *p);
        for (_, st) in &mut locked {
            st.expire(now);
        }
        if !refusals.is_empty() {
            let outcomes = locked.iter().map(|(p, st)| {
                refusals
                    .iter()
                    .find(|(r, _)| r == p)
                    .map_or_else(|| st.allow(costs[*p], now), |(_, o)| *o)
            });
            return Settled::Answer(decide(outcomes), None);
        }
        let lacking = |p: usize, st: &State| st.tokens < costs[p];
        if !locked.iter().any(|(p, st)| lacking(*p, st)) {
            // Every slot holds units (so `expires` is ahead of `now`).
            let spent_until = take
                .then(|| locked.iter().map(|(_, st)| st.expires).min())
                .flatten();
            let outcomes: Vec<Outcome> = locked
                .iter_mut()
                .map(|(p, st)| {
                    if take {
                        st.tokens -= costs[*p];
                        st.allow(0, now)
                    } else {
                        st.allow(costs[*p], now)
                    }
                })
                .collect();
            return Settled::Answer(decide(outcomes), spent_until);
        }
        if locked
            .iter()
            .any(|(p, st)| lacking(*p, st) && st.blocks(costs[*p], now))
        {
            let outcomes = locked.iter().map(|(p, st)| {
                let cost = costs[*p];
                if lacking(*p, st) && st.blocks(cost, now) {
                    Outcome::deny(
                        st.limit,
                        st.left(),
                        st.window_at.saturating_sub(now),
                        st.blocked_until - now,
                    )
                } else {
                    st.allow(cost, now)
                }
            });
            return Settled::Answer(decide(outcomes), None);
        }
        if !take {
            return Settled::PerRequest;
        }
        if let Some((position, st)) = locked
            .iter()
            .find(|(p, st)| lacking(*p, st) && st.refiller != 0)
        {
            return Settled::Wait {
                position: *position,
                generation: st.generation,
            };
        }
        let id = self.next_refill.fetch_add(1, Ordering::Relaxed);
        let mut asks = Vec::new();
        let mut marked = Vec::new();
        for (p, st) in &mut locked {
            let cost = costs[*p];
            if st.tokens >= cost {
                continue;
            }
            if st.wasted {
                st.size = (st.size / 2).max(1);
                st.wasted = false;
            } else if st.leased && now < st.expires {
                // Spent out before it ended: a busy key.
                st.size = st.size.saturating_mul(2).min(self.tokens);
            }
            st.refiller = id;
            asks.push(Ask {
                position: *p,
                need: cost - st.tokens,
                want: st.size.max(cost) - st.tokens,
            });
            marked.push(Arc::clone(&slots[*p]));
        }
        Settled::Refill {
            asks,
            guard: RefillGuard { id, slots: marked },
        }
    }

    /// Puts Redis's answers to the refill `id` into their slots (units
    /// granted, figures, refusals to remember); answers the refusals, as
    /// outcomes for [`settle`](Self::settle).
    pub(super) fn apply(
        &self,
        slots: &[Arc<Slot>],
        costs: &[u64],
        id: u64,
        grants: &[Grant],
        now: Nanos,
    ) -> Vec<(usize, Outcome)> {
        let mut refusals = Vec::new();
        for g in grants {
            let (Some(slot), Some(&cost)) = (slots.get(g.position), costs.get(g.position)) else {
                continue;
            };
            let mut st = slot.lock();
            if st.refiller == id {
                st.refiller = 0;
                st.generation = st.generation.wrapping_add(1);
            }
            st.expire(now);
            let o = g.outcome;
            st.limit = o.limit;
            st.remaining = o.remaining;
            st.window_at = g.sent.saturating_add(o.window);
            if g.granted > 0 {
                self.granted.fetch_add(g.granted, Ordering::Relaxed);
                // A fixed window's units are spendable until the window's
                // end as Redis saw it, counted from before the call: never
                // past the real end. A GCRA lease's for `max_age`.
                let ends = g
                    .sent
                    .saturating_add(if slot.window { o.window } else { self.max_age });
                st.expires = if st.tokens > 0 {
                    st.expires.min(ends)
                } else {
                    ends
                };
                st.tokens = st.tokens.saturating_add(g.granted);
                st.leased = true;
                st.blocked_cost = 0;
            } else {
                self.refused.fetch_add(1, Ordering::Relaxed);
                if o.retry_after != RETRY_NEVER {
                    st.blocked_cost = cost;
                    st.blocked_until = g.sent.saturating_add(o.retry_after);
                }
                refusals.push((
                    g.position,
                    Outcome::deny(o.limit, st.left(), o.window, o.retry_after),
                ));
            }
        }
        refusals
    }

    /// Gives back `cost` units a refunded check took from the lease of
    /// `counter` (for the bound limit `serial`), spendable until `until`
    /// (the [`Settled::Answer`] instant): they were charged in Redis by the
    /// lease and are unspent again, so spending them before `until` is
    /// what the lease would have done without that check. Units past
    /// `until`, beyond the most a slot holds (`tokens`, or the cost when
    /// larger), or for a slot no longer held are dropped: refusals too
    /// many, never admissions. Answers the units given back.
    pub(super) fn give_back(
        &self,
        counter: &str,
        serial: u64,
        cost: u64,
        until: Nanos,
        now: Nanos,
    ) -> u64 {
        if now >= until {
            return 0;
        }
        let Some(slot) = self.map.get(counter).map(|slot| Arc::clone(&slot)) else {
            return 0;
        };
        if slot.serial != serial {
            return 0;
        }
        let mut st = slot.lock();
        st.expire(now);
        let back = cost.min(self.tokens.max(cost).saturating_sub(st.tokens));
        if back == 0 {
            return 0;
        }
        // As a grant merges: the units held are spendable until the
        // earliest end among them.
        st.expires = if st.tokens > 0 {
            st.expires.min(until)
        } else {
            until
        };
        st.tokens += back;
        st.leased = true;
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;

    fn table(tokens: u64) -> LeaseSlots {
        LeaseSlots::new(&TokenLease::new(tokens))
    }

    fn granted(position: usize, granted: u64, remaining: u64, window: Nanos, sent: Nanos) -> Grant {
        Grant {
            position,
            granted,
            outcome: Outcome::allow(100, remaining, window),
            sent,
        }
    }

    fn refused(position: usize, retry: Nanos, sent: Nanos) -> Grant {
        Grant {
            position,
            granted: 0,
            outcome: Outcome::deny(100, 0, 5 * SEC, retry),
            sent,
        }
    }

    /// Settles one charge of `cost` and, if a refill is asked, answers it
    /// with `grant` (units) and settles again.
    fn refill(
        t: &LeaseSlots,
        slot: &Arc<Slot>,
        cost: u64,
        now: Nanos,
        grant: Grant,
    ) -> (Ask, Decision) {
        let slots = [Arc::clone(slot)];
        let Settled::Refill { mut asks, guard } = t.settle(&slots, &[cost], &[0], now, true, &[])
        else {
            panic!("a refill");
        };
        let refusals = t.apply(&slots, &[cost], guard.id(), &[grant], now);
        let Settled::Answer(d, _) = t.settle(&slots, &[cost], &[0], now, true, &refusals) else {
            panic!("an answer");
        };
        drop(guard);
        (asks.remove(0), d)
    }

    fn local(t: &LeaseSlots, slot: &Arc<Slot>, cost: u64, now: Nanos) -> Option<Decision> {
        match t.settle(&[Arc::clone(slot)], &[cost], &[0], now, true, &[]) {
            Settled::Answer(d, _) => Some(d),
            _ => None,
        }
    }

    #[test]
    fn sizes_grow_when_spent_out_and_shrink_when_wasted() {
        let t = table(8);
        let s = t.slot("k", 1, false, SEC).expect("slot");
        let (ask, d) = refill(&t, &s, 1, SEC, granted(0, 1, 50, SEC, SEC));
        assert_eq!((ask.need, ask.want), (1, 1));
        assert!(d.is_allowed());
        // Spent out within its age: the next asks twice as much, up to 8.
        let mut now = SEC;
        for want in [2, 4, 8, 8] {
            now += 1_000;
            let (ask, d) = refill(&t, &s, 1, now, granted(0, want, 40, SEC, now));
            assert_eq!((ask.need, ask.want), (1, want));
            assert!(d.is_allowed());
            for _ in 1..want {
                assert!(local(&t, &s, 1, now).expect("local").is_allowed());
            }
        }
        // A lease left with units past its age: wasted, the next halves.
        now += 1_000;
        let (_, _) = refill(&t, &s, 1, now, granted(0, 8, 40, SEC, now));
        now += 2 * SEC;
        let (ask, _) = refill(&t, &s, 1, now, granted(0, 4, 40, SEC, now));
        assert_eq!(ask.want, 4);
        assert_eq!(t.stats().granted, 1 + 2 + 4 + 8 + 8 + 8 + 4);
    }

    #[test]
    fn figures_are_redis_remaining_plus_units_held() {
        let t = table(4);
        let s = t.slot("k", 1, true, SEC).expect("slot");
        // Two leases to reach size 2... (first lease covers the request)
        let (_, d) = refill(&t, &s, 1, SEC, granted(0, 1, 10, 3 * SEC, SEC));
        assert_eq!((d.remaining(), d.window()), (10, Duration::from_secs(3)));
        let (_, d) = refill(&t, &s, 1, SEC, granted(0, 2, 8, 3 * SEC, SEC));
        assert_eq!(d.remaining(), 9, "8 in Redis, 1 held");
        let d = local(&t, &s, 1, 2 * SEC).expect("local");
        assert_eq!((d.remaining(), d.window()), (8, Duration::from_secs(2)));
    }

    #[test]
    fn a_window_lease_ends_with_its_window() {
        let t = table(4);
        let s = t.slot("k", 1, true, SEC).expect("slot");
        refill(&t, &s, 1, SEC, granted(0, 1, 10, SEC, SEC));
        let (_, d) = refill(&t, &s, 1, SEC, granted(0, 2, 8, SEC / 2, SEC));
        assert!(d.is_allowed());
        // One unit held, but the window ends at SEC + SEC / 2.
        assert!(local(&t, &s, 1, SEC + SEC / 2 - 1)
            .expect("local")
            .is_allowed());
        let (_, _) = refill(
            &t,
            &s,
            1,
            SEC + SEC / 2 - 1,
            granted(0, 4, 4, 1, SEC + SEC / 2 - 1),
        );
        assert!(matches!(
            t.settle(&[Arc::clone(&s)], &[1], &[0], SEC + SEC / 2, true, &[]),
            Settled::Refill { .. }
        ));
    }

    #[test]
    fn a_refusal_is_remembered_for_that_cost_until_its_retry() {
        let t = table(4);
        let s = t.slot("k", 1, false, SEC).expect("slot");
        let (_, d) = refill(&t, &s, 2, SEC, refused(0, SEC / 4, SEC));
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_millis(250)));
        let d = local(&t, &s, 3, SEC + SEC / 8).expect("refused locally");
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_millis(125)));
        // A cheaper request, or the same past the retry, asks Redis.
        assert!(local(&t, &s, 1, SEC + SEC / 8).is_none());
        assert!(local(&t, &s, 2, SEC + SEC / 4).is_none());
        assert_eq!(t.stats().refused, 1);
    }

    #[test]
    fn one_refill_at_a_time_and_a_dropped_one_wakes_the_waiters() {
        let t = table(4);
        let s = t.slot("k", 1, false, SEC).expect("slot");
        let slots = [Arc::clone(&s)];
        let Settled::Refill { guard, .. } = t.settle(&slots, &[1], &[0], SEC, true, &[]) else {
            panic!("a refill");
        };
        let Settled::Wait { generation, .. } = t.settle(&slots, &[1], &[0], SEC, true, &[]) else {
            panic!("a wait");
        };
        drop(guard);
        assert_ne!(s.lock().generation, generation, "the wait ends at once");
        assert!(matches!(
            t.settle(&slots, &[1], &[0], SEC, true, &[]),
            Settled::Refill { .. }
        ));
    }

    #[test]
    fn several_charges_take_all_or_nothing() {
        let t = table(4);
        let a = t.slot("a", 1, false, SEC).expect("slot");
        let b = t.slot("b", 2, false, SEC).expect("slot");
        refill(&t, &a, 1, SEC, granted(0, 1, 10, SEC, SEC));
        refill(&t, &a, 1, SEC, granted(0, 2, 10, SEC, SEC));
        let slots = [Arc::clone(&a), Arc::clone(&b)];
        // `a` holds one unit, `b` none and Redis refuses it: `a` keeps its unit.
        let Settled::Refill { asks, guard } = t.settle(&slots, &[1, 1], &[0, 1], SEC, true, &[])
        else {
            panic!("a refill");
        };
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[0].position, 1);
        let refusals = t.apply(&slots, &[1, 1], guard.id(), &[refused(1, SEC, SEC)], SEC);
        let Settled::Answer(d, _) = t.settle(&slots, &[1, 1], &[0, 1], SEC, true, &refusals) else {
            panic!("an answer");
        };
        drop(guard);
        assert!(!d.is_allowed());
        assert_eq!(d.policy(), 1);
        assert_eq!(a.lock().tokens, 1);
        // Another limit bound on the same counter is not served from it.
        assert!(t.slot("a", 9, false, SEC).is_none());
    }

    #[test]
    fn a_refund_gives_units_back_to_the_lease_until_its_end() {
        let t = table(4);
        let s = t.slot("k", 1, true, SEC).expect("slot");
        refill(&t, &s, 1, SEC, granted(0, 1, 10, SEC, SEC));
        let (_, d) = refill(&t, &s, 1, SEC, granted(0, 2, 8, SEC, SEC));
        assert!(d.is_allowed());
        // The answer that took the last unit says until when it was good.
        let Settled::Answer(d, until) = t.settle(&[Arc::clone(&s)], &[1], &[0], SEC, true, &[])
        else {
            panic!("an answer from the lease");
        };
        assert!(d.is_allowed());
        assert_eq!(until, Some(2 * SEC), "the window's end as Redis saw it");
        assert_eq!(s.lock().tokens, 0);
        // Refunded: the unit is back, spendable until that end only.
        assert_eq!(t.give_back("k", 1, 1, 2 * SEC, SEC + 1), 1);
        assert_eq!(s.lock().tokens, 1);
        assert_eq!(s.lock().expires, 2 * SEC);
        assert!(local(&t, &s, 1, SEC + 2).expect("local").is_allowed());
        // Another limit's slot, a slot not held, or a refund past the end:
        // nothing comes back.
        assert_eq!(t.give_back("k", 9, 1, 2 * SEC, SEC + 3), 0);
        assert_eq!(t.give_back("other", 1, 1, 2 * SEC, SEC + 3), 0);
        assert_eq!(t.give_back("k", 1, 1, 2 * SEC, 2 * SEC), 0);
        // Never more than a lease holds, and never past the earliest end.
        assert_eq!(t.give_back("k", 1, 3, 2 * SEC, SEC + 4), 3);
        assert_eq!(t.give_back("k", 1, 3, 3 * SEC, SEC + 5), 1);
        assert_eq!(s.lock().tokens, 4);
        assert_eq!(s.lock().expires, 2 * SEC);
        // A look takes nothing, so it answers no instant.
        let Settled::Answer(_, until) = t.settle(&[Arc::clone(&s)], &[1], &[0], SEC, false, &[])
        else {
            panic!("an answer from the lease");
        };
        assert_eq!(until, None);
    }

    #[test]
    fn a_full_table_drops_idle_slots_only() {
        let t = LeaseSlots::new(&TokenLease::new(4).max_keys(2));
        let a = t.slot("a", 1, false, SEC).expect("slot");
        refill(&t, &a, 1, SEC, granted(0, 1, 10, SEC, SEC));
        refill(&t, &a, 1, SEC, granted(0, 2, 10, SEC, SEC)); // one unit held
        drop(a);
        let b = t.slot("b", 1, false, SEC).expect("slot");
        drop(b);
        // Full: `b` holds nothing and goes, `a` holds a unit and stays.
        assert!(t.slot("c", 1, false, SEC).is_some());
        assert_eq!(t.len(), 2);
        assert!(t.map.contains_key("a"));
        // Full again, and no sweep before the gap: per request.
        assert!(t.slot("d", 1, false, SEC + 1).is_none());
    }
}
