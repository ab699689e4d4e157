//! `PodSandboxStatus` (`crictl inspectp`).

use crate::pod_store::Pod;
use crate::{pb, Cri, Result};

/// The CRI view of a pod.
pub fn status_of(pod: &Pod) -> pb::PodSandboxStatus {
    let (ip, more) = match pod.ips.split_first() {
        Some((first, rest)) => (first.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    pb::PodSandboxStatus {
        id: pod.id.clone(),
        metadata: Some(pod.metadata()),
        state: pod.state() as i32,
        created_at: pod.created_at,
        network: Some(pb::PodSandboxNetworkStatus {
            ip,
            additional_ips: more.into_iter().map(|ip| pb::PodIp { ip }).collect(),
        }),
        linux: Some(pb::LinuxPodSandboxStatus {
            namespaces: Some(pb::Namespace {
                options: Some(pod.ns_options()),
            }),
        }),
        labels: pod.config.labels.clone(),
        annotations: pod.config.annotations.clone(),
        runtime_handler: pod.runtime_handler.clone(),
    }
}

impl Cri {
    pub(crate) fn pod_status(
        &self,
        r: pb::PodSandboxStatusRequest,
    ) -> Result<pb::PodSandboxStatusResponse> {
        let pod = self.pods.get(&r.pod_sandbox_id)?;
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            let v = serde_json::json!({
                "pid": pod.pid,
                "netns": if pod.host_network() || pod.pid == 0 { String::new() } else { crate::pause::ns_path(pod.pid, "net") },
                "cniResult": pod.cni_result,
                "config": pod.config,
                "runtimeType": "berth",
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(pb::PodSandboxStatusResponse {
            status: Some(status_of(&pod)),
            info,
            containers_statuses: Vec::new(),
            timestamp: 0,
        })
    }
}
