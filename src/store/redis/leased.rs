//! Leased mode's checks: spend the leases held here; when one runs out,
//! refill it from Redis (`lease.lua`, one call for every limit of the
//! check that ran out, one per slot on a cluster); else check per request.
//! See the [module docs](super#leased-mode).

use std::sync::Arc;

use super::breaker::CircuitOpen;
use super::fallback::LocalCharge;
use super::key;
use super::lease_slots::{Ask, Grant, LeaseSlots, Settled, Slot};
use super::scripts::Run;
use super::{
    layout, Call, CheckFuture, Inner, RedisHandle, RedisStore, Spec, FIXED_WINDOW, GCRA,
    LEASED_RECEIPT,
};
use crate::algorithm::{Outcome, RETRY_NEVER};
use crate::clock::Nanos;
use crate::error::StoreError;
use crate::store::{Charge, Checked, Permits, Receipt, Verdict};

/// How many times a check tries to settle from leases (waiting for or
/// making refills) before it is checked per request.
const ROUNDS: usize = 4;

/// A leased check's charges, owned by its future.
struct Job {
    slots: Vec<Arc<Slot>>,
    costs: Vec<u64>,
    /// Positions in lock order (by counter name).
    order: Vec<usize>,
    counters: Vec<String>,
    /// Per position, the index of its client key among the check's (its
    /// Redis Cluster slot).
    groups: Vec<usize>,
    specs: Vec<Arc<Spec>>,
    /// Owned copies for the local fallback, when on.
    local: Option<Vec<LocalCharge>>,
    take: bool,
}

/// Whether leased mode serves a limit of this algorithm.
fn leasable(code: &str) -> bool {
    code == GCRA || code == FIXED_WINDOW
}

impl RedisStore {
    /// Answers `charges` in leased mode, at once from the leases held or
    /// with a future that refills them; `None` when the check goes per
    /// request (leased mode off, or a charge it does not serve).
    pub(super) fn start_leased(
        &self,
        charges: &[Charge<'_, RedisHandle>],
        take: bool,
    ) -> Option<Checked<CheckFuture>> {
        let inner = &self.inner;
        let table = inner.leases.as_ref()?;
        if !charges.iter().all(|c| leasable(c.handle.spec.code)) {
            table.count_per_request();
            return None;
        }
        let now = inner.clock.now();
        let n = charges.len();
        let mut slots = Vec::with_capacity(n);
        let mut counters: Vec<String> = Vec::with_capacity(n);
        let mut tags: Vec<String> = Vec::new();
        let mut groups = Vec::with_capacity(n);
        let mut tag = String::new();
        for charge in charges {
            let spec = &charge.handle.spec;
            tag.clear();
            key::push_tag(&mut tag, charge.key);
            let counter = key::counter(&inner.prefix, &tag, &spec.id);
            let slot = if counters.contains(&counter) {
                // Charged twice in one check: per request.
                None
            } else {
                table.slot(&counter, spec.serial, spec.code == FIXED_WINDOW, now)
            };
            let Some(slot) = slot else {
                table.count_per_request();
                return None;
            };
            let group = match tags.iter().position(|t| *t == tag) {
                Some(g) => g,
                None => {
                    tags.push(tag.clone());
                    tags.len() - 1
                }
            };
            groups.push(group);
            slots.push(slot);
            counters.push(counter);
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| counters[a].cmp(&counters[b]));
        let costs: Vec<u64> = charges.iter().map(|c| c.cost).collect();
        let next = match table.settle(&slots, &costs, &order, now, take, &[]) {
            Settled::Answer(decision, spent_until) => {
                table.count_local();
                return Some(Checked::Ready(Ok(Verdict {
                    decision,
                    permits: Permits::none(),
                    receipt: leased_receipt(spent_until),
                })));
            }
            Settled::PerRequest => {
                table.count_per_request();
                return None;
            }
            next => next,
        };
        let local = inner.fallback.as_ref().and_then(|_| {
            charges
                .iter()
                .map(|c| {
                    c.handle.spec.local.as_ref().map(|handle| LocalCharge {
                        handle: handle.clone(),
                        key: c.key.clone().into_owned(),
                        cost: c.cost,
                    })
                })
                .collect::<Option<Vec<_>>>()
        });
        let job = Job {
            slots,
            costs,
            order,
            counters,
            groups,
            specs: charges.iter().map(|c| Arc::clone(&c.handle.spec)).collect(),
            local,
            take,
        };
        Some(Checked::Pending(CheckFuture::new(
            Arc::clone(inner).leased(job, next),
        )))
    }
}

/// One lease ask's figures from the script: `granted, limit, remaining,
/// window, retry_after`.
fn read_grant(ask: &Ask, figures: &[i64], sent: u64) -> Option<Grant> {
    let &[granted, limit, remaining, window, retry] = figures else {
        return None;
    };
    let figure = |n: i64| u64::try_from(n).ok();
    let granted = figure(granted)?;
    if granted > ask.want {
        return None;
    }
    let allowed = granted > 0;
    if allowed && granted < ask.need {
        return None;
    }
    Some(Grant {
        position: ask.position,
        granted,
        outcome: Outcome {
            allowed,
            limit: figure(limit)?,
            remaining: figure(remaining)?,
            window: figure(window)?,
            retry_after: match retry {
                _ if allowed => 0,
                r if r < 0 => RETRY_NEVER,
                r => figure(r)?.max(1),
            },
        },
        sent,
    })
}

/// The receipt of an answer that spent units held here, spendable until
/// the local instant `spent_until`: a refund gives them back to the
/// leases ([`LeaseSlots::give_back`]), never to Redis, which counted them
/// when it granted the lease. `None` when nothing was taken.
fn leased_receipt(spent_until: Option<Nanos>) -> Option<Receipt> {
    spent_until.map(|at| Receipt::new(at, LEASED_RECEIPT))
}

fn malformed() -> StoreError {
    StoreError::Unavailable("unexpected answer from the Redis lease script".into())
}

impl Inner {
    fn table(&self) -> Result<&LeaseSlots, StoreError> {
        self.leases
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("leased mode is off".into()))
    }

