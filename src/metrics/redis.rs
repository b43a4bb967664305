//! The Redis store's metrics: latency and failures of each call, circuit
//! breaker transitions, the local fallback.

use ::metrics::{counter, gauge, histogram, Counter, Histogram};

use super::{REDIS_BREAKER_TRANSITIONS, REDIS_FALLBACK_ACTIVE, STORE_CALL_ERRORS, STORE_LATENCY};
use crate::clock::{Clock, MonotonicClock, Nanos};
use crate::error::StoreError;

/// The `error` label of a failed call: it timed out, or anything else.
const CALL_ERROR_LABELS: [&str; 2] = ["timeout", "unavailable"];

/// The handles of one Redis store, registered when it is built.
pub(crate) struct RedisMetrics {
    clock: MonotonicClock,
    latency: Histogram,
    /// By [`CALL_ERROR_LABELS`] position.
    errors: [Counter; CALL_ERROR_LABELS.len()],
}

impl RedisMetrics {
    /// Registers the handles.
    pub(crate) fn new() -> Self {
        Self {
            clock: MonotonicClock::new(),
            latency: histogram!(STORE_LATENCY, "store" => "redis"),
            errors: CALL_ERROR_LABELS
                .map(|error| counter!(STORE_CALL_ERRORS, "store" => "redis", "error" => error)),
        }
    }

    /// A call starts: the instant to hand to [`finished`](Self::finished).
    pub(crate) fn started(&self) -> Nanos {
        self.clock.now()
    }

    /// The call that started at `started` answered `result`.
    pub(crate) fn finished<T>(&self, started: Nanos, result: &Result<T, StoreError>) {
        let nanos = self.clock.now().saturating_sub(started);
        self.latency.record(nanos as f64 / 1e9);
        if let Err(error) = result {
            let index = usize::from(!matches!(error, StoreError::Timeout(_)));
            self.errors[index].increment(1);
        }
    }
}

/// The circuit breaker moved: `transition` is `opened`, `half_opened`,
/// `reopened` or `closed`. Rare, so registered in the recorder of the moment.
pub(crate) fn breaker_transition(transition: &'static str) {
    counter!(REDIS_BREAKER_TRANSITIONS, "transition" => transition).increment(1);
}

/// A store's local fallback turned on (`active`) or off.
pub(crate) fn fallback_switched(active: bool) {
    let gauge = gauge!(REDIS_FALLBACK_ACTIVE);
    if active {
        gauge.increment(1.0);
    } else {
        gauge.decrement(1.0);
    }
}
