//! A flood of new keys against the in-memory store at its default bound:
//! fresh clients refused for lack of room, limited clients reset, keys
//! held and memory, with the store's policy for floods (keys used once are
//! forgotten for room) beside the same store without it
//! (`forget_under_pressure(0)`, only idle keys forgotten: the reference).
//!
//! `cargo bench --bench flood` (no criterion: one measured pass per case,
//! on a `ManualClock`, so the counts are exact and repeat run to run).
//! Without `--bench` (`cargo test --all-targets`) a small smoke run.
//!
//! Each case: the tiered example's shape, a tier limit of 3/minute and a
//! per-IP ceiling of 20/second burst 40, both keyed by client IP, so each
//! flood request costs two keys. 1,000 clients spend their quota before the
//! flood; then `max_keys * 5` flood requests from distinct addresses (ten
//! times `max_keys` in keys), the clock moving 10 µs per request (100,000
//! new addresses a second); after every 1,000 of them a fresh client sends a
//! request and, 500 later, its second; every 100,000 each limited client
//! tries again, and counts as reset when admitted where a store no flood
//! reaches (same clock, same limits) refuses it. Addresses: random IPv4, or random IPv6 /64 prefixes.
//!
//! Memory: the process's peak resident set (`VmHWM`, reset through
//! `/proc/self/clear_refs` before each case) over its resident set before
//! the case, per key of `max_keys`.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use tollgate::algorithm::AlgorithmKind;
use tollgate::clock::ManualClock;
use tollgate::key::Key;
use tollgate::store::{Charge, Checked, MemoryHandle, MemoryStore, Store, DEFAULT_MAX_KEYS};
use tollgate::{Limit, StoreError};

/// The store's bound in the smoke run.
const SMOKE_MAX_KEYS: usize = 10_000;
const LIMITED: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addresses {
    V4,
    V6Prefixes,
}

impl Addresses {
    fn name(self) -> &'static str {
        match self {
            Addresses::V4 => "random IPv4",
            Addresses::V6Prefixes => "random IPv6 /64",
        }
    }

    /// A flood address: never in 10.0.0.0/8, where the clients live.
    fn flood(self, numbers: &mut Numbers) -> Key<'static> {
        let r = numbers.next();
        match self {
            Addresses::V4 => {
                let [a, b, c, d] = (r as u32).to_be_bytes();
                let a = if a == 10 { 11 } else { a };
                Key::ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            Addresses::V6Prefixes => {
                Key::ip(IpAddr::V6(Ipv6Addr::from(u128::from(r | 1 << 63) << 64)))
            }
        }
    }
}

/// splitmix64: a repeatable stream of addresses.
struct Numbers(u64);

impl Numbers {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Client `i`: 10.x.y.z.
fn client(i: u32) -> Key<'static> {
    Key::ip(IpAddr::V4(Ipv4Addr::from(0x0A00_0000 | (i & 0x00FF_FFFF))))
}

