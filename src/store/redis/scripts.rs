//! The Lua scripts a check runs, and which one runs it.
//!
//! Every script starts with `prelude.lua` (Redis's clock and the helpers
//! every script shares), then, for the checks, `deadline.lua` (a charging
//! check's deadline, and the mode); those with the sliding window's
//! weighting follow with `weights.lua`; the lean one-charge scripts end
//! with `answer.lua`.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::connection::Backend;
use super::deadline::Deadlines;
use super::reply::RedisTime;
use crate::error::StoreError;

pub(super) const GCRA: &str = "g";
/// A GCRA with a queue (delay mode).
pub(super) const QUEUED_GCRA: &str = "q";
pub(super) const FIXED_WINDOW: &str = "f";
pub(super) const SLIDING_WINDOW: &str = "s";
pub(super) const SLIDING_LOG: &str = "l";
pub(super) const CONCURRENCY: &str = "c";

pub(super) static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("weights.lua"),
        include_str!("check.lua")
    ))
});
/// One GCRA charge: the common check, without `check.lua`'s machinery for
/// several charges (the same answers, for about 60% of the Redis time).
/// Sent and answering only the figures it needs: see [`Lean`].
static GCRA_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("gcra.lua"),
        include_str!("answer.lua")
    ))
});
/// One queued GCRA charge (delay mode), as [`GCRA_ONE`].
static QUEUED_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("queued.lua"),
        include_str!("answer.lua")
    ))
});
/// One fixed-window charge, as [`GCRA_ONE`].
static FIXED_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("fixed.lua"),
        include_str!("answer.lua")
    ))
});

/// One sliding-window-counter charge, as [`GCRA_ONE`].
static SLIDING_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("weights.lua"),
        include_str!("sliding.lua"),
        include_str!("answer.lua")
    ))
});

/// A one-charge check's own script: which one, which of `check.lua`'s
/// arguments it is sent, and the limit it leaves out of its answer.
struct Lean {
    script: &'static Script,
    /// Positions in `check.lua`'s arguments: `[mode, nonce, code, cost,
    /// p1, p2, p3, p4]`.
    sent: &'static [usize],
    /// The position of the limit, which the answer leaves out.
    limit: usize,
}

/// GCRA: mode, cost, interval, capacity, burst.
const GCRA_SENT: [usize; 5] = [0, 3, 4, 5, 7];
/// Queued GCRA: mode, cost, interval, burst, max_delay.
const QUEUED_SENT: [usize; 5] = [0, 3, 4, 6, 7];
/// Fixed and sliding windows: mode, cost, period, limit.
const WINDOW_SENT: [usize; 4] = [0, 3, 4, 5];

/// The lean script of a check with `check.lua`'s arguments `args`: one
/// GCRA, fixed-window or sliding-window charge; `None` for anything else,
/// and for a part of a cluster check charged for a later instant (its
/// nonce carries the wait: only `check.lua` reads it).
fn lean(args: &[String]) -> Option<Lean> {
    let [_, nonce, code, _, _, _, _, _] = args else {
        return None;
    };
    if nonce.contains('/') {
        return None;
    }
    let (script, sent, limit): (&'static Script, &'static [usize], usize) = match code.as_str() {
        GCRA => (&GCRA_ONE, &GCRA_SENT, 6),
        QUEUED_GCRA => (&QUEUED_ONE, &QUEUED_SENT, 5),
        FIXED_WINDOW => (&FIXED_ONE, &WINDOW_SENT, 5),
        SLIDING_WINDOW => (&SLIDING_ONE, &WINDOW_SENT, 5),
        _ => return None,
    };
    Some(Lean {
        script,
        sent,
        limit,
    })
}

impl Lean {
    /// Reads a lean answer, `{allowed, remaining, window, retry}` and in
    /// mode "2" the `TIME` it used, as `check.lua`'s answer for one charge:
    /// `{allowed, allowed, limit, remaining, window, retry[, secs, micros]}`.
    /// `None` for any other length.
    fn widen(limit: i64, reply: &[i64]) -> Option<Vec<i64>> {
        if !matches!(reply.len(), 4 | 6) {
            return None;
        }
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend([reply[0], reply[0], limit]);
        out.extend_from_slice(&reply[1..]);
        Some(out)
    }

    /// The limit among `check.lua`'s arguments.
    fn limit_of(&self, args: &[String]) -> Option<i64> {
        args.get(self.limit)?.parse().ok()
    }
}

/// Which of the charging scripts a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Run {
    /// A check, with `check.lua`'s keys and arguments: one GCRA,
    /// fixed-window or sliding-window charge runs its lean script instead,
    /// sent only the arguments it reads, and is answered as `check.lua`.
    Check,
    /// `lease.lua`, whose first argument is left for the deadline.
    Lease,
}

