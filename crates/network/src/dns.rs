//! The embedded DNS server: for each container on a user network the daemon binds UDP and
//! TCP sockets on 127.0.0.11:53 *inside* the container's network namespace (a socket stays
//! in the namespace it was made in) and answers from the daemon's own runtime. Names of
//! containers on the querier's networks (name, aliases, short ID) get A records; other
//! names are forwarded to the upstream servers from the host's namespace.
//!
//! The wire format (RFC 1035) is read and written here: only what a stub resolver sends
//! is understood (one question); everything else is relayed to the upstreams untouched.

use crate::{Error, Result};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// What the engine knows; called for every query, on the daemon's runtime (so it must not
/// block: answer from memory).
pub trait Lookup: Send + Sync + 'static {
    /// The addresses `name` (lower-cased, without the trailing dot) has for this container:
    /// empty when it is not a container name on any of its networks.
    fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr>;
    /// The IPv6 addresses of `name` on this container's `--ipv6` networks (AAAA answers);
    /// none by default.
    fn lookup6(&self, container_id: &str, name: &str) -> Vec<std::net::Ipv6Addr> {
        let _ = (container_id, name);
        Vec::new()
    }
    /// Where to forward other names: the container's `--dns` servers, else the daemon's
    /// (`berthd --dns`), else the host's resolv.conf nameservers.
    fn upstreams(&self, container_id: &str) -> Vec<SocketAddr>;
    /// The container's search domains (its resolv.conf `search`): a query for
    /// `web.<domain>` is also looked up as `web`. None by default.
    fn search_domains(&self, container_id: &str) -> Vec<String> {
        let _ = container_id;
        Vec::new()
    }
    /// The name for a PTR query of `ip` (a container's address on one of its networks,
    /// e.g. `web.mynet`), or None to forward the query. None by default.
    fn reverse(&self, container_id: &str, ip: Ipv4Addr) -> Option<String> {
        let _ = (container_id, ip);
        None
    }
}

/// Serving one container; dropping it stops the tasks and closes the sockets (which also
/// lets the kernel free the namespace once the container is gone).
///
/// Dropping aborts the tasks; the runtime drops them (and so closes the sockets) right
/// after. `stop().await` returns only once the listening sockets are closed.
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
impl DnsHandle {
    /// Stops serving and waits until the listening sockets are closed (so 127.0.0.11:53
    /// can be bound again in that namespace at once).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Where the embedded server listens inside a container's namespace.
pub const EMBEDDED_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 11), 53);
/// How long one upstream gets to answer a forwarded query.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);
/// TTL of the A records of container names (docker's).
pub const TTL: u32 = 600;

const UDP_MAX: usize = 512;
const TCP_MAX: usize = 65535;
const MAX_FORWARDS: usize = 256;
const MAX_TCP_CONNS: usize = 64;
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Binds 127.0.0.11:53 (UDP and TCP) in `netns` (e.g. `/proc/<pid>/ns/net`) and serves it
/// on the current tokio runtime. A names → A records; AAAA of a known name → NOERROR with
/// no answer; anything else forwarded (UDP, 2 s timeout, SERVFAIL if no upstream answers).
///
/// Must be called inside a tokio runtime. It blocks the calling thread briefly while a
/// helper thread enters the namespace, brings `lo` up if it is down, and binds.
/// Errors: NotFound if `netns` is not there, Io for the rest (e.g. the address is taken).
pub fn serve(container_id: &str, netns: &Path, lookup: Arc<dyn Lookup>) -> Result<DnsHandle> {
    let rt = tokio::runtime::Handle::try_current()
        .map_err(|e| Error::Io(io::Error::other(format!("dns: no tokio runtime: {e}"))))?;
    let path = netns.to_path_buf();
    let (udp, tcp) = std::thread::Builder::new()
        .name("berth-dns-bind".into())
        .spawn(move || bind_in_netns(&path))?
        .join()
        .map_err(|_| Error::Io(io::Error::other("dns: namespace thread panicked")))??;
    let _enter = rt.enter();
    let udp = tokio::net::UdpSocket::from_std(udp)?;
    let tcp = tokio::net::TcpListener::from_std(tcp)?;
    let ctx = Arc::new(Ctx {
        id: container_id.to_string(),
        lookup,
    });
    info!(container = %container_id, netns = %netns.display(), "dns: serving {EMBEDDED_ADDR}");
    let tasks = vec![
        rt.spawn(serve_udp(udp, ctx.clone())),
        rt.spawn(serve_tcp(tcp, ctx)),
    ];
    Ok(DnsHandle { tasks })
}