fn check(store: &MemoryStore<ManualClock>, charges: &[Charge<'_, MemoryHandle>]) -> Answer {
    let result = match store.check(charges) {
        Checked::Ready(result) => result,
        Checked::Pending(never) => match never {},
    };
    match result {
        Ok(v) if v.decision.is_allowed() => Answer::Allowed,
        Ok(_) => Answer::Limited,
        Err(StoreError::Full { .. }) => Answer::Full,
        Err(other) => panic!("{other}"),
    }
}

#[derive(PartialEq, Eq)]
enum Answer {
    Allowed,
    Limited,
    Full,
}

#[derive(Debug, Default)]
struct Row {
    policy: &'static str,
    addresses: &'static str,
    max_keys: usize,
    flood_requests: usize,
    flood_full: usize,
    fresh_requests: usize,
    fresh_full: usize,
    limited_probes: usize,
    limited_reset: usize,
    most_keys: usize,
    forgotten: u64,
    peak_rss_growth: u64,
    seconds: f64,
}

/// Resident set figures of this process, in bytes: (now, peak).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn run(max_keys: usize, light: u64, addresses: Addresses) -> Row {
    // Restart the peak resident set from the current one.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let (before, _) = rss();
    let clock = ManualClock::new();
    let store = MemoryStore::builder()
        .clock(clock.clone())
        .max_keys(max_keys)
        .forget_under_pressure(light)
        .build();
    let quota = |text: &str| text.parse().unwrap();
    let tier_limit = Limit::new("anonymous", quota("3/minute"), AlgorithmKind::Gcra).unwrap();
    let per_ip_limit =
        Limit::new("per-ip", quota("20/second burst 40"), AlgorithmKind::Gcra).unwrap();
    let tier = store.bind(&tier_limit);
    let per_ip = store.bind(&per_ip_limit);
    let both = |k: &Key<'_>| {
        check(
            &store,
            &[Charge::new(&tier, k, 1), Charge::new(&per_ip, k, 1)],
        )
    };
    // The limited clients' answers from a store no flood reaches, on the
    // same clock: their quota refills (one every 20 s), and a client is
    // reset when the flooded store admits it where this one refuses.
    let reference = MemoryStore::builder().clock(clock.clone()).build();
    let reference_tier = reference.bind(&tier_limit);
    let reference_per_ip = reference.bind(&per_ip_limit);
    let unflooded = |k: &Key<'_>| {
        check(
            &reference,
            &[
                Charge::new(&reference_tier, k, 1),
                Charge::new(&reference_per_ip, k, 1),
            ],
        )
    };
    for i in 0..LIMITED {
        for _ in 0..3 {
            assert!(both(&client(i)) == Answer::Allowed);
            assert!(unflooded(&client(i)) == Answer::Allowed);
        }
        assert!(both(&client(i)) == Answer::Limited);
        assert!(unflooded(&client(i)) == Answer::Limited);
    }
    let mut row = Row {
        policy: if light == 0 {
            "idle keys only (reference)"
        } else {
            "forget keys used once"
        },
        addresses: addresses.name(),
        max_keys,
        flood_requests: max_keys * 5,
        ..Row::default()
    };
    let mut numbers = Numbers(0x00F1_00D5);
    let mut fresh = LIMITED;
    let started = Instant::now();
    for i in 0..row.flood_requests {
        if both(&addresses.flood(&mut numbers)) == Answer::Full {
            row.flood_full += 1;
        }
        if i % 1_000 == 0 {
            fresh += 1;
        }
        if i % 1_000 == 0 || i % 1_000 == 500 {
            row.fresh_requests += 1;
            if both(&client(fresh)) == Answer::Full {
                row.fresh_full += 1;
            }
        }
        if i % 100_000 == 99_999 {
            for l in 0..LIMITED {
                row.limited_probes += 1;
                let expected = unflooded(&client(l));
                if both(&client(l)) == Answer::Allowed && expected != Answer::Allowed {
                    row.limited_reset += 1;
                }
            }
        }
        row.most_keys = row.most_keys.max(store.len());
        clock.advance(Duration::from_micros(10));
    }
    row.seconds = started.elapsed().as_secs_f64();
    row.forgotten = store.forgotten_under_pressure();
    row.peak_rss_growth = rss().1.saturating_sub(before);
    drop(store);
    row
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    format!("machine: {cpus} CPUs (nproc), model: {model}")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let max_keys = if bench {
        DEFAULT_MAX_KEYS
    } else {
        SMOKE_MAX_KEYS
    };
    println!("# tollgate: a flood of new keys, max_keys {max_keys}\n");
    println!("{}\n", machine());
    println!(
        "| policy | flood addresses | flood requests (keys) | fresh clients' requests refused for room \
         | limited clients let through beyond their refill | most keys held | keys forgotten for room \
         | peak RSS growth (per max key) | ns per flood request (median of 3) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for addresses in [Addresses::V4, Addresses::V6Prefixes] {
        for light in [tollgate::store::DEFAULT_LIGHT_USE, 0] {
            // Three passes: the counts repeat exactly (a manual clock); the
            // time is the median pass's.
            let mut passes: Vec<Row> = (0..3).map(|_| run(max_keys, light, addresses)).collect();
            for p in &passes[1..] {
                assert_eq!(
                    (p.fresh_full, p.limited_reset, p.forgotten, p.most_keys),
                    (
                        passes[0].fresh_full,
                        passes[0].limited_reset,
                        passes[0].forgotten,
                        passes[0].most_keys
                    )
                );
            }
            passes.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let r = passes.swap_remove(1);
            println!(
                "| {} | {} | {} ({}) | {} of {} ({:.2}%) | {} of {} | {} | {} | {:.1} MiB ({:.0} B) | {:.0} |",
                r.policy,
                r.addresses,
                r.flood_requests,
                2 * r.flood_requests,
                r.fresh_full,
                r.fresh_requests,
                100.0 * r.fresh_full as f64 / r.fresh_requests as f64,
                r.limited_reset,
                r.limited_probes,
                r.most_keys,
                r.forgotten,
                r.peak_rss_growth as f64 / (1024.0 * 1024.0),
                r.peak_rss_growth as f64 / r.max_keys as f64,
                1e9 * r.seconds / r.flood_requests as f64,
            );
            rows.push(r);
        }
    }
    // The goals, checked here too so a regression shows as a failed run.
    for r in rows
        .iter()
        .filter(|r| r.policy != "idle keys only (reference)")
    {
        assert!(r.fresh_full * 100 <= r.fresh_requests, "{r:?}");
        assert_eq!(r.limited_reset, 0, "{r:?}");
        assert!(r.most_keys <= r.max_keys, "{r:?}");
    }
    println!(
        "\nEach flood request is one check of two limits on a new address; \
         \"ns per flood request\" includes the sweeps it ran."
    );
}
