//! Grouping of client addresses by network prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How many leading bits of an address make up its key.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are turned into IPv4 first,
/// so a dual-stack listener keys a client the same way as an IPv4 one. The
/// prefixes are clamped to the address width (32 and 128) when set; `0`
/// groups every address of that family into one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpGrouping {
    /// Prefix length kept of IPv4 addresses, at most 32.
    pub(crate) v4: u8,
    /// Prefix length kept of IPv6 addresses, at most 128.
    pub(crate) v6: u8,
}

impl Default for IpGrouping {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl IpGrouping {
    /// Every IPv4 address its own key; IPv6 grouped by /64, the block one
    /// subscriber usually gets.
    pub(crate) const DEFAULT: Self = Self { v4: 32, v6: 64 };

    /// Sets the IPv4 prefix, clamped to 32.
    #[must_use]
    pub(crate) fn with_v4(self, prefix: u8) -> Self {
        Self {
            v4: prefix.min(32),
            ..self
        }
    }

    /// Sets the IPv6 prefix, clamped to 128.
    #[must_use]
    pub(crate) fn with_v6(self, prefix: u8) -> Self {
        Self {
            v6: prefix.min(128),
            ..self
        }
    }

    /// Canonicalises `addr` and keeps only its prefix bits.
    pub(crate) fn apply(&self, addr: IpAddr) -> IpAddr {
        match addr.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & mask_u32(self.v4);
                IpAddr::V4(Ipv4Addr::from(bits))
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & mask_u128(self.v6);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        }
    }
}

fn mask_u32(prefix: u8) -> u32 {
    let keep = u32::from(prefix.min(32));
    u32::MAX.checked_shl(32 - keep).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    let keep = u32::from(prefix.min(128));
    u128::MAX.checked_shl(128 - keep).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn default_keeps_ipv4_whole_and_groups_ipv6_by_64() {
        let g = IpGrouping::default();
        assert_eq!(g.apply(ip("192.0.2.77")), ip("192.0.2.77"));
        assert_eq!(g.apply(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn ipv4_mapped_becomes_ipv4_before_masking() {
        let g = IpGrouping::default().with_v4(24);
        assert_eq!(g.apply(ip("::ffff:192.0.2.77")), ip("192.0.2.0"));
    }

    #[test]
    fn prefixes_are_clamped() {
        let g = IpGrouping::default().with_v4(200).with_v6(200);
        assert_eq!(g, IpGrouping { v4: 32, v6: 128 });
        assert_eq!(g.apply(ip("2001:db8::1")), ip("2001:db8::1"));
    }

    #[test]
    fn zero_prefix_groups_everything() {
        let g = IpGrouping::default().with_v4(0).with_v6(0);
        assert_eq!(g.apply(ip("198.51.100.1")), ip("0.0.0.0"));
        assert_eq!(g.apply(ip("2001:db8::1")), ip("::"));
    }

    #[test]
    fn odd_prefixes_mask_partial_octets() {
        let g = IpGrouping::default().with_v4(20).with_v6(52);
        assert_eq!(g.apply(ip("192.0.255.255")), ip("192.0.240.0"));
        assert_eq!(
            g.apply(ip("2001:db8:abcd:ffff::1")),
            ip("2001:db8:abcd:f000::")
        );
    }

    #[test]
    fn unclamped_fields_do_not_panic() {
        let g = IpGrouping { v4: 255, v6: 255 };
        assert_eq!(g.apply(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(g.apply(ip("2001:db8::1")), ip("2001:db8::1"));
    }
}