/// On a thread of its own: enter the namespace, bring `lo` up, bind both sockets.
fn bind_in_netns(path: &Path) -> Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::NotFound(format!("network namespace {}: {e}", path.display()))
        } else {
            Error::Io(e)
        }
    })?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::Io(io::Error::other(format!(
            "setns {}: {}",
            path.display(),
            io::Error::from(e)
        )))
    })?;
    ensure_lo_up()?;
    let udp = std::net::UdpSocket::bind(EMBEDDED_ADDR)?;
    udp.set_nonblocking(true)?;
    let tcp = std::net::TcpListener::bind(EMBEDDED_ADDR)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// Sets IFF_UP on `lo` of the calling thread's namespace if it is not set.
fn ensure_lo_up() -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the descriptor is owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut ifr) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads the ifreq we pass.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS as _, &ifr) } < 0 {
        return Err(io::Error::last_os_error());
    }
    debug!("dns: brought lo up");
    Ok(())
}

struct Ctx {
    id: String,
    lookup: Arc<dyn Lookup>,
}

impl Ctx {
    /// Forwards `raw` (a parsed query `q`) and returns what goes back to the querier.
    async fn forward(&self, raw: &[u8], q: &Query, tcp: bool) -> Vec<u8> {
        let ups = self.lookup.upstreams(&self.id);
        match forward(raw, &ups, tcp).await {
            Some(r) => r,
            None => {
                debug!(container = %self.id, "dns: no upstream answered; SERVFAIL");
                reply(
                    q,
                    RCODE_SERVFAIL,
                    false,
                    &[],
                    if tcp { TCP_MAX } else { UDP_MAX },
                )
            }
        }
    }
}

async fn serve_udp(sock: tokio::net::UdpSocket, ctx: Arc<Ctx>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, SocketAddr)>(64);
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let (n, peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        debug!(container = %ctx.id, "dns: udp recv: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let msg = &buf[..n];
                match decide(msg, &ctx, UDP_MAX) {
                    Action::Drop => {}
                    Action::Reply(r) => send_udp(&sock, &r, peer).await,
                    Action::Forward(q) => {
                        while forwards.try_join_next().is_some() {}
                        if forwards.len() >= MAX_FORWARDS {
                            warn!(container = %ctx.id, "dns: too many queries in flight; dropped one");
                            continue;
                        }
                        let raw = msg.to_vec();
                        let (tx, ctx) = (tx.clone(), ctx.clone());
                        forwards.spawn(async move {
                            let r = ctx.forward(&raw, &q, false).await;
                            let _ = tx.send((r, peer)).await;
                        });
                    }
                }
            }
            Some((r, peer)) = rx.recv() => send_udp(&sock, &r, peer).await,
        }
    }
}

async fn send_udp(sock: &tokio::net::UdpSocket, msg: &[u8], peer: SocketAddr) {
    if let Err(e) = sock.send_to(msg, peer).await {
        debug!("dns: udp send to {peer}: {e}");
    }
}

async fn serve_tcp(listener: tokio::net::TcpListener, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(container = %ctx.id, "dns: tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_TCP_CONNS {
            warn!(container = %ctx.id, "dns: too many tcp connections; closed {peer}");
            continue;
        }
        conns.spawn(tcp_conn(stream, ctx.clone()));
    }
}

/// Length-prefixed messages, answered in order, until EOF, an error or 10 s idle.
async fn tcp_conn(mut s: tokio::net::TcpStream, ctx: Arc<Ctx>) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE, s.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let r = match decide(&msg, &ctx, TCP_MAX) {
            Action::Drop => continue,
            Action::Reply(r) => r,
            Action::Forward(q) => ctx.forward(&msg, &q, true).await,
        };
        let Ok(n) = u16::try_from(r.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(r.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&r);
        if s.write_all(&out).await.is_err() {
            return;
        }
    }
}

// ---- answering ------------------------------------------------------------------------

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_FORMERR: u8 = 1;
const RCODE_SERVFAIL: u8 = 2;
const RCODE_NOTIMP: u8 = 4;

#[derive(Debug)]
enum Action {
    Drop,
    Reply(Vec<u8>),
    Forward(Query),
}

/// What to do with one message from a container.
fn decide(msg: &[u8], ctx: &Ctx, max: usize) -> Action {
    let q = match parse_query(msg) {
        Ok(q) => q,
        Err(Bad::Ignore) => return Action::Drop,
        Err(Bad::Reply { id, flags, rcode }) => return Action::Reply(bare_reply(id, flags, rcode)),
    };
    if q.qclass == CLASS_IN {
        if let Some(name) = lookup_name(&q.labels) {
            if let Some(r) = answer_locally(&q, &name, ctx, max) {
                debug!(container = %ctx.id, %name, qtype = q.qtype, "dns: answered");
                return Action::Reply(r);
            }
            debug!(container = %ctx.id, %name, qtype = q.qtype, "dns: forwarding");
        }
    }
    Action::Forward(q)
}

