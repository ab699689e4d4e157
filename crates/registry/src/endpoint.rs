//! Which URL serves a registry domain: mirrors and `registry-1.docker.io` for `docker.io`,
//! plain HTTP for loopback and the insecure registries, HTTPS otherwise.

use crate::{Client, Error, Result};
use std::net::IpAddr;

pub const DOCKER_IO: &str = "docker.io";
pub const DOCKER_IO_HOST: &str = "registry-1.docker.io";
pub const DOCKER_INDEX: &str = "index.docker.io";

/// One place a repository can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://127.0.0.1:5000` (no trailing slash)
    pub base: String,
    /// `127.0.0.1:5000`: the key of `certs.d`
    pub host: String,
    /// a mirror of docker.io: a failure falls back to the next endpoint
    pub mirror: bool,
}

/// The host of a domain with its port, and the address part alone.
fn split_host(host: &str) -> (&str, Option<&str>) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((ip, after)) = rest.split_once(']') {
            return (ip, after.strip_prefix(':'));
        }
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (host, None),
    }
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether `host` (`name[:port]`) is spoken to over plain HTTP: loopback, or listed (by
/// `host:port`, `host`, or a CIDR holding its address) in `insecure`.
pub fn is_insecure(host: &str, insecure: &[String]) -> bool {
    let (name, _) = split_host(host);
    if name == "localhost" {
        return true;
    }
    let ip = name.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure
        .iter()
        .any(|i| i == host || i == name || (i.contains('/') && ip.is_some_and(|ip| in_cidr(ip, i))))
}

/// Checks a `--insecure-registry` value (`host[:port]` or a CIDR).
pub fn validate_insecure(v: &str) -> Result<()> {
    if v.contains("://") {
        return Err(Error::Invalid(format!(
            "insecure registry {v} should not contain '://'"
        )));
    }
    if let Some((net, bits)) = v.split_once('/') {
        if net.parse::<IpAddr>().is_err() || bits.parse::<u8>().is_err() {
            return Err(Error::Invalid(format!("invalid CIDR {v}")));
        }
    }
    Ok(())
}

impl Client {
    /// The endpoints to try for a domain, in order.
    pub fn endpoints(&self, domain: &str) -> Vec<Endpoint> {
        let mut out = Vec::new();
        let mirror = |m: &str| {
            let base = m.trim_end_matches('/').to_string();
            let host = base
                .split_once("://")
                .map(|(_, h)| h)
                .unwrap_or(&base)
                .split('/')
                .next()
                .unwrap_or("")
                .to_string();
            Endpoint {
                base,
                host,
                mirror: true,
            }
        };
        let is_docker_io = domain == DOCKER_IO || domain == DOCKER_INDEX;
        for (d, m) in &self.cfg.host_mirrors {
            if d == domain || (is_docker_io && (d == DOCKER_IO || d == DOCKER_INDEX)) {
                out.push(mirror(m));
            }
        }
        let server =
            self.cfg.host_servers.iter().find(|(d, _)| {
                d == domain || (is_docker_io && (d == DOCKER_IO || d == DOCKER_INDEX))
            });
        if let Some((_, url)) = server {
            let mut ep = mirror(url);
            ep.mirror = false;
            out.push(ep);
            return out;
        }
        let host = if is_docker_io {
            out.extend(self.cfg.mirrors.iter().map(|m| mirror(m)));
            DOCKER_IO_HOST
        } else {
            domain
        };
        // a host with certificates configured speaks TLS, even on loopback
        let has_certs = self.cfg.certs_dir.join(host).is_dir();
        let scheme = if !has_certs && is_insecure(host, &self.cfg.insecure) {
            "http"
        } else {
            "https"
        };
        out.push(Endpoint {
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            mirror: false,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_hosts_are_plain_http() {
        let none: Vec<String> = vec![];
        assert!(is_insecure("127.0.0.1:5000", &none));
        assert!(is_insecure("127.9.0.1", &none));
        assert!(is_insecure("localhost:5000", &none));
        assert!(is_insecure("[::1]:5000", &none));
        assert!(!is_insecure("10.0.0.1:5000", &none));
        assert!(!is_insecure("registry.example.com", &none));
        let list = vec!["reg.example:5000".to_string(), "10.1.0.0/16".to_string()];
        assert!(is_insecure("reg.example:5000", &list));
        assert!(!is_insecure("reg.example:5001", &list));
        assert!(is_insecure("10.1.2.3:443", &list));
        assert!(!is_insecure("10.2.2.3:443", &list));
        assert!(validate_insecure("http://x").is_err());
        assert!(validate_insecure("10.0.0.0/x").is_err());
        assert!(validate_insecure("10.0.0.0/8").is_ok());
    }

    #[test]
    fn any_domain_can_have_mirrors() {
        let c = Client::new(crate::Config {
            host_mirrors: vec![
                ("registry.k8s.io".into(), "http://127.0.0.1:5002/".into()),
                ("docker.io".into(), "http://127.0.0.1:5003".into()),
            ],
            ..Default::default()
        })
        .unwrap();
        let e = c.endpoints("registry.k8s.io");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].base.as_str(), e[0].mirror),
            ("http://127.0.0.1:5002", true)
        );
        assert_eq!(e[1].base, "https://registry.k8s.io");
        assert_eq!(c.endpoints("docker.io")[0].host, "127.0.0.1:5003");
        assert_eq!(c.endpoints("gcr.io").len(), 1);
        // a server in the domain's place: no fallback to the domain itself
        let c = Client::new(crate::Config {
            host_servers: vec![("gcr.io".into(), "http://127.0.0.1:5004".into())],
            ..Default::default()
        })
        .unwrap();
        let e = c.endpoints("gcr.io");
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].base.as_str(), e[0].mirror),
            ("http://127.0.0.1:5004", false)
        );
        assert_eq!(c.endpoints("quay.io")[0].base, "https://quay.io");
    }

    #[test]
    fn docker_io_goes_to_mirrors_then_registry_1() {
        let c = Client::new(crate::Config {
            mirrors: vec!["http://127.0.0.1:5001/".into()],
            ..Default::default()
        })
        .unwrap();
        let e = c.endpoints("docker.io");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].base, "http://127.0.0.1:5001");
        assert!(e[0].mirror);
        assert_eq!(e[1].base, "https://registry-1.docker.io");
        let e = c.endpoints("127.0.0.1:5000");
        assert_eq!(
            e,
            vec![Endpoint {
                base: "http://127.0.0.1:5000".into(),
                host: "127.0.0.1:5000".into(),
                mirror: false
            }]
        );
        assert_eq!(c.endpoints("quay.io")[0].base, "https://quay.io");
    }
}
