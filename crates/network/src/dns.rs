//! The embedded DNS server: for each container on a user network the daemon binds UDP and
//! TCP sockets on 127.0.0.11:53 *inside* the container's network namespace (a socket stays
//! in the namespace it was made in) and answers from the daemon's own runtime. Names of
//! containers on the querier's networks (name, aliases, short ID) get A records; other
//! names are forwarded to the upstream servers from the host's namespace.

use crate::Result;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// What the engine knows; called for every query.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses `name` (lower-cased, without the trailing dot) has for this container:
    /// empty when it is not a container name on any of its networks.
    fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr>;
    /// Where to forward other names: the container's `--dns` servers, else the daemon's
    /// (`berthd --dns`), else the host's resolv.conf nameservers.
    fn upstreams(&self, container_id: &str) -> Vec<SocketAddr>;
}

/// Serving one container; dropping it stops the tasks and closes the sockets (which also
/// lets the kernel free the namespace once the container is gone).
pub struct DnsHandle {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}
impl Drop for DnsHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds 127.0.0.11:53 (UDP and TCP) in `netns` (e.g. `/proc/<pid>/ns/net`) and serves it
/// on the current tokio runtime. A names → A records; AAAA of a known name → NOERROR with
/// no answer; anything else forwarded (UDP, 2 s timeout, SERVFAIL if no upstream answers).
pub fn serve(container_id: &str, netns: &Path, lookup: Arc<dyn Lookup>) -> Result<DnsHandle> {
    let _ = (
        container_id,
        netns,
        lookup,
        Vec::<tokio::task::JoinHandle<()>>::new(),
    );
    todo!()
}

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let _ = text;
    todo!()
}

/// The resolv.conf a container gets, as docker writes it. `embedded`: `nameserver
/// 127.0.0.11` (user networks; `options ndots:0` added unless options say otherwise).
/// Otherwise: the given servers, else the host's without loopback ones (none left: docker's
/// fallback 8.8.8.8 and 8.8.4.4). `search`/`options` override the host's when not empty.
pub fn container_resolv_conf(
    host: &ResolvConf,
    dns: &[String],
    search: &[String],
    options: &[String],
    embedded: bool,
) -> String {
    let _ = (host, dns, search, options, embedded);
    todo!()
}
