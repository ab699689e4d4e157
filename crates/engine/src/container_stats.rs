//! `stats`: docker's JSON from the container's cgroups, one sample or a stream every second.

use crate::container::Container;
use crate::timefmt::format_rfc3339_nanos;
use crate::{Engine, Error, Result};
use berth_runtime::stats::CgroupStats;
use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// `/proc/stat`'s first line, in nanoseconds (docker's `system_cpu_usage`).
fn system_cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: u64 = s
        .lines()
        .next()
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(7)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    ticks * (1_000_000_000 / 100)
}

/// Per-interface counters from the container's network namespace.
fn networks(pid: i32) -> Value {
    let s = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let mut m = serde_json::Map::new();
    for l in s.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 16 {
            continue;
        }
        m.insert(
            name.to_string(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11]
            }),
        );
    }
    Value::Object(m)
}

#[derive(Clone)]
struct Sample {
    at: SystemTime,
    cg: CgroupStats,
    system: u64,
}

fn cpu_json(s: &Option<Sample>, ncpu: usize) -> Value {
    match s {
        None => {
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
        }
        Some(s) => json!({
            "cpu_usage": {
                "total_usage": s.cg.cpu_total_ns,
                "percpu_usage": s.cg.cpu_percpu_ns,
                "usage_in_kernelmode": s.cg.cpu_system_ns,
                "usage_in_usermode": s.cg.cpu_user_ns
            },
            "system_cpu_usage": s.system,
            "online_cpus": ncpu,
            "throttling_data": {"periods": s.cg.throttle_periods, "throttled_periods": s.cg.throttled_periods, "throttled_time": s.cg.throttled_time_ns}
        }),
    }
}

impl Engine {
    fn sample(&self, c: &Container) -> Result<Sample> {
        let cg =
            berth_runtime::stats::stats(&crate::spec::cgroup_path(&c.record().host_config, &c.id))
                .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Sample {
            at: SystemTime::now(),
            cg,
            system: system_cpu_ns(),
        })
    }

    fn stats_json(&self, c: &Container, cur: &Sample, pre: &Option<Sample>) -> Value {
        let rec = c.record();
        let ncpu = if cur.cg.cpu_percpu_ns.is_empty() {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            cur.cg.cpu_percpu_ns.len()
        };
        let host_mem = {
            let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|k| k * 1024)
                .unwrap_or(0)
        };
        let limit = if cur.cg.mem_limit == 0 || cur.cg.mem_limit > host_mem {
            host_mem
        } else {
            cur.cg.mem_limit
        };
        let blkio: Vec<Value> = cur
            .cg
            .blkio_service_bytes
            .iter()
            .map(|(maj, min, op, v)| json!({"major": maj, "minor": min, "op": op, "value": v}))
            .collect();
        let other_blkio = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Value::Null
        } else {
            json!([])
        };
        let mut v = json!({
            "read": format_rfc3339_nanos(Some(cur.at)),
            "preread": format_rfc3339_nanos(pre.as_ref().map(|p| p.at)),
            "pids_stats": {"current": cur.cg.pids_current},
            // dockerd on cgroup v1 lists each blkio table (empty here), on v2 only the bytes
            "blkio_stats": {
                "io_service_bytes_recursive": blkio, "io_serviced_recursive": other_blkio.clone(),
                "io_queue_recursive": other_blkio.clone(), "io_service_time_recursive": other_blkio.clone(),
                "io_wait_time_recursive": other_blkio.clone(), "io_merged_recursive": other_blkio.clone(),
                "io_time_recursive": other_blkio.clone(), "sectors_recursive": other_blkio
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu_json(&Some(cur.clone()), ncpu),
            "precpu_stats": cpu_json(pre, ncpu),
            "memory_stats": {
                "usage": cur.cg.mem_usage, "max_usage": cur.cg.mem_max_usage,
                "stats": cur.cg.mem_stats, "failcnt": cur.cg.mem_failcnt, "limit": limit
            },
            "name": format!("/{}", rec.name),
            "id": rec.id
        });
        // zero pids limit and failcnt are left out, as dockerd's omitempty
        if cur.cg.pids_limit != 0 {
            v["pids_stats"]["limit"] = json!(cur.cg.pids_limit);
        }
        if cur.cg.mem_failcnt == 0 {
            if let Some(m) = v["memory_stats"].as_object_mut() {
                m.remove("failcnt");
            }
        }
        let nets = networks(rec.state.pid);
        if nets.as_object().map(|m| !m.is_empty()).unwrap_or(false) {
            v["networks"] = nets;
        }
        v
    }

    /// One sample (with `precpu` from a sample 100 ms earlier unless `one_shot`), or a stream
    /// of samples every second until the receiver is dropped or the container stops.
    pub fn stats(
        self: &Arc<Self>,
        name_or_id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<Bytes>> {
        let c = self.get_container(name_or_id)?;
        let (tx, rx) = mpsc::channel(4);
        let engine = self.clone();
        tokio::spawn(async move {
            let running = |c: &Container| c.state().status.is_running();
            let mut pre: Option<Sample> = None;
            if !stream && !one_shot && running(&c) {
                pre = engine.sample(&c).ok();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            loop {
                let body = if running(&c) {
                    match engine.sample(&c) {
                        Ok(cur) => {
                            let v = engine.stats_json(&c, &cur, &pre);
                            pre = Some(cur);
                            v
                        }
                        Err(_) => {
                            json!({"read": "0001-01-01T00:00:00Z", "name": format!("/{}", c.name()), "id": c.id})
                        }
                    }
                } else {
                    // docker sends zeroed stats for a stopped container
                    json!({"read": "0001-01-01T00:00:00Z", "preread": "0001-01-01T00:00:00Z", "pids_stats": {}, "blkio_stats": {}, "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu_json(&None, 0), "precpu_stats": cpu_json(&None, 0), "memory_stats": {}, "name": format!("/{}", c.name()), "id": c.id})
                };
                let mut b = serde_json::to_vec(&body).unwrap_or_default();
                b.push(b'\n');
                if tx.send(Bytes::from(b)).await.is_err() || !stream {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                if !engine
                    .containers
                    .read()
                    .expect("containers lock")
                    .contains_key(&c.id)
                {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
