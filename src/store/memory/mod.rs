//! The in-memory store: DashMap tables per limit, bounded, idle keys evicted.

mod budget;
mod byte_key;
mod in_flight;
mod ip_key;
mod table;

use std::sync::Arc;
use std::time::Duration;

use self::budget::Budget;
pub(crate) use self::byte_key::ByteKey;
pub(crate) use self::in_flight::Counter;
pub(crate) use self::ip_key::IpKey;
use self::table::Table;
use super::coalesce::coalesce;
use super::{Charge, Checked, Never, Permits, Receipt, Store, Verdict};
use crate::algorithm::Outcome;
use crate::clock::{Clock, MonotonicClock, Nanos};
use crate::decision::Decision;
use crate::error::StoreError;
use crate::limit::Limit;

/// The default maximum number of tracked keys: one million.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The default for [`MemoryStoreBuilder::forget_under_pressure`]: a key
/// that used one unit (one ordinary request) may be forgotten for room.
pub const DEFAULT_LIGHT_USE: u64 = 1;

/// Counters in this process's memory. Clones share the counters.
///
/// No global lock: a known key costs a shard read lock of the key's table and one
/// compare-and-swap (the sliding log takes a per-key mutex). No allocation
/// for a known key; no await.
///
/// # Memory per key
///
/// Each limit keeps a table; a key costs, in each table it is charged in,
/// one map slot. A byte key of up to 22 bytes (an `ak_` key with 16 hex
/// digits is 19) is kept inside its slot; a longer one adds a heap copy.
///
/// | state | slot (IP key) | slot (byte key) |
/// |---|---|---|
/// | GCRA, fixed window | 24 bytes | 32 bytes |
/// | concurrency | 8 bytes + a 40-byte shared counter holding the key | 8 bytes + 48 |
/// | sliding window counter | 24 bytes (32 if its numbers need two words) | 32 bytes (or 40) |
/// | sliding log | 64 bytes + 16 per logged request | 72 bytes + 16 per request |
///
/// plus one control byte per slot and the map's spare capacity (a table
/// doubles when it fills, so between half and seven eighths of its slots
/// are used). `cargo bench --bench memory` measures bytes per key at a
/// million keys against governor's keyed store; the README shows its
/// figures.
///
/// After a sweep that leaves a table mostly empty, the table is shrunk, so
/// memory comes back once a burst of clients has gone idle.
///
/// # Bounds and eviction
///
/// The store tracks at most [`MemoryStoreBuilder::max_keys`] keys over all
/// its tables (default [`DEFAULT_MAX_KEYS`]): memory is bounded whatever
/// clients send. Keys whose state is back to a full allowance are
/// forgotten automatically, at least every
/// [`MemoryStoreBuilder::idle_sweep_every`]; forgetting such a key changes
/// no future answer.
///
/// # A flood of new keys
///
/// Anyone who can send from many addresses (an IPv6 /48 holds 65,536 /64s)
/// can bring a store to its bound with keys used once each. Refusing new
/// keys then would refuse every fresh client, so the store makes room the
/// way a cache with a probation segment does (S3-FIFO, TinyLFU): a key
/// seen about once is cheap to forget, one seen again or limited is not.
///
/// - Once the store holds seven eighths of `max_keys`, a sweep forgets idle
///   keys and **lightly used** ones: keys that use at most
///   [`forget_under_pressure`](MemoryStoreBuilder::forget_under_pressure)
///   units (default 1) and still have room for a request. It runs on the
///   request that inserts a new key, again after each eighth of `max_keys`
///   new keys (so an insert pays for at most eight keys visited), and at
///   least every [`full_sweep_gap`](MemoryStoreBuilder::full_sweep_gap)
///   while the store stays past its mark. Sweeping before the store is
///   full leaves room for new keys while a sweep runs.
/// - A key whose allowance is spent (it would refuse a request now), and a
///   key using more than that many units (a client that came back), is
///   never forgotten before it is idle: a limited client is never reset.
/// - **The over-admission bound**: a forgotten key had used at most
///   `forget_under_pressure` units, and that is all its client can gain
///   from it: a returning client is a fresh key, allowed what any new
///   client is. Per eviction a client gains at most those units, and only
///   while new keys arrive faster than it returns.
/// - When limited or busy keys alone fill the store (each of `max_keys`
///   clients sent more than one request, or spent its quota with one), a
///   new key gets [`StoreError::Full`], which the layer answers by its
///   failure policy (503 by default): memory stays within the bound and no
///   limited client is reset. Against a quota that one request spends,
///   size `max_keys` for the addresses an attacker can hold.
///
/// [`MemoryStore::forgotten_under_pressure`] counts the keys forgotten for
/// room. `cargo bench --bench flood` floods a store with ten times its
/// `max_keys` of IPv4 and IPv6 /64 keys and reports fresh clients refused
/// and limited clients reset; the README shows its figures.
pub struct MemoryStore<C: Clock = MonotonicClock> {
    inner: Arc<Inner<C>>,
}

impl<C: Clock> Clone for MemoryStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<C> {
    clock: C,
    budget: Arc<Budget>,
}

