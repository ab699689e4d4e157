//! The networking options of `run`/`create`: `--network` (several, and
//! docker's `name=…,alias=…` form), `--ip`, `--ip6`, `--network-alias`,
//! `--mac-address`, `-p`, `-P`, `--expose`, `--dns*`, `--add-host`,
//! `--link`, in the create body's wire form.

use crate::flags::Parsed;
use crate::jv::{js, map_json};
use crate::ports::{add_expose, add_publish, is_ip, PortSet};
use std::collections::BTreeMap;

fn list_or_null(v: &[String]) -> String {
    if v.is_empty() {
        "null".into()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// One network attachment (an `EndpointSettings` as the CLI fills it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Endpoint {
    pub target: String,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    pub ipv4: String,
    pub ipv6: String,
    pub link_local: Vec<String>,
    pub mac: String,
    pub driver_opts: BTreeMap<String, String>,
    pub gw_priority: i64,
}

impl Endpoint {
    fn is_empty(&self) -> bool {
        *self
            == Endpoint {
                target: self.target.clone(),
                ..Default::default()
            }
    }

    fn ipam_inner(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.ipv4.is_empty() {
            v.push(format!("\"IPv4Address\":{}", js(&self.ipv4)));
        }
        if !self.ipv6.is_empty() {
            v.push(format!("\"IPv6Address\":{}", js(&self.ipv6)));
        }
        if !self.link_local.is_empty() {
            v.push(format!(
                "\"LinkLocalIPs\":{}",
                list_or_null(&self.link_local)
            ));
        }
        v
    }

    fn tail() -> &'static str {
        r#""NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null"#
    }

    /// As in a create body: unset parts are `null`.
    pub fn create_json(&self) -> String {
        let ipam = self.ipam_inner();
        format!(
            r#"{{"IPAMConfig":{},"Links":{},"Aliases":{},"MacAddress":{},"DriverOpts":{},"GwPriority":{},{}}}"#,
            if ipam.is_empty() {
                "null".to_string()
            } else {
                format!("{{{}}}", ipam.join(","))
            },
            list_or_null(&self.links),
            list_or_null(&self.aliases),
            js(&self.mac),
            if self.driver_opts.is_empty() {
                "null".to_string()
            } else {
                map_json(&self.driver_opts)
            },
            self.gw_priority,
            Self::tail()
        )
    }

    /// As `network connect` sends it: IPAMConfig, Aliases and DriverOpts
    /// are always there.
    pub fn connect_json(&self) -> String {
        format!(
            r#"{{"IPAMConfig":{{{}}},"Links":{},"Aliases":{},"MacAddress":{},"DriverOpts":{},"GwPriority":{},{}}}"#,
            self.ipam_inner().join(","),
            list_or_null(&self.links),
            serde_json::to_string(&self.aliases).unwrap_or_default(),
            js(&self.mac),
            map_json(&self.driver_opts),
            self.gw_priority,
            Self::tail()
        )
    }
}

/// docker's `NetworkMode.IsUserDefined`.
pub fn is_user_defined(mode: &str) -> bool {
    !matches!(mode, "default" | "bridge" | "host" | "none") && !mode.starts_with("container:")
}

/// `--network` value: a name, or `name=n,alias=a,ip=…,driver-opt=k=v,…`.
pub fn parse_network_opt(v: &str) -> Result<Endpoint, String> {
    if !v.contains('=') {
        return Ok(Endpoint {
            target: v.to_string(),
            ..Default::default()
        });
    }
    let mut e = Endpoint::default();
    for field in v.split(',') {
        let (k, val) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field {field}"))?;
        match k.trim().to_lowercase().as_str() {
            "name" => e.target = val.to_string(),
            "alias" => e.aliases.push(val.to_string()),
            "ip" => e.ipv4 = val.to_string(),
            "ip6" => e.ipv6 = val.to_string(),
            "mac-address" => e.mac = val.to_string(),
            "link-local-ip" => e.link_local.push(val.to_string()),
            "driver-opt" => {
                let (a, b) = val
                    .split_once('=')
                    .ok_or("invalid key value pair format in driver options")?;
                e.driver_opts.insert(a.to_string(), b.to_string());
            }
            "gw-priority" => {
                e.gw_priority = val
                    .parse()
                    .map_err(|_| format!("invalid gw-priority ({val}): invalid syntax"))?
            }
            _ => return Err(format!("invalid field key {k}")),
        }
    }
    if e.target.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(e)
}

