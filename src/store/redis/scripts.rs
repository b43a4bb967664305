//! The Lua scripts a check runs, and which one runs it.
//!
//! Every script starts with `prelude.lua` (Redis's clock and the helpers
//! every script shares); those with the sliding window's weighting follow
//! it with `weights.lua`.

use std::sync::LazyLock;

use redis::Script;

pub(super) const GCRA: &str = "g";
pub(super) const FIXED_WINDOW: &str = "f";
pub(super) const SLIDING_WINDOW: &str = "s";
pub(super) const SLIDING_LOG: &str = "l";
pub(super) const CONCURRENCY: &str = "c";

pub(super) static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("weights.lua"),
        include_str!("check.lua")
    ))
});
/// One GCRA charge: the common check, without `check.lua`'s machinery for
/// several charges (same arguments and answer, about half the Redis CPU).
static GCRA_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("gcra.lua")
    ))
});
/// One fixed-window charge, as [`GCRA_ONE`].
static FIXED_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("fixed.lua")
    ))
});

/// One sliding-window-counter charge, as [`GCRA_ONE`].
static SLIDING_ONE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("prelude.lua"),
        include_str!("weights.lua"),
        include_str!("sliding.lua")
    ))
});

/// The script a check with these arguments runs: one GCRA, fixed-window or
/// sliding-window charge has its own lean script, anything else
/// `check.lua`.
pub(super) fn script_for(args: &[String]) -> &'static Script {
    match args {
        [_, _, code, _, _, _, _, _] if code == GCRA => &GCRA_ONE,
        [_, _, code, _, _, _, _, _] if code == FIXED_WINDOW => &FIXED_ONE,
        [_, _, code, _, _, _, _, _] if code == SLIDING_WINDOW => &SLIDING_ONE,
        _ => &CHECK,
    }
}

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
        std::ptr::eq(script_for(&args(codes)), script)
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
        assert_ne!(GCRA_ONE.get_hash(), CHECK.get_hash());
    }
}
