//! Waiters that leave before their turn (delay mode): `cancel.lua` gives
//! each queued GCRA's place back when no later request reserved one after
//! it, the same rule as the memory store's (`Gcra::cancel`).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;

use super::{key, Inner, RedisHandle, LEASED_RECEIPT, QUEUED_GCRA, RELEASE_TIMEOUT};
use crate::store::{Charge, Receipt};

static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("cancel.lua")
    ))
});

/// The arrival time a queued GCRA's admission set, and the one to put
/// back: the check's `TIME` (`at`, ns since the epoch) plus the capacity and
/// the wait, and that less the charge. `None` when the figures do not fit.
fn places(params: &[u64; 4], cost: u64, at: u64, delay: u64) -> Option<(u64, u64)> {
    let [interval, _, burst, _] = *params;
    let capacity = interval.checked_mul(burst)?;
    let reserved = at.checked_add(capacity)?.checked_add(delay)?;
    let back = reserved.checked_sub(cost.checked_mul(interval)?)?;
    Some((reserved, back))
}

impl Inner {
    /// Starts giving back the places the check `receipt` names took for a
    /// request that waited `delay` and left: on the current Tokio runtime,
    /// one call per queued limit (without a runtime, or when Redis does not
    /// answer, the places stay taken: refusals too many, never admissions).
    pub(super) fn cancel(
        self: &Arc<Self>,
        charges: &[Charge<'_, RedisHandle>],
        receipt: Receipt,
        delay: Duration,
    ) {
        if receipt.id() & LEASED_RECEIPT != 0 {
            return;
        }
        let delay = crate::clock::nanos_saturating(delay);
        let mut calls = Vec::new();
        let mut tag = String::new();
        for charge in charges {
            let spec = &charge.handle.spec;
            if spec.code != QUEUED_GCRA {
                continue;
            }
            let Some((reserved, back)) = places(&spec.params, charge.cost, receipt.at(), delay)
            else {
                continue;
            };
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            let counter = key::counter(&self.prefix, &tag, &spec.id);
            calls.push((counter, spec.serial, reserved.to_string(), back.to_string()));
        }
        if calls.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime to give a waiter's place back on Redis; it stays");
            return;
        };
        let inner = Arc::clone(self);
        runtime.spawn(async move {
            let timeout = inner.timeout.max(RELEASE_TIMEOUT);
            for (counter, serial, reserved, back) in calls {
                let given: Result<i64, _> = inner
                    .backend
                    .invoke(
                        &CANCEL,
                        vec![counter.clone()],
                        vec![reserved, back],
                        timeout,
                    )
                    .await;
                match given {
                    Ok(given) if given > 0 => {
                        // A refusal cached for this counter may no longer hold.
                        if let Some(cache) = &inner.over_limit {
                            cache.forget(&counter, serial);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!(%error, "could not give a waiter's place back on Redis");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_is_the_arrival_time_the_admission_set() {
        // T = 200 ms, burst 1: a check at 1 s that waited 400 ms set the
        // arrival time to 1 s + 200 ms + 400 ms; giving back one unit puts
        // back 1.4 s.
        let params = [200_000_000, 5, 1, 2_000_000_000];
        let at = 1_000_000_000;
        assert_eq!(
            places(&params, 1, at, 400_000_000),
            Some((1_600_000_000, 1_400_000_000))
        );
        assert_eq!(places(&params, 1, u64::MAX, 1), None);
    }
}
