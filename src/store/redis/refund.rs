//! Refunds decided after the response
//! ([`RateLimitLayer::refund_when`](crate::RateLimitLayer::refund_when)):
//! `rollback.lua` gives back what one admitted check took, on the clock
//! reading and check identifier its [`Receipt`] carries.

use std::sync::Arc;

use super::key;
use super::spread::ROLLBACK;
use super::{Inner, RedisHandle, CONCURRENCY, RELEASE_TIMEOUT};
use crate::store::{Charge, Receipt};

/// The code of a charge `rollback.lua` leaves alone.
const SKIP: &str = "-";

impl Inner {
    /// Starts the refund of `charges`, taken by the check `receipt` names,
    /// on the current Tokio runtime. Without a runtime, or when Redis does
    /// not answer, the charge stays until it expires: refusals too many,
    /// never admissions.
    pub(super) fn refund(self: &Arc<Self>, charges: &[Charge<'_, RedisHandle>], receipt: Receipt) {
        let mut keys = Vec::with_capacity(charges.len());
        let mut args = Vec::with_capacity(3 + 6 * charges.len());
        let secs = receipt.at / 1_000_000_000;
        let micros = (receipt.at % 1_000_000_000) / 1_000;
        args.push(secs.to_string());
        args.push(micros.to_string());
        args.push(self.nonce_of(receipt.id));
        let mut tag = String::new();
        let mut any = false;
        for charge in charges {
            let spec = &charge.handle.spec;
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            keys.push(key::counter(&self.prefix, &tag, &spec.id));
            // Every charge keeps its position (sorted-set members are named
            // by it); a concurrency charge is passed under a code the script
            // skips, since its permit gives its room back.
            if spec.code == CONCURRENCY {
                args.push(SKIP.to_owned());
            } else {
                any = true;
                args.push(spec.code.to_owned());
            }
            args.push(charge.cost.to_string());
            args.extend(spec.params.iter().map(u64::to_string));
        }
        if !any {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime to refund a Redis charge; it expires");
            return;
        };
        let inner = Arc::clone(self);
        runtime.spawn(async move {
            let timeout = inner.timeout.max(RELEASE_TIMEOUT);
            let undone: Result<i64, _> = inner.backend.invoke(&ROLLBACK, keys, args, timeout).await;
            if let Err(error) = undone {
                tracing::debug!(%error, "could not refund a charge on Redis; it expires");
            }
        });
    }
}
