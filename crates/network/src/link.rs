//! Bridges, veth pairs, addresses and routes through rtnetlink, synchronously.
//!
//! Work inside a container's network namespace is done on a short-lived thread that
//! `setns`es into it (or through a netlink socket opened there), so the caller's thread
//! never changes namespace.

use crate::{Error, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// A bridge as a network wants it.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    pub name: String,
    /// the gateway address given to the bridge
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub mtu: u32,
    /// `--ipv6` networks: the IPv6 gateway and the subnet's prefix length
    pub addr6: Option<(Ipv6Addr, u8)>,
}

/// Creates the bridge if it is missing, gives it `addr/prefix` (keeping no other IPv4
/// address), sets the MTU and brings it up. Idempotent: a daemon restart calls it again.
pub fn ensure_bridge(spec: &BridgeSpec) -> Result<()> {
    check_name(&spec.name)?;
    check_prefix(spec.prefix)?;
    let mut nl = Nl::open()?;
    let link = match nl.get_link(&spec.name)? {
        Some(l) => l,
        None => {
            tracing::debug!(bridge = %spec.name, "creating bridge");
            let mut msg = LinkMessage::default();
            msg.attributes
                .push(LinkAttribute::IfName(spec.name.clone()));
            // a MAC of its own: otherwise the bridge takes the lowest MAC of its ports, and
            // it changes as containers come and go (stale gateway ARP entries inside)
            msg.attributes
                .push(LinkAttribute::Address(random_mac().to_vec()));
            if spec.mtu > 0 {
                msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
            }
            msg.attributes
                .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                    InfoKind::Bridge,
                )]));
            match nl.ack(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
                // created by someone else meanwhile (two daemons, a racing call): check below
                Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
                Err(e) => return Err(e.into_error(&format!("create bridge {}", spec.name))),
            }
            nl.get_link(&spec.name)?.ok_or_else(|| {
                Error::Netlink(format!("bridge {} vanished after creation", spec.name))
            })?
        }
    };
    if link_kind(&link) != Some(InfoKind::Bridge) {
        return Err(Error::Conflict(format!(
            "{} exists and is not a bridge",
            spec.name
        )));
    }
    let index = link.header.index;

    // addresses: exactly the one wanted
    let mut have = false;
    for (addr, prefix, msg) in nl.ipv4_addrs(Some(index))? {
        if addr == spec.addr && prefix == spec.prefix {
            have = true;
        } else {
            tracing::debug!(bridge = %spec.name, %addr, prefix, "removing stray address");
            nl.ack(RouteNetlinkMessage::DelAddress(msg), 0)
                .map_err(|e| e.into_error(&format!("delete {addr}/{prefix} from {}", spec.name)))?;
        }
    }
    if !have {
        match nl.add_addr(index, spec.addr, spec.prefix) {
            // added by a racing call meanwhile
            Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
            Err(e) => {
                return Err(e.into_error(&format!(
                    "add {}/{} to {}",
                    spec.addr, spec.prefix, spec.name
                )))
            }
        }
    }

    if let Some((a6, p6)) = spec.addr6 {
        // the kernel keeps IPv6 off on a link whose disable_ipv6 is set (a host default)
        set_disable_ipv6(&spec.name, false)?;
        let have6 = nl
            .ipv6_addrs(index)?
            .iter()
            .any(|(a, p)| *a == a6 && *p == p6);
        if !have6 {
            match nl.add_addr6(index, a6, p6) {
                Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
                Err(e) => return Err(e.into_error(&format!("add {a6}/{p6} to {}", spec.name))),
            }
        }
    }

    // mtu and up, in one request when something differs
    let mtu_ok = spec.mtu == 0 || link_mtu(&link) == Some(spec.mtu);
    let up = link.header.flags.contains(LinkFlags::Up);
    if !mtu_ok || !up {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        if !mtu_ok {
            msg.attributes.push(LinkAttribute::Mtu(spec.mtu));
        }
        nl.ack(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.into_error(&format!("set {} up (mtu {})", spec.name, spec.mtu)))?;
    }
    Ok(())
}

/// Deletes a link by name; a link that is not there is not an error.
pub fn delete_link(name: &str) -> Result<()> {
    check_name(name)?;
    Nl::open()?.del_link(name)
}

