//! [`Jitter`]: a cheap pseudo-random sequence, seeded differently in every
//! process, for spreading timers (load shedding's probes, the Redis
//! breaker's reopening) so a fleet's instances drift apart.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// xorshift64* state; never 0. Not for anything that must be unpredictable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// A sequence seeded from this process's random hasher keys.
    pub(crate) fn per_process() -> Self {
        Self(RandomState::new().build_hasher().finish() | 1)
    }

    /// The next number of the sequence.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..=max`.
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        self.next_u64() % max.saturating_add(1).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_never_sticks_at_zero_and_differs_per_seed() {
        let mut j = Jitter::per_process();
        let draws: Vec<u64> = (0..64).map(|_| j.up_to(9)).collect();
        assert!(draws.iter().all(|&d| d <= 9));
        assert!(draws.iter().any(|&d| d != draws[0]), "{draws:?}");
        assert_eq!(Jitter(1).up_to(0), 0);
        assert_ne!(Jitter(1).next_u64(), Jitter(3).next_u64());
        // u64::MAX as a bound does not overflow.
        let _ = Jitter(7).up_to(u64::MAX);
    }
}
