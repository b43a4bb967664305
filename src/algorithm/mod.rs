//! The limiting algorithms, each behind the small [`Algorithm`] trait.
//!
//! Each algorithm is a pure step over its state: given the state, the time and
//! the cost of a request, it answers an [`Outcome`] and the next state. The
//! in-memory store runs the step in a compare-and-swap loop on one atomic
//! word (GCRA, fixed window, concurrency, and the sliding window counter when
//! its numbers fit) or two (the sliding window counter otherwise); the
//! sliding log keeps a bounded list of timestamps under a per-key mutex.
//! Remote stores run the same steps as server-side scripts.
//!
//! | algorithm | state per key | precision |
//! |---|---|---|
//! | [`Gcra`] (token bucket) | 8 bytes | exact, smooth refill |
//! | [`FixedWindow`] | 8 bytes ([`WideFixedWindow`]: 16, for quotas of more than about one unit per two ns) | exact per window; up to 2x at a window edge |
//! | [`SlidingWindow`] | 16 bytes ([`PackedSlidingWindow`]: 8, for most quotas) | weighted estimate of the last period, never above the count; under constant demand `count - 1` per period (`1/hour`: one per two hours) |
//! | [`SlidingLog`] | 16 bytes per request in the period | exact: at most the count in any half-open `[t, t + period)` |
//! | [`Concurrency`] | 8 bytes | exact in-flight count |
//!
//! ```
//! use tollgate::algorithm::{Algorithm, Gcra};
//! use tollgate::quota::Quota;
//!
//! let gcra = Gcra::new(&Quota::per_second(2).unwrap());
//! let state = gcra.new_state();
//! let now = 1_000_000_000;
//! assert!(gcra.acquire(&state, now, 1).allowed);
//! assert!(gcra.acquire(&state, now, 1).allowed);
//! let third = gcra.acquire(&state, now, 1);
//! assert!(!third.allowed);
//! assert_eq!(third.retry_after, 500_000_000); // one token every 500 ms
//! ```

mod cell;
mod concurrency;
mod divisor;
mod fixed_window;
mod gcra;
mod kind;
mod outcome;
mod sliding_log;
mod sliding_window;

pub use concurrency::Concurrency;
pub use fixed_window::{FixedWindow, WideFixedWindow};
pub use gcra::Gcra;
pub use kind::{AlgorithmKind, UnknownAlgorithm};
pub use outcome::{Outcome, RETRY_NEVER};
pub use sliding_log::{LogState, SlidingLog, SLIDING_LOG_MAX};
pub use sliding_window::{PackedSlidingWindow, SlidingWindow};

use crate::clock::Nanos;

/// One limiting algorithm, as the in-memory store runs it.
///
/// `now` is a reading of the store's clock, taken once per request and passed
/// to every limit the request charges. `cost` is at least 1.
///
/// The trait is sealed: the crate's seven algorithms implement it, and no
/// other type can. The stores run exactly these (the memory store calls
/// them, the Redis store runs the same arithmetic as scripts), so an
/// algorithm from elsewhere could not be run by a store; choose one for a
/// tier with [`AlgorithmKind`]. The trait and the types are public so that
/// each algorithm can be used on its own, on state you hold, and compared
/// with other implementations, as the module's example does.
pub trait Algorithm: sealed::Sealed + Send + Sync + std::fmt::Debug + 'static {
    /// The state kept per key.
    type State: Send + Sync + 'static;

    /// The state of a key never seen: a full allowance.
    fn new_state(&self) -> Self::State;

    /// Charges `cost` if the limit allows it, atomically.
    fn acquire(&self, state: &Self::State, now: Nanos, cost: u64) -> Outcome;

    /// Answers what [`acquire`](Algorithm::acquire) would, without charging.
    fn peek(&self, state: &Self::State, now: Nanos, cost: u64) -> Outcome;

    /// Gives back a charge made at `charged_at` (a rolled-back multi-limit
    /// check, a refund, or a concurrency permit ending). Never credits more
    /// than was charged.
    fn refund(&self, state: &Self::State, charged_at: Nanos, cost: u64);

    /// Gives back, at `now`, a charge made at `charged_at` once the request's
    /// answer is known: what [`refund`](Algorithm::refund) gives, unless the
    /// time since the charge may have let later requests build on it (GCRA),
    /// in which case less. Never credits room a later request took.
    fn refund_later(&self, state: &Self::State, charged_at: Nanos, now: Nanos, cost: u64) {
        let _ = now;
        self.refund(state, charged_at, cost);
    }

    /// Whether the state is back to a full allowance, so the key can be
    /// forgotten without changing any future answer.
    fn is_idle(&self, state: &Self::State, now: Nanos) -> bool;

    /// The units of the allowance in use at `now`, rounded up: 0 for an
    /// idle state. Forgetting the key hands exactly this much back to its
    /// client, which is how the memory store bounds what forgetting a
    /// lightly used key under memory pressure can over-admit.
    ///
    /// The default answers 0 for an idle state and `u64::MAX` otherwise
    /// (never lightly used).
    fn used(&self, state: &Self::State, now: Nanos) -> u64 {
        if self.is_idle(state, now) {
            0
        } else {
            u64::MAX
        }
    }
}

/// The seal of [`Algorithm`]: a public trait in a private module, so only
/// this crate can name it, and so implement it.
mod sealed {
    pub trait Sealed {}

    impl Sealed for super::Concurrency {}
    impl Sealed for super::FixedWindow {}
    impl Sealed for super::WideFixedWindow {}
    impl Sealed for super::Gcra {}
    impl Sealed for super::SlidingLog {}
    impl Sealed for super::SlidingWindow {}
    impl Sealed for super::PackedSlidingWindow {}
}
