//! The daemon's nftables table: masquerade, isolation between networks, published ports.
//!
//! The whole table is rendered from a [`Ruleset`] and replaced in one `nft -f -` transaction
//! (`add table` + `delete table` + the new table), so the kernel never holds half a
//! ruleset and a daemon restart that renders the same rules changes nothing.

use crate::{sysctl, Error, Result, Subnet};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}
impl Proto {
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules {
    pub bridge: String,
    pub subnet: Subnet,
    /// no traffic in or out of the bridge other than to/from the host (docker's --internal)
    pub internal: bool,
}

/// One published port: traffic to host_ip:host_port (any local address when None) goes to
/// ctr_ip:ctr_port, from outside (prerouting) and from the host itself (output, including
/// 127.0.0.1, which needs `route_localnet` on the bridge and a masquerade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub ctr_ip: Ipv4Addr,
    pub ctr_port: u16,
    /// the bridge the container is on
    pub bridge: String,
}

/// One `--ipv6` bridge network's IPv6 side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRules6 {
    pub bridge: String,
    pub subnet: crate::Subnet6,
    pub internal: bool,
}

/// One port published over IPv6: to `host_ip` (any local address when None), DNAT to the
/// container's IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule6 {
    pub proto: Proto,
    pub host_ip: Option<std::net::Ipv6Addr>,
    pub host_port: u16,
    pub ctr_ip: std::net::Ipv6Addr,
    pub ctr_port: u16,
    pub bridge: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetRules>,
    pub ports: Vec<PortRule>,
    pub networks6: Vec<NetRules6>,
    pub ports6: Vec<PortRule6>,
    /// cluster mode: the cluster-wide range (flannel's `Network`); traffic between two of
    /// its addresses is routed through the VXLAN device, never masqueraded
    pub routed: Vec<Subnet>,
    /// bridges whose containers may not talk to each other through them (docker's
    /// `com.docker.network.bridge.enable_icc=false`, as on its `docker_gwbridge`; IPv4)
    pub no_icc: Vec<String>,
}

/// The nft text of the table `ip6 <table>`: the IPv6 twin of [`render`]'s (masquerade of
/// each non-internal subnet leaving by another interface, DNAT of published ports, the
/// host's `::1` masqueraded towards a bridge, isolation in forward). Always emitted, so a
/// daemon whose last v6 network went away empties its table.
pub fn render6(table: &str, rs: &Ruleset) -> String {
    use std::fmt::Write as _;
    let mut nets: Vec<&NetRules6> = rs
        .networks6
        .iter()
        .filter(|n| quotable(&n.bridge))
        .collect();
    nets.sort_by(|a, b| (&a.bridge, a.subnet).cmp(&(&b.bridge, b.subnet)));
    nets.dedup();
    // `::1` is served by the userland proxy (crate::proxy), never DNATed: the kernel drops
    // loopback-sourced packets leaving `lo`
    let mut ports: Vec<&PortRule6> = rs
        .ports6
        .iter()
        .filter(|p| quotable(&p.bridge) && p.host_ip != Some(std::net::Ipv6Addr::LOCALHOST))
        .collect();
    ports.sort_by_key(|p| {
        (
            p.proto,
            p.host_port,
            p.host_ip.is_none_or(|ip| ip.is_unspecified()),
            p.host_ip,
            p.ctr_ip,
            p.ctr_port,
            &p.bridge,
        )
    });
    ports.dedup();
    let mut published: Vec<&str> = ports.iter().map(|p| p.bridge.as_str()).collect();
    published.sort_unstable();
    published.dedup();
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "add table ip6 {table}");
    let _ = writeln!(w, "delete table ip6 {table}");
    let _ = writeln!(w, "table ip6 {table} {{");
    let _ = writeln!(w, "\tchain ports {{");
    for p in &ports {
        let daddr = match p.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip6 daddr {ip} "),
            _ => "ip6 daddr != ::1 ".to_string(),
        };
        let _ = writeln!(
            w,
            "\t\t{daddr}{proto} dport {hp} dnat to [{cip}]:{cp}",
            proto = p.proto.as_str(),
            hp = p.host_port,
            cip = p.ctr_ip,
            cp = p.ctr_port
        );
    }
    let _ = writeln!(w, "\t}}");
    for (chain, hook, prio) in [
        ("prerouting", "prerouting", "dstnat"),
        ("output", "output", "-100"),
    ] {
        let _ = writeln!(w, "\tchain {chain} {{");
        let _ = writeln!(
            w,
            "\t\ttype nat hook {hook} priority {prio}; policy accept;"
        );
        if !ports.is_empty() {
            let _ = writeln!(w, "\t\tfib daddr type local jump ports");
        }
        let _ = writeln!(w, "\t}}");
    }
    let _ = writeln!(w, "\tchain postrouting {{");
    let _ = writeln!(
        w,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
    for n in nets.iter().filter(|n| !n.internal) {
        let _ = writeln!(
            w,
            "\t\tip6 saddr {} oifname != \"{}\" masquerade",
            n.subnet, n.bridge
        );
    }
    for br in &published {
        for n in nets.iter().filter(|n| n.bridge == *br) {
            let _ = writeln!(
                w,
                "\t\toifname \"{br}\" ip6 saddr {} ct status dnat masquerade",
                n.subnet
            );
        }
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "\tchain forward {{");
    let _ = writeln!(
        w,
        "\t\ttype filter hook forward priority filter; policy accept;"
    );
    for n in nets.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        let _ = writeln!(w, "\t\tiifname \"{b}\" oifname != \"{b}\" drop");
        let _ = writeln!(w, "\t\toifname \"{b}\" iifname != \"{b}\" drop");
    }
    let mut bridges: Vec<&str> = nets.iter().map(|n| n.bridge.as_str()).collect();
    bridges.dedup();
    for b in &bridges {
        let others: Vec<String> = bridges
            .iter()
            .filter(|o| *o != b)
            .map(|o| format!("\"{o}\""))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                w,
                "\t\tiifname \"{b}\" oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    o
}

