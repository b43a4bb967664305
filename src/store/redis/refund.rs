//! Refunds decided after the response
//! ([`RateLimitLayerBuilder::refund_when`](crate::RateLimitLayerBuilder::refund_when)):
//! `rollback.lua` gives back what one admitted check took, on the `TIME`
//! and check number its [`Receipt`] carries; units an answer took from
//! leases go back to the leases, locally. See the
//! [module docs](super#refunds).

use std::sync::Arc;

use super::key;
use super::spread::{self, ROLLBACK};
use super::{
    layout, Inner, RedisHandle, RedisTime, CONCURRENCY, FIXED_WINDOW, GCRA, LEASED_RECEIPT,
    RELEASE_TIMEOUT,
};
use crate::store::{Charge, Receipt};

/// The code of a charge `rollback.lua` leaves alone.
const SKIP: &str = "-";

/// One `rollback.lua` call: the keys of one slot and their arguments.
struct Rollback {
    keys: Vec<String>,
    args: Vec<String>,
}

impl Inner {
    /// Starts the refund of `charges`, taken by the check `receipt` names:
    /// on the current Tokio runtime for a check Redis answered (without a
    /// runtime, or when Redis does not answer, the charge stays until it
    /// expires: refusals too many, never admissions); at once for units
    /// taken from leases.
    pub(super) fn refund(self: &Arc<Self>, charges: &[Charge<'_, RedisHandle>], receipt: Receipt) {
        if receipt.id() & LEASED_RECEIPT != 0 {
            self.refund_leased(charges, receipt.at());
            return;
        }
        let mut keys = Vec::with_capacity(charges.len());
        let mut tag = String::new();
        for charge in charges {
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            keys.push(key::counter(&self.prefix, &tag, &charge.handle.spec.id));
        }
        let nonce = self.nonce_of(receipt.id());
        let clock = RedisTime::from_nanos(receipt.at());
        // The parts the check ran: one on one node, or one per slot of a
        // cluster (each under its own nonce).
        let parts = if self.backend.is_cluster() && spread::spans_slots(&keys) {
            spread::parts_of(&keys)
                .into_iter()
                .enumerate()
                .map(|(k, positions)| (spread::part_nonce(&nonce, k), positions))
                .collect()
        } else {
            vec![(nonce, (0..charges.len()).collect::<Vec<_>>())]
        };
        let mut calls = Vec::with_capacity(parts.len());
        for (nonce, positions) in parts {
            let mut call = Rollback {
                keys: Vec::with_capacity(positions.len()),
                args: Vec::with_capacity(layout::rollback_args(positions.len())),
            };
            call.args.push(clock.secs.to_string());
            call.args.push(clock.micros.to_string());
            call.args.push(nonce);
            let mut any = false;
            for p in positions {
                let (Some(charge), Some(counter)) = (charges.get(p), keys.get(p)) else {
                    continue;
                };
                let spec = &charge.handle.spec;
                call.keys.push(counter.clone());
                // Every charge keeps its position (sorted-set members are
                // named by it); a concurrency charge is passed under a code
                // the script skips, since its permit gives its room back.
                if spec.code == CONCURRENCY {
                    call.args.push(SKIP.to_owned());
                } else {
                    any = true;
                    call.args.push(spec.code.to_owned());
                }
                call.args.push(charge.cost.to_string());
                call.args.extend(spec.params.iter().map(u64::to_string));
            }
            if any {
                calls.push(call);
            }
        }
        if calls.is_empty() {
            return;
        }
        // Refusals the over-limit cache holds for these counters, to drop
        // once the refund is in: they may no longer hold.
        let forget: Vec<(String, u64)> = match &self.over_limit {
            Some(_) => charges
                .iter()
                .zip(keys)
                .filter(|(c, _)| c.handle.spec.code != CONCURRENCY)
                .map(|(c, counter)| (counter, c.handle.spec.serial))
                .collect(),
            None => Vec::new(),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime to refund a Redis charge; it expires");
            return;
        };
        let inner = Arc::clone(self);
        runtime.spawn(async move {
            let timeout = inner.timeout.max(RELEASE_TIMEOUT);
            for call in calls {
                let undone: Result<i64, _> = inner
                    .backend
                    .invoke(&ROLLBACK, call.keys, call.args, timeout)
                    .await;
                if let Err(error) = undone {
                    tracing::debug!(%error, "could not refund a charge on Redis; it expires");
                }
            }
            if let Some(cache) = &inner.over_limit {
                for (counter, serial) in &forget {
                    cache.forget(counter, *serial);
                }
            }
        });
    }

    /// Gives units an answer took from the leases held here back to them,
    /// spendable until `until` (local clock); see
    /// [`LeaseSlots::give_back`](super::lease_slots::LeaseSlots::give_back).
    fn refund_leased(&self, charges: &[Charge<'_, RedisHandle>], until: u64) {
        let Some(table) = &self.leases else {
            return;
        };
        let now = self.clock.now();
        let mut tag = String::new();
        for charge in charges {
            let spec = &charge.handle.spec;
            if spec.code != GCRA && spec.code != FIXED_WINDOW {
                continue;
            }
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            let counter = key::counter(&self.prefix, &tag, &spec.id);
            table.give_back(&counter, spec.serial, charge.cost, until, now);
        }
    }
}
