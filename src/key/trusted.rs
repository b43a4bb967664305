//! [`TrustedProxies`]: the proxies whose forwarding headers are believed.

use std::net::{AddrParseError, IpAddr};

use ipnet::IpNet;

/// The proxies whose forwarding headers are believed: a list of networks.
///
/// ```
/// use tollgate::key::TrustedProxies;
///
/// let proxies = TrustedProxies::new(["10.0.0.0/8", "2001:db8::1"]).unwrap();
/// assert!(proxies.contains("10.1.2.3".parse().unwrap()));
/// assert!(proxies.contains("2001:db8::1".parse().unwrap()));
/// assert!(!proxies.contains("192.0.2.1".parse().unwrap()));
/// assert!(TrustedProxies::new(["10.0.0.0/33"]).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts the listed networks, each in CIDR notation (`10.0.0.0/8`,
    /// `2001:db8::/32`) or a bare address, which means that one address
    /// (/32 or /128). Surrounding whitespace is ignored; host bits under the
    /// prefix are ignored too. IPv4-mapped IPv6 entries (`::ffff:10.0.0.1`)
    /// are stored as IPv4.
    ///
    /// Fails on the first entry that is not an address or whose prefix
    /// length is not a number up to 32 (IPv4) or 128 (IPv6).
    pub fn new<I, S>(cidrs: I) -> Result<Self, TrustedProxiesError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = cidrs
            .into_iter()
            .map(|entry| parse_net(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets })
    }

    /// Trusts no proxy: forwarding headers are never read.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether `addr` is in one of the trusted networks. IPv4-mapped IPv6
    /// addresses are checked as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.nets.iter().any(|net| net.contains(&addr))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn parse_net(entry: &str) -> Result<IpNet, TrustedProxiesError> {
    let trimmed = entry.trim();
    let (addr, prefix) = match trimmed.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (trimmed, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|source| TrustedProxiesError::Address {
            entry: entry.to_owned(),
            source,
        })?;
    let bad_prefix = || TrustedProxiesError::PrefixLength {
        entry: entry.to_owned(),
    };
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().map_err(|_| bad_prefix())?
        }
        Some(_) => return Err(bad_prefix()),
        None => width,
    };
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
            _ => (addr, prefix),
        },
        IpAddr::V4(_) => (addr, prefix),
    };
    IpNet::new(addr, prefix)
        .map(|net| net.trunc())
        .map_err(|_| bad_prefix())
}

/// Why a [`TrustedProxies`] list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustedProxiesError {
    /// The entry is not an IP address or CIDR.
    #[error("trusted proxy {entry:?} is not an IP address or CIDR")]
    Address {
        /// The entry as given.
        entry: String,
        /// Why the address part did not parse.
        #[source]
        source: AddrParseError,
    },
    /// The prefix length is not a number, or longer than the address
    /// (32 bits for IPv4, 128 for IPv6).
    #[error(
        "trusted proxy {entry:?} has an invalid prefix length (at most 32 for IPv4, 128 for IPv6)"
    )]
    PrefixLength {
        /// The entry as given.
        entry: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn trusted_proxies_parse_cidrs_and_bare_addresses() {
        let p = TrustedProxies::new([" 10.0.0.0/8 ", "192.0.2.7", "2001:db8::/32", "::1"])
            .expect("valid list");
        assert!(!p.is_empty());
        assert!(p.contains(ip("10.200.0.1")));
        assert!(p.contains(ip("192.0.2.7")));
        assert!(!p.contains(ip("192.0.2.8")));
        assert!(p.contains(ip("2001:db8:1::5")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("::2")));
        assert!(!p.contains(ip("11.0.0.1")));
    }

    #[test]
    fn trusted_proxies_accept_owned_strings() {
        let list = vec![String::from("10.0.0.0/8")];
        let p = TrustedProxies::new(&list).expect("valid list");
        assert!(p.contains(ip("10.0.0.1")));
    }

    #[test]
    fn trusted_proxies_reject_bad_entries_naming_them() {
        let err = TrustedProxies::new(["10.0.0.0/8", "proxy.local"]).expect_err("bad address");
        assert!(
            matches!(&err, TrustedProxiesError::Address { entry, .. } if entry == "proxy.local")
        );
        assert!(err.to_string().contains("proxy.local"));
        assert!(std::error::Error::source(&err).is_some());

        for bad in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/x",
            "10.0.0.0/",
            "10.0.0.0/+8",
        ] {
            let err = TrustedProxies::new([bad]).expect_err(bad);
            assert_eq!(
                err,
                TrustedProxiesError::PrefixLength {
                    entry: bad.to_owned()
                }
            );
        }
        assert!(TrustedProxies::new([""]).is_err());
    }

    #[test]
    fn none_trusts_nobody() {
        let p = TrustedProxies::none();
        assert!(p.is_empty());
        assert!(!p.contains(ip("10.0.0.1")));
        assert!(!p.contains(ip("::")));
    }

    #[test]
    fn ipv4_mapped_addresses_and_entries_match_ipv4() {
        let p = TrustedProxies::new(["10.0.0.0/8", "::ffff:192.0.2.0/120"]).expect("valid list");
        assert!(p.contains(ip("::ffff:10.1.1.1")));
        assert!(p.contains(ip("192.0.2.99")));
        assert!(!p.contains(ip("192.0.3.1")));
    }
}
