//! `ContainerStats` and `ListContainerStats` (`crictl stats`): CPU and memory from the
//! engine's cgroup sample, the writable layer's usage.

use crate::ctr_meta::Meta;
use crate::{pb, Cri, Result};
use berth_engine::Container;
use serde_json::Value;
use std::sync::Arc;

/// CPU nanoseconds and the working set (usage less inactive file pages) of a docker stats
/// sample.
pub fn cpu_and_memory(v: &Value) -> (u64, u64) {
    let cpu = v["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_u64()
        .unwrap_or(0);
    let usage = v["memory_stats"]["usage"].as_u64().unwrap_or(0);
    let inactive = v["memory_stats"]["stats"]["inactive_file"]
        .as_u64()
        .or(v["memory_stats"]["stats"]["total_inactive_file"].as_u64())
        .unwrap_or(0);
    (cpu, usage.saturating_sub(inactive))
}

impl Cri {
    /// The container's stats and its process count.
    pub(crate) async fn stats_of(
        &self,
        c: &Arc<Container>,
        m: &Meta,
    ) -> Result<(pb::ContainerStats, u64)> {
        let mut rx = self.engine.stats(&c.id, false, true)?;
        let sample: Value = match rx.recv().await {
            Some(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
            None => Value::Null,
        };
        let (cpu, mem) = cpu_and_memory(&sample);
        let pids = sample["pids_stats"]["current"].as_u64().unwrap_or(0);
        let ts = crate::now_nanos();
        let stats = pb::ContainerStats {
            attributes: Some(pb::ContainerAttributes {
                id: c.id.clone(),
                metadata: Some(m.metadata.clone()),
                labels: m.labels.clone(),
                annotations: m.annotations.clone(),
            }),
            cpu: Some(pb::CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: Some(pb::UInt64Value { value: cpu }),
                usage_nano_cores: None,
            }),
            memory: Some(pb::MemoryUsage {
                timestamp: ts,
                working_set_bytes: Some(pb::UInt64Value { value: mem }),
                ..Default::default()
            }),
            writable_layer: Some(pb::FilesystemUsage {
                timestamp: ts,
                fs_id: Some(pb::FilesystemIdentifier {
                    mountpoint: self
                        .engine
                        .config()
                        .data_root
                        .join("overlay2")
                        .to_string_lossy()
                        .into_owned(),
                }),
                used_bytes: Some(pb::UInt64Value { value: 0 }),
                inodes_used: Some(pb::UInt64Value { value: 0 }),
            }),
        };
        Ok((stats, pids))
    }

    pub(crate) async fn container_stats(
        &self,
        r: pb::ContainerStatsRequest,
    ) -> Result<pb::ContainerStatsResponse> {
        let (c, m) = self.cri_container(&r.container_id)?;
        Ok(pb::ContainerStatsResponse {
            stats: Some(self.stats_of(&c, &m).await?.0),
        })
    }

    pub(crate) async fn list_container_stats(
        &self,
        r: pb::ListContainerStatsRequest,
    ) -> Result<pb::ListContainerStatsResponse> {
        let f = r.filter.unwrap_or_default();
        let mut stats = Vec::new();
        for (c, m) in self.cri_containers() {
            if !c.state().status.is_running()
                || (!f.id.is_empty() && !c.id.starts_with(&f.id))
                || (!f.pod_sandbox_id.is_empty() && !m.sandbox.starts_with(&f.pod_sandbox_id))
                || !crate::pod_list::labels_match(&m.labels, &f.label_selector)
            {
                continue;
            }
            stats.push(self.stats_of(&c, &m).await?.0);
        }
        Ok(pb::ListContainerStatsResponse { stats })
    }
}