/// Runs `which` with `keys` and `args`.
///
/// A charging call (a check in mode "2", any lease) is sent its deadline
/// (see [`deadline`](super::deadline)) in its first argument, and a
/// charging check's answer's `TIME` feeds the estimate; a script that
/// started past its deadline charged nothing and is answered
/// [`StoreError::Timeout`].
pub(super) async fn run(
    backend: &Backend,
    deadlines: &Deadlines,
    which: Run,
    keys: Vec<String>,
    mut args: Vec<String>,
    timeout: Duration,
) -> Result<Vec<i64>, StoreError> {
    let malformed = || StoreError::Unavailable("unexpected answer from the Redis script".into());
    let charging = which == Run::Lease || args.first().is_some_and(|mode| mode == "2");
    let sent = deadlines.now();
    if let (true, Some(mode)) = (charging, args.first_mut()) {
        *mode = deadlines.mode(sent, timeout);
    }
    let lean = match which {
        Run::Check => lean(&args),
        Run::Lease => None,
    };
    let (reply, limit) = match (which, lean) {
        (Run::Lease, _) => (backend.invoke(&LEASE, keys, args, timeout).await?, None),
        (Run::Check, None) => (backend.invoke(&CHECK, keys, args, timeout).await?, None),
        (Run::Check, Some(lean)) => {
            let limit = lean.limit_of(&args).ok_or_else(malformed)?;
            // Moved out, not copied: the arguments are not needed again.
            let sent = lean
                .sent
                .iter()
                .map(|&i| std::mem::take(&mut args[i]))
                .collect();
            let reply: Vec<i64> = backend.invoke(lean.script, keys, sent, timeout).await?;
            (reply, Some(limit))
        }
    };
    // A late script answers {-1, secs, micros}; a charging check ends with
    // the TIME it used.
    let late = matches!(reply[..], [LATE, _, _]);
    if late || (charging && which == Run::Check) {
        if let [.., secs, micros] = reply[..] {
            if let Some(time) = RedisTime::read(secs, micros) {
                deadlines.observe(sent, time);
            }
        }
    }
    if late {
        return Err(StoreError::Timeout(timeout));
    }
    match limit {
        None => Ok(reply),
        Some(limit) => Lean::widen(limit, &reply).ok_or_else(malformed),
    }
}

/// The first figure of a late script's answer, `{-1, secs, micros}`.
const LATE: i64 = -1;

/// Leases of tokens for leased mode: each ask granted (and charged) on its
/// own; see `lease.lua`.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("deadline.lua"),
        include_str!("lease.lua")
    ))
});

pub(super) static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("release.lua")));

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments of a check: mode, nonce, then six per charge.
    fn args(codes: &[&str]) -> Vec<String> {
        let mut out = vec!["2".to_owned(), "nonce".to_owned()];
        for code in codes {
            out.push((*code).to_owned());
            out.extend(["1", "1000", "10", "0", "0"].map(str::to_owned));
        }
        out
    }

    fn runs(codes: &[&str], script: &Script) -> bool {
        let args = args(codes);
        let chosen = lean(&args).map_or(&*CHECK, |l| l.script);
        std::ptr::eq(chosen, script)
    }

    /// The Redis tests compare each algorithm alone and beside another
    /// charge to prove the lean scripts answer as `check.lua` does; that
    /// holds only if one charge really runs its lean script.
    #[test]
    fn one_charge_runs_its_lean_script_and_anything_else_check_lua() {
        assert!(runs(&[GCRA], &GCRA_ONE));
        assert!(runs(&[FIXED_WINDOW], &FIXED_ONE));
        assert!(runs(&[SLIDING_WINDOW], &SLIDING_ONE));
        assert!(runs(&[SLIDING_LOG], &CHECK));
        assert!(runs(&[CONCURRENCY], &CHECK));
        assert!(runs(&[GCRA, GCRA], &CHECK));
        assert!(runs(&[FIXED_WINDOW, CONCURRENCY], &CHECK));
        assert!(runs(&[QUEUED_GCRA], &QUEUED_ONE));
        assert_ne!(GCRA_ONE.get_hash(), CHECK.get_hash());
        // A cluster part charged for a later instant carries its wait in
        // the nonce, which only check.lua reads.
        let floored: Vec<String> = ["2", "n.0/200000000", "g", "1", "100", "1000", "10", "10"]
            .map(str::to_owned)
            .into();
        assert!(lean(&floored).is_none());
    }

    #[test]
    fn lean_answers_read_as_check_lua_answers_and_nothing_else_does() {
        // GCRA: limit at position 6 of [mode, nonce, g, cost, T, cap, limit, burst].
        let gcra: Vec<String> = ["2", "n", "g", "1", "100", "1000", "10", "10"]
            .map(str::to_owned)
            .into();
        let l = lean(&gcra).expect("lean");
        assert_eq!(
            l.sent.iter().map(|&i| gcra[i].as_str()).collect::<Vec<_>>(),
            ["2", "1", "100", "1000", "10"]
        );
        assert_eq!(
            Lean::widen(
                l.limit_of(&gcra).expect("limit"),
                &[1, 9, 100, 0, 1_700_000_000, 5]
            ),
            Some(vec![1, 1, 10, 9, 100, 0, 1_700_000_000, 5])
        );
        assert_eq!(
            Lean::widen(l.limit_of(&gcra).expect("limit"), &[0, 0, 50, 7]),
            Some(vec![0, 0, 10, 0, 50, 7])
        );
        for garbled in [
            &[][..],
            &[1],
            &[1, 2, 3],
            &[1, 2, 3, 4, 5],
            &[1, 2, 3, 4, 5, 6, 7],
        ] {
            assert_eq!(
                Lean::widen(l.limit_of(&gcra).expect("limit"), garbled),
                None,
                "{garbled:?}"
            );
        }
        // Windows: limit at position 5 of [mode, nonce, f, cost, period, limit, 0, 0].
        let fixed: Vec<String> = ["0", "n", "f", "2", "1000", "30", "0", "0"]
            .map(str::to_owned)
            .into();
        let l = lean(&fixed).expect("lean");
        assert_eq!(
            l.sent
                .iter()
                .map(|&i| fixed[i].as_str())
                .collect::<Vec<_>>(),
            ["0", "2", "1000", "30"]
        );
        assert_eq!(
            Lean::widen(l.limit_of(&fixed).expect("limit"), &[1, 28, 5, 0]),
            Some(vec![1, 1, 30, 28, 5, 0])
        );
    }
}
