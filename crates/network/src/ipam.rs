//! Subnets and address pools (IPv4).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;

/// What IPv4 and IPv6 subnets share, for code that checks a network's IPAM config of either
/// family the same way.
pub trait Cidr: Copy {
    type Addr: Copy + std::str::FromStr + std::fmt::Display;
    fn parse_cidr(s: &str) -> Result<Self>;
    fn base_addr(&self) -> Self::Addr;
    fn prefix_len(&self) -> u8;
    fn holds(&self, ip: Self::Addr) -> bool;
    fn overlaps_with(&self, other: &Self) -> bool;
    fn gateway_default(&self) -> Self::Addr;
}

/// Both subnet types have the same fields (`addr`, `prefix`) and inherent methods.
macro_rules! impl_cidr {
    ($subnet:ty, $addr:ty) => {
        impl Cidr for $subnet {
            type Addr = $addr;
            fn parse_cidr(s: &str) -> Result<Self> {
                <$subnet>::parse(s)
            }
            fn base_addr(&self) -> $addr {
                self.addr
            }
            fn prefix_len(&self) -> u8 {
                self.prefix
            }
            fn holds(&self, ip: $addr) -> bool {
                self.contains(ip)
            }
            fn overlaps_with(&self, other: &Self) -> bool {
                self.overlaps(other)
            }
            fn gateway_default(&self) -> $addr {
                self.first_host()
            }
        }
    };
}
impl_cidr!(Subnet, Ipv4Addr);
impl_cidr!(crate::ipam6::Subnet6, std::net::Ipv6Addr);

/// An IPv4 subnet, always held normalised (host bits cleared). Serialises as "a.b.c.d/n".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

fn mask_of(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

impl Subnet {
    /// Parses "172.18.0.0/16" (host bits are cleared: "172.18.0.1/16" is 172.18.0.0/16);
    /// a bare address is a /32. Errors: `invalid CIDR address: x` (InvalidParameter).
    pub fn parse(s: &str) -> Result<Subnet> {
        let bad = || Error::InvalidParameter(format!("invalid CIDR address: {s}"));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let p: u8 = p.parse().map_err(|_| bad())?;
                (a, p)
            }
            None => (s, 32),
        };
        if prefix > 32 {
            return Err(bad());
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        Ok(Subnet::new(addr, prefix))
    }
    /// `addr/prefix` with the host bits cleared (a prefix above 32 is taken as 32).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let prefix = prefix.min(32);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask_of(prefix)),
            prefix,
        }
    }
    /// The netmask as a number (`0xffff0000` for a /16).
    pub fn mask(&self) -> u32 {
        mask_of(self.prefix)
    }
    /// The netmask as an address (`255.255.0.0` for a /16).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask())
    }
    fn base(&self) -> u32 {
        u32::from(self.addr) & self.mask()
    }
    /// How many addresses the subnet spans (network and broadcast included).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix.min(32)))
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == self.base()
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        // the shorter prefix decides: both bases agree on its bits
        let m = mask_of(self.prefix.min(other.prefix));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
    /// True when `other` lies wholly inside `self`.
    pub fn contains_subnet(&self, other: &Subnet) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
    /// the first host address (docker's default gateway): .1 of a /16
    /// (for a /31 or /32 the first address of the subnet).
    pub fn first_host(&self) -> Ipv4Addr {
        if self.prefix >= 31 {
            Ipv4Addr::from(self.base())
        } else {
            Ipv4Addr::from(self.base() + 1)
        }
    }
    /// The last address of the subnet (for a /31 or /32 the last address, too).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() | !self.mask())
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}
impl std::str::FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        Subnet::parse(s)
    }
}
impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subnet::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// docker's default address pools, in order: 172.17.0.0/16 … 172.31.0.0/16, then
/// 192.168.0.0/20, 192.168.16.0/20 … 192.168.240.0/20.
pub fn default_pools() -> Vec<Subnet> {
    let mut v: Vec<Subnet> = (17..=31u8)
        .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
        .collect();
    v.extend((0..16u8).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20)));
    v
}

