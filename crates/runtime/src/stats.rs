//! Read-only views of a container's cgroups, for the daemon (`stats`, `top`) and the shim
//! (OOM kills). Nothing here forks, spawns threads or keeps state: every call reads
//! `/proc/self/mountinfo` to find the hierarchies, then a few small files. Missing files
//! (a controller that is not mounted, a kernel without the feature) read as zero.

use crate::cgroups::{self, Hierarchy};
use crate::Result;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `docker stats` needs, from cgroup v1 (or v2 where a controller lives there).
#[derive(Debug, Clone, Default)]
pub struct CgroupStats {
    /// cpuacct.usage (ns)
    pub cpu_total_ns: u64,
    /// cpuacct.usage_percpu (ns)
    pub cpu_percpu_ns: Vec<u64>,
    /// cpuacct.stat user/system converted to ns
    pub cpu_user_ns: u64,
    pub cpu_system_ns: u64,
    /// cpu.stat: nr_periods, nr_throttled, throttled_time (ns)
    pub throttle_periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
    /// memory.usage_in_bytes / max_usage_in_bytes / limit_in_bytes (v2 `max` → u64::MAX)
    pub mem_usage: u64,
    pub mem_max_usage: u64,
    pub mem_limit: u64,
    /// memory.stat key → value (v1 keys, e.g. `total_inactive_file`)
    pub mem_stats: BTreeMap<String, u64>,
    /// memory failcnt
    pub mem_failcnt: u64,
    /// pids.current, pids.max (0 = no limit)
    pub pids_current: u64,
    pub pids_limit: u64,
    /// blkio.throttle.io_service_bytes: (major, minor, op, value), op = Read/Write/Sync/Async/Total
    pub blkio_service_bytes: Vec<(u64, u64, String, u64)>,
    /// OOM kills recorded by the memory cgroup
    pub oom_kills: u64,
}

/// Where the container's files for one controller are: its v1 hierarchy, else the unified one.
enum Dir {
    V1(PathBuf),
    V2(PathBuf),
    None,
}

