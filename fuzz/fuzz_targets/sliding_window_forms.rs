//! The 64-bit sliding window counter answers exactly as the 128-bit one,
//! for any quota that fits 64 bits and any sequence of requests, refunds,
//! peeks and clock moves, up to the end of the clock.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::algorithm::{Algorithm, PackedSlidingWindow, SlidingWindow};
use tollgate::quota::Quota;

fn word(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    for (i, b) in data.iter().skip(at).take(8).enumerate() {
        bytes[i] = *b;
    }
    u64::from_le_bytes(bytes)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let count = 1 + word(data, 0) % 2_000_000;
    let period_ms = 1 + word(data, 8) % 86_400_000;
    let Ok(quota) = Quota::new(count, std::time::Duration::from_millis(period_ms)) else {
        return;
    };
    let Some(packed) = PackedSlidingWindow::new(&quota) else {
        return;
    };
    let wide = SlidingWindow::new(&quota);
    let (p, w) = (packed.new_state(), wide.new_state());
    let mut now = word(data, 16);
    for op in data[24..].chunks(4) {
        let step = u64::from(u16::from_le_bytes([op[0], *op.get(1).unwrap_or(&0)]));
        let cost = 1 + u64::from(*op.get(2).unwrap_or(&0)) % (count + 1);
        now = now.saturating_add(step * (quota.period_nanos() / 256).max(1));
        match op.get(3).copied().unwrap_or(0) % 4 {
            0 => assert_eq!(packed.peek(&p, now, cost), wide.peek(&w, now, cost)),
            1 => {
                packed.refund(&p, now, cost);
                wide.refund(&w, now, cost);
            }
            _ => assert_eq!(packed.acquire(&p, now, cost), wide.acquire(&w, now, cost)),
        }
        assert_eq!(packed.is_idle(&p, now), wide.is_idle(&w, now));
    }
});