pub fn link_exists(name: &str) -> bool {
    if check_name(name).is_err() {
        return false;
    }
    match Nl::open().and_then(|mut nl| nl.get_link(name)) {
        Ok(l) => l.is_some(),
        Err(e) => {
            tracing::warn!(name, error = %e, "link lookup failed");
            false
        }
    }
}

/// The first IPv4 address (and prefix) of a link, if it has one.
pub fn link_ipv4(name: &str) -> Result<Option<(Ipv4Addr, u8)>> {
    check_name(name)?;
    let mut nl = Nl::open()?;
    let link = nl
        .get_link(name)?
        .ok_or_else(|| Error::NotFound(format!("no such link: {name}")))?;
    Ok(nl
        .ipv4_addrs(Some(link.header.index))?
        .into_iter()
        .next()
        .map(|(a, p, _)| (a, p)))
}

/// One end of a container on a bridge.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// host side, ≤ 15 bytes (e.g. `veth` + 7 hex)
    pub host_name: String,
    /// bridge the host side joins
    pub bridge: String,
    /// the container's network namespace, e.g. `/proc/<pid>/ns/net`
    pub netns: std::path::PathBuf,
    /// name inside the container: eth0, eth1 …
    pub ifname: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// default route through this gateway (None: no default route, e.g. a second network)
    pub gateway: Option<Ipv4Addr>,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// IPv6 address and prefix length (networks with `--ipv6`); without one the interface
    /// gets `disable_ipv6=1` (no link-local address either), as docker's
    pub addr6: Option<(Ipv6Addr, u8)>,
    /// IPv6 default route through this gateway
    pub gateway6: Option<Ipv6Addr>,
}

