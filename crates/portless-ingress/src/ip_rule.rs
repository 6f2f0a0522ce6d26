//! `originRequest.ipRules`: which destinations a `socks-proxy` (or bastion) service may dial.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One `ipRules` entry: destinations in `prefix` (and, if `ports` is not empty, on one of
/// those ports) are allowed or denied. Rules are tried in order; the first that matches wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRule {
    /// The address range.
    pub prefix: IpPrefix,
    /// The ports the rule covers; empty means every port.
    pub ports: Vec<u16>,
    /// Allow (`true`) or deny (`false`) what matches.
    pub allow: bool,
}

impl IpRule {
    /// Whether this rule covers a connection to `ip:port`.
    pub fn matches(&self, ip: IpAddr, port: u16) -> bool {
        self.prefix.contains(ip) && (self.ports.is_empty() || self.ports.contains(&port))
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`); a bare address is a
/// single-host range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    network: IpAddr,
    len: u8,
}

/// Why a prefix was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpPrefixError {
    /// The part before `/` is not an IP address.
    #[error("'{0}' is not an IP address")]
    BadAddress(String),
    /// The length is not a number within the address family's bits.
    #[error("'{0}' is not a valid prefix length")]
    BadLength(String),
}

impl IpPrefix {
    /// The first address of the range.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether the prefix is `/0`, i.e. covers every address of its family.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `ip` is in the range (an IPv4 address is never in an IPv6 range).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u128::from(u32::from(ip)), self.len, 32) == u128::from(u32::from(net))
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(ip), self.len, 128) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// Keeps the top `len` of the low `bits` bits of `value` (the network part), clearing the rest.
fn mask(value: u128, len: u8, bits: u32) -> u128 {
    let len = u32::from(len).min(bits);
    if len == 0 {
        return 0;
    }
    let host_bits = bits - len;
    (value >> host_bits) << host_bits
}

impl FromStr for IpPrefix {
    type Err = IpPrefixError;

    fn from_str(s: &str) -> Result<IpPrefix, IpPrefixError> {
        let s = s.trim();
        let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| IpPrefixError::BadAddress(addr.to_owned()))?;
        let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => bits,
            Some(len) => len
                .parse()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| IpPrefixError::BadLength(len.to_owned()))?,
        };
        // Store the network address so equal ranges compare equal (`10.1.2.3/8` = `10.0.0.0/8`).
        let network = match addr {
            IpAddr::V4(v4) => {
                let masked = mask(u128::from(u32::from(v4)), len, 32);
                IpAddr::from(u32::try_from(masked).unwrap_or(0).to_be_bytes())
            }
            IpAddr::V6(v6) => IpAddr::from(mask(u128::from(v6), len, 128).to_be_bytes()),
        };
        Ok(IpPrefix { network, len })
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    #[test]
    fn contains_by_prefix_length() {
        let p = prefix("10.0.0.0/8");
        assert!(p.contains("10.255.1.2".parse().unwrap()));
        assert!(!p.contains("11.0.0.1".parse().unwrap()));
        assert!(!p.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(prefix("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(prefix("192.168.1.7").contains("192.168.1.7".parse().unwrap()));
        assert!(!prefix("192.168.1.7").contains("192.168.1.8".parse().unwrap()));
        assert!(prefix("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!prefix("fd00::/8").contains("fe80::1".parse().unwrap()));
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(prefix("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(prefix("10.1.2.3/8"), prefix("10.0.0.0/8"));
    }

    #[test]
    fn refuses_bad_prefixes() {
        assert!(matches!(
            "10.0.0.0/33".parse::<IpPrefix>(),
            Err(IpPrefixError::BadLength(_))
        ));
        assert!(matches!(
            "nas/24".parse::<IpPrefix>(),
            Err(IpPrefixError::BadAddress(_))
        ));
    }

    #[test]
    fn rules_check_ports() {
        let rule = IpRule {
            prefix: prefix("10.0.0.0/8"),
            ports: vec![80, 443],
            allow: true,
        };
        assert!(rule.matches("10.0.0.1".parse().unwrap(), 443));
        assert!(!rule.matches("10.0.0.1".parse().unwrap(), 22));
    }
}