/// The IPv4 subnets in use on the host: every route of the main table and every address's
/// subnet (read through netlink or /proc/net/route + addresses). The default route is not
/// counted.
///
/// Routes come from `/proc/net/route` (the main table), addresses from `getifaddrs(3)`.
/// Sorted, without duplicates.
pub fn host_subnets() -> Result<Vec<Subnet>> {
    let mut out = BTreeSet::new();
    let routes = std::fs::read_to_string("/proc/net/route")?;
    out.extend(parse_proc_net_route(&routes));
    out.extend(interface_subnets()?);
    Ok(out.into_iter().collect())
}

/// The non-default routes of a `/proc/net/route` text (addresses are little-endian hex).
pub fn parse_proc_net_route(text: &str) -> Vec<Subnet> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // the kernel prints the network-order words as host-order numbers
        let dst = u32::from_be_bytes(dst.to_ne_bytes());
        let mask = u32::from_be_bytes(mask.to_ne_bytes());
        if mask == 0 {
            continue; // default route
        }
        let prefix = mask.leading_ones() as u8;
        out.push(Subnet::new(Ipv4Addr::from(dst), prefix));
    }
    out
}

fn interface_subnets() -> Result<Vec<Subnet>> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_netmask.is_null() {
            continue;
        }
        // SAFETY: non-null sockaddr pointers from getifaddrs; family checked before the cast.
        unsafe {
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            let a = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let m = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
            let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let mask = u32::from_be(m.sin_addr.s_addr);
            out.push(Subnet::new(addr, mask.leading_ones() as u8));
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The first default pool that overlaps neither `taken` (other networks of this daemon)
/// nor any subnet in use on the host. Error when all are used:
/// `could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network`.
pub fn pick_subnet(taken: &[Subnet]) -> Result<Subnet> {
    let host = host_subnets()?;
    pick_subnet_from(&default_pools(), taken, &host)
}

/// The daemon's `default-address-pools` (`(base, size)`: every `/size` subnet of `base`), or
/// docker's defaults when none are given: the first subnet overlapping nothing in `taken` nor
/// on the host.
pub fn pick_subnet_in(pools: &[(Subnet, u8)], taken: &[Subnet]) -> Result<Subnet> {
    if pools.is_empty() {
        return pick_subnet(taken);
    }
    let host = host_subnets()?;
    pick_split_from(pools, taken, &host)
}

/// `pick_subnet_in` without looking at the host.
pub fn pick_split_from(
    pools: &[(Subnet, u8)],
    taken: &[Subnet],
    host: &[Subnet],
) -> Result<Subnet> {
    for (base, size) in pools {
        if *size < base.prefix || *size > 32 {
            continue;
        }
        let step = 1u64 << (32 - *size as u32);
        let count = 1u64 << (*size - base.prefix) as u32;
        let start = u32::from(base.addr) as u64;
        for i in 0..count {
            let Ok(a) = u32::try_from(start + i * step) else {
                break;
            };
            let c = Subnet::new(Ipv4Addr::from(a), *size);
            if !taken.iter().chain(host).any(|t| c.overlaps(t)) {
                return Ok(c);
            }
        }
    }
    Err(Error::Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
    ))
}

/// `pick_subnet` without looking at the host: the first of `pools` overlapping nothing in
/// `taken` nor in `host`.
pub fn pick_subnet_from(pools: &[Subnet], taken: &[Subnet], host: &[Subnet]) -> Result<Subnet> {
    pools
        .iter()
        .find(|p| !taken.iter().chain(host).any(|t| p.overlaps(t)))
        .copied()
        .ok_or_else(|| {
            Error::Conflict(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })
}

/// Holds a process-wide (all berth daemons on this host) exclusive lock while subnets are
/// picked and bridges created, so two daemons never take the same pool. Dropped = released.
pub struct HostLock {
    _file: std::fs::File,
}

/// Where `host_lock` locks.
pub const HOST_LOCK_PATH: &str = "/run/lock/berth-network.lock";

/// flock on `/run/lock/berth-network.lock` (created if missing). Blocks until the lock is
/// free: call it off the async runtime's workers (`spawn_blocking`) when it may wait.
pub fn host_lock() -> Result<HostLock> {
    lock_file(std::path::Path::new(HOST_LOCK_PATH))
}

/// `host_lock` on another path (its directory is created if missing).
pub fn lock_file(path: &std::path::Path) -> Result<HostLock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e.into());
        }
    }
    Ok(HostLock { _file: file })
}

