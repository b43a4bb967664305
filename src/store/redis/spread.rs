//! Checks whose client keys live in several Redis Cluster slots: one
//! script per slot, in a fixed order (by hash tag), each charging its part
//! all or nothing; when a part refuses (or fails), the parts already
//! charged are undone (`rollback.lua`). See the
//! [module docs](super#redis-cluster).
//!
//! Part `k` (in that order) runs under the nonce `<check nonce>.<k>`, so
//! the check's charges and number are enough to find every part again: a
//! refund ([`parts_of`], `refund.rs`) rebuilds the same parts. An admitted
//! check's [`Receipt`](crate::store::Receipt) carries the earliest `TIME`
//! its parts answered; see [Refunds](super#refunds) for why that is never
//! later than any part's own charge, on that part's node.

use std::sync::{Arc, LazyLock};

use redis::Script;

use super::fallback::LocalCharge;
use super::scripts::Run;
use super::{
    layout, read_outcome, Call, Gate, Inner, RedisTime, Slot, CONCURRENCY, QUEUED_GCRA,
    RELEASE_TIMEOUT,
};
use crate::decision::Decision;
use crate::error::StoreError;
use crate::store::{Permit, Permits, Receipt, Verdict};

pub(super) static ROLLBACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("rollback.lua")
    ))
});

/// The hash tag of one of the store's keys: what lies between its first
/// `{` and the next `}` (the whole key when there is none).
fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.find('}').map(|close| &rest[..close])
        })
        .unwrap_or(key)
}

/// Whether `keys` live in more than one hash slot's worth of tags.
pub(super) fn spans_slots(keys: &[String]) -> bool {
    let mut tags = keys.iter().map(|k| hash_tag(k));
    let first = tags.next();
    tags.any(|t| Some(t) != first)
}

/// The positions of the charges whose counters are `keys`, grouped by slot
/// (hash tag) in the order the parts run: by hash tag, each part's
/// positions in the check's order. Depends on the keys alone, so a refund
/// finds the parts its check ran.
pub(super) fn parts_of(keys: &[String]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| hash_tag(&keys[a]).cmp(hash_tag(&keys[b])));
    let mut parts: Vec<Vec<usize>> = Vec::new();
    for p in order {
        match parts.last_mut() {
            Some(part) if part.first().map(|&q| hash_tag(&keys[q])) == Some(hash_tag(&keys[p])) => {
                part.push(p);
            }
            _ => parts.push(vec![p]),
        }
    }
    parts
}

/// The nonce of part `k` of the check whose nonce is `nonce`.
pub(super) fn part_nonce(nonce: &str, k: usize) -> String {
    format!("{nonce}.{k}")
}

/// The charges of one slot, and what its script was given.
struct Part {
    /// Its index in the check (the order of its nonce).
    index: usize,
    /// Whether it holds a queued limit (delay mode).
    queued: bool,
    /// Positions of its charges in the check, in the order sent.
    positions: Vec<usize>,
    keys: Vec<String>,
    args: Vec<String>,
    nonce: String,
}

/// What one pass over the parts answered.
struct Round {
    /// Each charge's figures, by position in the check.
    figures: Vec<Option<Vec<i64>>>,
    charged: Vec<Charged>,
    members: Vec<Option<(String, usize)>>,
    all: bool,
    failure: Option<StoreError>,
}

/// A part Redis charged: what undoing it takes.
struct Charged {
    keys: Vec<String>,
    /// The charges' arguments (6 each), as sent.
    charges: Vec<String>,
    nonce: String,
    clock: RedisTime,
    /// The part's index in the check.
    part: usize,
    /// The wait the part answered (ns from its `TIME`).
    wait: u64,
}

