//! The daemon's nftables table: masquerade, isolation between networks, published ports.
//!
//! The whole table is rendered from a [`Ruleset`] and replaced in one `nft -f -` transaction
//! (`add table` + `delete table` + the new table), so the kernel never holds half a
//! ruleset and a daemon restart that renders the same rules changes nothing.

use crate::{Result, Subnet};
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub networks: Vec<NetRules>,
    pub ports: Vec<PortRule>,
}

/// The nft text of the whole table `ip <table>` for `rs` (pure; unit-tested): masquerade of
/// each non-internal subnet leaving by another interface; drop between different bridges;
/// drop in/out of internal bridges; DNAT of published ports in prerouting and output
/// (`fib daddr type local` for host_ip None); masquerade of 127.0.0.0/8 sources and of
/// hairpin traffic towards published containers.
pub fn render(table: &str, rs: &Ruleset) -> String {
    let _ = (table, rs);
    todo!()
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
        let _ = (rs, &self.last);
        todo!()
    }
    /// Deletes the table (tests, and a daemon told to clean up); missing is not an error.
    pub fn remove(&self) -> Result<()> {
        todo!()
    }
}
