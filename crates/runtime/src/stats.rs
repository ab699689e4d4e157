//! Read-only views of a container's cgroups, for the daemon (`stats`, `top`).
//! INTERFACE STUB — nothing here forks or changes anything.

use crate::Result;
use std::collections::BTreeMap;

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
    /// memory.usage_in_bytes / max_usage_in_bytes / limit_in_bytes
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

/// Reads the stats of the cgroup at `cgroups_path` (e.g. `/berth/<id>`).
pub fn stats(_cgroups_path: &str) -> Result<CgroupStats> {
    todo!()
}

/// PIDs (host view) of every process in the cgroup.
pub fn pids(_cgroups_path: &str) -> Result<Vec<i32>> {
    todo!()
}
