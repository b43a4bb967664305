//! The in-memory store, one to three limits per check (GCRA, fixed window
//! and sliding log, each against a small model of its definition) over a
//! few keys, driven by any sequence of clock moves, checks of any cost,
//! peeks and refunds of earlier admissions: every decision is the model's,
//! all or nothing over the limits (a check any limit refuses charges none),
//! a look charges nothing, and a refund gives back what the documented rule
//! says (GCRA: the charge less the time since it; a window: the charge, if
//! its window is still the current one; the log: the charge's entry).
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::Key;
use tollgate::quota::Quota;
use tollgate::store::{Charge, Checked, MemoryStore, Store};
use tollgate::Limit;

/// A limit's definition, per key.
enum Model {
    /// Theoretical arrival time per key, in ns.
    Gcra { t: u128, capacity: u128, burst: u64, tat: HashMap<usize, u128> },
    /// Units per (key, window number).
    Fixed { period: u64, count: u64, used: HashMap<(usize, u64), u64> },
    /// Admitted (time, cost) per key.
    Log { period: u64, count: u64, log: HashMap<usize, Vec<(u64, u64)>> },
}

impl Model {
    fn new(kind: AlgorithmKind, quota: &Quota) -> Model {
        match kind {
            AlgorithmKind::FixedWindow => Model::Fixed {
                period: quota.period_nanos(),
                count: quota.count(),
                used: HashMap::new(),
            },
            AlgorithmKind::SlidingLog => Model::Log {
                period: quota.period_nanos(),
                count: quota.count(),
                log: HashMap::new(),
            },
            _ => {
                let t = u128::from(quota.emission_interval_nanos());
                Model::Gcra {
                    t,
                    capacity: t * u128::from(quota.burst()),
                    burst: quota.burst(),
                    tat: HashMap::new(),
                }
            }
        }
    }

    fn fits(&self, key: usize, now: u64, cost: u64) -> bool {
        match self {
            Model::Gcra { t, capacity, burst, tat } => {
                let base = tat.get(&key).copied().unwrap_or(0).max(u128::from(now));
                cost <= *burst && base + u128::from(cost) * t - u128::from(now) <= *capacity
            }
            Model::Fixed { period, count, used } => {
                used.get(&(key, now / period)).copied().unwrap_or(0) + cost <= *count
            }
            Model::Log { period, count, log } => {
                let live: u64 = log
                    .get(&key)
                    .map_or(0, |l| l.iter().filter(|(t, _)| t + period > now).map(|(_, c)| c).sum());
                live + cost <= *count
            }
        }
    }

    fn charge(&mut self, key: usize, now: u64, cost: u64) {
        match self {
            Model::Gcra { t, tat, .. } => {
                let base = tat.get(&key).copied().unwrap_or(0).max(u128::from(now));
                tat.insert(key, base + u128::from(cost) * *t);
            }
            Model::Fixed { period, used, .. } => {
                *used.entry((key, now / *period)).or_insert(0) += cost;
            }
            Model::Log { log, .. } => log.entry(key).or_default().push((now, cost)),
        }
    }

    fn refund(&mut self, key: usize, charged_at: u64, now: u64, cost: u64) {
        match self {
            Model::Gcra { t, tat, .. } => {
                let give = (u128::from(cost) * *t).saturating_sub(u128::from(now - charged_at));
                if let Some(tat) = tat.get_mut(&key) {
                    if give > 0 && *tat > u128::from(now) {
                        *tat = tat.saturating_sub(give).max(u128::from(now));
                    }
                }
            }
            Model::Fixed { period, used, .. } => {
                // Only the current window is kept: an older one is gone.
                if charged_at / *period == now / *period {
                    if let Some(used) = used.get_mut(&(key, charged_at / *period)) {
                        *used -= cost.min(*used);
                    }
                }
            }
            Model::Log { log, .. } => {
                if let Some(l) = log.get_mut(&key) {
                    if let Some(i) = l.iter().rposition(|&e| e == (charged_at, cost)) {
                        l.remove(i);
                    }
                }
            }
        }
    }
}

const KINDS: [AlgorithmKind; 3] =
    [AlgorithmKind::Gcra, AlgorithmKind::FixedWindow, AlgorithmKind::SlidingLog];

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let limits = 1 + usize::from(data[0]) % 3;
    let clock = ManualClock::new();
    clock.set(1_000_000_000);
    let store = MemoryStore::builder().clock(clock.clone()).build();
    let mut handles = Vec::new();
    let mut models = Vec::new();
    for i in 0..limits {
        let b = &data[1 + 3 * i..4 + 3 * i];
        let kind = KINDS[usize::from(b[0]) % 3];
        let count = 1 + u64::from(b[1]) % 10;
        let period = Duration::from_millis(1 + u64::from(b[2]) * 7);
        let Ok(mut quota) = Quota::new(count, period) else { return };
        if kind == AlgorithmKind::Gcra && b[0] & 0x80 != 0 {
            let Ok(q) = quota.with_burst(1 + u64::from(b[1] >> 4)) else { return };
            quota = q;
        }
        let Ok(limit) = Limit::new(&format!("l{i}"), quota, kind) else { return };
        handles.push(store.bind(&limit));
        models.push(Model::new(kind, &quota));
    }
    let keys: Vec<Key<'static>> =
        (0..3).map(|k| Key::owned(format!("k{k}"), "t").expect("key")).collect();
    let mut receipts = Vec::new();
    for op in data[10..].chunks(3) {
        let [a, b, c] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        clock.advance(Duration::from_micros(u64::from(a) * u64::from(a) * 13));
        let now = tollgate::clock::Clock::now(&clock);
        let key = usize::from(b) % 3;
        let cost = 1 + u64::from(c) % 4;
        let look = b & 0x80 != 0;
        if c & 0x80 != 0 {
            // Refund the latest admission not refunded yet.
            if let Some((key, cost, receipt)) = receipts.pop() {
                let charges: Vec<_> =
                    handles.iter().map(|h| Charge::new(h, &keys[key], cost)).collect();
                store.refund(&charges, receipt);
                for m in &mut models {
                    m.refund(key, receipt.at(), now, cost);
                }
            }
            continue;
        }
        let charges: Vec<_> = handles.iter().map(|h| Charge::new(h, &keys[key], cost)).collect();
        let checked = if look { store.peek(&charges) } else { store.check(&charges) };
        let verdict = match checked {
            Checked::Ready(v) => v.expect("no store error below max_keys"),
            Checked::Pending(never) => match never {},
        };
        let fits = models.iter().all(|m| m.fits(key, now, cost));
        assert_eq!(
            verdict.decision.is_allowed(),
            fits,
            "at {now}: key {key}, cost {cost}, look {look}"
        );
        if fits && !look {
            for m in &mut models {
                m.charge(key, now, cost);
            }
            receipts.push((key, cost, verdict.receipt.expect("an admission has a receipt")));
        }
    }
});