    /// Settles a leased check: waits for other checks' refills, makes its
    /// own, and answers; per request after [`ROUNDS`] rounds.
    async fn leased(self: Arc<Self>, job: Job, mut next: Settled) -> Result<Verdict, StoreError> {
        let table = self.table()?;
        let mut called = false;
        for _ in 0..ROUNDS {
            next = match next {
                Settled::Answer(decision, spent_until) => {
                    if !called {
                        table.count_local();
                    }
                    return Ok(Verdict {
                        decision,
                        permits: Permits::none(),
                        receipt: leased_receipt(spent_until),
                    });
                }
                Settled::PerRequest => break,
                Settled::Wait {
                    position,
                    generation,
                } => {
                    if let Some(slot) = job.slots.get(position) {
                        slot.refill_ended(generation, self.timeout).await;
                    }
                    let now = self.clock.now();
                    table.settle(&job.slots, &job.costs, &job.order, now, job.take, &[])
                }
                Settled::Refill { asks, guard } => {
                    called = true;
                    let (grants, failure) = self.lease(&job, &asks).await;
                    let now = self.clock.now();
                    let refusals = table.apply(&job.slots, &job.costs, guard.id(), &grants, now);
                    if let Some((error, may_fall_back)) = failure {
                        drop(guard);
                        return match (&self.fallback, &job.local, may_fall_back) {
                            (Some(fallback), Some(local), true) => {
                                fallback.answer_owned(local, job.take, &error)
                            }
                            _ => Err(error),
                        };
                    }
                    // Settle before the guard wakes the waiters: this
                    // check spends first what it asked for.
                    let settled =
                        table.settle(&job.slots, &job.costs, &job.order, now, job.take, &refusals);
                    drop(guard);
                    settled
                }
            };
        }
        if let Settled::Answer(decision, spent_until) = next {
            return Ok(Verdict {
                decision,
                permits: Permits::none(),
                receipt: leased_receipt(spent_until),
            });
        }
        table.count_per_request();
        self.per_request(job).await
    }

