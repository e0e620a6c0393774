//! Single sign-on by a trusted reverse proxy (as Grafana's auth proxy):
//! a proxy that has authenticated the person names them in a header
//! (`auth_proxy_header`, e.g. `X-Forwarded-User`), and the node believes
//! that header only on connections from `auth_proxy_trusted` addresses.
//! From anywhere else the header is ignored, as if it were not there.
//!
//! The named user must exist and be enabled: the proxy says who, the
//! accounts still say what they may do (users are not created on first
//! sight; an admin creates them, with the role they should have). Pure:
//! the api's middleware feeds it the connection's address.

use std::net::IpAddr;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// An address or a network (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client reaching a dual-stack socket shows as ::ffff:a.b.c.d.
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an address or a network like 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }
}

/// `auth_proxy_header` and `auth_proxy_trusted`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The header's name, lower case.
    pub header: String,
    pub trusted: Vec<Network>,
}

impl ProxyAuth {
    /// The user name the proxy vouches for, if the connection comes from a
    /// trusted address and carries the header; `None` otherwise (the
    /// header of anyone else is ignored).
    pub fn vouched<'a>(&self, peer: Option<IpAddr>, header: Option<&'a str>) -> Option<&'a str> {
        let peer = peer?;
        if !self.trusted.iter().any(|net| net.contains(peer)) {
            return None;
        }
        header.map(str::trim).filter(|name| !name.is_empty())
    }
}

/// The CSRF token of a user signed in by the proxy: every node computes
/// the same one from the replicated password hash, which no other page
/// can know (and which changes with the password).
pub fn csrf_token(password_hash: &str) -> String {
    Sha256::digest(format!("taskraft-proxy-csrf:{password_hash}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_and_nothing_else() {
        let net: Network = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "v4 mapped in v6");
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        assert!(!all.contains(ip("::1")), "v4 networks hold no v6 address");
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "example.com",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_address_is_believed() {
        let proxy = ProxyAuth {
            header: "x-forwarded-user".into(),
            trusted: vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        };
        assert_eq!(
            proxy.vouched(Some(ip("10.0.0.5")), Some(" ada ")),
            Some("ada")
        );
        assert_eq!(proxy.vouched(Some(ip("::1")), Some("ada")), Some("ada"));
        assert_eq!(proxy.vouched(Some(ip("192.0.2.1")), Some("ada")), None);
        assert_eq!(proxy.vouched(None, Some("ada")), None);
        assert_eq!(proxy.vouched(Some(ip("10.0.0.5")), None), None);
        assert_eq!(proxy.vouched(Some(ip("10.0.0.5")), Some("  ")), None);
    }

    #[test]
    fn a_proxy_signed_write_needs_the_csrf_token_as_a_cookie_does() {
        use crate::accounts::access::{decide, Access, Denial, Principal, Via};
        use crate::accounts::{Actor, Role};
        let principal = Principal {
            actor: Actor::system(),
            user_id: Some(uuid::Uuid::nil()),
            role: Role::Member,
            via: Via::Proxy {
                user_id: uuid::Uuid::nil(),
                csrf: csrf_token("h"),
            },
        };
        let p = Some(&principal);
        assert_eq!(decide(Access::SignedIn, p, "GET", None), Ok(()));
        assert_eq!(
            decide(Access::Member, p, "POST", None),
            Err(Denial::CsrfFailed)
        );
        assert_eq!(
            decide(Access::Member, p, "POST", Some(&csrf_token("other"))),
            Err(Denial::CsrfFailed)
        );
        assert_eq!(
            decide(Access::Member, p, "POST", Some(&csrf_token("h"))),
            Ok(())
        );
        assert_eq!(
            decide(Access::Admin, p, "POST", Some(&csrf_token("h"))),
            Err(Denial::Forbidden)
        );
    }

    #[test]
    fn the_proxy_csrf_token_follows_the_password_hash() {
        assert_eq!(csrf_token("h1"), csrf_token("h1"));
        assert_ne!(csrf_token("h1"), csrf_token("h2"));
        assert_eq!(csrf_token("h1").len(), 64);
    }
}
