//! The concurrency limit's table: each key's in-flight count lives in one
//! shared allocation with a copy of the key, and the map slot is only a
//! pointer to it.
//!
//! A permit holds that allocation, so it gives its units back without
//! looking the key up again; and since the key sits beside the count, the
//! slot needs no copy of its own: 8 bytes a slot, and 40 bytes for the
//! shared count with an IP key or 48 with a byte key (a byte key of more
//! than 22 bytes adds its heap copy).

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use super::budget::Budget;
use super::byte_key::ByteKey;
use super::ip_key::IpKey;
use super::table::{shrink_if_mostly_empty, with_entry, Hasher};
use crate::algorithm::{Concurrency, Outcome};
use crate::clock::Nanos;
use crate::error::StoreError;
use crate::key::{Key, KeyRepr};
use crate::store::{Permit, Permits};

/// One key's in-flight units, shared by its map slot and its permits.
pub(crate) struct Counter<K> {
    in_flight: AtomicU64,
    key: K,
}

impl<K> Counter<K> {
    /// Gives `cost` units back (what a dropped permit does).
    pub(crate) fn release(&self, cost: u64) {
        Concurrency::release(&self.in_flight, cost);
    }
}

/// The key types a counter is kept under; each makes its own permits.
pub(crate) trait CounterKey: Sized + Send + Sync + 'static {
    /// A permit holding `cost` units of `counter`.
    fn permit(counter: Arc<Counter<Self>>, cost: u64) -> Permit;
}

impl CounterKey for IpKey {
    fn permit(counter: Arc<Counter<Self>>, cost: u64) -> Permit {
        Permit::ip_counter(counter, cost)
    }
}

impl CounterKey for ByteKey {
    fn permit(counter: Arc<Counter<Self>>, cost: u64) -> Permit {
        Permit::bytes_counter(counter, cost)
    }
}

/// A map slot: the shared counter, hashed and compared by its key.
struct Slot<K>(Arc<Counter<K>>);

impl<K> Slot<K> {
    /// A counter for a key never seen: nothing in flight.
    fn fresh(key: K) -> Self {
        Slot(Arc::new(Counter {
            in_flight: AtomicU64::new(0),
            key,
        }))
    }
}

impl<K: Hash> Hash for Slot<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.key.hash(state);
    }
}

impl<K: PartialEq> PartialEq for Slot<K> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}

impl<K: Eq> Eq for Slot<K> {}

// Lookups by the borrowed key hash it as the slot hashes its own copy:
// `ByteKey` hashes as `[u8]`, and `IpKey` as itself.
impl Borrow<[u8]> for Slot<ByteKey> {
    fn borrow(&self) -> &[u8] {
        self.0.key.as_bytes()
    }
}

impl Borrow<IpKey> for Slot<IpKey> {
    fn borrow(&self) -> &IpKey {
        &self.0.key
    }
}

/// The in-flight counts of one concurrency limit, IP keys and byte keys in
/// separate maps (as in the other tables).
pub(crate) struct InFlightTable {
    limit: Concurrency,
    ips: DashMap<Slot<IpKey>, (), Hasher>,
    bytes: DashMap<Slot<ByteKey>, (), Hasher>,
}

impl InFlightTable {
    pub(crate) fn new(limit: Concurrency) -> Self {
        Self {
            limit,
            ips: DashMap::with_hasher(Hasher::default()),
            bytes: DashMap::with_hasher(Hasher::default()),
        }
    }

    /// Takes `cost` units for the key if the limit allows, adding the
    /// permit that gives them back to `permits`. A new key takes one unit
    /// of the store's key budget.
    #[inline]
    pub(crate) fn acquire(
        &self,
        key: &Key<'_>,
        budget: &Budget,
        now: Nanos,
        cost: u64,
        permits: &mut Permits,
    ) -> Result<Outcome, StoreError> {
        match key.repr() {
            KeyRepr::Ip(ip) => {
                let ip = IpKey::new(*ip);
                let fresh = || (Slot::fresh(ip), ());
                with_entry(&self.ips, &ip, fresh, budget, now, |slot, ()| {
                    self.take(&slot.0, cost, permits)
                })
            }
            KeyRepr::Bytes(bytes) => {
                let bytes: &[u8] = bytes;
                let fresh = || (Slot::fresh(ByteKey::new(bytes)), ());
                with_entry(&self.bytes, bytes, fresh, budget, now, |slot, ()| {
                    self.take(&slot.0, cost, permits)
                })
            }
        }
    }