/// Go's `net.ParseMAC`, for the 6-octet forms.
pub fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    for sep in [':', '-'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if matches!(parts.len(), 6 | 8 | 20) && parts.iter().all(|p| hex(p, 2)) {
            return true;
        }
    }
    let parts: Vec<&str> = s.split('.').collect();
    matches!(parts.len(), 3 | 4 | 10) && parts.iter().all(|p| hex(p, 4))
}

/// `--add-host` value → `host:ip` (docker's validation and rewrite).
pub fn parse_extra_host(v: &str) -> Result<String, String> {
    let (k, ip) = match v.split_once('=') {
        Some(x) => x,
        None => v.split_once(':').unwrap_or((v, "")),
    };
    if k.is_empty() || (!v.contains('=') && !v.contains(':')) {
        return Err(format!("bad format for add-host: {}", js(v)));
    }
    let ip = match ip.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        Some(inner) => inner,
        None => ip,
    };
    if ip != "host-gateway" && !is_ip(ip) {
        return Err(format!("invalid IP address in add-host: {}", js(ip)));
    }
    Ok(format!("{k}:{ip}"))
}

/// docker's `--dns-search` check: `.`, or a domain name (with at least one
/// letter); a trailing dot is dropped.
pub fn validate_dns_search(v: &str) -> Result<String, String> {
    if v == "." {
        return Ok(v.into());
    }
    let bad = || format!("{v} is not a valid domain");
    let d = v.strip_suffix('.').unwrap_or(v);
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    if !d.split('.').all(label_ok) || !d.bytes().any(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    if d.len() > 255 {
        return Err(format!(
            "domain name can not be longer than 255 characters: {d}"
        ));
    }
    Ok(d.to_string())
}

/// docker warns (once) about a loopback resolver.
pub fn dns_warning(dns: &[String]) -> Option<String> {
    dns.iter()
        .find(|d| {
            d.parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
        })
        .map(|d| format!("WARNING: Localhost DNS ({d}) may fail in containers."))
}

pub fn validate_link(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("empty string specified for links".into());
    }
    if v.split(':').count() > 2 {
        return Err(format!("bad format for links: {v}"));
    }
    Ok(())
}

/// Everything networking puts into the create body.
#[derive(Debug, Default)]
pub struct NetOpts {
    pub domainname: String,
    pub ports: PortSet,
    pub publish_all: bool,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub links: Vec<String>,
    pub network_mode: String,
    /// EndpointsConfig keyed by network, sorted (Go marshals maps so)
    pub endpoints: BTreeMap<String, Endpoint>,
}

