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
