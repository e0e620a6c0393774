//! What a webhook may reach: by default no address inside the cluster's
//! own networks (loopback, private, link-local, unique-local, multicast,
//! unspecified, and the like), so a board admin cannot make the leader
//! probe its neighbours (SSRF). An IP literal is checked when the webhook
//! is created; every address a name resolves to is checked again at
//! connect time ([`Guard`] is the HTTP client's resolver), so a name that
//! later resolves inside (DNS rebinding) is still refused.
//! `webhook_allow_private` lifts the rule (tests, the demo, an intranet).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Whether `ip` is one a webhook may not reach by default.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 is that address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible ::a.b.c.d
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
        }
    }
}

fn private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.is_unspecified()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64/10
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// The longest URL a webhook may have.
pub const MAX_URL: usize = 2000;

/// `url` checked for a new webhook: http or https, at most [`MAX_URL`]
/// characters, a host, no user name or password, and (unless
/// `allow_private`) no local address written as an IP or as `localhost`
/// (names are checked again at each connection). The URL as parsed.
pub fn check_url(url: &str, allow_private: bool) -> Result<String, String> {
    if url.chars().count() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} characters"));
    }
    let parsed = url::Url::parse(url.trim()).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "must be an http or https URL, not `{}:`",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    let host = match parsed.host() {
        Some(host) => host,
        None => return Err("has no host".into()),
    };
    if !allow_private {
        let local = match host {
            url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost")
            }
        };
        if local {
            return Err(
                "names a loopback, private or otherwise local address, which webhooks may not reach unless the cluster sets webhook_allow_private"
                    .into(),
            );
        }
    }
    Ok(parsed.to_string())
}

/// The HTTP client's resolver: the addresses a host resolves to, without
/// the ones refused; an error when none is left.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    /// `webhook_allow_private`: let every address through.
    pub allow_private: bool,
}

impl Guard {
    /// The addresses of `netloc` (`host:port`) a webhook may connect to.
    pub fn allowed(&self, resolved: Vec<SocketAddr>, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        if self.allow_private {
            return Ok(resolved);
        }
        let kept: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| !is_private(a.ip()))
            .collect();
        if kept.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{netloc} resolves only to private or local addresses, which webhooks may not \
                     reach (webhook_allow_private)"
                ),
            ));
        }
        Ok(kept)
    }
}

impl ureq::Resolver for Guard {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let resolved: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        self.allowed(resolved, netloc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_inside_are_refused_and_public_ones_pass() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
        ] {
            assert!(
                is_private(inside.parse().unwrap()),
                "{inside} should be refused"
            );
        }
        for outside in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(
                !is_private(outside.parse().unwrap()),
                "{outside} should pass"
            );
        }
    }

    #[test]
    fn a_webhook_url_is_http_or_https_with_a_public_host_and_no_credentials() {
        assert_eq!(
            check_url("https://hooks.example.com/x?y=1", false),
            Ok("https://hooks.example.com/x?y=1".into())
        );
        for (bad, why) in [
            ("ftp://example.com/", "http or https"),
            ("not a url", "is not a URL"),
            ("https://user:pw@example.com/", "user name or password"),
            ("http://127.0.0.1:8080/", "local address"),
            ("http://[::1]/", "local address"),
            ("http://10.0.0.8/", "local address"),
            ("http://169.254.169.254/latest/meta-data", "local address"),
            ("http://localhost:9000/", "local address"),
        ] {
            let refused = check_url(bad, false).expect_err(bad);
            assert!(refused.contains(why), "{bad}: {refused}");
            assert!(
                !refused.contains("  "),
                "one space between words: {refused}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(check_url(&long, false).unwrap_err().contains("at most"));
        assert!(check_url("http://127.0.0.1:8080/", true).is_ok());
    }

    #[test]
    fn a_name_resolving_only_inside_is_refused_unless_allowed() {
        let inside = vec!["127.0.0.1:80".parse().unwrap()];
        let refused = Guard {
            allow_private: false,
        }
        .allowed(inside.clone(), "rebound.example:80");
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(io::ErrorKind::PermissionDenied)
        );
        let allowed = Guard {
            allow_private: true,
        }
        .allowed(inside.clone(), "rebound.example:80");
        assert_eq!(allowed.unwrap(), inside);
        let mixed = vec![
            "10.0.0.1:443".parse().unwrap(),
            "93.184.216.34:443".parse().unwrap(),
        ];
        let kept = Guard {
            allow_private: false,
        }
        .allowed(mixed, "mixed.example:443")
        .unwrap();
        assert_eq!(kept, vec!["93.184.216.34:443".parse().unwrap()]);
    }
}