    /// Takes `cost` units from `counter` if the limit allows; an admitted
    /// request gets the permit that gives them back.
    #[inline]
    fn take<K: CounterKey>(
        &self,
        counter: &Arc<Counter<K>>,
        cost: u64,
        permits: &mut Permits,
    ) -> Outcome {
        let outcome = self.limit.take(&counter.in_flight, cost);
        if outcome.allowed {
            permits.push(K::permit(Arc::clone(counter), cost));
        }
        outcome
    }

    /// What `acquire` would answer, without taking anything or inserting
    /// the key.
    pub(crate) fn peek(&self, key: &Key<'_>, _now: Nanos, cost: u64) -> Outcome {
        let in_flight = match key.repr() {
            KeyRepr::Ip(ip) => self
                .ips
                .get(&IpKey::new(*ip))
                .map(|slot| slot.key().0.in_flight.load(Ordering::Acquire)),
            KeyRepr::Bytes(bytes) => self
                .bytes
                .get(bytes.as_ref())
                .map(|slot| slot.key().0.in_flight.load(Ordering::Acquire)),
        };
        self.limit.step(in_flight.unwrap_or(0), cost).0
    }

    /// Forgets keys with nothing in flight and no permit out; answers how
    /// many.
    pub(crate) fn sweep(&self, _now: Nanos) -> usize {
        let mut removed = 0;
        let mut keep = |strong: usize, in_flight: &AtomicU64| {
            let idle = strong == 1 && in_flight.load(Ordering::Acquire) == 0;
            removed += usize::from(idle);
            !idle
        };
        self.ips
            .retain(|slot, ()| keep(Arc::strong_count(&slot.0), &slot.0.in_flight));
        self.bytes
            .retain(|slot, ()| keep(Arc::strong_count(&slot.0), &slot.0.in_flight));
        shrink_if_mostly_empty(&self.ips);
        shrink_if_mostly_empty(&self.bytes);
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.ips.len() + self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::Hasher as _;

    use super::*;

    fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        h.finish()
    }

    #[test]
    fn permits_hold_units_until_dropped_and_keep_their_key_from_a_sweep() {
        let table = InFlightTable::new(Concurrency::new(
            &crate::quota::Quota::concurrent(2).expect("quota"),
        ));
        let budget = Budget::new(16, 0, u64::MAX, 0);
        let keys = [
            Key::ip("192.0.2.7".parse().expect("address")),
            Key::owned("ak_0123456789abcdef", "api key").expect("key"),
        ];
        let mut kept = Vec::new();
        for key in &keys {
            let mut permits = Permits::none();
            for _ in 0..2 {
                let outcome = table
                    .acquire(key, &budget, 1, 1, &mut permits)
                    .expect("room");
                assert!(outcome.allowed, "{key:?}");
            }
            assert_eq!(permits.len(), 2);
            assert!(
                !table
                    .acquire(key, &budget, 1, 1, &mut permits)
                    .expect("room")
                    .allowed
            );
            assert!(!table.peek(key, 1, 1).allowed);
            // Units in flight: a sweep keeps the key.
            assert_eq!(table.sweep(1), 0);
            permits.release();
            assert!(table.peek(key, 1, 2).allowed);
            let mut again = Permits::none();
            assert!(
                table
                    .acquire(key, &budget, 1, 2, &mut again)
                    .expect("room")
                    .allowed
            );
            // The key stays while a permit is out.
            assert_eq!(table.sweep(1), 0);
            kept.push(again);
        }
        assert_eq!(table.len(), 2);
        assert_eq!(budget.len(), 2);
    }

    #[test]
    fn an_idle_key_is_forgotten_once_its_permits_are_gone() {
        let table = InFlightTable::new(Concurrency::new(
            &crate::quota::Quota::concurrent(1).expect("quota"),
        ));
        let budget = Budget::new(16, 0, u64::MAX, 0);
        let key = Key::owned("ak_idle", "api key").expect("key");
        let mut permits = Permits::none();
        assert!(
            table
                .acquire(&key, &budget, 1, 1, &mut permits)
                .expect("room")
                .allowed
        );
        drop(permits);
        assert_eq!(table.sweep(1), 1);
        assert_eq!(table.len(), 0);
        // Forgetting it changes no answer.
        assert!(table.peek(&key, 1, 1).allowed);
    }

    #[test]
    fn a_slot_hashes_as_the_key_it_is_looked_up_by() {
        let short = Slot::fresh(ByteKey::new(b"ak_0123"));
        assert_eq!(hash_of(&short), hash_of(&b"ak_0123"[..]));
        let long = [b'k'; 100];
        assert_eq!(
            hash_of(&Slot::fresh(ByteKey::new(&long))),
            hash_of(&long[..])
        );
        let key = IpKey::new(std::net::IpAddr::from([7u8; 16]));
        assert_eq!(hash_of(&Slot::fresh(key)), hash_of(&key));
    }
}