/// The nft text of the whole table `ip <table>` for `rs` (pure; unit-tested): masquerade of
/// each non-internal subnet leaving by another interface; drop between different bridges;
/// drop in/out of internal bridges; DNAT of published ports in prerouting and output
/// (`fib daddr type local` for host_ip None); masquerade of 127.0.0.0/8 sources and of
/// hairpin traffic towards published containers.
///
/// The text starts with `add table` + `delete table`, so loading it replaces the table in
/// one transaction. Networks and ports are sorted first: the same ruleset always renders
/// the same text. Names nft could not take literally (a `"` or `\`) are left out.
pub fn render(table: &str, rs: &Ruleset) -> String {
    use std::fmt::Write as _;

    let mut nets: Vec<&NetRules> = rs.networks.iter().filter(|n| quotable(&n.bridge)).collect();
    nets.sort_by(|a, b| (&a.bridge, a.subnet).cmp(&(&b.bridge, b.subnet)));
    nets.dedup_by(|a, b| a.bridge == b.bridge && a.subnet == b.subnet);
    let mut ports: Vec<&PortRule> = rs.ports.iter().filter(|p| quotable(&p.bridge)).collect();
    // a rule for one address before a rule for any address of the same port
    ports.sort_by_key(|p| {
        (
            p.proto,
            p.host_port,
            p.host_ip.is_none_or(|ip| ip.is_unspecified()),
            p.host_ip,
            p.ctr_ip,
            p.ctr_port,
            &p.bridge,
        )
    });
    ports.dedup();

    // bridges that have published ports, with their subnets (for the hairpin masquerade)
    let mut published: Vec<&str> = ports.iter().map(|p| p.bridge.as_str()).collect();
    published.sort_unstable();
    published.dedup();

    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(w, "add table ip {table}");
    let _ = writeln!(w, "delete table ip {table}");
    let _ = writeln!(w, "table ip {table} {{");

    // published ports, shared by prerouting and output (both only for local destinations)
    let _ = writeln!(w, "\tchain ports {{");
    for p in &ports {
        let daddr = match p.host_ip {
            Some(ip) if !ip.is_unspecified() => format!("ip daddr {ip} "),
            _ => String::new(),
        };
        let _ = writeln!(
            w,
            "\t\t{daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.proto.as_str(),
            hp = p.host_port,
            cip = p.ctr_ip,
            cp = p.ctr_port
        );
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(w, "\tchain prerouting {{");
    let _ = writeln!(
        w,
        "\t\ttype nat hook prerouting priority dstnat; policy accept;"
    );
    if !ports.is_empty() {
        let _ = writeln!(w, "\t\tfib daddr type local jump ports");
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(w, "\tchain output {{");
    let _ = writeln!(w, "\t\ttype nat hook output priority -100; policy accept;");
    if !ports.is_empty() {
        let _ = writeln!(w, "\t\tfib daddr type local jump ports");
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(w, "\tchain postrouting {{");
    let _ = writeln!(
        w,
        "\t\ttype nat hook postrouting priority srcnat; policy accept;"
    );
    for r in &rs.routed {
        let _ = writeln!(w, "\t\tip saddr {r} ip daddr {r} return");
    }
    for n in nets.iter().filter(|n| !n.internal) {
        let _ = writeln!(
            w,
            "\t\tip saddr {} oifname != \"{}\" masquerade",
            n.subnet, n.bridge
        );
    }
    for br in &published {
        // the host reaching a published port through 127.0.0.1 (route_localnet)
        let _ = writeln!(w, "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade");
        // a container on the bridge reaching a published port of the bridge through the
        // host: without it the answer would come straight back over the bridge, unNATed
        for n in nets.iter().filter(|n| n.bridge == *br) {
            let _ = writeln!(
                w,
                "\t\toifname \"{br}\" ip saddr {} ct status dnat masquerade",
                n.subnet
            );
        }
    }
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(w, "\tchain forward {{");
    let _ = writeln!(
        w,
        "\t\ttype filter hook forward priority filter; policy accept;"
    );
    for n in nets.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        let _ = writeln!(w, "\t\tiifname \"{b}\" oifname != \"{b}\" drop");
        let _ = writeln!(w, "\t\toifname \"{b}\" iifname != \"{b}\" drop");
    }
    let mut no_icc: Vec<&str> = rs
        .no_icc
        .iter()
        .map(String::as_str)
        .filter(|b| quotable(b))
        .collect();
    no_icc.sort_unstable();
    no_icc.dedup();
    for b in no_icc {
        let _ = writeln!(w, "\t\tiifname \"{b}\" oifname \"{b}\" drop");
    }
    let mut bridges: Vec<&str> = nets.iter().map(|n| n.bridge.as_str()).collect();
    bridges.dedup();
    for b in &bridges {
        let others: Vec<String> = bridges
            .iter()
            .filter(|o| *o != b)
            .map(|o| format!("\"{o}\""))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                w,
                "\t\tiifname \"{b}\" oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    o
}

/// An interface name nft can hold between double quotes as it is.
fn quotable(name: &str) -> bool {
    let ok = !name.is_empty()
        && name.len() <= 15
        && !name
            .chars()
            .any(|c| c == '"' || c == '\\' || c.is_whitespace() || c.is_control());
    if !ok {
        tracing::warn!(name, "interface name left out of the nftables rules");
    }
    ok
}

/// Runs `nft -f -` with `script` on stdin.
fn nft(script: &str) -> Result<()> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Nft(format!("cannot run nft: {e}")))?;
    let write = child
        .stdin
        .take()
        .map(|mut i| i.write_all(script.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Nft(format!("nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(Error::Nft(if err.is_empty() {
            format!("nft exited with {}", out.status)
        } else {
            err
        }));
    }
    if let Some(Err(e)) = write {
        return Err(Error::Nft(format!("writing to nft: {e}")));
    }
    Ok(())
}

/// docker's firewall hook: a `FORWARD` policy of drop there (docker sets it) would drop our
/// bridges' forwarded and, with `br_netfilter`, even bridged traffic, and no accept in our own
/// table can overrule another table's drop. docker leaves `DOCKER-USER` to its users, so
/// while that chain exists our bridges are accepted there; our own table still isolates them.
const DOCKER_USER: &str = "ip filter DOCKER-USER";

/// The handles of the rules of `chain_listing` (`nft -a list chain`) tagged `tag`.
fn tagged_handles(chain_listing: &str, tag: &str) -> Vec<u64> {
    let needle = format!("comment \"{tag}\"");
    chain_listing
        .lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| l.rsplit("# handle ").next()?.trim().parse().ok())
        .collect()
}