/// Creates the veth pair with its peer already in the namespace, attaches the host side to
/// the bridge and brings it up; inside: the peer is `ifname` with MAC, MTU and address, it
/// and `lo` are up, and the default route is added. On failure nothing is left.
///
/// One request creates both ends: the peer directly in the namespace under its final name
/// (the name only has to be free inside the namespace, so no rename), with its MAC and
/// MTU; the host side enslaved to the bridge and up (then put in hairpin mode, as docker
/// does without its userland proxy, so a container reaches its own published ports when
/// br_netfilter is on). A thread in the namespace then adds
/// the address, brings the peer and `lo` up and adds the route. Errors: a taken name is
/// `Conflict`, a missing bridge or namespace `NotFound`, a kernel refusal `Netlink`.
pub fn attach_veth(spec: &VethSpec) -> Result<()> {
    check_name(&spec.host_name)?;
    check_name(&spec.ifname)?;
    check_name(&spec.bridge)?;
    check_prefix(spec.prefix)?;
    let ns = open_netns(&spec.netns)?;
    let mut nl = Nl::open()?;
    let bridge = nl
        .get_link(&spec.bridge)?
        .ok_or_else(|| Error::NotFound(format!("bridge {} not found", spec.bridge)))?;

    // the peer cannot be brought up here: the kernel configures it before it is paired
    // (veth_open would answer ENOTCONN); it goes up inside the namespace
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(spec.ifname.clone()));
    peer.attributes
        .push(LinkAttribute::Address(spec.mac.to_vec()));
    if spec.mtu > 0 {
        peer.attributes.push(LinkAttribute::Mtu(spec.mtu));
    }
    peer.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));

    let mut host = LinkMessage::default();
    host.header.flags = LinkFlags::Up;
    host.header.change_mask = LinkFlags::Up;
    host.attributes
        .push(LinkAttribute::IfName(spec.host_name.clone()));
    if spec.mtu > 0 {
        host.attributes.push(LinkAttribute::Mtu(spec.mtu));
    }
    host.attributes
        .push(LinkAttribute::Controller(bridge.header.index));
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    // hairpin: with br_netfilter, a container reaching its own published port is DNATed
    // while being bridged and has to leave by the port it came in on
    let mut hairpin = LinkMessage::default();
    hairpin
        .attributes
        .push(LinkAttribute::IfName(spec.host_name.clone()));
    hairpin.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ]));
    nl.ack(
        RouteNetlinkMessage::NewLink(host),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(|e| match e {
        NlError::Os(libc::EEXIST, _) => Error::Conflict(format!(
            "cannot create veth {}/{}: a link of that name exists",
            spec.host_name, spec.ifname
        )),
        e => e.into_error(&format!("create veth {}/{}", spec.host_name, spec.ifname)),
    })?;

    if let Err(e) = nl.ack(RouteNetlinkMessage::NewLink(hairpin), 0) {
        let _ = nl.del_link(&spec.host_name);
        return Err(e.into_error(&format!("set hairpin mode on {}", spec.host_name)));
    }

    let inside = in_netns_fd(ns, |nl| {
        let idx = nl.get_link(&spec.ifname)?.ok_or_else(|| {
            Error::Netlink(format!(
                "{} missing in the namespace after creation",
                spec.ifname
            ))
        })?;
        nl.add_addr(idx.header.index, spec.addr, spec.prefix)
            .map_err(|e| {
                e.into_error(&format!(
                    "add {}/{} to {}",
                    spec.addr, spec.prefix, spec.ifname
                ))
            })?;
        // this thread is in the namespace, so /proc/sys/net is the container's
        // docker's IPv6 switches inside: off for `all` and `default`, on for `lo` (so `::1`
        // stays) and on for an interface only when it has an IPv6 address
        set_disable_ipv6("all", true)?;
        set_disable_ipv6("default", true)?;
        set_disable_ipv6("lo", false)?;
        set_disable_ipv6(&spec.ifname, spec.addr6.is_none())?;
        if let Some((a6, p6)) = spec.addr6 {
            nl.add_addr6(idx.header.index, a6, p6)
                .map_err(|e| e.into_error(&format!("add {a6}/{p6} to {}", spec.ifname)))?;
        }
        nl.set_up(&spec.ifname)?;
        nl.set_up("lo")?;
        if let Some(gw) = spec.gateway {
            nl.add_default_route(idx.header.index, gw)
                .map_err(|e| e.into_error(&format!("add default route via {gw}")))?;
        }
        if let Some(gw6) = spec.gateway6 {
            nl.add_default_route6(idx.header.index, gw6)
                .map_err(|e| e.into_error(&format!("add default route via {gw6}")))?;
        }
        Ok(())
    });
    if let Err(e) = inside {
        // the peer goes with the host side
        if let Err(e2) = nl.del_link(&spec.host_name) {
            tracing::warn!(veth = %spec.host_name, error = %e2, "cleanup of a failed attach");
        }
        return Err(e);
    }
    Ok(())
}

/// Deletes `ifname` inside a namespace (its host peer goes with it). A link that is not
/// there is not an error; a namespace that is not there is `NotFound`.
pub fn remove_in_netns(netns: &Path, ifname: &str) -> Result<()> {
    check_name(ifname)?;
    let ns = open_netns(netns)?;
    in_netns_fd(ns, |nl| nl.del_link(ifname))
}

/// The interface a namespace's IPv4 default route (main table) leaves by, if it has one
/// (`network disconnect` and a daemon restart finding a container's way out).
pub fn default_route_dev_in_netns(netns: &Path) -> Result<Option<String>> {
    let ns = open_netns(netns)?;
    in_netns_fd(ns, |nl| {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet;
        let oif = nl
            .dump(RouteNetlinkMessage::GetRoute(q))?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r)
                    if r.header.destination_prefix_length == 0
                        && r.header.table == RouteHeader::RT_TABLE_MAIN =>
                {
                    r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::Oif(i) => Some(*i),
                        _ => None,
                    })
                }
                _ => None,
            });
        let Some(oif) = oif else { return Ok(None) };
        Ok(nl
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?
            .into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) if l.header.index == oif => {
                    link_name(&l).map(str::to_string)
                }
                _ => None,
            }))
    })
}

