//! Where counters live: the [`Store`] trait and the in-memory store.
//!
//! A store is bound once to each [`Limit`] (answering a handle the layer
//! keeps), then asked to run all-or-nothing checks over several
//! `(limit, key, cost)` charges at once. The in-memory store answers
//! synchronously with [`Checked::Ready`], so the layer's in-memory path
//! neither boxes nor awaits; a remote store answers [`Checked::Pending`] with
//! its own future.
//!
//! ```
//! use tollgate::{Limit, key::Key};
//! use tollgate::algorithm::AlgorithmKind;
//! use tollgate::store::{Charge, Checked, MemoryStore, Store};
//!
//! let store = MemoryStore::new();
//! let minute = store.bind(&Limit::new("minute", "2/minute".parse()?, AlgorithmKind::Gcra)?);
//! let key = Key::borrowed(b"client-1", "example")?;
//! for expected in [true, true, false] {
//!     let Checked::Ready(Ok(verdict)) = store.check(&[Charge::new(&minute, &key, 1)]) else {
//!         unreachable!("the memory store answers at once")
//!     };
//!     assert_eq!(verdict.decision.is_allowed(), expected);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod coalesce;
mod memory;
mod permit;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{RedisHandle, RedisStore, RedisStoreBuilder};
pub use memory::{
    MemoryHandle, MemoryStore, MemoryStoreBuilder, DEFAULT_LIGHT_USE, DEFAULT_MAX_KEYS,
};
pub use permit::{Permit, Permits};

use std::future::Future;
use std::time::Duration;

use crate::clock::Nanos;
use crate::decision::Decision;
use crate::error::StoreError;
use crate::key::Key;
use crate::limit::Limit;

/// The most charges one check may carry.
pub const MAX_CHARGES: usize = 8;

/// Keeps the counters of bound limits and runs checks against them.
pub trait Store: Clone + Send + Sync + 'static {
    /// What the store needs to find one limit's counters again.
    type Handle: Clone + Send + Sync + 'static;
    /// The future of a check that does not complete at once.
    type Future: Future<Output = Result<Verdict, StoreError>> + Send + 'static;

    /// Prepares the store for `limit`. Binding the same definition twice may
    /// share counters or not, as the store documents.
    fn bind(&self, limit: &Limit) -> Self::Handle;

    /// Checks every charge and takes them all, or none.
    ///
    /// The decision's [`policy`](Decision::policy) is the position of the
    /// reported charge in `charges`.
    fn check(&self, charges: &[Charge<'_, Self::Handle>]) -> Checked<Self::Future>;

    /// Answers what [`check`](Store::check) would, charging nothing.
    fn peek(&self, charges: &[Charge<'_, Self::Handle>]) -> Checked<Self::Future>;

    /// Gives back the charges an admitted check took (its verdict's
    /// [`receipt`](Verdict::receipt)): the same windows, the same cost,
    /// never more room than the charge took. Concurrency limits are skipped
    /// (their permits give the room back). A remote store may finish the
    /// refund after this returns.
    fn refund(&self, charges: &[Charge<'_, Self::Handle>], receipt: Receipt);

    /// Gives back the places a check admitted with a
    /// [`delay`](Decision::delay) took, for a request that leaves before
    /// its turn (its client went away): each limit that delayed it gets its
    /// place back when no later request reserved one after it, and keeps it
    /// otherwise, so a cancellation never lets more pass than the rate.
    /// `receipt` and `delay` are the check's.
    ///
    /// The default keeps every place: always safe (the rate is never
    /// exceeded), at the cost of room a departed waiter held.
    fn cancel(&self, charges: &[Charge<'_, Self::Handle>], receipt: Receipt, delay: Duration) {
        let _ = (charges, receipt, delay);
    }
}

/// One limit to charge for one key.
#[derive(Debug)]
pub struct Charge<'a, H> {
    /// The bound limit.
    pub handle: &'a H,
    /// The key whose counter is charged.
    pub key: &'a Key<'a>,
    /// The cost, at least 1.
    pub cost: u64,
}

impl<'a, H> Charge<'a, H> {
    /// A charge of `cost` (raised to 1 if 0) to `key` under `handle`.
    pub fn new(handle: &'a H, key: &'a Key<'a>, cost: u64) -> Self {
        Self {
            handle,
            key,
            cost: cost.max(1),
        }
    }
}

impl<H> Clone for Charge<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H> Copy for Charge<'_, H> {}

/// A check's answer: at once, or later through the store's future.
#[derive(Debug)]
pub enum Checked<F> {
    /// The answer is known now.
    Ready(Result<Verdict, StoreError>),
    /// The answer will come from this future.
    Pending(F),
}

/// An admission decision and the permits an allowed request holds.
#[derive(Debug)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Concurrency permits: hold them until the response is finished.
    pub permits: Permits,
    /// What [`Store::refund`] needs to give back exactly what was taken;
    /// `None` when nothing was charged (or the store cannot refund it).
    pub receipt: Option<Receipt>,
}

/// What a store notes about a check it charged, handed back to it by
/// [`Store::refund`]: when the charges were taken, on the store's own clock,
/// and an identifier of the store's choosing.
///
/// The layer only carries a receipt from the check to the refund; what the
/// two numbers mean is the business of the store that made it, and a store
/// reads only its own. A store of your own puts here what its refund needs.
///
/// ```
/// use tollgate::store::Receipt;
///
/// let receipt = Receipt::new(1_000_000_000, 7);
/// assert_eq!((receipt.at(), receipt.id()), (1_000_000_000, 7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    at: Nanos,
    id: u64,
}

impl Receipt {
    /// A receipt for charges taken at `at` on the store's clock, with the
    /// store's identifier `id` for the check (any value; 0 if unused).
    pub const fn new(at: Nanos, id: u64) -> Self {
        Self { at, id }
    }

    /// When the charges were taken, on the store's clock.
    pub const fn at(&self) -> Nanos {
        self.at
    }

    /// The store's identifier of the check.
    pub const fn id(&self) -> u64 {
        self.id
    }
}

/// The future type of a store that always answers at once.
#[derive(Debug)]
pub enum Never {}

impl Future for Never {
    type Output = Result<Verdict, StoreError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match *self {}
    }
}
