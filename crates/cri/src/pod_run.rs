//! `RunPodSandbox` (`crictl runp`): the pause process in new namespaces, the pod's DNS and
//! host files, and its network through CNI.

use crate::pod_store::Pod;
use crate::{cni, pause, pb, shm, Cri, Error, Result};
use std::path::Path;

/// The pod's `resolv.conf`: its DNS config, or the host's file when it gives none.
pub fn resolv_conf(dns: Option<&pb::DnsConfig>, host: &str) -> String {
    let Some(d) =
        dns.filter(|d| !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()))
    else {
        return host.to_string();
    };
    let mut out = String::new();
    if !d.searches.is_empty() {
        out.push_str(&format!("search {}\n", d.searches.join(" ")));
    }
    for s in &d.servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !d.options.is_empty() {
        out.push_str(&format!("options {}\n", d.options.join(" ")));
    }
    out
}

/// The pod's `/etc/hosts`: localhost, and the pod's IP with its host name.
pub fn hosts_file(ip: Option<&str>, hostname: &str) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip.filter(|_| !hostname.is_empty()) {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    out
}

/// `K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;K8S_POD_INFRA_CONTAINER_ID=…;K8S_POD_UID=…`
pub fn cni_args(pod: &Pod) -> String {
    let m = pod.metadata();
    format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
        m.namespace, m.name, pod.id, m.uid
    )
}

/// The pod's port mappings as CNI's `portMappings` runtime config.
pub fn port_mappings(cfg: &pb::PodSandboxConfig) -> Vec<serde_json::Value> {
    cfg.port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let proto = match pb::Protocol::try_from(p.protocol) {
                Ok(pb::Protocol::Udp) => "udp",
                Ok(pb::Protocol::Sctp) => "sctp",
                _ => "tcp",
            };
            serde_json::json!({"hostPort": p.host_port, "containerPort": p.container_port,
                               "protocol": proto, "hostIP": p.host_ip})
        })
        .collect()
}

fn write_files(dir: &Path, hostname: &str, ip: Option<&str>, resolv: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(dir.join("hosts"), hosts_file(ip, hostname))?;
    std::fs::write(dir.join("resolv.conf"), resolv)?;
    Ok(())
}

impl Cri {
    pub(crate) async fn run_pod(
        &self,
        r: pb::RunPodSandboxRequest,
    ) -> Result<pb::RunPodSandboxResponse> {
        let config = r
            .config
            .ok_or_else(|| Error::InvalidArgument("sandbox config is required".into()))?;
        let meta = config.metadata.clone().unwrap_or_default();
        if meta.name.is_empty() {
            return Err(Error::InvalidArgument(
                "sandbox config must include metadata.name".into(),
            ));
        }
        if !r.runtime_handler.is_empty() && r.runtime_handler != "berth" {
            return Err(Error::InvalidArgument(format!(
                "no runtime for {:?} is configured",
                r.runtime_handler
            )));
        }
        let mut pod = Pod {
            id: crate::new_id(),
            config,
            created_at: crate::now_nanos(),
            ready: false,
            pid: 0,
            ips: Vec::new(),
            cni_result: None,
            runtime_handler: r.runtime_handler,
        };
        let host_net = pod.host_network();
        let hostname = if host_net || pod.config.hostname.is_empty() {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .filter(|_| host_net)
                .unwrap_or_else(|| pod.config.hostname.clone())
        } else {
            pod.config.hostname.clone()
        };
        let dir = self.pods.files_dir(&pod.id);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = resolv_conf(pod.config.dns_config.as_ref(), &host_resolv);
        write_files(&dir, &hostname, None, &resolv)?;
        if !pod.config.log_directory.is_empty() {
            std::fs::create_dir_all(&pod.config.log_directory)?;
        }
        if !pod.host_ipc() {
            if let Err(e) = shm::mount(&dir) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        }
        let ns = pause::Namespaces {
            net: !host_net,
            ipc: !pod.host_ipc(),
            uts: !host_net,
            pid: pod.shared_pid(),
        };
        pod.pid = match pause::start(&self.cfg.pause_path, ns, &hostname, &dir).await {
            Ok(pid) => pid,
            Err(e) => {
                shm::unmount(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        if !host_net {
            if let Err(e) = self.pod_network_up(&mut pod).await {
                pause::stop(pod.pid).await;
                shm::unmount(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            let ip = pod.ips.first().cloned();
            write_files(&dir, &hostname, ip.as_deref(), &resolv)?;
        }
        pod.ready = true;
        if let Err(e) = self.pods.save(&pod) {
            self.pod_network_down(&pod).await;
            pause::stop(pod.pid).await;
            shm::unmount(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        tracing::info!(id = %pod.id, name = %meta.name, "pod sandbox ready");
        Ok(pb::RunPodSandboxResponse {
            pod_sandbox_id: pod.id,
        })
    }

    /// CNI ADD for the pod's network namespace; records the result and addresses.
    async fn pod_network_up(&self, pod: &mut Pod) -> Result<()> {
        let conf = cni::load(&self.cfg.cni_conf_dir)?;
        let netns = pause::ns_path(pod.pid, "net");
        let call = cni::Call {
            container_id: &pod.id,
            netns: &netns,
            ifname: "eth0",
            args: cni_args(pod),
            port_mappings: port_mappings(&pod.config),
        };
        let result = cni::add(&conf, &self.cfg.cni_bin_dirs, &call).await?;
        pod.ips = cni::result_ips(&result);
        pod.cni_result = Some(result);
        Ok(())
    }

    /// CNI DEL (errors are logged: the namespace is going anyway).
    pub(crate) async fn pod_network_down(&self, pod: &Pod) {
        let Some(result) = &pod.cni_result else {
            return;
        };
        let conf = match cni::load(&self.cfg.cni_conf_dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(id = %pod.id, "CNI DEL: {e}");
                return;
            }
        };
        let netns = if pod.pid > 0 && pause::is_pause(pod.pid) {
            pause::ns_path(pod.pid, "net")
        } else {
            String::new()
        };
        let call = cni::Call {
            container_id: &pod.id,
            netns: &netns,
            ifname: "eth0",
            args: cni_args(pod),
            port_mappings: port_mappings(&pod.config),
        };
        if let Err(e) = cni::del(&conf, &self.cfg.cni_bin_dirs, &call, Some(result)).await {
            tracing::warn!(id = %pod.id, "CNI DEL: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_and_hosts() {
        let d = pb::DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["ns.svc.local".into(), "svc.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(Some(&d), "host"),
            "search ns.svc.local svc.local\nnameserver 10.0.0.10\noptions ndots:5\n"
        );
        assert_eq!(
            resolv_conf(None, "nameserver 1.1.1.1\n"),
            "nameserver 1.1.1.1\n"
        );
        assert!(hosts_file(Some("10.1.0.5"), "web").ends_with("10.1.0.5\tweb\n"));
        assert!(!hosts_file(None, "web").contains("web"));
    }
}