/// The addresses of one network: which are taken, which comes next.
#[derive(Debug, Clone)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// `--ip-range` / `--fixed-cidr`: dynamic addresses come only from here
    pub range: Option<Subnet>,
    used: BTreeSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
}

const NO_ADDRESSES: &str = "no available IPv4 addresses on this network's address pools";

impl Pool {
    /// The gateway is reserved; the network and broadcast addresses are never handed out
    /// (a /31 or /32 has neither). Errors (InvalidParameter) if the gateway or range is
    /// outside the subnet: `no matching subnet for gateway 10.1.0.1`,
    /// `no matching subnet for range 10.1.0.0/24`.
    pub fn new(subnet: Subnet, gateway: Ipv4Addr, range: Option<Subnet>) -> Result<Pool> {
        let subnet = Subnet::new(subnet.addr, subnet.prefix);
        if !subnet.contains(gateway) {
            return Err(Error::InvalidParameter(format!(
                "no matching subnet for gateway {gateway}"
            )));
        }
        let range = range.map(|r| Subnet::new(r.addr, r.prefix));
        if let Some(r) = range {
            if !subnet.contains_subnet(&r) {
                return Err(Error::InvalidParameter(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        let mut used = BTreeSet::new();
        used.insert(gateway);
        Ok(Pool {
            subnet,
            gateway,
            range,
            used,
            last: None,
        })
    }
    /// network and broadcast addresses, which are never handed out
    fn is_special(&self, ip: Ipv4Addr) -> bool {
        self.subnet.prefix <= 30 && (ip == self.subnet.addr || ip == self.subnet.broadcast())
    }
    /// Takes a given address (`--ip`, or one read back from a record at daemon start).
    /// Conflict `Address already in use` when taken (the gateway, network and broadcast
    /// addresses are); InvalidParameter
    /// `no configured subnet or ip-range contain the IP address 10.0.0.5` when outside.
    /// A given address may lie outside `range` (docker's rule); it does not move the
    /// sequential allocation.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> Result<()> {
        if !self.subnet.contains(ip) {
            return Err(Error::InvalidParameter(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
        if self.is_special(ip) || !self.used.insert(ip) {
            return Err(Error::Conflict("Address already in use".into()));
        }
        Ok(())
    }
    /// The next free address after the last one handed out (docker's sequential order,
    /// wrapping around), from `range` if set. Conflict
    /// `no available IPv4 addresses on this network's address pools` when full (the caller
    /// adds `: NAME (ID)` as docker does).
    pub fn allocate(&mut self) -> Result<Ipv4Addr> {
        let r = self.range.unwrap_or(self.subnet);
        let (mut lo, mut hi) = (u32::from(r.addr), u32::from(r.broadcast()));
        if self.subnet.prefix <= 30 {
            lo = lo.max(u32::from(self.subnet.addr) + 1);
            hi = hi.min(u32::from(self.subnet.broadcast()) - 1);
        }
        if lo > hi {
            return Err(Error::Conflict(NO_ADDRESSES.into()));
        }
        let start = match self.last.map(u32::from) {
            Some(l) if l >= lo && l < hi => l + 1,
            _ => lo,
        };
        let found = self.first_free(start, hi).or_else(|| {
            if start > lo {
                self.first_free(lo, start - 1)
            } else {
                None
            }
        });
        match found {
            Some(ip) => {
                self.used.insert(ip);
                self.last = Some(ip);
                Ok(ip)
            }
            None => Err(Error::Conflict(NO_ADDRESSES.into())),
        }
    }
    /// the lowest address in `from..=to` not in `used`
    fn first_free(&self, from: u32, to: u32) -> Option<Ipv4Addr> {
        if from > to {
            return None;
        }
        let mut want = from;
        for ip in self
            .used
            .range(Ipv4Addr::from(from)..=Ipv4Addr::from(to))
            .map(|ip| u32::from(*ip))
        {
            if ip != want {
                break;
            }
            if want == to {
                return None;
            }
            want += 1;
        }
        Some(Ipv4Addr::from(want))
    }
    /// Gives an address back; the gateway stays reserved, unknown addresses are ignored.
    pub fn release(&mut self, ip: Ipv4Addr) {
        if ip != self.gateway {
            self.used.remove(&ip);
        }
    }
    /// Whether `ip` cannot be reserved: handed out, the gateway, or the network/broadcast
    /// address.
    pub fn in_use(&self, ip: Ipv4Addr) -> bool {
        self.used.contains(&ip) || (self.subnet.contains(ip) && self.is_special(ip))
    }
    /// The addresses handed out or reserved (the gateway included), in order.
    pub fn used(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.used.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Subnet {
        Subnet::parse(x).expect(x)
    }
    fn ip(x: &str) -> Ipv4Addr {
        x.parse().expect(x)
    }

    #[test]
    fn parse_normalises() {
        assert_eq!(s("172.18.0.1/16"), Subnet::new(ip("172.18.0.0"), 16));
        assert_eq!(s("172.18.0.1/16").to_string(), "172.18.0.0/16");
        assert_eq!(s("10.1.2.3").to_string(), "10.1.2.3/32");
        assert_eq!(s("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(s("10.255.255.255/8").to_string(), "10.0.0.0/8");
        assert_eq!(
            "192.168.5.7/20".parse::<Subnet>().unwrap().to_string(),
            "192.168.0.0/20"
        );
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "x",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0/8",
            "10.0.0.0.0/8",
            "256.0.0.0/8",
            "10.0.0.0/8/8",
            " 10.0.0.0/8",
            "10.0.0.0/ 8",
            "10.0.0.0/008",
            "::1/128",
            "010.0.0.0/8",
        ] {
            match Subnet::parse(bad) {
                Err(Error::InvalidParameter(m)) => {
                    assert_eq!(m, format!("invalid CIDR address: {bad}"))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn serde_round_trip() {
        let v = serde_json::to_string(&s("172.20.3.4/16")).unwrap();
        assert_eq!(v, "\"172.20.0.0/16\"");
        let back: Subnet = serde_json::from_str(&v).unwrap();
        assert_eq!(back, s("172.20.0.0/16"));
        let err = serde_json::from_str::<Subnet>("\"nope\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid CIDR address: nope"),
            "{err}"
        );
    }

    #[test]
    fn contains_overlaps_hosts() {
        let n = s("172.18.0.0/16");
        assert!(n.contains(ip("172.18.255.255")));
        assert!(n.contains(ip("172.18.0.0")));
        assert!(!n.contains(ip("172.19.0.0")));
        assert!(n.overlaps(&s("172.18.5.0/24")));
        assert!(s("172.18.5.0/24").overlaps(&n));
        assert!(n.overlaps(&s("172.0.0.0/8")));
        assert!(!n.overlaps(&s("172.19.0.0/16")));
        assert!(s("0.0.0.0/0").overlaps(&n));
        assert!(n.contains_subnet(&s("172.18.1.0/24")));
        assert!(!s("172.18.1.0/24").contains_subnet(&n));
        assert_eq!(n.first_host(), ip("172.18.0.1"));
        assert_eq!(n.broadcast(), ip("172.18.255.255"));
        assert_eq!(n.netmask(), ip("255.255.0.0"));
        assert_eq!(n.size(), 65536);
        assert_eq!(s("10.0.0.4/31").first_host(), ip("10.0.0.4"));
        assert_eq!(s("10.0.0.4/31").broadcast(), ip("10.0.0.5"));
        assert_eq!(s("10.0.0.4/32").broadcast(), ip("10.0.0.4"));
        assert_eq!(s("0.0.0.0/0").broadcast(), ip("255.255.255.255"));
        assert_eq!(s("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn default_pools_are_dockers() {
        let p = default_pools();
        assert_eq!(p.len(), 31);
        assert_eq!(p[0].to_string(), "172.17.0.0/16");
        assert_eq!(p[14].to_string(), "172.31.0.0/16");
        assert_eq!(p[15].to_string(), "192.168.0.0/20");
        assert_eq!(p[16].to_string(), "192.168.16.0/20");
        assert_eq!(p[30].to_string(), "192.168.240.0/20");
        for (i, a) in p.iter().enumerate() {
            for b in &p[i + 1..] {
                assert!(!a.overlaps(b), "{a} {b}");
            }
        }
    }

    #[test]
    fn configured_pools_are_split_by_size() {
        let pools = [(s("10.123.0.0/16"), 24)];
        let got = pick_split_from(&pools, &[s("10.123.0.0/24")], &[s("10.123.1.0/25")]).unwrap();
        assert_eq!(got, s("10.123.2.0/24"));
        let full = [(s("10.9.0.0/30"), 30)];
        assert!(pick_split_from(&full, &[s("10.9.0.0/30")], &[]).is_err());
    }

    #[test]
    fn pick_skips_taken_and_host() {
        let pools = default_pools();
        let got = pick_subnet_from(&pools, &[s("172.17.0.0/16")], &[s("172.18.3.0/24")]).unwrap();
        assert_eq!(got, s("172.19.0.0/16"));
        let got = pick_subnet_from(&pools, &[s("172.16.0.0/12")], &[s("192.168.0.0/24")]).unwrap();
        assert_eq!(got, s("192.168.16.0/20"));
        match pick_subnet_from(&pools, &[s("172.16.0.0/12")], &[s("192.168.0.0/16")]) {
            Err(Error::Conflict(m)) => assert_eq!(
                m,
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
br-1\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t0A0200C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
junk\n";
        assert_eq!(
            parse_proc_net_route(text),
            vec![s("172.17.0.0/16"), s("192.0.2.0/24"), s("192.0.2.10/32")]
        );
    }

    #[test]
    fn host_subnets_reads_this_host() {
        let subs = host_subnets().unwrap();
        // loopback's address is always there in this namespace
        assert!(subs.iter().any(|n| n.contains(ip("127.0.0.1"))), "{subs:?}");
        assert!(subs.iter().all(|n| n.prefix > 0));
    }

    #[test]
    fn lock_file_creates_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/x.lock");
        let l = lock_file(&path).unwrap();
        assert!(path.exists());
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: flock on our own descriptor.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, -1, "lock should be held");
        drop(l);
        // SAFETY: as above.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(r, 0, "lock should be free");
    }

    #[test]
    fn pool_sequential_like_docker() {
        let mut p = Pool::new(s("172.18.0.0/16"), ip("172.18.0.1"), None).unwrap();
        assert!(p.in_use(ip("172.18.0.1")));
        assert!(p.in_use(ip("172.18.0.0")));
        assert!(p.in_use(ip("172.18.255.255")));
        assert!(!p.in_use(ip("172.18.0.2")));
        assert_eq!(p.allocate().unwrap(), ip("172.18.0.2"));
        assert_eq!(p.allocate().unwrap(), ip("172.18.0.3"));
        p.release(ip("172.18.0.2"));
        // after the last one handed out, not the lowest free one
        assert_eq!(p.allocate().unwrap(), ip("172.18.0.4"));
        p.reserve(ip("172.18.0.5")).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("172.18.0.6"));
        p.release(ip("172.18.0.1"));
        assert!(p.in_use(ip("172.18.0.1")), "gateway stays reserved");
        p.release(ip("9.9.9.9"));
    }

    #[test]
    fn pool_wraps_and_fills() {
        let mut p = Pool::new(s("10.0.0.0/29"), ip("10.0.0.1"), None).unwrap();
        let got: Vec<_> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
        );
        match p.allocate() {
            Err(Error::Conflict(m)) => {
                assert_eq!(
                    m,
                    "no available IPv4 addresses on this network's address pools"
                )
            }
            other => panic!("{other:?}"),
        }
        p.release(ip("10.0.0.3"));
        p.release(ip("10.0.0.5"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.3"), "wraps around");
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.5"));
        assert!(p.allocate().is_err());
    }

    #[test]
    fn pool_range() {
        let mut p = Pool::new(s("10.0.0.0/24"), ip("10.0.0.1"), Some(s("10.0.0.128/30"))).unwrap();
        let got: Vec<_> = (0..4).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(
            got,
            ["10.0.0.128", "10.0.0.129", "10.0.0.130", "10.0.0.131"].map(ip)
        );
        assert!(p.allocate().is_err());
        // a given address may be outside the range but inside the subnet
        p.reserve(ip("10.0.0.7")).unwrap();
        // a range at the subnet's end never yields the broadcast address
        let mut p =
            Pool::new(s("10.0.0.0/24"), ip("10.0.0.254"), Some(s("10.0.0.252/30"))).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.252"));
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.253"));
        assert!(p.allocate().is_err());
        // the gateway inside the range is skipped
        let mut p = Pool::new(s("10.0.0.0/24"), ip("10.0.0.8"), Some(s("10.0.0.8/31"))).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.9"));
        assert!(p.allocate().is_err());
    }

    #[test]
    fn pool_errors() {
        match Pool::new(s("10.0.0.0/24"), ip("10.1.0.1"), None) {
            Err(Error::InvalidParameter(m)) => {
                assert_eq!(m, "no matching subnet for gateway 10.1.0.1")
            }
            other => panic!("{other:?}"),
        }
        match Pool::new(s("10.0.0.0/24"), ip("10.0.0.1"), Some(s("10.0.0.0/16"))) {
            Err(Error::InvalidParameter(m)) => {
                assert_eq!(m, "no matching subnet for range 10.0.0.0/16")
            }
            other => panic!("{other:?}"),
        }
        let mut p = Pool::new(s("10.0.0.0/24"), ip("10.0.0.1"), None).unwrap();
        match p.reserve(ip("10.0.1.5")) {
            Err(Error::InvalidParameter(m)) => {
                assert_eq!(
                    m,
                    "no configured subnet or ip-range contain the IP address 10.0.1.5"
                )
            }
            other => panic!("{other:?}"),
        }
        for taken in ["10.0.0.1", "10.0.0.0", "10.0.0.255"] {
            match p.reserve(ip(taken)) {
                Err(Error::Conflict(m)) => assert_eq!(m, "Address already in use"),
                other => panic!("{taken}: {other:?}"),
            }
        }
        p.reserve(ip("10.0.0.9")).unwrap();
        assert!(matches!(p.reserve(ip("10.0.0.9")), Err(Error::Conflict(_))));
        p.release(ip("10.0.0.9"));
        p.reserve(ip("10.0.0.9")).unwrap();
        assert_eq!(
            p.used().collect::<Vec<_>>(),
            [ip("10.0.0.1"), ip("10.0.0.9")]
        );
    }

    #[test]
    fn pool_tiny_subnets() {
        // a /31 has no network/broadcast address: the other one is usable
        let mut p = Pool::new(s("10.0.0.4/31"), ip("10.0.0.4"), None).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.5"));
        assert!(p.allocate().is_err());
        let mut p = Pool::new(s("10.0.0.4/32"), ip("10.0.0.4"), None).unwrap();
        assert!(p.allocate().is_err());
        // a /30 has exactly two hosts
        let mut p = Pool::new(s("10.0.0.4/30"), ip("10.0.0.5"), None).unwrap();
        assert_eq!(p.allocate().unwrap(), ip("10.0.0.6"));
        assert!(p.allocate().is_err());
    }

    #[test]
    fn pool_big_subnet_is_cheap() {
        let mut p = Pool::new(s("10.0.0.0/8"), ip("10.0.0.1"), None).unwrap();
        for _ in 0..10_000 {
            p.allocate().unwrap();
        }
        assert_eq!(p.allocate().unwrap(), ip("10.0.39.18"));
    }
}