impl Inner {
    /// Runs `call` (charges over several slots of a cluster) part by part.
    pub(super) async fn check_spread(
        self: Arc<Self>,
        mut gate: Gate,
        call: Call,
        local: Option<Vec<LocalCharge>>,
        take: bool,
    ) -> Result<Verdict, StoreError> {
        let Call {
            id,
            keys,
            args,
            remember,
            ..
        } = call;
        let n = keys.len();
        let malformed =
            || StoreError::Unavailable("unexpected answer from the Redis script".into());
        let nonce = args.get(1).cloned().ok_or_else(malformed)?;
        let mut parts: Vec<Part> = Vec::new();
        for (k, positions) in parts_of(&keys).into_iter().enumerate() {
            let nonce = part_nonce(&nonce, k);
            let mode = if take { "2" } else { "0" };
            let mut part = Part {
                index: k,
                queued: false,
                positions: Vec::with_capacity(positions.len()),
                keys: Vec::with_capacity(positions.len()),
                args: vec![mode.to_owned(), nonce.clone()],
                nonce,
            };
            for p in positions {
                let charge = layout::charge_args(&args, p).ok_or_else(malformed)?;
                part.queued |= charge[0] == QUEUED_GCRA;
                part.positions.push(p);
                part.keys.push(keys[p].clone());
                part.args.extend(charge.iter().cloned());
            }
            parts.push(part);
        }

        let round = if take && parts.iter().any(|part| part.queued) {
            self.run_delayed(&mut gate, &parts, n).await?
        } else {
            let all_parts: Vec<&Part> = parts.iter().collect();
            self.run_parts(&mut gate, &all_parts, n, take, None).await?
        };
        let Round {
            figures,
            charged,
            members,
            all,
            failure,
            ..
        } = round;
        gate.report(failure.is_none());
        if let Some(error) = failure {
            self.undo(charged).await;
            return self.degrade(error, local.as_deref(), take);
        }
        // Every part charged: the receipt will carry the earliest TIME they
        // answered, never later than any part's own on its node's clock.
        let earliest = if all && charged.len() == parts.len() {
            charged.iter().map(|c| c.clock).min()
        } else {
            None
        };
        if !all {
            self.undo(charged).await;
        }

        let mut decision: Option<Decision> = None;
        for (p, f) in figures.iter().enumerate() {
            let Some(f) = f else { continue };
            let outcome = read_outcome(f).ok_or_else(malformed)?;
            decision = Some(match decision {
                None => Decision::from_outcome(p, outcome),
                Some(d) => d.merge(p, outcome),
            });
        }
        let decision = decision.ok_or_else(malformed)?;
        if decision.is_allowed() != all {
            return Err(malformed());
        }
        if let (Some(cache), Some((sent, remember)), false) =
            (&self.over_limit, remember, decision.is_allowed())
        {
            for r in remember {
                if let Some(outcome) = figures
                    .get(r.position)
                    .and_then(Option::as_ref)
                    .and_then(|f| read_outcome(f))
                {
                    cache.remember(&r.counter, r.serial, r.cost, sent, &outcome);
                }
            }
        }
        let receipt = match (take && decision.is_allowed(), earliest) {
            (true, Some(at)) => Some(Receipt::new(at.nanos(), id)),
            _ => None,
        };
        let mut permits = Permits::none();
        if take && decision.is_allowed() {
            for (p, member) in members.into_iter().enumerate() {
                let (Some((nonce, j)), Some(code), Some(cost)) = (
                    member,
                    layout::charge_args(&args, p).map(|c| &c[0]),
                    layout::charge_cost(&args, p),
                ) else {
                    continue;
                };
                if code != CONCURRENCY {
                    continue;
                }
                let slot = Slot {
                    key: keys[p].clone(),
                    member: format!("{cost}:{nonce}:{j}"),
                    cost: cost.parse().unwrap_or(1),
                };
                let inner = Arc::clone(&self);
                permits.push(Permit::from_fn(move || inner.release(slot)));
            }
        }
        Ok(Verdict {
            decision,
            permits,
            receipt,
        })
    }

    /// Charges a check with a queued limit over several slots so that every
    /// part counts the request when it passes: the parts holding queued
    /// limits first, each answering its wait; those whose wait is shorter
    /// than the longest are given back and charged again for the longest;
    /// then the other parts, charged for it too. Waits are counted from
    /// each part's own `TIME`, which differ by the time between the calls:
    /// the same order of error as the request's own trip back from Redis.
    async fn run_delayed(
        &self,
        gate: &mut Gate,
        parts: &[Part],
        n: usize,
    ) -> Result<Round, StoreError> {
        let (queued, plain): (Vec<&Part>, Vec<&Part>) = parts.iter().partition(|p| p.queued);
        let mut round = self.run_parts(gate, &queued, n, true, None).await?;
        if !round.all || round.failure.is_some() {
            return Ok(round);
        }
        let wait = round.charged.iter().map(|c| c.wait).max().unwrap_or(0);
        let (early, kept): (Vec<Charged>, Vec<Charged>) = std::mem::take(&mut round.charged)
            .into_iter()
            .partition(|c| c.wait < wait);
        round.charged = kept;
        let mut again: Vec<&Part> = queued
            .iter()
            .copied()
            .filter(|part| early.iter().any(|c| c.part == part.index))
            .collect();
        self.undo(early).await;
        again.extend(plain);
        let rest = self.run_parts(gate, &again, n, true, Some(wait)).await?;
        for part in &again {
            for &p in &part.positions {
                round.figures[p] = rest.figures[p].clone();
                round.members[p] = rest.members[p].clone();
            }
        }
        round.charged.extend(rest.charged);
        round.all = rest.all;
        round.failure = rest.failure;
        Ok(round)
    }

