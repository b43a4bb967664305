//! The argument and answer layout of the store's scripts, in one place:
//! what `check.lua` (and the lean scripts, which the store reads as it),
//! `rollback.lua` and `lease.lua` are sent and answer. Each script's header
//! comment says the same in Lua's terms.
//!
//! ```text
//! check.lua     ARGV  mode, nonce, then per charge: algorithm, cost, p1, p2, p3, p4
//!               reply all_allowed, then per charge: allowed, limit, remaining,
//!                     window_ns, retry_after_ns; in mode "2" then secs, micros
//! rollback.lua  ARGV  secs, micros, nonce, then the charges as check.lua had them
//! lease.lua     ARGV  mode, then per ask: algorithm, need, want, p1, p2, p3, p4
//!               reply per ask: granted, limit, remaining, window_ns, retry_after_ns
//! ```

/// `check.lua`'s arguments before the charges: mode, nonce.
pub(super) const CHECK_HEAD: usize = 2;

/// Arguments per charge: algorithm, cost, four parameters.
pub(super) const CHARGE_ARGS: usize = 6;

/// Figures per charge in a check's answer: allowed, limit, remaining,
/// window, retry-after.
pub(super) const OUTCOME_FIGURES: usize = 5;

/// `rollback.lua`'s arguments before the charges: the `TIME`'s seconds and
/// microseconds, the nonce.
pub(super) const ROLLBACK_HEAD: usize = 3;

/// `lease.lua`'s arguments before the asks: the mode (its deadline).
pub(super) const LEASE_HEAD: usize = 1;

/// Arguments per ask of a lease: algorithm, need, want, four parameters.
pub(super) const ASK_ARGS: usize = 7;

/// Figures per ask in a lease's answer: granted, limit, remaining, window,
/// retry-after.
pub(super) const GRANT_FIGURES: usize = 5;

/// How many arguments `check.lua` gets for `charges` charges.
pub(super) const fn check_args(charges: usize) -> usize {
    CHECK_HEAD + CHARGE_ARGS * charges
}

/// The arguments of charge `i` among `check.lua`'s arguments `args`.
pub(super) fn charge_args(args: &[String], i: usize) -> Option<&[String]> {
    let at = CHECK_HEAD + CHARGE_ARGS * i;
    args.get(at..at + CHARGE_ARGS)
}

/// The cost of charge `i` among `check.lua`'s arguments `args`.
pub(super) fn charge_cost(args: &[String], i: usize) -> Option<&String> {
    charge_args(args, i).map(|charge| &charge[1])
}

/// How many figures a check of `charges` charges answers; a charging one
/// (mode "2") ends with the `TIME` it used.
pub(super) const fn check_reply_len(charges: usize, charging: bool) -> usize {
    1 + OUTCOME_FIGURES * charges + if charging { 2 } else { 0 }
}

/// The figures of charge `i` in a check's answer `reply`.
pub(super) fn outcome_figures(reply: &[i64], i: usize) -> Option<&[i64]> {
    let at = 1 + OUTCOME_FIGURES * i;
    reply.get(at..at + OUTCOME_FIGURES)
}

/// The `TIME` figures (seconds, microseconds) of a charging check's answer
/// for `charges` charges.
pub(super) fn check_time(reply: &[i64], charges: usize) -> Option<(i64, i64)> {
    let at = 1 + OUTCOME_FIGURES * charges;
    Some((*reply.get(at)?, *reply.get(at + 1)?))
}

/// How many arguments `rollback.lua` gets for `charges` charges.
pub(super) const fn rollback_args(charges: usize) -> usize {
    ROLLBACK_HEAD + CHARGE_ARGS * charges
}

/// How many arguments `lease.lua` gets for `asks` asks.
pub(super) const fn lease_args(asks: usize) -> usize {
    LEASE_HEAD + ASK_ARGS * asks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn charges_and_figures_are_found_where_the_scripts_put_them() {
        let args = strings(&[
            "2", "n", "g", "3", "10", "20", "2", "2", "f", "4", "1000", "5", "0", "0",
        ]);
        assert_eq!(args.len(), check_args(2));
        assert_eq!(charge_args(&args, 1).map(<[String]>::len), Some(6));
        assert_eq!(charge_args(&args, 1).map(|c| c[0].as_str()), Some("f"));
        assert_eq!(charge_cost(&args, 0).map(String::as_str), Some("3"));
        assert_eq!(charge_cost(&args, 1).map(String::as_str), Some("4"));
        assert_eq!(charge_args(&args, 2), None);

        let reply = [1, 1, 2, 1, 9, 0, 1, 5, 4, 7, 0, 1_700_000_000, 42];
        assert_eq!(reply.len(), check_reply_len(2, true));
        assert_eq!(check_reply_len(2, false), reply.len() - 2);
        assert_eq!(outcome_figures(&reply, 0), Some(&[1, 2, 1, 9, 0][..]));
        assert_eq!(outcome_figures(&reply, 1), Some(&[1, 5, 4, 7, 0][..]));
        assert_eq!(check_time(&reply, 2), Some((1_700_000_000, 42)));
        assert_eq!(check_time(&reply[..11], 2), None);
        assert_eq!(rollback_args(2), 15);
        assert_eq!(lease_args(2), 15);
    }
}
