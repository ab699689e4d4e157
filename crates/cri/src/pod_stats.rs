//! `PodSandboxStats` and `ListPodSandboxStats` (`crictl statsp`): the pod's containers'
//! CPU and memory summed, its network interface counters (read in the pause process's
//! network namespace through `/proc/<pid>/net/dev`), its process count.

use crate::pod_store::Pod;
use crate::{pb, Cri, Result};

/// `(name, rx_bytes, rx_errors, tx_bytes, tx_errors)` of each interface in a
/// `/proc/net/dev` text, loopback left out.
pub fn net_dev(text: &str) -> Vec<(String, u64, u64, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let n: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            let name = name.trim();
            (name != "lo" && n.len() >= 11).then(|| (name.to_string(), n[0], n[2], n[8], n[10]))
        })
        .collect()
}

impl Cri {
    async fn pod_stats_of(&self, pod: &Pod) -> Result<pb::PodSandboxStats> {
        let ts = crate::now_nanos();
        let mut containers = Vec::new();
        let (mut cpu, mut mem, mut procs) = (0u64, 0u64, 0u64);
        for (c, m) in self.cri_containers() {
            if m.sandbox != pod.id || !c.state().status.is_running() {
                continue;
            }
            let (s, pids) = self.stats_of(&c, &m).await?;
            cpu += s
                .cpu
                .as_ref()
                .and_then(|x| x.usage_core_nano_seconds.as_ref())
                .map_or(0, |v| v.value);
            mem += s
                .memory
                .as_ref()
                .and_then(|x| x.working_set_bytes.as_ref())
                .map_or(0, |v| v.value);
            procs += pids;
            containers.push(s);
        }
        let network = (pod.ready && !pod.host_network() && pod.pid > 0)
            .then(|| std::fs::read_to_string(format!("/proc/{}/net/dev", pod.pid)).ok())
            .flatten()
            .map(|text| {
                let ifs: Vec<pb::NetworkInterfaceUsage> = net_dev(&text)
                    .into_iter()
                    .map(|(name, rx, rxe, tx, txe)| pb::NetworkInterfaceUsage {
                        name,
                        rx_bytes: Some(pb::UInt64Value { value: rx }),
                        rx_errors: Some(pb::UInt64Value { value: rxe }),
                        tx_bytes: Some(pb::UInt64Value { value: tx }),
                        tx_errors: Some(pb::UInt64Value { value: txe }),
                    })
                    .collect();
                pb::NetworkUsage {
                    timestamp: ts,
                    default_interface: ifs.iter().find(|i| i.name == "eth0").cloned(),
                    interfaces: ifs,
                }
            });
        Ok(pb::PodSandboxStats {
            attributes: Some(pb::PodSandboxAttributes {
                id: pod.id.clone(),
                metadata: Some(pod.metadata()),
                labels: pod.config.labels.clone(),
                annotations: pod.config.annotations.clone(),
            }),
            linux: Some(pb::LinuxPodSandboxStats {
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
                network,
                process: Some(pb::ProcessUsage {
                    timestamp: ts,
                    process_count: Some(pb::UInt64Value { value: procs }),
                }),
                containers,
            }),
            windows: None,
        })
    }

    pub(crate) async fn pod_stats(
        &self,
        r: pb::PodSandboxStatsRequest,
    ) -> Result<pb::PodSandboxStatsResponse> {
        let pod = self.pods.get(&r.pod_sandbox_id)?;
        Ok(pb::PodSandboxStatsResponse {
            stats: Some(self.pod_stats_of(&pod).await?),
        })
    }

    pub(crate) async fn list_pod_stats(
        &self,
        r: pb::ListPodSandboxStatsRequest,
    ) -> Result<pb::ListPodSandboxStatsResponse> {
        let f = r.filter.unwrap_or_default();
        let mut stats = Vec::new();
        for pod in self.pods.list() {
            if !pod.ready
                || (!f.id.is_empty() && !pod.id.starts_with(&f.id))
                || !crate::pod_list::labels_match(&pod.config.labels, &f.label_selector)
            {
                continue;
            }
            stats.push(self.pod_stats_of(&pod).await?);
        }
        Ok(pb::ListPodSandboxStatsResponse { stats })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_counters() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    5000      40    2    0    0     0          0         0     3000      30    1    0    0     0       0          0\n";
        assert_eq!(net_dev(text), [("eth0".to_string(), 5000, 2, 3000, 1)]);
    }
}