fn answer_locally(q: &Query, name: &str, ctx: &Ctx, max: usize) -> Option<Vec<u8>> {
    match q.qtype {
        TYPE_A | TYPE_AAAA => {
            let search = ctx.lookup.search_domains(&ctx.id);
            for cand in candidates(name, &search) {
                let ips = ctx.lookup.lookup(&ctx.id, &cand);
                if ips.is_empty() {
                    continue;
                }
                let answers: Vec<Rdata> = if q.qtype == TYPE_A {
                    ips.into_iter().map(Rdata::A).collect()
                } else {
                    ctx.lookup
                        .lookup6(&ctx.id, &cand)
                        .into_iter()
                        .map(Rdata::Aaaa)
                        .collect()
                };
                return Some(reply(q, 0, true, &answers, max));
            }
            None
        }
        TYPE_PTR => {
            let ip = parse_reverse(name)?;
            let target = ctx.lookup.reverse(&ctx.id, ip)?;
            let labels = name_labels(&target)?;
            Some(reply(q, 0, true, &[Rdata::Ptr(labels)], max))
        }
        _ => None,
    }
}

/// `name`, then `name` without each search domain it ends with.
fn candidates(name: &str, search: &[String]) -> Vec<String> {
    let mut v = vec![name.to_string()];
    for d in search {
        let d = d.trim_matches('.').to_ascii_lowercase();
        if d.is_empty() {
            continue;
        }
        if let Some(short) = name.strip_suffix(d.as_str()) {
            if let Some(short) = short.strip_suffix('.') {
                if !short.is_empty() && !v.iter().any(|c| c == short) {
                    v.push(short.to_string());
                }
            }
        }
    }
    v
}

/// The name the engine is asked about: labels lower-cased, joined with dots; None for the
/// root or a label with a dot or a byte outside printable ASCII (never a container name).
fn lookup_name(labels: &[Vec<u8>]) -> Option<String> {
    if labels.is_empty() {
        return None;
    }
    let mut s = String::new();
    for l in labels {
        if l.iter().any(|&b| b == b'.' || !(0x21..=0x7e).contains(&b)) {
            return None;
        }
        if !s.is_empty() {
            s.push('.');
        }
        s.extend(l.iter().map(|&b| char::from(b.to_ascii_lowercase())));
    }
    Some(s)
}

/// `5.0.18.198.in-addr.arpa` → 198.18.0.5
fn parse_reverse(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<&str> = rest.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut o = [0u8; 4];
    for (i, p) in parts.iter().rev().enumerate() {
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        o[i] = p.parse().ok()?;
    }
    Some(Ipv4Addr::from(o))
}

/// A dotted name as wire labels; None if a label is empty or too long or the name is.
fn name_labels(name: &str) -> Option<Vec<Vec<u8>>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<Vec<u8>> = name.split('.').map(|l| l.as_bytes().to_vec()).collect();
    let total: usize = labels.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    if total > 255 || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
        return None;
    }
    Some(labels)
}

// ---- forwarding -----------------------------------------------------------------------

/// Sends `query` to each upstream in turn (UDP, 2 s each; a truncated answer to a TCP
/// querier is fetched again over TCP) and returns the first answer with the querier's ID.
async fn forward(query: &[u8], upstreams: &[SocketAddr], tcp: bool) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    for up in upstreams {
        let xid: u16 = rand::random();
        let mut msg = query.to_vec();
        msg[..2].copy_from_slice(&xid.to_be_bytes());
        let mut r = match forward_udp(&msg, xid, *up).await {
            Ok(r) => r,
            Err(e) => {
                debug!("dns: upstream {up}: {e}");
                continue;
            }
        };
        if tcp && r[2] & 0x02 != 0 {
            match forward_tcp(&msg, xid, *up).await {
                Ok(t) => r = t,
                Err(e) => debug!("dns: upstream {up} over tcp: {e}"),
            }
        }
        r[..2].copy_from_slice(&query[..2]);
        return Some(r);
    }
    None
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

/// One exchange with one upstream; only a response with our ID from that address counts.
async fn forward_udp(msg: &[u8], xid: u16, up: SocketAddr) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if up.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(msg).await?;
    let mut buf = vec![0u8; 65535];
    tokio::time::timeout(FORWARD_TIMEOUT, async {
        loop {
            let n = sock.recv(&mut buf).await?;
            if is_response_to(&buf[..n], xid) {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    })
    .await
    .map_err(|_| timed_out())?
}

async fn forward_tcp(msg: &[u8], xid: u16, up: SocketAddr) -> io::Result<Vec<u8>> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::other("query too long"))?;
    tokio::time::timeout(FORWARD_TIMEOUT, async {
        let mut s = tokio::net::TcpStream::connect(up).await?;
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(msg);
        s.write_all(&out).await?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(l))];
        s.read_exact(&mut buf).await?;
        if !is_response_to(&buf, xid) {
            return Err(io::Error::other("unexpected answer"));
        }
        Ok(buf)
    })
    .await
    .map_err(|_| timed_out())?
}

