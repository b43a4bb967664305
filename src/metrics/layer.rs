//! [`LayerMetrics`]: the handles of one rate-limit layer that are not tied
//! to a rule.

use ::metrics::{counter, Counter};

use super::{REQUESTS_KEY_REJECTED, STORE_ERRORS};
use crate::error::StoreError;
use crate::key::KeyError;

/// The `error` label of each [`StoreError`], by [`store_error_index`].
const STORE_ERROR_LABELS: [&str; 3] = ["full", "timeout", "unavailable"];

/// The position of `error`'s label in [`STORE_ERROR_LABELS`].
fn store_error_index(error: &StoreError) -> usize {
    match error {
        StoreError::Full { .. } => 0,
        StoreError::Timeout(_) => 1,
        StoreError::Unavailable(_) => 2,
    }
}

/// The `reason` label of each [`KeyError`], by position.
const KEY_ERROR_LABELS: [&str; 4] = ["missing", "malformed", "too_long", "unknown"];

/// Key refusals by reason and store failures by error. Registered when
/// the layer is built.
#[derive(Clone)]
pub(crate) struct LayerMetrics {
    key_rejected: [Counter; KEY_ERROR_LABELS.len()],
    store_errors: [Counter; STORE_ERROR_LABELS.len()],
}

impl LayerMetrics {
    /// Registers the handles of a layer.
    pub(crate) fn new() -> Self {
        Self {
            key_rejected: KEY_ERROR_LABELS
                .map(|reason| counter!(REQUESTS_KEY_REJECTED, "reason" => reason)),
            store_errors: STORE_ERROR_LABELS.map(|error| counter!(STORE_ERRORS, "error" => error)),
        }
    }

    /// A request was refused for want of a key.
    pub(crate) fn key_rejected(&self, error: &KeyError) {
        let index = match error {
            KeyError::Missing { .. } => 0,
            KeyError::Malformed { .. } => 1,
            KeyError::TooLong { .. } => 2,
            KeyError::Unknown { .. } => 3,
        };
        self.key_rejected[index].increment(1);
    }

    /// The store could not answer a check.
    pub(crate) fn store_error(&self, error: &StoreError) {
        self.store_errors[store_error_index(error)].increment(1);
    }
}