/// The script that replaces our rules in `DOCKER-USER` (deletes of the old, inserts of the new).
fn docker_user_script(tag: &str, old: &[u64], rs: &Ruleset) -> String {
    let mut s = String::new();
    for h in old {
        s.push_str(&format!("delete rule {DOCKER_USER} handle {h}\n"));
    }
    let mut nets: Vec<&NetRules> = rs.networks.iter().filter(|n| quotable(&n.bridge)).collect();
    nets.sort_by(|a, b| a.bridge.cmp(&b.bridge));
    for n in nets {
        let b = &n.bridge;
        if n.internal {
            s.push_str(&format!(
                "insert rule {DOCKER_USER} iifname \"{b}\" oifname \"{b}\" accept comment \"{tag}\"\n"
            ));
        } else {
            s.push_str(&format!(
                "insert rule {DOCKER_USER} iifname \"{b}\" accept comment \"{tag}\"\n"
            ));
            s.push_str(&format!(
                "insert rule {DOCKER_USER} oifname \"{b}\" accept comment \"{tag}\"\n"
            ));
        }
    }
    s
}

/// Makes our rules in `DOCKER-USER` match `rs` (nothing when the chain is not there).
fn sync_docker_user(table: &str, rs: Option<&Ruleset>) -> Result<()> {
    let out = std::process::Command::new("nft")
        .args(["-a", "list", "chain", "ip", "filter", "DOCKER-USER"])
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Nft(format!("cannot run nft: {e}")))?;
    if !out.status.success() {
        return Ok(()); // no docker firewall here
    }
    let tag = format!("berth:{table}");
    let old = tagged_handles(&String::from_utf8_lossy(&out.stdout), &tag);
    let empty = Ruleset::default();
    let script = docker_user_script(&tag, &old, rs.unwrap_or(&empty));
    if script.is_empty() {
        return Ok(());
    }
    nft(&script)
}