fn is_response_to(msg: &[u8], xid: u16) -> bool {
    msg.len() >= 12 && msg[..2] == xid.to_be_bytes() && msg[2] & 0x80 != 0
}

// ---- wire format ----------------------------------------------------------------------

/// A query's header and its one question.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    id: u16,
    flags: u16,
    /// the labels as sent (case kept: the question is echoed unchanged)
    labels: Vec<Vec<u8>>,
    qtype: u16,
    qclass: u16,
}

/// Why a message is not a query we answer.
#[derive(Debug, PartialEq, Eq)]
enum Bad {
    /// too short to answer, or a response: drop it
    Ignore,
    /// answer with this rcode and no question
    Reply { id: u16, flags: u16, rcode: u8 },
}

fn be16(msg: &[u8], at: usize) -> Option<u16> {
    let b = msg.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

fn parse_query(msg: &[u8]) -> std::result::Result<Query, Bad> {
    let (Some(id), Some(flags), Some(qdcount)) = (be16(msg, 0), be16(msg, 2), be16(msg, 4)) else {
        return Err(Bad::Ignore);
    };
    if msg.len() < 12 || flags & 0x8000 != 0 {
        return Err(Bad::Ignore);
    }
    let err = |rcode| Bad::Reply { id, flags, rcode };
    if (flags >> 11) & 0xf != 0 {
        return Err(err(RCODE_NOTIMP));
    }
    if qdcount != 1 {
        return Err(err(RCODE_FORMERR));
    }
    let (labels, end) = read_name(msg, 12).ok_or(err(RCODE_FORMERR))?;
    let (Some(qtype), Some(qclass)) = (be16(msg, end), be16(msg, end + 2)) else {
        return Err(err(RCODE_FORMERR));
    };
    Ok(Query {
        id,
        flags,
        labels,
        qtype,
        qclass,
    })
}

/// Reads the name at `pos`, following compression pointers (each must point before
/// itself, so there are no loops); returns its labels and where the name ends in place.
fn read_name(msg: &[u8], mut pos: usize) -> Option<(Vec<Vec<u8>>, usize)> {
    let mut labels = Vec::new();
    let mut total = 1usize; // the root label
    let mut end = None;
    loop {
        let len = usize::from(*msg.get(pos)?);
        match len & 0xc0 {
            0x00 if len == 0 => return Some((labels, end.unwrap_or(pos + 1))),
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len)?;
                total += len + 1;
                if total > 255 {
                    return None;
                }
                labels.push(label.to_vec());
                pos += 1 + len;
            }
            0xc0 => {
                let target = ((len & 0x3f) << 8) | usize::from(*msg.get(pos + 1)?);
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None, // 0x40 and 0x80 label types are not in use
        }
    }
}

/// Record data of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rdata {
    A(Ipv4Addr),
    Aaaa(std::net::Ipv6Addr),
    Ptr(Vec<Vec<u8>>),
}

fn push_header(out: &mut Vec<u8>, id: u16, qflags: u16, aa: bool, rcode: u8, qd: u16) {
    let mut flags =
        0x8000 | (qflags & 0x7800) | (qflags & 0x0100) | 0x0080 | u16::from(rcode & 0xf);
    if aa {
        flags |= 0x0400;
    }
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&qd.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
}

/// A reply without a question (FORMERR, NOTIMP).
fn bare_reply(id: u16, qflags: u16, rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    push_header(&mut out, id, qflags, false, rcode, 0);
    out
}

fn push_labels(out: &mut Vec<u8>, labels: &[Vec<u8>]) {
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// The reply to `q`: its question echoed, then `answers` (owner name compressed to the
/// question's); answers that would make the message longer than `max` are left out and
/// TC is set.
fn reply(q: &Query, rcode: u8, aa: bool, answers: &[Rdata], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    push_header(&mut out, q.id, q.flags, aa, rcode, 1);
    push_labels(&mut out, &q.labels);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    let mut count: u16 = 0;
    for a in answers {
        let mut rr = vec![0xc0, 0x0c];
        let (rtype, rdata) = match a {
            Rdata::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Rdata::Aaaa(ip) => (TYPE_AAAA, ip.octets().to_vec()),
            Rdata::Ptr(labels) => {
                let mut d = Vec::new();
                push_labels(&mut d, labels);
                (TYPE_PTR, d)
            }
        };
        rr.extend_from_slice(&rtype.to_be_bytes());
        rr.extend_from_slice(&CLASS_IN.to_be_bytes());
        rr.extend_from_slice(&TTL.to_be_bytes());
        rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        rr.extend_from_slice(&rdata);
        if out.len() + rr.len() > max || count == u16::MAX {
            out[2] |= 0x02; // TC
            break;
        }
        out.extend_from_slice(&rr);
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
    out
}

// ---- resolv.conf ----------------------------------------------------------------------

/// A parsed resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    /// The nameservers as forwarding targets (port 53), loopback ones included: the
    /// embedded server forwards from the host's namespace, where they work. Entries that
    /// are not addresses are skipped.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.nameservers
            .iter()
            .filter_map(|n| ns_addr(n))
            .map(|ip| SocketAddr::new(ip, 53))
            .collect()
    }
}

