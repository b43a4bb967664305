//! The sliding window's weighting in Lua (`weights.lua`), run by Redis
//! itself: `muldiv` must answer floor(a * b / c) exactly, both where the
//! product fits a double's 53 bits (divided at once) and where it does not
//! (long multiplication), checked against 128-bit integer arithmetic, for
//! results below 2^53 (its contract).

use crate::support::Server;

const SCRIPT: &str = concat!(
    include_str!("../../src/store/redis/prelude.lua"),
    include_str!("../../src/store/redis/weights.lua"),
    "\nlocal a, b, c = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n",
    "return {int(muldiv(a, b, c)), int(offset_for(a, b, c))}\n"
);

fn expected(a: u64, b: u64, c: u64) -> u64 {
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).expect("below 2^64")
}

#[tokio::test]
async fn muldiv_is_exact_below_and_above_two_to_the_53() {
    let server = Server::start();
    let mut raw = server.raw().await;
    let script = redis::Script::new(SCRIPT);
    let cases: [(u64, u64, u64); 10] = [
        (0, 12_345, 7),
        (5, 3_600_000_000, 86_400_000_000),
        // The product just below and just above 2^53.
        (1 << 26, (1 << 27) - 1, 1_000_003),
        (1 << 26, (1 << 27) + 1, 1_000_003),
        // An odd product near 2^55: as a double it is rounded, and so would
        // its quotient be.
        (134_217_729, 268_435_457, 7),
        // Large counts over a day in microseconds: far above 2^53.
        (4_294_967_295, 86_399_999_999, 86_400_000_000),
        (3_000_000_001, 43_200_000_001, 86_400_000_000),
        (4_294_967_295, 999_999_999_999, 1_000_000_000_000),
        (123_456_789, 987_654_321, 1_000_003),
        (1, 1, 3),
    ];
    for (a, b, c) in cases {
        let answer: Vec<String> = script
            .arg(a)
            .arg(b)
            .arg(c)
            .invoke_async(&mut raw)
            .await
            .expect("the script runs");
        let want = expected(a, b, c);
        assert_eq!(answer[0], want.to_string(), "muldiv({a}, {b}, {c})");
        // offset_for(count = a, room = b, period = c): 0 when the room holds
        // the count, else c - floor(b * c / a).
        let offset = if a <= b { 0 } else { c - expected(b, c, a) };
        assert_eq!(answer[1], offset.to_string(), "offset_for({a}, {b}, {c})");
    }
}