/// Adds a namespace's default routes out of `ifname`: IPv4 via `gw`, IPv6 via `gw6` when
/// given and the namespace has none (the way out moving to another of a container's
/// interfaces).
pub fn add_default_route_in_netns(
    netns: &Path,
    ifname: &str,
    gw: Ipv4Addr,
    gw6: Option<Ipv6Addr>,
) -> Result<()> {
    check_name(ifname)?;
    let ns = open_netns(netns)?;
    in_netns_fd(ns, |nl| {
        let idx = nl
            .get_link(ifname)?
            .ok_or_else(|| Error::NotFound(format!("{ifname} not found in the namespace")))?;
        nl.add_default_route(idx.header.index, gw)
            .map_err(|e| e.into_error(&format!("add default route via {gw}")))?;
        if let Some(gw6) = gw6 {
            match nl.add_default_route6(idx.header.index, gw6) {
                Ok(()) | Err(NlError::Os(libc::EEXIST, _)) => {}
                Err(e) => return Err(e.into_error(&format!("add default route via {gw6}"))),
            }
        }
        Ok(())
    })
}

/// Names of the links inside a namespace (tests, `network connect` picking eth<N>).
pub fn links_in_netns(netns: &Path) -> Result<Vec<String>> {
    let ns = open_netns(netns)?;
    in_netns_fd(ns, |nl| {
        let mut names = Vec::new();
        for m in nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
            if let RouteNetlinkMessage::NewLink(l) = m {
                if let Some(n) = link_name(&l) {
                    names.push(n.to_string());
                }
            }
        }
        Ok(names)
    })
}

// ---------------------------------------------------------------------------------------

pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(Error::InvalidParameter(format!(
            "invalid interface name '{name}'"
        )));
    }
    Ok(())
}

/// `net.ipv6.conf.<link>.disable_ipv6` of the calling thread's namespace; a kernel without
/// IPv6 (no such file) is fine when the wish is to disable it.
fn set_disable_ipv6(link: &str, disable: bool) -> Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    let v = if disable { "1" } else { "0" };
    match std::fs::write(&path, v) {
        Ok(()) => Ok(()),
        Err(e) if disable && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(std::io::Error::new(
            e.kind(),
            format!("{path}: {e}"),
        ))),
    }
}

fn check_prefix(prefix: u8) -> Result<()> {
    if prefix > 32 {
        return Err(Error::InvalidParameter(format!(
            "invalid prefix length {prefix}"
        )));
    }
    Ok(())
}

fn open_netns(path: &Path) -> Result<OwnedFd> {
    match std::fs::File::open(path) {
        Ok(f) => Ok(f.into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(format!(
            "network namespace {} not found",
            path.display()
        ))),
        Err(e) => Err(Error::Io(e)),
    }
}

/// Runs `f` with a netlink socket opened inside the namespace `ns`, on a thread of its own
/// that enters the namespace and ends with `f`.
fn in_netns_fd<T: Send>(ns: OwnedFd, f: impl FnOnce(&mut Nl) -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("berth-netns".into())
            .spawn_scoped(s, move || -> Result<T> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    Error::Io(std::io::Error::other(format!(
                        "setns into a network namespace: {e}"
                    )))
                })?;
                drop(ns);
                let mut nl = Nl::open()?;
                f(&mut nl)
            })
            .map_err(Error::Io)?;
        h.join()
            .unwrap_or_else(|_| Err(Error::Netlink("netns worker thread panicked".into())))
    })
}

pub(crate) fn link_name(l: &LinkMessage) -> Option<&str> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

pub(crate) fn link_mtu(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

pub(crate) fn link_kind(l: &LinkMessage) -> Option<InfoKind> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k.clone()),
            _ => None,
        }),
        _ => None,
    })
}

/// A random unicast, locally administered MAC.
pub(crate) fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

fn broadcast(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let host_mask = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
    Ipv4Addr::from(u32::from(addr) | host_mask)
}

/// A netlink failure: the kernel's errno, or something else already phrased.
#[derive(Debug)]
pub(crate) enum NlError {
    /// errno, and the kernel's extended-ack message if it gave one
    Os(i32, Option<String>),
    Other(Error),
}

impl NlError {
    pub(crate) fn into_error(self, what: &str) -> Error {
        match self {
            NlError::Os(code, msg) => {
                let err = std::io::Error::from_raw_os_error(code);
                match msg {
                    Some(m) => Error::Netlink(format!("{what}: {err} ({m})")),
                    None => Error::Netlink(format!("{what}: {err}")),
                }
            }
            NlError::Other(e) => e,
        }
    }
}