/// `nameserver` value → address (an IPv6 zone suffix `%eth0` is dropped).
fn ns_addr(s: &str) -> Option<IpAddr> {
    s.split('%').next()?.parse().ok()
}

/// `nameserver` lines (the first word of each), `search` / `domain` (the last such line
/// wins, as in glibc), `options` (all lines, in order). Lines starting with `#` or `;` are
/// comments.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut rc = ResolvConf::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ns) = words.next() {
                    rc.nameservers.push(ns.to_string());
                }
            }
            Some("search") => rc.search = words.map(String::from).collect(),
            Some("domain") => rc.search = words.next().map(String::from).into_iter().collect(),
            Some("options") => rc.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    rc
}

/// The resolv.conf a container gets, as docker writes it. `embedded`: `nameserver
/// 127.0.0.11` (user networks; `options ndots:0` added unless options say otherwise).
/// Otherwise: the given servers, else the host's without loopback ones (none left: docker's
/// fallback 8.8.8.8 and 8.8.4.4). `search`/`options` override the host's when not empty.
///
/// The host's IPv6 nameservers are left out too (berth networks are IPv4-only, as docker
/// does without IPv6); `--dns-search .` means no search line.
pub fn container_resolv_conf(
    host: &ResolvConf,
    dns: &[String],
    search: &[String],
    options: &[String],
    embedded: bool,
) -> String {
    let servers: Vec<String> = if embedded {
        vec![EMBEDDED_ADDR.ip().to_string()]
    } else if !dns.is_empty() {
        dns.to_vec()
    } else {
        let kept: Vec<String> = host
            .nameservers
            .iter()
            .filter(|n| matches!(ns_addr(n), Some(IpAddr::V4(ip)) if !ip.is_loopback()))
            .cloned()
            .collect();
        if kept.is_empty() {
            vec!["8.8.8.8".into(), "8.8.4.4".into()]
        } else {
            kept
        }
    };
    let search: Vec<String> = if search.is_empty() {
        host.search.clone()
    } else if search.iter().all(|s| s == ".") {
        Vec::new()
    } else {
        search.to_vec()
    };
    let mut opts: Vec<String> = if options.is_empty() {
        host.options.clone()
    } else {
        options.to_vec()
    };
    if embedded && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.push("ndots:0".into());
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A query as a stub resolver sends it.
    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in name
            .trim_end_matches('.')
            .split('.')
            .filter(|l| !l.is_empty())
        {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&CLASS_IN.to_be_bytes());
        m
    }

    struct Fake {
        upstreams: Mutex<Vec<SocketAddr>>,
    }
    impl Lookup for Fake {
        fn lookup(&self, _c: &str, name: &str) -> Vec<Ipv4Addr> {
            match name {
                "web" => vec![Ipv4Addr::new(198, 18, 0, 5)],
                "many" => (0..100).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect(),
                _ => vec![],
            }
        }
        fn upstreams(&self, _c: &str) -> Vec<SocketAddr> {
            self.upstreams.lock().unwrap().clone()
        }
        fn search_domains(&self, _c: &str) -> Vec<String> {
            vec!["corp.example.".into()]
        }
        fn reverse(&self, _c: &str, ip: Ipv4Addr) -> Option<String> {
            (ip == Ipv4Addr::new(198, 18, 0, 5)).then(|| "web.mynet".into())
        }
    }
    fn ctx() -> Ctx {
        Ctx {
            id: "c1".into(),
            lookup: Arc::new(Fake {
                upstreams: Mutex::new(vec![]),
            }),
        }
    }

    /// (id, flags, qd, an, answers' A addresses) of a reply we built
    fn answers(r: &[u8]) -> (u16, u16, u16, u16, Vec<Ipv4Addr>) {
        let id = be16(r, 0).unwrap();
        let flags = be16(r, 2).unwrap();
        let qd = be16(r, 4).unwrap();
        let an = be16(r, 6).unwrap();
        let mut pos = 12;
        for _ in 0..qd {
            pos = read_name(r, pos).unwrap().1 + 4;
        }
        let mut ips = vec![];
        for _ in 0..an {
            let (_, p) = read_name(r, pos).unwrap();
            let rtype = be16(r, p).unwrap();
            let ttl = u32::from_be_bytes(r[p + 4..p + 8].try_into().unwrap());
            assert_eq!(ttl, 600);
            let len = usize::from(be16(r, p + 8).unwrap());
            if rtype == TYPE_A {
                assert_eq!(len, 4);
                ips.push(Ipv4Addr::new(r[p + 10], r[p + 11], r[p + 12], r[p + 13]));
            }
            pos = p + 10 + len;
        }
        assert_eq!(pos, r.len(), "no trailing bytes");
        (id, flags, qd, an, ips)
    }

    fn reply_of(msg: &[u8], max: usize) -> Vec<u8> {
        match decide(msg, &ctx(), max) {
            Action::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_query() {
        let q = parse_query(&query(0x1234, "Web.", TYPE_A)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.labels, vec![b"Web".to_vec()]);
        assert_eq!((q.qtype, q.qclass), (TYPE_A, CLASS_IN));
        assert_eq!(lookup_name(&q.labels).as_deref(), Some("web"));
    }

    #[test]
    fn follows_compression_pointers() {
        // header, then at 12 "example.com", at 25 a question "www" + pointer to 12
        let mut m = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x07example\x03com\x00");
        let q_at = m.len();
        m.extend_from_slice(b"\x03www\xc0\x0c\x00\x01\x00\x01");
        let (labels, end) = read_name(&m, q_at).unwrap();
        assert_eq!(
            labels,
            vec![b"www".to_vec(), b"example".to_vec(), b"com".to_vec()]
        );
        assert_eq!(end, q_at + 6);
        // a name that is only a pointer to an earlier one
        let mut m2 = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m2.extend_from_slice(b"\x03web\x00\xc0\x0c\x00\x01\x00\x01");
        assert_eq!(read_name(&m2, 17).unwrap(), (vec![b"web".to_vec()], 19));
        // a pointer to where it stands
        let mut m3 = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m3.extend_from_slice(b"\x03web\xc0\x0c");
        assert!(read_name(&m3, 12).is_none(), "pointer to itself is refused");
        // the root name
        let mut m4 = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m4.extend_from_slice(b"\x00\x00\x01\x00\x01");
        assert!(parse_query(&m4).unwrap().labels.is_empty());
    }

    #[test]
    fn refuses_pointer_loops_and_forward_pointers() {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0xc0, 14, 0xc0, 12]); // 12 → 14 (forward): refused
        assert!(read_name(&m, 12).is_none());
        assert!(read_name(&m, 14).is_none(), "14 → 12 → 14 loop");
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&[0x40, 1, 0]); // reserved label type
        assert!(read_name(&m, 12).is_none());
        // a name longer than 255 bytes
        let mut m = vec![0u8; 12];
        for _ in 0..5 {
            m.push(63);
            m.extend_from_slice(&[b'a'; 63]);
        }
        m.push(0);
        assert!(read_name(&m, 12).is_none());
    }

    #[test]
    fn malformed_and_truncated_never_panic() {
        let good = query(0x4242, "some.name.example", TYPE_A);
        for n in 0..good.len() {
            let _ = decide(&good[..n], &ctx(), UDP_MAX);
        }
        assert!(matches!(decide(&good[..5], &ctx(), UDP_MAX), Action::Drop));
        match decide(&good[..20], &ctx(), UDP_MAX) {
            Action::Reply(r) => {
                assert_eq!(&r[..2], &[0x42, 0x42]);
                assert_eq!(r[3] & 0xf, RCODE_FORMERR);
            }
            other => panic!("{other:?}"),
        }
        // pseudo-random garbage, and garbage behind a valid header
        let mut x: u32 = 0x1234_5678;
        for round in 0..20_000 {
            let len = (round % 90) as usize;
            let mut m: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if round % 2 == 0 && m.len() >= 12 {
                m[2] = 1;
                m[3] = 0;
                m[4] = 0;
                m[5] = 1;
            }
            let _ = decide(&m, &ctx(), UDP_MAX);
        }
    }

    #[test]
    fn header_rules() {
        let mut resp = query(1, "web", TYPE_A);
        resp[2] |= 0x80;
        assert!(
            matches!(decide(&resp, &ctx(), UDP_MAX), Action::Drop),
            "responses are dropped"
        );
        let mut two = query(2, "web", TYPE_A);
        two[5] = 2;
        assert_eq!(reply_of(&two, UDP_MAX)[3] & 0xf, RCODE_FORMERR);
        let mut none = query(3, "web", TYPE_A);
        none[5] = 0;
        assert_eq!(reply_of(&none, UDP_MAX)[3] & 0xf, RCODE_FORMERR);
        let mut notify = query(4, "web", TYPE_A);
        notify[2] = 0x20; // opcode 4
        let r = reply_of(&notify, UDP_MAX);
        assert_eq!(r[3] & 0xf, RCODE_NOTIMP);
        assert_eq!((r[2] >> 3) & 0xf, 4, "opcode echoed");
    }

    #[test]
    fn answers_known_names() {
        for name in [
            "web",
            "web.",
            "WEB",
            "Web.corp.example",
            "web.CORP.example.",
        ] {
            let q = query(0xbeef, name, TYPE_A);
            let r = reply_of(&q, UDP_MAX);
            let (id, flags, qd, an, ips) = answers(&r);
            assert_eq!(id, 0xbeef);
            assert_eq!(flags & 0x8000, 0x8000, "QR");
            assert_eq!(flags & 0x0400, 0x0400, "AA");
            assert_eq!(flags & 0x0100, 0x0100, "RD echoed");
            assert_eq!(flags & 0x000f, 0, "NOERROR");
            assert_eq!((qd, an), (1, 1));
            assert_eq!(ips, vec![Ipv4Addr::new(198, 18, 0, 5)]);
            // the question is echoed as sent (case kept)
            assert_eq!(&r[12..q.len()], &q[12..], "{name}");
        }
        let r = reply_of(&query(7, "web", TYPE_AAAA), UDP_MAX);
        let (_, flags, qd, an, _) = answers(&r);
        assert_eq!((flags & 0xf, qd, an), (0, 1, 0));
    }

    #[test]
    fn forwards_the_rest() {
        for (name, t) in [
            ("db", TYPE_A),
            ("web", 15), // MX of a known name: docker forwards it
            ("web.other.example", TYPE_A),
            ("corp.example", TYPE_A),
            ("1.0.0.10.in-addr.arpa", TYPE_PTR),
            ("", TYPE_A),
        ] {
            let q = query(9, name, t);
            assert!(
                matches!(decide(&q, &ctx(), UDP_MAX), Action::Forward(_)),
                "{name}"
            );
        }
        let mut chaos = query(9, "web", TYPE_A);
        let n = chaos.len();
        chaos[n - 1] = 3; // class CH
        assert!(matches!(
            decide(&chaos, &ctx(), UDP_MAX),
            Action::Forward(_)
        ));
        // a label with a dot in it is never a container name
        let mut m = vec![0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03w.b\x00\x00\x01\x00\x01");
        assert!(matches!(decide(&m, &ctx(), UDP_MAX), Action::Forward(_)));
    }

    #[test]
    fn answers_ptr_of_known_addresses() {
        let r = reply_of(&query(5, "5.0.18.198.in-addr.arpa", TYPE_PTR), UDP_MAX);
        let (_, flags, _, an, _) = answers(&r);
        assert_eq!((flags & 0xf, an), (0, 1));
        assert!(r.ends_with(b"\x03web\x05mynet\x00"));
        assert_eq!(
            parse_reverse("5.0.18.198.in-addr.arpa"),
            Some(Ipv4Addr::new(198, 18, 0, 5))
        );
        assert_eq!(parse_reverse("0.18.198.in-addr.arpa"), None);
        assert_eq!(parse_reverse("256.0.18.198.in-addr.arpa"), None);
        assert_eq!(parse_reverse("x.0.18.198.in-addr.arpa"), None);
    }

    #[test]
    fn truncates_to_fit() {
        let r = reply_of(&query(6, "many", TYPE_A), UDP_MAX);
        assert!(r.len() <= UDP_MAX);
        let (_, flags, _, an, ips) = answers(&r);
        assert_eq!(flags & 0x0200, 0x0200, "TC");
        assert!(an > 20 && an < 100, "{an}");
        assert_eq!(ips.len(), usize::from(an));
        let r = reply_of(&query(6, "many", TYPE_A), TCP_MAX);
        let (_, flags, _, an, _) = answers(&r);
        assert_eq!((flags & 0x0200, an), (0, 100));
    }

    #[test]
    fn servfail_keeps_the_question() {
        let q = parse_query(&query(0x0102, "nosuch.example", TYPE_A)).unwrap();
        let r = reply(&q, RCODE_SERVFAIL, false, &[], UDP_MAX);
        let (id, flags, qd, an, _) = answers(&r);
        assert_eq!(
            (id, flags & 0xf, flags & 0x0400, qd, an),
            (0x0102, 2, 0, 1, 0)
        );
    }

    #[test]
    fn search_domain_candidates() {
        let s = vec![
            "corp.example".to_string(),
            ".".to_string(),
            "example".to_string(),
        ];
        assert_eq!(candidates("web", &s), vec!["web"]);
        assert_eq!(
            candidates("web.corp.example", &s),
            vec!["web.corp.example", "web", "web.corp"]
        );
        assert_eq!(candidates("corp.example", &s), vec!["corp.example", "corp"]);
        assert_eq!(
            candidates("xcorp.example", &s),
            vec!["xcorp.example", "xcorp"]
        );
    }

    #[tokio::test]
    async fn forwarding_relays_with_the_queriers_id() {
        // a tiny upstream on loopback: answers with its own bytes + the ID it got
        let up = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up_addr = up.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (n, peer) = up.recv_from(&mut buf).unwrap();
            let mut r = buf[..n].to_vec();
            r[2] |= 0x80;
            r[3] = (r[3] & 0xf0) | 3; // NXDOMAIN
            up.send_to(&r, peer).unwrap();
        });
        let q = query(0x7777, "nosuch.example", TYPE_A);
        let r = forward(&q, &[up_addr], false).await.unwrap();
        t.join().unwrap();
        assert_eq!(&r[..2], &[0x77, 0x77]);
        assert_eq!(r[3] & 0xf, 3);
        assert_eq!(&r[4..], &q[4..]);
        assert!(forward(&q, &[], false).await.is_none());
    }

    #[tokio::test]
    async fn truncated_forward_is_fetched_again_over_tcp_for_tcp_queriers() {
        // an upstream on loopback answering UDP with TC set and TCP in full
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let udp = std::net::UdpSocket::bind(addr).unwrap();
        let t = std::thread::spawn(move || {
            for _ in 0..2 {
                let mut buf = [0u8; 512];
                let (n, peer) = udp.recv_from(&mut buf).unwrap();
                let mut r = buf[..n].to_vec();
                r[2] |= 0x82; // QR, TC
                udp.send_to(&r, peer).unwrap();
            }
            let (mut s, _) = tcp.accept().unwrap();
            use std::io::{Read, Write};
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            let mut m = vec![0u8; usize::from(u16::from_be_bytes(l))];
            s.read_exact(&mut m).unwrap();
            m[2] |= 0x80;
            m[7] = 1;
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            s.write_all(&(m.len() as u16).to_be_bytes()).unwrap();
            s.write_all(&m).unwrap();
        });
        let q = query(0x0a0b, "big.example", TYPE_A);
        // a UDP querier gets the truncated answer as it is
        let r = forward(&q, &[addr], false).await.unwrap();
        assert_eq!(
            (&r[..2], r[2] & 0x02, be16(&r, 6)),
            (&[0x0a, 0x0b][..], 0x02, Some(0))
        );
        // a TCP querier gets the full one
        let r = forward(&q, &[addr], true).await.unwrap();
        assert_eq!(
            (&r[..2], r[2] & 0x02, be16(&r, 6)),
            (&[0x0a, 0x0b][..], 0, Some(1))
        );
        t.join().unwrap();
    }

    #[test]
    fn resolv_conf_parse() {
        let rc = parse_resolv_conf(
            "# comment\n; other\nnameserver 10.0.0.2\nnameserver 127.0.0.53 extra\n\
             domain a.example\nsearch b.example c.example\noptions ndots:2\noptions edns0 \n\
             nameserver fe80::1%eth0\nbogus line\n",
        );
        assert_eq!(
            rc.nameservers,
            vec!["10.0.0.2", "127.0.0.53", "fe80::1%eth0"]
        );
        assert_eq!(rc.search, vec!["b.example", "c.example"]);
        assert_eq!(rc.options, vec!["ndots:2", "edns0"]);
        assert_eq!(
            rc.upstreams(),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.53:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap(),
            ]
        );
        let rc = parse_resolv_conf("search x.example\ndomain y.example\n");
        assert_eq!(rc.search, vec!["y.example"], "last of search/domain wins");
        assert_eq!(parse_resolv_conf(""), ResolvConf::default());
    }

    #[test]
    fn resolv_conf_for_containers() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let host = ResolvConf {
            nameservers: s(&["127.0.0.53", "10.0.0.2", "2001:db8::1", "::1"]),
            search: s(&["corp.example"]),
            options: s(&["edns0"]),
        };
        assert_eq!(
            container_resolv_conf(&host, &[], &[], &[], true),
            "nameserver 127.0.0.11\nsearch corp.example\noptions edns0 ndots:0\n"
        );
        assert_eq!(
            container_resolv_conf(&host, &s(&["1.1.1.1"]), &[], &s(&["ndots:3"]), true),
            "nameserver 127.0.0.11\nsearch corp.example\noptions ndots:3\n"
        );
        assert_eq!(
            container_resolv_conf(&host, &[], &[], &[], false),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        let local_only = ResolvConf {
            nameservers: s(&["127.0.0.53"]),
            ..Default::default()
        };
        assert_eq!(
            container_resolv_conf(&local_only, &[], &[], &[], false),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            container_resolv_conf(
                &host,
                &s(&["9.9.9.9", "2001:db8::53"]),
                &s(&["a.example", "b.example"]),
                &s(&["timeout:1", "attempts:2"]),
                false
            ),
            "nameserver 9.9.9.9\nnameserver 2001:db8::53\nsearch a.example b.example\noptions timeout:1 attempts:2\n"
        );
        assert_eq!(
            container_resolv_conf(&host, &[], &s(&["."]), &[], true),
            "nameserver 127.0.0.11\noptions edns0 ndots:0\n"
        );
    }
}