    /// Asks Redis for `asks`: one call on one node, one per client key on
    /// a cluster. Answers the grants received, and the failure that stopped
    /// the asking, if any, with whether the local fallback may answer it.
    async fn lease(
        self: &Arc<Self>,
        job: &Job,
        asks: &[Ask],
    ) -> (Vec<Grant>, Option<(StoreError, bool)>) {
        let mut grants = Vec::with_capacity(asks.len());
        let mut batches: Vec<Vec<&Ask>> = Vec::new();
        if self.backend.is_cluster() {
            let mut seen: Vec<usize> = Vec::new();
            for ask in asks {
                let group = job.groups.get(ask.position).copied().unwrap_or(0);
                match seen.iter().position(|&g| g == group) {
                    Some(b) => batches[b].push(ask),
                    None => {
                        seen.push(group);
                        batches.push(vec![ask]);
                    }
                }
            }
        } else {
            batches.push(asks.iter().collect());
        }
        let Ok(table) = self.table() else {
            return (grants, Some((malformed(), false)));
        };
        for batch in batches {
            let mut keys = Vec::with_capacity(batch.len());
            // The first argument is the deadline's (scripts::run_lease).
            let mut args = Vec::with_capacity(layout::lease_args(batch.len()));
            args.push(String::new());
            for ask in &batch {
                let (Some(counter), Some(spec)) =
                    (job.counters.get(ask.position), job.specs.get(ask.position))
                else {
                    return (grants, Some((malformed(), false)));
                };
                keys.push(counter.clone());
                args.push(spec.code.to_owned());
                args.push(ask.need.to_string());
                args.push(ask.want.to_string());
                args.extend(spec.params.iter().map(u64::to_string));
            }
            let sent = self.clock.now();
            table.count_call();
            let reply = match self.lease_call(keys, args).await {
                Ok(reply) => reply,
                Err(error) => return (grants, Some((error, true))),
            };
            if reply.len() != layout::GRANT_FIGURES * batch.len() {
                return (grants, Some((malformed(), false)));
            }
            for (ask, figures) in batch.iter().zip(reply.chunks_exact(layout::GRANT_FIGURES)) {
                match read_grant(ask, figures, sent) {
                    Some(grant) => grants.push(grant),
                    None => return (grants, Some((malformed(), false))),
                }
            }
        }
        (grants, None)
    }

    /// One lease call through the circuit breaker: at once
    /// [`CircuitOpen`] while it is open; the answer reported to it, and to
    /// the fallback's switch ([`Gate`]).
    async fn lease_call(
        self: &Arc<Self>,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Vec<i64>, StoreError> {
        let Some(mut gate) = self.admit() else {
            return Err(StoreError::Unavailable(Box::new(CircuitOpen)));
        };
        let reply = gate.script(Run::Lease, keys, args).await;
        gate.report(reply.is_ok());
        reply
    }

    /// Checks the job per request, with the ordinary script.
    async fn per_request(self: Arc<Self>, job: Job) -> Result<Verdict, StoreError> {
        let id = self.next_id();
        let mut args = Vec::with_capacity(layout::check_args(job.specs.len()));
        // Mode "2" when charging: the answer carries the TIME for a receipt.
        args.push(if job.take { "2" } else { "0" }.to_owned());
        args.push(self.nonce_of(id));
        for (spec, cost) in job.specs.iter().zip(&job.costs) {
            args.push(spec.code.to_owned());
            args.push(cost.to_string());
            args.extend(spec.params.iter().map(u64::to_string));
        }
        let Some(gate) = self.admit() else {
            return self.circuit_open(job.local.as_deref(), job.take);
        };
        let call = Call {
            id,
            keys: job.counters,
            args,
            slots: Vec::new(),
            remember: None,
        };
        Inner::check(gate, call, job.local, job.take).await
    }
}