/// Applies rulesets for one daemon's table.
pub struct Nat {
    table: String,
    last: std::sync::Mutex<Option<String>>,
}

impl Nat {
    /// `table`: `berth` for the default daemon; test daemons use their own name.
    pub fn new(table: &str) -> Nat {
        Nat {
            table: table.to_string(),
            last: std::sync::Mutex::new(None),
        }
    }
    pub fn table(&self) -> &str {
        &self.table
    }
    /// Makes the kernel's table equal to `rs`: renders it and, unless that text is what
    /// this Nat applied last, replaces the table in one transaction. Also turns on the
    /// sysctls it needs (ip_forward; route_localnet on each bridge with published ports).
    pub fn apply(&self, rs: &Ruleset) -> Result<()> {
        check_table(&self.table)?;
        let mut text = render(&self.table, rs);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        // the ip6 table only where IPv6 is in use (or was, to empty it): a host booted
        // without IPv6 never sees an ip6 table it may not be able to load
        let had6 = last.as_deref().is_some_and(|t| t.contains("table ip6 "));
        if had6 || !rs.networks6.is_empty() || !rs.ports6.is_empty() {
            text.push_str(&render6(&self.table, rs));
        }
        sysctl::set("net.ipv4.ip_forward", "1")?;
        let mut bridges: Vec<&str> = rs.ports.iter().map(|p| p.bridge.as_str()).collect();
        bridges.sort_unstable();
        bridges.dedup();
        for br in bridges {
            if br.contains('.') || !quotable(br) {
                continue;
            }
            match sysctl::set(&format!("net.ipv4.conf.{br}.route_localnet"), "1") {
                Ok(()) => {}
                // a bridge not there (yet): nothing reaches it through 127.0.0.1 then
                Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(bridge = br, "no route_localnet: bridge not found")
                }
                Err(e) => return Err(e),
            }
        }
        if last.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let t = std::time::Instant::now();
        nft(&text)?;
        if let Err(e) = sync_docker_user(&self.table, Some(rs)) {
            tracing::warn!("accepting our bridges in docker's DOCKER-USER chain: {e}");
        }
        tracing::debug!(table = %self.table, elapsed = ?t.elapsed(), "nftables table replaced");
        *last = Some(text);
        Ok(())
    }
    /// Forgets what was applied last, so the next `apply` loads the table even if its text
    /// is unchanged (after something outside berth flushed the ruleset, e.g. a firewall
    /// reload).
    pub fn invalidate(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
    /// Deletes the table (tests, and a daemon told to clean up); missing is not an error.
    pub fn remove(&self) -> Result<()> {
        check_table(&self.table)?;
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = None;
        if let Err(e) = sync_docker_user(&self.table, None) {
            tracing::warn!("removing our rules from docker's DOCKER-USER chain: {e}");
        }
        if let Err(e) = nft(&format!(
            "add table ip6 {t}\ndelete table ip6 {t}\n",
            t = self.table
        )) {
            tracing::debug!("no ip6 table removed: {e}");
        }
        nft(&format!(
            "add table ip {t}\ndelete table ip {t}\n",
            t = self.table
        ))
    }
}

