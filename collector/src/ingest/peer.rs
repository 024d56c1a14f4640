//! Who sent a report: the TCP peer, or, only when that peer is a trusted
//! proxy, the client it names in X-Forwarded-For or X-Real-IP; and how much
//! of that address is kept (`--received-from`). Owns CIDR parsing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network such as 10.0.0.0/8 or fd00::/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = ();

    /// Accepts `IP/PREFIX`, or a bare IP meaning a single host.
    fn from_str(s: &str) -> Result<Cidr, ()> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (s, None),
        };
        let net = IpAddr::from_str(ip).map_err(|_| ())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| ())?,
            None => max,
        };
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// An IPv4 client seen through a dual-stack socket arrives as ::ffff:a.b.c.d.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's IP. `forwarded_for` holds every X-Forwarded-For header in
/// order; both headers are ignored unless `peer` is a trusted proxy.
pub fn client_ip(
    peer: Option<SocketAddr>,
    forwarded_for: &[&str],
    real_ip: Option<&str>,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = forwarded_for.iter().flat_map(|h| h.split(',')).collect();
    if !hops.is_empty() {
        // Walk from the nearest hop outwards: the first address that is not
        // one of our proxies is the client. Anything left of it was written
        // by the client itself and proves nothing.
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) if is_trusted(ip) => client = ip,
                Some(ip) => return Some(ip),
                None => return Some(client),
            }
        }
        return Some(client);
    }
    Some(real_ip.and_then(parse_hop).unwrap_or(peer))
}

/// An address as proxies write it: `ip`, `ip:port` or `[ipv6]:port`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    SocketAddr::from_str(hop).ok().map(|s| canonical(s.ip()))
}

/// How much of the client's address is stored (`--received-from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The whole address.
    Full,
    /// The network only: IPv4 /24, IPv6 /64 (e.g. 192.0.2.0, 2001:db8:1:2::).
    Truncated,
    /// Nothing.
    None,
}

impl FromStr for Keep {
    type Err = ();
    fn from_str(s: &str) -> Result<Keep, ()> {
        match s {
            "full" => Ok(Keep::Full),
            "truncated" => Ok(Keep::Truncated),
            "none" => Ok(Keep::None),
            _ => Err(()),
        }
    }
}

impl Keep {
    /// The text stored for `ip`; `None` when nothing is kept.
    pub fn apply(self, ip: IpAddr) -> Option<String> {
        match (self, ip) {
            (Keep::None, _) => None,
            (Keep::Full, ip) => Some(ip.to_string()),
            (Keep::Truncated, IpAddr::V4(v4)) => {
                Some(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00).to_string())
            }
            (Keep::Truncated, IpAddr::V6(v6)) => {
                Some(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX)).to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|c| c.parse().expect("valid cidr"))
            .collect()
    }

    #[test]
    fn cidr_membership() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.7", "192.0.2.8", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "fd00::1", false),
        ];
        for (cidr, ip, want) in cases {
            let c: Cidr = cidr.parse().expect("valid cidr");
            assert_eq!(
                c.contains(ip.parse().expect("ip")),
                want,
                "{cidr} contains {ip}"
            );
        }
        for bad in ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "x/8", "10.0.0.0/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn forwarded_headers_are_believed_only_from_trusted_proxies() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let peer = |s: &str| Some(SocketAddr::from_str(s).expect("addr"));
        let ip = |s: &str| Some(IpAddr::from_str(s).expect("ip"));
        let cases: &[(&str, &[&str], Option<&str>, &str)] = &[
            // untrusted peer: headers ignored
            (
                "198.51.100.1:5000",
                &["203.0.113.5"],
                Some("203.0.113.6"),
                "198.51.100.1",
            ),
            // trusted peer: the right-most untrusted hop
            (
                "10.0.0.2:5000",
                &["203.0.113.5, 10.1.1.1"],
                None,
                "203.0.113.5",
            ),
            // a client-written left part is skipped
            (
                "10.0.0.2:5000",
                &["1.2.3.4, 203.0.113.5"],
                None,
                "203.0.113.5",
            ),
            // several headers are one list
            (
                "10.0.0.2:5000",
                &["1.2.3.4", "203.0.113.5:443"],
                None,
                "203.0.113.5",
            ),
            // every hop is ours: the farthest one
            ("10.0.0.2:5000", &["10.9.9.9, 10.1.1.1"], None, "10.9.9.9"),
            // garbage stops the walk at the last proxy we trust
            ("10.0.0.2:5000", &["203.0.113.5, junk"], None, "10.0.0.2"),
            // X-Real-IP when there is no X-Forwarded-For
            ("10.0.0.2:5000", &[], Some("2001:db8::7"), "2001:db8::7"),
            ("10.0.0.2:5000", &[], Some("nonsense"), "10.0.0.2"),
        ];
        for (p, xff, real, want) in cases {
            let got = client_ip(peer(p), xff, *real, &trusted);
            assert_eq!(got, ip(want), "peer {p}, xff {xff:?}, real {real:?}");
        }
        assert_eq!(client_ip(None, &[], None, &trusted), None);
    }

    #[test]
    fn received_from_keeps_what_the_operator_chose() {
        let cases = [
            ("full", "192.0.2.145", Some("192.0.2.145")),
            ("truncated", "192.0.2.145", Some("192.0.2.0")),
            ("truncated", "2001:db8:1:2:3:4:5:6", Some("2001:db8:1:2::")),
            ("none", "192.0.2.145", None),
        ];
        for (keep, ip, want) in cases {
            let keep: Keep = keep.parse().expect("policy");
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(keep.apply(ip).as_deref(), want, "{keep:?} {ip}");
        }
        assert!("partial".parse::<Keep>().is_err());
    }
}