impl NetOpts {
    pub fn endpoints_json(&self) -> String {
        let parts: Vec<String> = self
            .endpoints
            .iter()
            .map(|(k, e)| format!("{}:{}", js(k), e.create_json()))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    /// A MAC address per endpoint needs API 1.44 (docker's client check).
    pub fn has_mac(&self) -> bool {
        self.endpoints.values().any(|e| !e.mac.is_empty())
    }
}

/// Values of a flag given under any of its names, in command-line order.
fn all_of(p: &Parsed, names: &[&str]) -> Vec<String> {
    p.flags
        .iter()
        .filter(|(k, _)| names.contains(k))
        .map(|(_, v)| v.clone())
        .collect()
}

/// `Err` texts starting with "invalid argument" are flag errors (usage
/// follows), the others are docker's run-level errors.
pub fn parse_net_opts(p: &Parsed) -> Result<NetOpts, String> {
    let mut o = NetOpts {
        domainname: p.get("domainname").unwrap_or("").to_string(),
        publish_all: p.has("publish-all"),
        ..Default::default()
    };
    for d in p.all("dns") {
        if !is_ip(&d) {
            return Err(format!(
                "invalid argument \"{d}\" for \"--dns\" flag: IP address is not correctly formatted: {d}"
            ));
        }
        o.dns.push(d);
    }
    for d in p.all("dns-search") {
        o.dns_search.push(
            validate_dns_search(&d)
                .map_err(|e| format!("invalid argument \"{d}\" for \"--dns-search\" flag: {e}"))?,
        );
    }
    o.dns_options = all_of(p, &["dns-option", "dns-opt"]);
    for h in p.all("add-host") {
        o.extra_hosts.push(
            parse_extra_host(&h)
                .map_err(|e| format!("invalid argument \"{h}\" for \"--add-host\" flag: {e}"))?,
        );
    }
    for l in p.all("link") {
        validate_link(&l)
            .map_err(|e| format!("invalid argument \"{l}\" for \"--link\" flag: {e}"))?;
        o.links.push(l);
    }
    let mac = p.get("mac-address").unwrap_or("").to_string();
    if !mac.is_empty() && !is_mac(&mac) {
        return Err(format!("{mac} is not a valid mac address"));
    }
    for e in p.all("expose") {
        add_expose(&mut o.ports, &e)?;
    }
    for e in p.all("publish") {
        add_publish(&mut o.ports, &e)?;
    }
    let aliases = all_of(p, &["network-alias", "net-alias"]);
    let ipv4 = p.get("ip").unwrap_or("").to_string();
    let ipv6 = p.get("ip6").unwrap_or("").to_string();
    let mut nets = Vec::new();
    for n in all_of(p, &["network", "net"]) {
        let e = parse_network_opt(&n)
            .map_err(|e| format!("invalid argument \"{n}\" for \"--network\" flag: {e}"))?;
        if e.target.is_empty() {
            return Err("no name set for network".into());
        }
        nets.push(e);
    }
    o.network_mode = nets
        .first()
        .map(|n| n.target.clone())
        .unwrap_or_else(|| "default".into());
    let single = nets.len() <= 1;
    if nets.is_empty() {
        nets.push(Endpoint {
            target: "default".into(),
            ..Default::default()
        });
    }
    let (mut user, mut builtin) = (false, false);
    let given = !all_of(p, &["network", "net"]).is_empty();
    for (i, mut n) in nets.into_iter().enumerate() {
        if is_user_defined(&n.target) {
            user = true;
        } else {
            builtin = true;
        }
        if i == 0 {
            // the plain flags apply to the first (or the default) network
            let conflict =
                |what: &str| Err(format!("conflicting options: cannot specify both {what}"));
            if !n.aliases.is_empty() && !aliases.is_empty() {
                return conflict("--network-alias and per-network alias");
            }
            if !n.links.is_empty() && !o.links.is_empty() {
                return conflict("--link and per-network links");
            }
            if !n.ipv4.is_empty() && !ipv4.is_empty() {
                return conflict("--ip and per-network IPv4 address");
            }
            if !n.ipv6.is_empty() && !ipv6.is_empty() {
                return conflict("--ip6 and per-network IPv6 address");
            }
            if !n.mac.is_empty() && !mac.is_empty() {
                return conflict("--mac-address and per-network MAC address");
            }
            if !aliases.is_empty() {
                n.aliases = aliases.clone();
            }
            if is_user_defined(&n.target) && !o.links.is_empty() {
                n.links = o.links.clone();
            }
            if !ipv4.is_empty() {
                n.ipv4 = ipv4.clone();
            }
            if !ipv6.is_empty() {
                n.ipv6 = ipv6.clone();
            }
            if !mac.is_empty() {
                n.mac = mac.clone();
            }
            if !n.aliases.is_empty() && !is_user_defined(&n.target) {
                return Err(
                    "network-scoped aliases are only supported for user-defined networks".into(),
                );
            }
        }
        if o.endpoints.contains_key(&n.target) {
            return Err(format!(
                "network {} is specified multiple times",
                js(&n.target)
            ));
        }
        // one plain --network without options: the daemon makes the endpoint
        if given && i == 0 && single && n.is_empty() {
            continue;
        }
        o.endpoints.insert(n.target.clone(), n);
    }
    if user && builtin {
        return Err(
            "conflicting options: cannot attach both user-defined and non-user-defined network-modes"
                .into(),
        );
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Texts and rewrites as docker CLI 28.2.2 showed them.
    #[test]
    fn validators() {
        assert_eq!(
            parse_extra_host("h2=host-gateway").unwrap(),
            "h2:host-gateway"
        );
        assert_eq!(parse_extra_host("h3:::1").unwrap(), "h3:::1");
        assert_eq!(parse_extra_host("h:[::1]").unwrap(), "h:::1");
        assert_eq!(
            parse_extra_host("foo").unwrap_err(),
            r#"bad format for add-host: "foo""#
        );
        assert_eq!(
            parse_extra_host("foo:notanip").unwrap_err(),
            r#"invalid IP address in add-host: "notanip""#
        );
        assert_eq!(
            parse_extra_host(":1.2.3.4").unwrap_err(),
            r#"bad format for add-host: ":1.2.3.4""#
        );
        assert_eq!(validate_dns_search("x.com.").unwrap(), "x.com");
        assert_eq!(validate_dns_search(".").unwrap(), ".");
        assert_eq!(validate_dns_search("A-b.c0").unwrap(), "A-b.c0");
        for bad in ["-bad", "a..b", "a-.b", "1.2.3.4"] {
            assert_eq!(
                validate_dns_search(bad).unwrap_err(),
                format!("{bad} is not a valid domain")
            );
        }
        assert!(is_mac("02:42:ac:11:00:02") && is_mac("02-42-ac-11-00-02"));
        assert!(!is_mac("zz") && !is_mac("02:42:ac:11:00"));
        assert_eq!(
            validate_link("a:b:c").unwrap_err(),
            "bad format for links: a:b:c"
        );
        assert_eq!(
            validate_link("").unwrap_err(),
            "empty string specified for links"
        );
        assert_eq!(
            dns_warning(&["1.1.1.1".into(), "127.0.0.2".into(), "::1".into()]).unwrap(),
            "WARNING: Localhost DNS (127.0.0.2) may fail in containers."
        );
    }

    #[test]
    fn network_opts() {
        let e =
            parse_network_opt("name=n1,alias=q,ip=10.1.1.1,driver-opt=a=b,gw-priority=5").unwrap();
        assert_eq!(e.target, "n1");
        assert_eq!(e.aliases, vec!["q".to_string()]);
        assert_eq!(e.driver_opts.get("a").map(String::as_str), Some("b"));
        assert_eq!(e.gw_priority, 5);
        assert_eq!(
            parse_network_opt("alias=x").unwrap_err(),
            "network name/id is not specified"
        );
        assert_eq!(
            parse_network_opt("foo=bar").unwrap_err(),
            "invalid field key foo"
        );
        assert_eq!(
            parse_network_opt("name=n1,zz").unwrap_err(),
            "invalid field zz"
        );
        assert_eq!(
            parse_network_opt("name=n1,gw-priority=x").unwrap_err(),
            "invalid gw-priority (x): invalid syntax"
        );
        assert!(is_user_defined("n1"));
        for m in ["default", "bridge", "host", "none", "container:abc"] {
            assert!(!is_user_defined(m));
        }
    }
}