fn check_table(t: &str) -> Result<()> {
    let ok = !t.is_empty()
        && t.len() <= 64
        && t.starts_with(|c: char| c.is_ascii_alphabetic())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "invalid nftables table name '{t}'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, a: [u8; 4], prefix: u8, internal: bool) -> NetRules {
        NetRules {
            bridge: bridge.into(),
            subnet: Subnet {
                addr: Ipv4Addr::from(a),
                prefix,
            },
            internal,
        }
    }

    fn port(host_ip: Option<[u8; 4]>, hp: u16, ctr: [u8; 4], cp: u16, br: &str) -> PortRule {
        PortRule {
            proto: Proto::Tcp,
            host_ip: host_ip.map(Ipv4Addr::from),
            host_port: hp,
            ctr_ip: Ipv4Addr::from(ctr),
            ctr_port: cp,
            bridge: br.into(),
        }
    }

    #[test]
    fn ipv6_table() {
        let rs = Ruleset {
            networks6: vec![NetRules6 {
                bridge: "br-a".into(),
                subnet: crate::Subnet6::parse("fd00:1::/64").unwrap(),
                internal: false,
            }],
            ports6: vec![
                PortRule6 {
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    ctr_ip: "fd00:1::2".parse().unwrap(),
                    ctr_port: 80,
                    bridge: "br-a".into(),
                },
                PortRule6 {
                    proto: Proto::Tcp,
                    host_ip: Some(std::net::Ipv6Addr::LOCALHOST),
                    host_port: 8081,
                    ctr_ip: "fd00:1::2".parse().unwrap(),
                    ctr_port: 81,
                    bridge: "br-a".into(),
                },
            ],
            ..Default::default()
        };
        let t = render6("berth", &rs);
        assert!(t.starts_with("add table ip6 berth\ndelete table ip6 berth\n"));
        assert!(t.contains("ip6 daddr != ::1 tcp dport 8080 dnat to [fd00:1::2]:80"));
        // ::1 is the proxy's, never DNATed
        assert!(!t.contains("8081"), "{t}");
        assert!(t.contains("ip6 saddr fd00:1::/64 oifname != \"br-a\" masquerade"));
        assert!(t.contains("oifname \"br-a\" ip6 saddr fd00:1::/64 ct status dnat masquerade"));
        // the v4 table says nothing of IPv6
        assert!(!render("berth", &rs).contains("ip6"));
    }

    fn sample() -> Ruleset {
        Ruleset {
            networks: vec![
                net("br-b", [198, 18, 1, 0], 24, false),
                net("br-a", [198, 18, 0, 0], 24, false),
                net("br-int", [198, 18, 2, 0], 24, true),
            ],
            ports: vec![
                port(None, 8080, [198, 18, 0, 2], 80, "br-a"),
                port(Some([127, 0, 0, 1]), 5353, [198, 18, 1, 3], 53, "br-b"),
                PortRule {
                    proto: Proto::Udp,
                    ..port(None, 5353, [198, 18, 1, 3], 53, "br-b")
                },
            ],
            ..Default::default()
        }
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(|l| l.trim().to_string()).collect()
    }

    /// The lines of one chain's body.
    fn chain(text: &str, name: &str) -> Vec<String> {
        let l = lines(text);
        let start = l
            .iter()
            .position(|x| *x == format!("chain {name} {{"))
            .unwrap_or_else(|| panic!("no chain {name} in\n{text}"));
        l[start + 1..]
            .iter()
            .take_while(|x| *x != "}")
            .cloned()
            .collect()
    }

    #[test]
    fn docker_user_rules_are_tagged_and_replaced() {
        let listing = "table ip filter {\n\tchain DOCKER-USER { # handle 12\n\t\tiifname \"br-a\" accept comment \"berth:berth\" # handle 40\n\t\tiifname \"x\" accept comment \"berth:other\" # handle 41\n\t\tcounter packets 0 bytes 0 return # handle 13\n\t}\n}\n";
        assert_eq!(tagged_handles(listing, "berth:berth"), vec![40]);
        let s = docker_user_script("berth:berth", &[40], &sample());
        assert!(
            s.starts_with("delete rule ip filter DOCKER-USER handle 40\n"),
            "{s}"
        );
        assert!(
            s.contains(
                "insert rule ip filter DOCKER-USER iifname \"br-a\" accept comment \"berth:berth\""
            ),
            "{s}"
        );
        assert!(s.contains("oifname \"br-a\" accept"), "{s}");
        assert_eq!(docker_user_script("t", &[], &Ruleset::default()), "");
    }

    #[test]
    fn replaces_the_table_in_one_transaction() {
        let t = render("berth", &Ruleset::default());
        let l = lines(&t);
        assert_eq!(l[0], "add table ip berth");
        assert_eq!(l[1], "delete table ip berth");
        assert_eq!(l[2], "table ip berth {");
        assert_eq!(l.last().unwrap(), "}");
    }

    #[test]
    fn base_chains_accept_with_dockers_priorities() {
        let t = render("berth", &Ruleset::default());
        assert_eq!(
            chain(&t, "prerouting"),
            ["type nat hook prerouting priority dstnat; policy accept;"]
        );
        assert_eq!(
            chain(&t, "output"),
            ["type nat hook output priority -100; policy accept;"]
        );
        assert_eq!(
            chain(&t, "postrouting"),
            ["type nat hook postrouting priority srcnat; policy accept;"]
        );
        assert_eq!(
            chain(&t, "forward"),
            ["type filter hook forward priority filter; policy accept;"]
        );
        assert!(chain(&t, "ports").is_empty());
    }

    #[test]
    fn masquerade_of_non_internal_subnets() {
        let t = render("berth", &sample());
        let post = chain(&t, "postrouting");
        assert!(post.contains(&"ip saddr 198.18.0.0/24 oifname != \"br-a\" masquerade".into()));
        assert!(post.contains(&"ip saddr 198.18.1.0/24 oifname != \"br-b\" masquerade".into()));
        assert!(
            !post.iter().any(|l| l.contains("198.18.2.0/24")),
            "{post:?}"
        );
    }

    #[test]
    fn localhost_and_hairpin_masquerade_on_bridges_with_ports() {
        let t = render("berth", &sample());
        let post = chain(&t, "postrouting");
        for br in ["br-a", "br-b"] {
            assert!(
                post.contains(&format!("oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade")),
                "{post:?}"
            );
        }
        assert!(post
            .contains(&"oifname \"br-a\" ip saddr 198.18.0.0/24 ct status dnat masquerade".into()));
        assert!(post
            .contains(&"oifname \"br-b\" ip saddr 198.18.1.0/24 ct status dnat masquerade".into()));
        // no ports on the internal bridge: none of that there
        assert!(!post.iter().any(|l| l.contains("br-int")), "{post:?}");
    }

    #[test]
    fn dnat_of_published_ports_for_local_destinations() {
        let t = render("berth", &sample());
        assert_eq!(
            chain(&t, "ports"),
            [
                "ip daddr 127.0.0.1 tcp dport 5353 dnat to 198.18.1.3:53".to_string(),
                "tcp dport 8080 dnat to 198.18.0.2:80".to_string(),
                "udp dport 5353 dnat to 198.18.1.3:53".to_string(),
            ]
        );
        for c in ["prerouting", "output"] {
            assert_eq!(chain(&t, c)[1], "fib daddr type local jump ports", "{c}");
            assert_eq!(chain(&t, c).len(), 2, "{c}");
        }
    }

    #[test]
    fn a_port_of_one_address_comes_before_any_address() {
        let rs = Ruleset {
            networks: vec![],
            ports: vec![
                port(None, 9000, [198, 18, 0, 2], 80, "br-a"),
                port(Some([0, 0, 0, 0]), 9001, [198, 18, 0, 2], 81, "br-a"),
                port(Some([198, 18, 9, 1]), 9000, [198, 18, 0, 3], 80, "br-a"),
            ],
            ..Default::default()
        };
        assert_eq!(
            chain(&render("t", &rs), "ports"),
            [
                "ip daddr 198.18.9.1 tcp dport 9000 dnat to 198.18.0.3:80",
                "tcp dport 9000 dnat to 198.18.0.2:80",
                "tcp dport 9001 dnat to 198.18.0.2:81",
            ]
        );
    }

    #[test]
    fn isolation_and_internal_networks() {
        let t = render("berth", &sample());
        let fwd = chain(&t, "forward");
        assert_eq!(
            fwd[1..],
            [
                "iifname \"br-int\" oifname != \"br-int\" drop",
                "oifname \"br-int\" iifname != \"br-int\" drop",
                "iifname \"br-a\" oifname { \"br-b\", \"br-int\" } drop",
                "iifname \"br-b\" oifname { \"br-a\", \"br-int\" } drop",
                "iifname \"br-int\" oifname { \"br-a\", \"br-b\" } drop",
            ]
        );
        // a single network: nothing to isolate from
        let one = Ruleset {
            networks: vec![net("br-a", [198, 18, 0, 0], 24, false)],
            ports: vec![],
            ..Default::default()
        };
        assert_eq!(chain(&render("berth", &one), "forward").len(), 1);
    }

    #[test]
    fn no_icc_bridges_drop_between_their_own_ports() {
        let rs = Ruleset {
            networks: vec![net("br-gw", [198, 18, 0, 0], 24, false)],
            no_icc: vec!["br-gw".into(), "br-gw".into(), "bad\"name".into()],
            ..Default::default()
        };
        let t = render("berth", &rs);
        assert_eq!(
            chain(&t, "forward")[1..],
            ["iifname \"br-gw\" oifname \"br-gw\" drop"]
        );
        // the masquerade out stays
        assert!(chain(&t, "postrouting")
            .contains(&"ip saddr 198.18.0.0/24 oifname != \"br-gw\" masquerade".into()));
    }

    #[test]
    fn same_rules_in_any_order_render_the_same() {
        let a = sample();
        let mut b = sample();
        b.networks.reverse();
        b.ports.reverse();
        b.ports.push(b.ports[0].clone());
        assert_eq!(render("t", &a), render("t", &b));
    }

    #[test]
    fn names_nft_cannot_quote_are_left_out() {
        let rs = Ruleset {
            networks: vec![net("bad\"name", [198, 18, 0, 0], 24, false)],
            ports: vec![port(None, 1, [198, 18, 0, 2], 1, "x\\y")],
            ..Default::default()
        };
        let t = render("t", &rs);
        assert!(!t.contains("bad"), "{t}");
        assert!(chain(&t, "ports").is_empty());
    }

    #[test]
    fn table_names_are_checked() {
        check_table("berth").unwrap();
        check_table("berth_test_12ab").unwrap();
        for bad in ["", "1abc", "a b", "a;b", "a-b"] {
            assert!(check_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_text_parses() {
        // `nft -c` checks without changing anything; it needs CAP_NET_ADMIN and the binary
        if !nix::unistd::geteuid().is_root()
            || std::process::Command::new("nft")
                .arg("-v")
                .output()
                .is_err()
        {
            eprintln!("skipped: needs root and nft");
            return;
        }
        let t = render("berth_check", &sample());
        if std::env::var_os("BERTH_SHOW_NFT").is_some() {
            eprintln!("{t}");
        }
        let out = std::process::Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(t.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{t}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn cluster_range_is_routed_not_masqueraded() {
        let mut rs = sample();
        rs.routed.push("10.250.0.0/16".parse().unwrap());
        let t = render("berth", &rs);
        let ret = t
            .find("ip saddr 10.250.0.0/16 ip daddr 10.250.0.0/16 return")
            .expect("return rule");
        let masq = t.find("masquerade").expect("masquerade");
        assert!(ret < masq, "the return comes before any masquerade:\n{t}");
        assert!(!render("berth", &sample()).contains("return"));
    }
}