impl From<NlError> for Error {
    fn from(e: NlError) -> Error {
        e.into_error("request")
    }
}

const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// The `NLMSGERR_ATTR_MSG` text of an error answer: `rest` is what follows the errno (the
/// request echoed back — whole, or its header when capped — then attributes).
fn ext_ack_msg(flags: u16, rest: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || rest.len() < 16 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        16
    } else {
        u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize
    };
    let mut off = (echoed + 3) & !3;
    while off + 4 <= rest.len() {
        let len = u16::from_ne_bytes([rest[off], rest[off + 1]]) as usize;
        let ty = u16::from_ne_bytes([rest[off + 2], rest[off + 3]]) & 0x3fff;
        if len < 4 || off + len > rest.len() {
            return None;
        }
        if ty == NLMSGERR_ATTR_MSG {
            let v = &rest[off + 4..off + len];
            let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
            let m = String::from_utf8_lossy(&v[..end]).trim().to_string();
            return (!m.is_empty()).then_some(m);
        }
        off += (len + 3) & !3;
    }
    None
}

/// A blocking rtnetlink socket in the namespace of the thread that opened it.
pub(crate) struct Nl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

const RECV_BUF: usize = 64 * 1024;

impl Nl {
    pub(crate) fn open() -> Result<Nl> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(Error::Io)?;
        sock.bind_auto().map_err(Error::Io)?;
        // the kernel's reason in words along with an errno ("Unknown device type", …)
        if let Err(e) = sock.set_ext_ack(true) {
            tracing::debug!(error = %e, "no netlink extended acks");
        }
        sock.connect(&SocketAddr::new(0, 0)).map_err(Error::Io)?;
        Ok(Nl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends one request and collects the answers to it: until the ACK (`NLM_F_ACK`) or the
    /// end of a dump (`NLM_F_DUMP`).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock
            .send(&out, 0)
            .map_err(|e| NlError::Other(Error::Io(e)))?;

        let mut answers = Vec::new();
        loop {
            self.buf.clear();
            // MSG_TRUNC: the answer's real length, so a message too big for the buffer is
            // an error rather than silently cut
            let n = match self.sock.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(NlError::Other(Error::Io(e))),
            };
            if n > self.buf.len() {
                return Err(NlError::Other(Error::Netlink(format!(
                    "netlink answer of {n} bytes truncated"
                ))));
            }
            let mut off = 0;
            while off < self.buf.len() {
                let bytes = &self.buf[off..];
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                    .map_err(|e| NlError::Other(Error::Netlink(format!("bad answer: {e}"))))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(answers),
                            Some(code) => {
                                let flags = msg.header.flags;
                                Err(NlError::Os(-code.get(), ext_ack_msg(flags, &err.header)))
                            }
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(m) => {
                        answers.push(m);
                        if flags & NLM_F_DUMP != NLM_F_DUMP && flags & NLM_F_ACK == 0 {
                            return Ok(answers);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    pub(crate) fn ack(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<(), NlError> {
        self.request(msg, flags | NLM_F_ACK).map(drop)
    }

    pub(crate) fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>> {
        self.request(msg, NLM_F_DUMP)
            .map_err(|e| e.into_error("dump"))
    }

    pub(crate) fn get_link(&mut self, name: &str) -> Result<Option<LinkMessage>> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(answers) => Ok(answers.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })),
            Err(NlError::Os(libc::ENODEV, _)) => Ok(None),
            Err(e) => Err(e.into_error(&format!("get link {name}"))),
        }
    }

    pub(crate) fn del_link(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.ack(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(()) | Err(NlError::Os(libc::ENODEV, _)) => Ok(()),
            Err(e) => Err(e.into_error(&format!("delete link {name}"))),
        }
    }

    pub(crate) fn set_up(&mut self, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.ack(RouteNetlinkMessage::SetLink(msg), 0)
            .map_err(|e| e.into_error(&format!("set {name} up")))
    }

    /// IPv4 addresses (address, prefix, the message to delete it with), of one link or all.
    pub(crate) fn ipv4_addrs(
        &mut self,
        index: Option<u32>,
    ) -> Result<Vec<(Ipv4Addr, u8, AddressMessage)>> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Inet;
        let mut out = Vec::new();
        for m in self.dump(RouteNetlinkMessage::GetAddress(req))? {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.family != AddressFamily::Inet || index.is_some_and(|i| i != a.header.index)
            {
                continue;
            }
            let local = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            });
            let addr = local.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(addr) = addr {
                out.push((addr, a.header.prefix_len, a));
            }
        }
        Ok(out)
    }

    pub(crate) fn add_addr(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> std::result::Result<(), NlError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Local(IpAddr::V4(addr)));
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V4(addr)));
        if prefix < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(broadcast(addr, prefix)));
        }
        self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Global IPv6 addresses of one link.
    fn ipv6_addrs(&mut self, index: u32) -> Result<Vec<(Ipv6Addr, u8)>> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Inet6;
        let mut out = Vec::new();
        for m in self.dump(RouteNetlinkMessage::GetAddress(req))? {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if a.header.family != AddressFamily::Inet6 || a.header.index != index {
                continue;
            }
            for at in &a.attributes {
                if let AddressAttribute::Address(IpAddr::V6(ip)) = at {
                    out.push((*ip, a.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// An IPv6 address without duplicate address detection (usable at once, as docker's).
    fn add_addr6(
        &mut self,
        index: u32,
        addr: Ipv6Addr,
        prefix: u8,
    ) -> std::result::Result<(), NlError> {
        use netlink_packet_route::address::AddressFlags;
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.prefix_len = prefix;
        msg.header.index = index;
        msg.attributes
            .push(AddressAttribute::Address(IpAddr::V6(addr)));
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.ack(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    fn add_default_route6(&mut self, index: u32, gw: Ipv6Addr) -> std::result::Result<(), NlError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet6(gw)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    fn add_default_route(&mut self, index: u32, gw: Ipv4Addr) -> std::result::Result<(), NlError> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet;
        msg.header.table = RouteHeader::RT_TABLE_MAIN;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.scope = RouteScope::Universe;
        msg.header.kind = RouteType::Unicast;
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
        msg.attributes.push(RouteAttribute::Oif(index));
        self.ack(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["eth0", "veth1234567", "br-0123456789a", "btst0"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "0123456789abcdef", "a/b", "a b", "a:b", ".", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extended_ack_text() {
        // echoed request header (16 bytes, capped), then NLMSGERR_ATTR_MSG "Unknown device type"
        let mut rest = vec![0u8; 16];
        let text = b"Unknown device type\0";
        let len = (4 + text.len()) as u16;
        rest.extend_from_slice(&len.to_ne_bytes());
        rest.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        rest.extend_from_slice(text);
        assert_eq!(
            ext_ack_msg(NLM_F_CAPPED | NLM_F_ACK_TLVS, &rest).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_msg(NLM_F_CAPPED, &rest), None);
        // not capped: the echoed message's own length says where the attributes start
        let mut full = vec![0u8; 20];
        full[..4].copy_from_slice(&20u32.to_ne_bytes());
        full.extend_from_slice(&rest[16..]);
        assert_eq!(
            ext_ack_msg(NLM_F_ACK_TLVS, &full).as_deref(),
            Some("Unknown device type")
        );
        // garbage does not panic
        assert_eq!(ext_ack_msg(NLM_F_ACK_TLVS, &[0xff; 40]), None);
        assert_eq!(ext_ack_msg(NLM_F_ACK_TLVS, &[]), None);
    }

    #[test]
    fn random_macs_are_local_unicast() {
        for _ in 0..100 {
            let m = random_mac();
            assert_eq!(m[0] & 0x03, 0x02);
        }
    }

    #[test]
    fn broadcast_addresses() {
        assert_eq!(
            broadcast(Ipv4Addr::new(172, 17, 0, 1), 16),
            Ipv4Addr::new(172, 17, 255, 255)
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(198, 18, 3, 1), 24),
            Ipv4Addr::new(198, 18, 3, 255)
        );
        assert_eq!(
            broadcast(Ipv4Addr::new(1, 2, 3, 4), 32),
            Ipv4Addr::new(1, 2, 3, 4)
        );
        assert_eq!(broadcast(Ipv4Addr::new(1, 2, 3, 4), 0), Ipv4Addr::BROADCAST);
    }
}
