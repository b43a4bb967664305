//! Division by a divisor fixed at construction, without a `div` instruction.
//!
//! A hardware 64-bit division costs tens of cycles, as much as the rest of
//! a GCRA check; the algorithms divide by the same emission interval or
//! window on every request. `Divisor` multiplies by a reciprocal instead and
//! corrects the one-off estimate, so answers are exactly those of `/`.

/// A divisor with its reciprocal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Divisor {
    d: u64,
    /// `floor((2^64 - 1) / d)`.
    m: u64,
}

impl Divisor {
    /// `d` must be at least 1 (0 is taken as 1).
    pub(crate) const fn new(d: u64) -> Self {
        let d = if d == 0 { 1 } else { d };
        Self { d, m: u64::MAX / d }
    }

    /// `x / d`, exactly.
    #[inline]
    pub(crate) fn div(&self, x: u64) -> u64 {
        self.div_rem(x).0
    }

    /// `(x / d, x % d)`, exactly, for the price of one division by
    /// multiplication.
    #[inline]
    pub(crate) fn div_rem(&self, x: u64) -> (u64, u64) {
        // q is floor(x/d) or one less: x·m/2^64 = (x/d)(1 - (1 + r)/2^64)
        // with r < d, and the error term is below x/2^64 < 1.
        let q = ((u128::from(x) * u128::from(self.m)) >> 64) as u64;
        let r = x - q * self.d;
        let over = u64::from(r >= self.d);
        (q + over, r - over * self.d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edges() {
        for d in [
            1,
            2,
            3,
            7,
            1_000_000_000,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let div = Divisor::new(d);
            for x in [0, 1, d - 1, d, d.saturating_add(1), u64::MAX - 1, u64::MAX] {
                assert_eq!(div.div(x), x / d, "{x} / {d}");
                assert_eq!(div.div_rem(x), (x / d, x % d), "{x} % {d}");
            }
        }
        assert_eq!(Divisor::new(0).div(5), 5);
    }

    proptest! {
        #[test]
        fn equals_hardware_division(x: u64, d in 1u64..) {
            prop_assert_eq!(Divisor::new(d).div(x), x / d);
            prop_assert_eq!(Divisor::new(d).div_rem(x), (x / d, x % d));
        }

        #[test]
        fn equals_hardware_division_small_divisors(x: u64, d in 1u64..100_000) {
            prop_assert_eq!(Divisor::new(d).div(x), x / d);
        }
    }
}
