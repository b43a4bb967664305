//! Compare-and-swap loops shared by the single-word algorithms.

use std::sync::atomic::{AtomicU64, Ordering};

use portable_atomic::AtomicU128;

/// Runs `step` on the current value until the swap succeeds; `step` answers
/// the result and, when the state changes, the new value.
#[inline]
pub(crate) fn update_u64<R>(cell: &AtomicU64, mut step: impl FnMut(u64) -> (R, Option<u64>)) -> R {
    let mut current = cell.load(Ordering::Acquire);
    loop {
        let (result, next) = step(current);
        let Some(next) = next else { return result };
        match cell.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return result,
            Err(actual) => current = actual,
        }
    }
}

/// [`update_u64`] for a two-word state.
#[inline]
pub(crate) fn update_u128<R>(
    cell: &AtomicU128,
    mut step: impl FnMut(u128) -> (R, Option<u128>),
) -> R {
    let mut current = cell.load(Ordering::Acquire);
    loop {
        let (result, next) = step(current);
        let Some(next) = next else { return result };
        match cell.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return result,
            Err(actual) => current = actual,
        }
    }
}