/// A limit bound to a [`MemoryStore`].
#[derive(Clone)]
pub struct MemoryHandle {
    table: Arc<Table>,
}

impl std::fmt::Debug for MemoryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryHandle")
            .field("keys", &self.table.len())
            .finish()
    }
}

impl<C: Clock> std::fmt::Debug for MemoryStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.inner.budget.len())
            .field("max_keys", &self.inner.budget.max())
            .finish()
    }
}

impl MemoryStore {
    /// A store on the real clock with default bounds.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            clock: MonotonicClock::new(),
            max_keys: DEFAULT_MAX_KEYS,
            light_use: DEFAULT_LIGHT_USE,
            idle_sweep_every: Duration::from_secs(60),
            full_sweep_gap: Duration::from_secs(1),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder<C = MonotonicClock> {
    clock: C,
    max_keys: usize,
    light_use: u64,
    idle_sweep_every: Duration,
    full_sweep_gap: Duration,
}

impl<C: Clock> MemoryStoreBuilder<C> {
    /// Uses another clock (a [`ManualClock`](crate::clock::ManualClock) in tests).
    pub fn clock<D: Clock>(self, clock: D) -> MemoryStoreBuilder<D> {
        MemoryStoreBuilder {
            clock,
            max_keys: self.max_keys,
            light_use: self.light_use,
            idle_sweep_every: self.idle_sweep_every,
            full_sweep_gap: self.full_sweep_gap,
        }
    }

    /// The most keys tracked over all limits (at least 1).
    #[must_use]
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// The most units of its allowance a key may use and still be
    /// forgotten when the store needs room for new keys (default
    /// [`DEFAULT_LIGHT_USE`], one ordinary request; 0 forgets only idle
    /// keys, so a store full of busy keys refuses new ones). A key is only
    /// forgotten with room left for a request, so a limited key never is;
    /// forgetting a key hands back at most this many units to its client.
    /// See [the policy](MemoryStore#a-flood-of-new-keys).
    #[must_use]
    pub fn forget_under_pressure(mut self, units: u64) -> Self {
        self.light_use = units;
        self
    }

    /// How often idle keys are swept out while the store is not full
    /// (default 60 s).
    #[must_use]
    pub fn idle_sweep_every(mut self, every: Duration) -> Self {
        self.idle_sweep_every = every;
        self
    }