fn dir_for(hs: &[Hierarchy], rel: &str, controller: &str) -> Dir {
    if let Some(h) = hs.iter().find(|h| h.has(controller)) {
        return Dir::V1(h.mountpoint.join(rel));
    }
    match hs.iter().find(|h| h.controllers.is_empty()) {
        Some(h) => {
            let dir = h.mountpoint.join(rel);
            let enabled = std::fs::read_to_string(dir.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == controller);
            if enabled {
                Dir::V2(dir)
            } else {
                Dir::None
            }
        }
        None => Dir::None,
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A single number; `max` (no limit) and garbage read as 0.
pub(crate) fn parse_num(s: &str) -> u64 {
    s.trim().parse().unwrap_or(0)
}

/// `key value` lines.
pub(crate) fn parse_kv(s: &str) -> BTreeMap<String, u64> {
    s.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let k = w.next()?;
            let v = w.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

pub(crate) fn parse_list(s: &str) -> Vec<u64> {
    s.split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// v1 `blkio.throttle.io_service_bytes`: `8:0 Read 4096` lines (the bare `Total` line is
/// the sum over devices and is left out).
pub(crate) fn parse_blkio(s: &str) -> Vec<(u64, u64, String, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (maj, min) = w.next()?.split_once(':')?;
            let op = w.next()?;
            let v = w.next()?.parse().ok()?;
            Some((maj.parse().ok()?, min.parse().ok()?, op.to_string(), v))
        })
        .collect()
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=…` → Read/Write/Total entries like v1.
pub(crate) fn parse_io_stat(s: &str) -> Vec<(u64, u64, String, u64)> {
    let mut out = Vec::new();
    for l in s.lines() {
        let mut w = l.split_whitespace();
        let Some((maj, min)) = w.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(maj), Ok(min)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = w
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let r = kv.get("rbytes").copied().unwrap_or(0);
        let wr = kv.get("wbytes").copied().unwrap_or(0);
        out.push((maj, min, "Read".to_string(), r));
        out.push((maj, min, "Write".to_string(), wr));
        out.push((maj, min, "Total".to_string(), r + wr));
    }
    out
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no side effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Reads the stats of the cgroup at `cgroups_path` (e.g. `/berth/<id>`).
pub fn stats(cgroups_path: &str) -> Result<CgroupStats> {
    let rel = cgroups::rel(cgroups_path)?;
    let hs = cgroups::hierarchies()?;
    let mut st = CgroupStats::default();

    match dir_for(&hs, rel, "cpuacct") {
        Dir::V1(d) => {
            st.cpu_total_ns = parse_num(&read(&d.join("cpuacct.usage")));
            st.cpu_percpu_ns = parse_list(&read(&d.join("cpuacct.usage_percpu")));
            let kv = parse_kv(&read(&d.join("cpuacct.stat")));
            let ns_per_tick = 1_000_000_000 / clock_ticks();
            st.cpu_user_ns = kv.get("user").copied().unwrap_or(0) * ns_per_tick;
            st.cpu_system_ns = kv.get("system").copied().unwrap_or(0) * ns_per_tick;
        }
        _ => {
            if let Dir::V2(d) = dir_for(&hs, rel, "cpu") {
                let kv = parse_kv(&read(&d.join("cpu.stat")));
                let g = |k: &str| kv.get(k).copied().unwrap_or(0);
                st.cpu_total_ns = g("usage_usec") * 1000;
                st.cpu_user_ns = g("user_usec") * 1000;
                st.cpu_system_ns = g("system_usec") * 1000;
            }
        }
    }
    match dir_for(&hs, rel, "cpu") {
        Dir::V1(d) => {
            let kv = parse_kv(&read(&d.join("cpu.stat")));
            let g = |k: &str| kv.get(k).copied().unwrap_or(0);
            st.throttle_periods = g("nr_periods");
            st.throttled_periods = g("nr_throttled");
            st.throttled_time_ns = g("throttled_time");
        }
        Dir::V2(d) => {
            let kv = parse_kv(&read(&d.join("cpu.stat")));
            let g = |k: &str| kv.get(k).copied().unwrap_or(0);
            st.throttle_periods = g("nr_periods");
            st.throttled_periods = g("nr_throttled");
            st.throttled_time_ns = g("throttled_usec") * 1000;
        }
        Dir::None => {}
    }
    match dir_for(&hs, rel, "memory") {
        Dir::V1(d) => {
            st.mem_usage = parse_num(&read(&d.join("memory.usage_in_bytes")));
            st.mem_max_usage = parse_num(&read(&d.join("memory.max_usage_in_bytes")));
            st.mem_limit = parse_num(&read(&d.join("memory.limit_in_bytes")));
            st.mem_stats = parse_kv(&read(&d.join("memory.stat")));
            st.mem_failcnt = parse_num(&read(&d.join("memory.failcnt")));
            st.oom_kills = parse_kv(&read(&d.join("memory.oom_control")))
                .get("oom_kill")
                .copied()
                .unwrap_or(0);
        }
        Dir::V2(d) => {
            st.mem_usage = parse_num(&read(&d.join("memory.current")));
            st.mem_max_usage = parse_num(&read(&d.join("memory.peak")));
            let max = read(&d.join("memory.max"));
            st.mem_limit = if max.trim() == "max" {
                u64::MAX
            } else {
                parse_num(&max)
            };
            st.mem_stats = parse_kv(&read(&d.join("memory.stat")));
            let ev = parse_kv(&read(&d.join("memory.events")));
            st.mem_failcnt = ev.get("max").copied().unwrap_or(0);
            st.oom_kills = ev.get("oom_kill").copied().unwrap_or(0);
        }
        Dir::None => {}
    }
    match dir_for(&hs, rel, "pids") {
        Dir::V1(d) | Dir::V2(d) => {
            st.pids_current = parse_num(&read(&d.join("pids.current")));
            st.pids_limit = parse_num(&read(&d.join("pids.max")));
        }
        Dir::None => {}
    }
    match dir_for(&hs, rel, "blkio") {
        Dir::V1(d) => {
            st.blkio_service_bytes = parse_blkio(&read(&d.join("blkio.throttle.io_service_bytes")))
        }
        _ => {
            if let Dir::V2(d) = dir_for(&hs, rel, "io") {
                st.blkio_service_bytes = parse_io_stat(&read(&d.join("io.stat")));
            }
        }
    }
    Ok(st)
}

/// OOM kills recorded by the container's memory cgroup (v1 `memory.oom_control`
/// `oom_kill`, v2 `memory.events` `oom_kill`); 0 when unknown.
pub fn oom_kills(cgroups_path: &str) -> u64 {
    let (Ok(rel), Ok(hs)) = (cgroups::rel(cgroups_path), cgroups::hierarchies()) else {
        return 0;
    };
    let (file, d) = match dir_for(&hs, rel, "memory") {
        Dir::V1(d) => ("memory.oom_control", d),
        Dir::V2(d) => ("memory.events", d),
        Dir::None => return 0,
    };
    parse_kv(&read(&d.join(file)))
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

/// PIDs (host view) of every process in the cgroup.
pub fn pids(cgroups_path: &str) -> Result<Vec<i32>> {
    let rel = cgroups::rel(cgroups_path)?;
    let hs = cgroups::hierarchies()?;
    let dir = ["pids", "memory"]
        .iter()
        .find_map(|c| hs.iter().find(|h| h.has(c)))
        .or_else(|| hs.iter().find(|h| h.controllers.is_empty()))
        .map(|h| h.mountpoint.join(rel));
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    Ok(read(&dir.join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_num("42\n"), 42);
        assert_eq!(parse_num("max\n"), 0);
        assert_eq!(parse_num(""), 0);
        let kv = parse_kv("user 12\nsystem 3\nbogus\nx y\n");
        assert_eq!(kv.get("user"), Some(&12));
        assert_eq!(kv.get("system"), Some(&3));
        assert_eq!(kv.len(), 2);
        let oom = parse_kv("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        assert_eq!(oom.get("oom_kill"), Some(&2));
        assert_eq!(parse_list("1 2 3 \n"), [1, 2, 3]);
        let b = parse_blkio("8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n");
        assert_eq!(b.len(), 3);
        assert_eq!(b[1], (8, 0, "Write".to_string(), 8192));
        let io = parse_io_stat("259:0 rbytes=100 wbytes=50 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(
            io,
            [
                (259, 0, "Read".to_string(), 100),
                (259, 0, "Write".to_string(), 50),
                (259, 0, "Total".to_string(), 150)
            ]
        );
    }

    #[test]
    fn missing_cgroup_is_zero() {
        let s = stats("/berth/no-such-cgroup-for-stats-test").unwrap();
        assert_eq!(s.cpu_total_ns, 0);
        assert_eq!(s.mem_usage, 0);
        assert!(pids("/berth/no-such-cgroup-for-stats-test")
            .unwrap()
            .is_empty());
        assert!(stats("/").is_err());
    }
}