    /// Runs `parts` in order (each charged for a request passing `floor`
    /// ns from its `TIME`, when given); stops at the first refusal when
    /// charging, or at a failure.
    async fn run_parts(
        &self,
        gate: &mut Gate,
        parts: &[&Part],
        n: usize,
        take: bool,
        floor: Option<u64>,
    ) -> Result<Round, StoreError> {
        let malformed =
            || StoreError::Unavailable("unexpected answer from the Redis script".into());
        let mut round = Round {
            figures: vec![None; n],
            charged: Vec::new(),
            members: vec![None; n],
            all: true,
            failure: None,
        };
        for &part in parts {
            let mut args = part.args.clone();
            if let (Some(floor), Some(nonce)) = (floor.filter(|&f| f > 0), args.get_mut(1)) {
                *nonce = format!("{}/{floor}", part.nonce);
            }
            let reply = gate.script(Run::Check, part.keys.clone(), args).await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    round.failure = Some(error);
                    break;
                }
            };
            let m = part.positions.len();
            // In mode "2" the answer ends with the TIME the part used.
            let clock = match (take, layout::check_time(&reply, m)) {
                (true, Some((secs, micros))) => RedisTime::read(secs, micros),
                _ => None,
            };
            if reply.len() != layout::check_reply_len(m, take) || (take && clock.is_none()) {
                self.undo(round.charged).await;
                gate.report(true);
                return Err(malformed());
            }
            let mut wait: u64 = 0;
            for (j, &p) in part.positions.iter().enumerate() {
                let figures = layout::outcome_figures(&reply, j).map(<[i64]>::to_vec);
                if let Some(&[1, _, _, _, retry]) = figures.as_deref() {
                    wait = wait.max(u64::try_from(retry).unwrap_or(0));
                }
                round.figures[p] = figures;
                round.members[p] = Some((part.nonce.clone(), j + 1));
            }
            let allowed = reply[0] == 1;
            if let (true, Some(clock)) = (allowed, clock) {
                round.charged.push(Charged {
                    keys: part.keys.clone(),
                    charges: part.args[2..].to_vec(),
                    nonce: part.nonce.clone(),
                    clock,
                    part: part.index,
                    wait,
                });
            }
            if !allowed {
                round.all = false;
                if take {
                    // The rest need not be asked: the check is refused.
                    break;
                }
            }
        }
        Ok(round)
    }

    /// Undoes the parts charged, last first; a part that cannot be undone
    /// (Redis away) keeps its charge until its state expires: refusals
    /// too many, never admissions.
    async fn undo(&self, charged: Vec<Charged>) {
        for part in charged.into_iter().rev() {
            let mut args = Vec::with_capacity(3 + part.charges.len());
            args.push(part.clock.secs.to_string());
            args.push(part.clock.micros.to_string());
            args.push(part.nonce);
            args.extend(part.charges);
            let timeout = self.timeout.max(RELEASE_TIMEOUT);
            let undone: Result<i64, StoreError> = self
                .backend
                .invoke(&ROLLBACK, part.keys, args, timeout)
                .await;
            if let Err(error) = undone {
                tracing::debug!(
                    %error,
                    "could not undo part of a refused check on Redis Cluster; it expires"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_of_store_keys() {
        assert_eq!(hash_tag("p:{b6b31}:api@gcra"), "b6b31");
        assert_eq!(hash_tag("p:{b6b31}:api@fw"), "b6b31");
        assert_eq!(hash_tag("no-tag"), "no-tag");
        let same = ["p:{a}:x".to_owned(), "p:{a}:y".to_owned()];
        assert!(!spans_slots(&same));
        let apart = ["p:{a}:x".to_owned(), "p:{b}:x".to_owned()];
        assert!(spans_slots(&apart));
        assert!(!spans_slots(&[]));
    }

    #[test]
    fn parts_run_by_hash_tag_and_keep_the_check_order_within() {
        let keys: Vec<String> = ["p:{b}:x", "p:{a}:x", "p:{b}:y", "p:{c}:x", "p:{a}:y"]
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
        assert_eq!(parts_of(&keys), vec![vec![1, 4], vec![0, 2], vec![3]]);
        // Only the keys matter: a refund given the same charges finds the
        // same parts, hence the same nonces.
        assert_eq!(parts_of(&keys), parts_of(&keys.clone()));
        assert_eq!(part_nonce("00ff.1a", 2), "00ff.1a.2");
        assert!(parts_of(&[]).is_empty());
    }
}