    /// The least time between two sweeps forced by a store past its
    /// high-water mark when fewer than an eighth of `max_keys` new keys came
    /// in since the last (default 1 s).
    #[must_use]
    pub fn full_sweep_gap(mut self, gap: Duration) -> Self {
        self.full_sweep_gap = gap;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore<C> {
        let nanos = crate::clock::nanos_saturating;
        MemoryStore {
            inner: Arc::new(Inner {
                clock: self.clock,
                budget: Arc::new(Budget::new(
                    self.max_keys,
                    self.light_use,
                    nanos(self.idle_sweep_every),
                    nanos(self.full_sweep_gap),
                )),
            }),
        }
    }
}

impl<C: Clock> MemoryStore<C> {
    /// Keys tracked now, over all limits.
    pub fn len(&self) -> usize {
        self.inner.budget.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every idle key now; answers how many. Never needed for
    /// correctness or bounds: the store sweeps by itself.
    pub fn sweep(&self) -> usize {
        self.inner.budget.sweep(self.inner.clock.now())
    }

    /// Keys forgotten so far to make room although they were not idle
    /// (each had used at most [`MemoryStoreBuilder::forget_under_pressure`]
    /// units and had room left).
    pub fn forgotten_under_pressure(&self) -> u64 {
        self.inner.budget.forgotten_light()
    }

    /// The store's clock.
    pub fn clock(&self) -> &C {
        &self.inner.clock
    }

    fn run(&self, charges: &[Charge<'_, MemoryHandle>], take: bool) -> Result<Verdict, StoreError> {
        let now = self.inner.clock.now();
        let mut permits = Permits::none();
        if take && charges.len() == 1 {
            let c = &charges[0];
            let outcome = c.handle.table.acquire(c.key, now, c.cost, &mut permits)?;
            let receipt = outcome.allowed.then_some(Receipt::new(now, 0));
            return Ok(Verdict {
                decision: Decision::from_outcome(0, outcome),
                permits,
                receipt,
            });
        }
        // A counter charged twice is one charge of the summed cost.
        if let Some((kept, positions)) = coalesce(charges, same_counter) {
            return self.run_many(&kept, Some(&positions), now, permits, take, RACE_RETRIES);
        }
        self.run_many(charges, None, now, permits, take, RACE_RETRIES)
    }

    /// [`run`](Self::run) for a check of several charges, each counter
    /// once; `positions` maps them to the check's positions when they were
    /// coalesced.
    fn run_many(
        &self,
        charges: &[Charge<'_, MemoryHandle>],
        positions: Option<&[usize]>,
        now: Nanos,
        mut permits: Permits,
        take: bool,
        retries: u32,
    ) -> Result<Verdict, StoreError> {
        let at_position = |i: usize| positions.map_or(i, |p| p[i]);
        // Phase one: look without charging. A request any limit refuses is
        // refused here, and no limit is charged for it.
        let look = |at: Nanos| {
            let mut decision: Option<Decision> = None;
            let mut wait: Nanos = 0;
            for (i, c) in charges.iter().enumerate() {
                let outcome = c.handle.table.peek_at(c.key, now, at, c.cost);
                wait = wait.max(outcome.delay());
                decision = Some(merge(decision, at_position(i), outcome));
            }
            (decision, wait)
        };
        let (decision, wait) = look(now);
        let Some(mut looked) = decision else {
            return Ok(Verdict {
                decision: Decision::unlimited(),
                permits,
                receipt: None,
            });
        };
        if wait != 0 {
            // A queued limit makes the request wait: it passes then only if
            // every limit admits it at that instant, without a further wait.
            let at = now.saturating_add(wait);
            let (again, _) = look(at);
            looked = again.map_or(looked, |d| d.delayed_by(wait));
        }
        if !take || !looked.is_allowed() {
            return Ok(Verdict {
                decision: looked,
                permits,
                receipt: None,
            });
        }
        // Phase two: charge each, every GCRA as of the instant the request
        // passes (`now`, or later when a queued limit delays it), so each
        // counts it when it passes. A concurrent request may have taken the
        // room in between: then the charges already taken are given back,
        // and a charge that would now wait longer than phase one found is
        // given back with them and the check runs again.
        let at = now.saturating_add(looked.delay_nanos());
        let mut decision: Option<Decision> = None;
        for (i, c) in charges.iter().enumerate() {
            let outcome = match c
                .handle
                .table
                .acquire_at(c.key, now, at, c.cost, &mut permits)
            {
                Ok(outcome) => outcome,
                Err(e) => {
                    undo(&charges[..i], now, at);
                    return Err(e);
                }
            };
            if !outcome.allowed || outcome.delay() != 0 {
                let later = outcome.delay();
                let taken = if later == 0 { i } else { i + 1 };
                undo(&charges[..taken], now, at);
                if later != 0 && retries > 0 {
                    return self.run_many(
                        charges,
                        positions,
                        now,
                        Permits::none(),
                        take,
                        retries - 1,
                    );
                }
                // Refused, or still losing the race after the retries: a
                // refusal with the wait phase one did not see.
                let outcome = if later == 0 {
                    outcome
                } else {
                    Outcome::deny(outcome.limit, 0, outcome.window, later)
                };
                return Ok(Verdict {
                    decision: Decision::from_outcome(at_position(i), outcome),
                    permits: Permits::none(),
                    receipt: None,
                });
            }
            decision = Some(merge(decision, at_position(i), outcome));
        }
        let decision = decision.unwrap_or_else(Decision::unlimited);
        Ok(Verdict {
            // The wait phase one found: every charge passes then.
            decision: decision.delayed_by(looked.delay_nanos()),
            permits,
            receipt: Some(Receipt::new(now, 0)),
        })
    }
}

/// How many times a check of several charges runs again when a concurrent
/// request took the place a queued limit offered between its two phases.
const RACE_RETRIES: u32 = 3;

fn merge(decision: Option<Decision>, i: usize, outcome: Outcome) -> Decision {
    match decision {
        None => Decision::from_outcome(i, outcome),
        Some(d) => d.merge(i, outcome),
    }
}

/// Whether two charges count on one counter: the same bound limit and key.
fn same_counter(a: &Charge<'_, MemoryHandle>, b: &Charge<'_, MemoryHandle>) -> bool {
    Arc::ptr_eq(&a.handle.table, &b.handle.table) && a.key == b.key
}

fn undo(charges: &[Charge<'_, MemoryHandle>], now: Nanos, at: Nanos) {
    for c in charges.iter().rev() {
        c.handle.table.undo(c.key, now, at, c.cost);
    }
}

impl<C: Clock> Store for MemoryStore<C> {
    type Handle = MemoryHandle;
    type Future = Never;

    fn bind(&self, limit: &Limit) -> MemoryHandle {
        let table = Arc::new(Table::new(limit, Arc::clone(&self.inner.budget)));
        self.inner.budget.register(Arc::downgrade(&table));
        MemoryHandle { table }
    }

    #[inline]
    fn check(&self, charges: &[Charge<'_, MemoryHandle>]) -> Checked<Never> {
        Checked::Ready(self.run(charges, true))
    }

    fn peek(&self, charges: &[Charge<'_, MemoryHandle>]) -> Checked<Never> {
        Checked::Ready(self.run(charges, false))
    }

    fn cancel(&self, charges: &[Charge<'_, MemoryHandle>], receipt: Receipt, delay: Duration) {
        let delay = crate::clock::nanos_saturating(delay);
        for c in charges.iter().rev() {
            c.handle.table.cancel(c.key, receipt.at(), delay, c.cost);
        }
    }

    fn refund(&self, charges: &[Charge<'_, MemoryHandle>], receipt: Receipt) {
        let now = self.inner.clock.now();
        for c in charges.iter().rev() {
            c.handle
                .table
                .refund_later(c.key, receipt.at(), now, c.cost);
        }
    }
}
