//! What a click keeps of the visitor's IP address.

use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How the visitor's address is recorded. The default, [`IpPolicy::Anonymize`], truncates it
/// before it leaves the request: IPv4 to its /24 (`203.0.113.77` → `203.0.113.0`), IPv6 to its
/// /48; an IPv4-mapped IPv6 address (`::ffff:203.0.113.77`) is treated as the IPv4 address.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum IpPolicy {
    /// IPv4 → /24, IPv6 → /48 (default).
    #[default]
    Anonymize,
    /// The full address.
    Raw,
    /// A keyed hash of the full address: SipHash-2-4 with a 128-bit output (`siphasher` crate),
    /// keyed with the 16-byte secret, over the 16-byte IPv6 form of the address (IPv4 mapped),
    /// rendered as 32 lowercase hex digits. The same visitor gets the same value for as long as
    /// the secret is kept; without the secret the address cannot be recovered by enumeration.
    /// Rotate the secret to unlink old data.
    Hash {
        /// The secret key.
        key: [u8; 16],
    },
    /// No address at all.
    Omit,
}

impl std::fmt::Debug for IpPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpPolicy::Anonymize => f.write_str("Anonymize"),
            IpPolicy::Raw => f.write_str("Raw"),
            IpPolicy::Hash { .. } => f.write_str("Hash { key: <secret> }"),
            IpPolicy::Omit => f.write_str("Omit"),
        }
    }
}

/// The address as a click records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClickIp {
    /// An address (anonymised or raw, as the policy said).
    Addr(IpAddr),
    /// A keyed hash of the address.
    Hashed(u128),
}

impl std::fmt::Display for ClickIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClickIp::Addr(a) => a.fmt(f),
            ClickIp::Hashed(h) => write!(f, "{h:032x}"),
        }
    }
}

/// A string that is not a [`ClickIp`] as its `Display` prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address nor a 32-hex-digit keyed hash: `{0}`")]
pub struct ParseClickIpError(String);

impl std::str::FromStr for ClickIp {
    type Err = ParseClickIpError;

    /// Parses what `Display` prints: an IPv4/IPv6 address, or exactly 32 hex digits (a keyed
    /// hash). The two forms cannot be confused: an IPv6 address always has a `:`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u128::from_str_radix(s, 16)
                .map(ClickIp::Hashed)
                .map_err(|_| ParseClickIpError(s.into()));
        }
        s.parse()
            .map(ClickIp::Addr)
            .map_err(|_| ParseClickIpError(s.chars().take(80).collect()))
    }
}

/// An IPv4-mapped IPv6 address as IPv4; everything else unchanged.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Truncates to /24 (IPv4) or /48 (IPv6).
pub fn anonymize(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

impl IpPolicy {
    /// Applies the policy.
    pub fn apply(&self, ip: IpAddr) -> Option<ClickIp> {
        match self {
            IpPolicy::Anonymize => Some(ClickIp::Addr(anonymize(ip))),
            IpPolicy::Raw => Some(ClickIp::Addr(canonical(ip))),
            IpPolicy::Hash { key } => {
                let mut h = siphasher::sip128::SipHasher24::new_with_key(key);
                let v6 = match canonical(ip) {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                h.write(&v6.octets());
                use siphasher::sip128::Hasher128;
                Some(ClickIp::Hashed(h.finish128().as_u128()))
            }
            IpPolicy::Omit => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn anonymisation() {
        let p = IpPolicy::default();
        assert_eq!(
            p.apply(ip("203.0.113.77")).unwrap().to_string(),
            "203.0.113.0"
        );
        assert_eq!(
            p.apply(ip("2001:db8:abcd:1234:5678::1"))
                .unwrap()
                .to_string(),
            "2001:db8:abcd::"
        );
        assert_eq!(
            p.apply(ip("::ffff:203.0.113.77")).unwrap().to_string(),
            "203.0.113.0"
        );
        assert_eq!(
            IpPolicy::Raw
                .apply(ip("::ffff:203.0.113.77"))
                .unwrap()
                .to_string(),
            "203.0.113.77"
        );
        assert_eq!(IpPolicy::Omit.apply(ip("203.0.113.77")), None);
    }

    #[test]
    fn keyed_hash() {
        let a = IpPolicy::Hash { key: [1; 16] };
        let b = IpPolicy::Hash { key: [2; 16] };
        let h1 = a.apply(ip("203.0.113.77")).unwrap();
        assert_eq!(h1, a.apply(ip("::ffff:203.0.113.77")).unwrap());
        assert_ne!(h1, a.apply(ip("203.0.113.78")).unwrap());
        assert_ne!(h1, b.apply(ip("203.0.113.77")).unwrap());
        assert_eq!(h1.to_string().len(), 32);
        assert!(!format!("{a:?}").contains('1'));
    }
}
