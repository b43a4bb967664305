//! An IP address as a table keeps it.

use std::net::IpAddr;

/// An address as the two 64-bit halves of its IPv6 form (an IPv4 address
/// mapped into IPv6, so both forms of one client are one key).
///
/// Two integers, not 16 bytes: the key is built, hashed and compared in
/// registers. Bytes written to the stack and read back as words cost a
/// stalled load or two per check, which made an IP check slower than an API
/// key's. Nor is it a `u128`, whose 16-byte alignment would pad every slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IpKey {
    high: u64,
    low: u64,
}

impl IpKey {
    #[inline]
    pub(crate) fn new(ip: IpAddr) -> Self {
        let bits = match ip {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        Self {
            high: (bits >> 64) as u64,
            low: bits as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn an_ipv4_address_is_its_ipv6_mapped_form() {
        let v4 = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(
            IpKey::new(IpAddr::V4(v4)),
            IpKey::new(IpAddr::V6(v4.to_ipv6_mapped()))
        );
        assert_eq!(
            IpKey::new(IpAddr::V4(v4)),
            IpKey {
                high: 0,
                low: 0x0000_ffff_c000_0201
            }
        );
    }

    #[test]
    fn both_halves_of_an_ipv6_address_count() {
        let a: Ipv6Addr = "2001:db8::1".parse().expect("address");
        let b: Ipv6Addr = "2001:db9::1".parse().expect("address");
        let c: Ipv6Addr = "2001:db8::2".parse().expect("address");
        let key = |ip| IpKey::new(IpAddr::V6(ip));
        assert_ne!(key(a), key(b));
        assert_ne!(key(a), key(c));
        assert_eq!(
            key(a),
            IpKey {
                high: 0x2001_0db8_0000_0000,
                low: 1
            }
        );
    }
}
