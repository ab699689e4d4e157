//! `CreateContainer` (`crictl create`): the CRI container config translated into an engine
//! create request, in the pod's namespaces, logging in the CRI format.

use crate::ctr_meta::{Meta, LABEL};
use crate::pod_store::Pod;
use crate::{pause, pb, Cri, Error, Result};
use berth_types::CreateRequest;
use serde_json::{json, Value};
use std::path::PathBuf;

/// kubelet's container name form, `k8s_<ctr>_<pod>_<namespace>_<uid>_<attempt>`, with any
/// character the engine refuses in a name made `-`.
pub fn engine_name(c: &pb::ContainerMetadata, p: &pb::PodSandboxMetadata) -> String {
    let raw = format!(
        "k8s_{}_{}_{}_{}_{}",
        c.name, p.name, p.namespace, p.uid, c.attempt
    );
    raw.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-') {
                ch
            } else {
                '-'
            }
        })
        .collect()
}

/// `docker run --user`'s form of the CRI's user and group.
pub fn user_spec(sc: &pb::LinuxContainerSecurityContext) -> String {
    let user = match (&sc.run_as_user, sc.run_as_username.as_str()) {
        (Some(u), _) => u.value.to_string(),
        (None, name) if !name.is_empty() => name.to_string(),
        _ => return String::new(),
    };
    match &sc.run_as_group {
        Some(g) => format!("{user}:{}", g.value),
        None => user,
    }
}

/// The container's PID namespace: its own option, the pod's when it gives none (`POD` only
/// where the pod has one to share).
pub fn pid_mode(pod: &Pod, sc: &pb::LinuxContainerSecurityContext) -> pb::NamespaceMode {
    let own = sc
        .namespace_options
        .as_ref()
        .map(|n| n.pid)
        .unwrap_or(pod.ns_options().pid);
    match pb::NamespaceMode::try_from(own) {
        Ok(pb::NamespaceMode::Node) => pb::NamespaceMode::Node,
        _ if pod.host_pid() => pb::NamespaceMode::Node,
        Ok(pb::NamespaceMode::Pod) if pod.shared_pid() => pb::NamespaceMode::Pod,
        _ => pb::NamespaceMode::Container,
    }
}

/// The engine's `seccomp=` security option for the CRI's profile: the newer `seccomp` field,
/// else the older `seccomp_profile_path` (`""`/`unconfined`: none, as the CRI's default;
/// `runtime/default`/`docker/default`: the engine's default; `localhost/<path>`: that file).
/// `None`: the engine's default profile.
#[allow(deprecated)] // seccomp_profile_path: what critest v1.26 and kubelet < 1.27 send
pub fn seccomp_opt(sc: &pb::LinuxContainerSecurityContext) -> Result<Option<String>> {
    use pb::security_profile::ProfileType;
    let localhost = |path: &str| -> Result<Option<String>> {
        if !path.starts_with('/') {
            return Err(Error::InvalidArgument(format!(
                "seccomp profile path {path:?} must be absolute"
            )));
        }
        let json = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidArgument(format!("cannot load seccomp profile {path:?}: {e}"))
        })?;
        Ok(Some(format!("seccomp={json}")))
    };
    let unconfined = Ok(Some("seccomp=unconfined".to_string()));
    match &sc.seccomp {
        Some(p) => match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(None),
            Ok(ProfileType::Unconfined) => unconfined,
            Ok(ProfileType::Localhost) => localhost(&p.localhost_ref),
            Err(_) => Err(Error::InvalidArgument(format!(
                "unknown seccomp profile type {}",
                p.profile_type
            ))),
        },
        None => match sc.seccomp_profile_path.as_str() {
            "" | "unconfined" => unconfined,
            "runtime/default" | "docker/default" => Ok(None),
            p => match p.strip_prefix("localhost/") {
                Some(path) => localhost(path),
                None => Err(Error::InvalidArgument(format!(
                    "unknown seccomp profile option: {p:?}"
                ))),
            },
        },
    }
}

/// A bind in `HostConfig.Binds` form: `host:container[:ro][,propagation]`.
pub fn bind_of(m: &pb::Mount) -> Result<String> {
    if m.container_path.is_empty() || m.host_path.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "invalid mount {:?} -> {:?}",
            m.host_path, m.container_path
        )));
    }
    let prop = match pb::MountPropagation::try_from(m.propagation) {
        Ok(pb::MountPropagation::PropagationHostToContainer) => "rslave",
        Ok(pb::MountPropagation::PropagationBidirectional) => "rshared",
        _ => "rprivate",
    };
    let mode = if m.readonly { "ro" } else { "rw" };
    Ok(format!(
        "{}:{}:{mode},{prop}",
        m.host_path, m.container_path
    ))
}

/// The CRI's resources as Engine API `HostConfig` keys (only those set).
pub fn resources(r: &pb::LinuxContainerResources) -> serde_json::Map<String, Value> {
    let pairs: [(&str, Value); 7] = [
        ("Memory", json!(r.memory_limit_in_bytes)),
        ("CpuShares", json!(r.cpu_shares)),
        ("CpuQuota", json!(r.cpu_quota)),
        ("CpuPeriod", json!(r.cpu_period)),
        ("OomScoreAdj", json!(r.oom_score_adj)),
        ("CpusetCpus", json!(r.cpuset_cpus)),
        ("CpusetMems", json!(r.cpuset_mems)),
    ];
    pairs
        .into_iter()
        .filter(|(_, v)| match v {
            Value::Number(n) => n.as_i64() != Some(0),
            Value::String(s) => !s.is_empty(),
            _ => false,
        })
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The engine's create request for a CRI container (without the pod's namespaces: those are
/// the [`berth_engine::PodLink`]).
pub fn create_request(
    cfg: &pb::ContainerConfig,
    pod: &Pod,
    image: &str,
    meta: &Meta,
) -> Result<CreateRequest> {
    let mut req = CreateRequest::default();
    let c = &mut req.config;
    c.image = image.to_string();
    if !cfg.command.is_empty() {
        c.entrypoint = Some(cfg.command.clone());
        c.cmd = Some(cfg.args.clone());
    } else if !cfg.args.is_empty() {
        c.cmd = Some(cfg.args.clone());
    }
    c.env = Some(
        cfg.envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect(),
    );
    c.working_dir = cfg.working_dir.clone();
    c.tty = cfg.tty;
    c.open_stdin = cfg.stdin;
    c.stdin_once = cfg.stdin_once;
    // the name the pod's UTS namespace has (the node's for host-network pods and pods that
    // name none), for `$HOSTNAME`
    c.hostname = if pod.host_network() || pod.config.hostname.is_empty() {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default()
    } else {
        pod.config.hostname.clone()
    };
    c.labels = Some([(LABEL.to_string(), serde_json::to_string(meta)?)].into());
    let linux = cfg.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    if sc.run_as_group.is_some() && sc.run_as_user.is_none() && sc.run_as_username.is_empty() {
        return Err(Error::InvalidArgument(
            "user group is specified without user".into(),
        ));
    }
    c.user = user_spec(&sc);

    let hc = &mut req.host_config;
    hc.network_mode = if pod.host_network() { "host" } else { "none" }.into();
    hc.log_config.kind = "none".into();
    let x = &mut hc.extra;
    let binds: Vec<String> = cfg.mounts.iter().map(bind_of).collect::<Result<_>>()?;
    if !binds.is_empty() {
        x.insert("Binds".into(), json!(binds));
    }
    if sc.privileged {
        x.insert("Privileged".into(), json!(true));
    }
    if let Some(caps) = &sc.capabilities {
        if !caps.add_capabilities.is_empty() {
            x.insert("CapAdd".into(), json!(caps.add_capabilities));
        }
        if !caps.drop_capabilities.is_empty() {
            x.insert("CapDrop".into(), json!(caps.drop_capabilities));
        }
    }
    if sc.readonly_rootfs {
        x.insert("ReadonlyRootfs".into(), json!(true));
    }
    let mut secopt: Vec<String> = Vec::new();
    if sc.no_new_privs {
        secopt.push("no-new-privileges".into());
    }
    if let Some(opt) = seccomp_opt(&sc)? {
        secopt.push(opt);
    }
    if !secopt.is_empty() {
        x.insert("SecurityOpt".into(), json!(secopt));
    }
    if !sc.supplemental_groups.is_empty() {
        let g: Vec<String> = sc
            .supplemental_groups
            .iter()
            .map(|g| g.to_string())
            .collect();
        x.insert("GroupAdd".into(), json!(g));
    }
    if !sc.masked_paths.is_empty() {
        x.insert("MaskedPaths".into(), json!(sc.masked_paths));
    }
    if !sc.readonly_paths.is_empty() {
        x.insert("ReadonlyPaths".into(), json!(sc.readonly_paths));
    }
    if pid_mode(pod, &sc) == pb::NamespaceMode::Node {
        x.insert("PidMode".into(), json!("host"));
    }
    if pod.host_ipc() {
        x.insert("IpcMode".into(), json!("host"));
    }
    if let Some(r) = &linux.resources {
        x.extend(resources(r));
    }
    if !cfg.devices.is_empty() {
        let d: Vec<Value> = cfg
            .devices
            .iter()
            .map(|d| json!({"PathOnHost": d.host_path, "PathInContainer": d.container_path, "CgroupPermissions": if d.permissions.is_empty() { "rwm" } else { d.permissions.as_str() }}))
            .collect();
        x.insert("Devices".into(), json!(d));
    }
    if let Some(sysctls) = pod
        .config
        .linux
        .as_ref()
        .map(|l| &l.sysctls)
        .filter(|s| !s.is_empty())
    {
        x.insert("Sysctls".into(), json!(sysctls));
    }
    if let Some(parent) = pod
        .config
        .linux
        .as_ref()
        .map(|l| l.cgroup_parent.clone())
        .filter(|p| !p.is_empty())
    {
        x.insert("CgroupParent".into(), json!(parent));
    }
    Ok(req)
}

impl Cri {
    pub(crate) async fn create_container(
        &self,
        r: pb::CreateContainerRequest,
    ) -> Result<pb::CreateContainerResponse> {
        let pod = self.pods.get(&r.pod_sandbox_id)?;
        if !pod.ready {
            return Err(Error::FailedPrecondition(format!(
                "sandbox {} is not ready",
                pod.id
            )));
        }
        let cfg = r
            .config
            .ok_or_else(|| Error::InvalidArgument("container config is required".into()))?;
        let cmeta = cfg.metadata.clone().unwrap_or_default();
        if cmeta.name.is_empty() {
            return Err(Error::InvalidArgument(
                "container config must include metadata.name".into(),
            ));
        }
        let image = cfg
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        if image.is_empty() {
            return Err(Error::InvalidArgument(
                "container config must name an image".into(),
            ));
        }
        self.engine
            .images()
            .get(&image)
            .map_err(|_| Error::NotFound(format!("image {image:?} not found: pull it first")))?;
        let log_path = if pod.config.log_directory.is_empty() || cfg.log_path.is_empty() {
            String::new()
        } else {
            let p = PathBuf::from(&pod.config.log_directory).join(&cfg.log_path);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            p.to_string_lossy().into_owned()
        };
        let meta = Meta {
            sandbox: pod.id.clone(),
            metadata: cmeta.clone(),
            labels: cfg.labels.clone(),
            annotations: cfg.annotations.clone(),
            image: image.clone(),
            log_path: log_path.clone(),
        };
        let req = create_request(&cfg, &pod, &image, &meta)?;
        let sc = cfg
            .linux
            .as_ref()
            .and_then(|l| l.security_context.clone())
            .unwrap_or_default();
        let link = berth_engine::PodLink {
            net: (!pod.host_network()).then(|| pause::ns_path(pod.pid, "net")),
            ipc: (!pod.host_ipc()).then(|| pause::ns_path(pod.pid, "ipc")),
            uts: (!pod.host_network()).then(|| pause::ns_path(pod.pid, "uts")),
            pid: (pid_mode(&pod, &sc) == pb::NamespaceMode::Pod)
                .then(|| pause::ns_path(pod.pid, "pid")),
            files: self.pods.files_dir(&pod.id),
            shm: (!pod.host_ipc()).then(|| crate::shm::path(&self.pods.files_dir(&pod.id))),
            log: (!log_path.is_empty()).then(|| PathBuf::from(&log_path)),
        };
        let name = engine_name(&cmeta, &pod.metadata());
        let (id, _warnings) = self.engine.create_in_pod(&name, req, link).await?;
        Ok(pb::CreateContainerResponse { container_id: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)]
    fn names_users_binds() {
        let c = pb::ContainerMetadata {
            name: "web".into(),
            attempt: 1,
        };
        let p = pb::PodSandboxMetadata {
            name: "pod".into(),
            uid: "u/1".into(),
            namespace: "ns".into(),
            attempt: 0,
        };
        assert_eq!(engine_name(&c, &p), "k8s_web_pod_ns_u-1_1");
        let mut sc = pb::LinuxContainerSecurityContext::default();
        assert_eq!(user_spec(&sc), "");
        sc.run_as_username = "www-data".into();
        assert_eq!(user_spec(&sc), "www-data");
        sc.run_as_user = Some(pb::Int64Value { value: 1000 });
        sc.run_as_group = Some(pb::Int64Value { value: 50 });
        assert_eq!(user_spec(&sc), "1000:50");
        let m = pb::Mount {
            container_path: "/data".into(),
            host_path: "/tmp/x".into(),
            readonly: true,
            propagation: pb::MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        };
        assert_eq!(bind_of(&m).unwrap(), "/tmp/x:/data:ro,rslave");
        assert!(bind_of(&pb::Mount::default()).is_err());
        let mut sc = pb::LinuxContainerSecurityContext::default();
        assert_eq!(
            seccomp_opt(&sc).unwrap().as_deref(),
            Some("seccomp=unconfined")
        );
        sc.seccomp_profile_path = "runtime/default".into();
        assert_eq!(seccomp_opt(&sc).unwrap(), None);
        sc.seccomp_profile_path = "/abs/without/prefix".into();
        assert!(seccomp_opt(&sc).is_err());
        sc.seccomp_profile_path = "localhost//nonexistent/p.json".into();
        assert!(seccomp_opt(&sc).is_err());
        let p = std::env::temp_dir().join(format!("berth-cri-sc-{}.json", std::process::id()));
        std::fs::write(&p, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        sc.seccomp_profile_path = format!("localhost/{}", p.display());
        let opt = seccomp_opt(&sc).unwrap().unwrap();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(opt, r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        sc.seccomp = Some(pb::SecurityProfile {
            profile_type: pb::security_profile::ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        });
        assert_eq!(seccomp_opt(&sc).unwrap(), None);
    }

    fn pod(ns: pb::NamespaceOption) -> Pod {
        Pod {
            id: "p1".into(),
            config: pb::PodSandboxConfig {
                hostname: "web".into(),
                linux: Some(pb::LinuxPodSandboxConfig {
                    cgroup_parent: "/kubepods/pod1".into(),
                    sysctls: [("net.ipv4.ip_forward".to_string(), "1".to_string())].into(),
                    security_context: Some(pb::LinuxSandboxSecurityContext {
                        namespace_options: Some(ns),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            created_at: 0,
            ready: true,
            pid: 1,
            ips: Vec::new(),
            cni_result: None,
            runtime_handler: String::new(),
        }
    }

    #[test]
    fn the_cri_config_as_an_engine_create_request() {
        let cfg = pb::ContainerConfig {
            command: vec!["/bin/app".into()],
            args: vec!["--port".into(), "80".into()],
            envs: vec![pb::KeyValue {
                key: "A".into(),
                value: "b c".into(),
            }],
            working_dir: "/srv".into(),
            mounts: vec![pb::Mount {
                container_path: "/data".into(),
                host_path: "/var/data".into(),
                ..Default::default()
            }],
            linux: Some(pb::LinuxContainerConfig {
                resources: Some(pb::LinuxContainerResources {
                    memory_limit_in_bytes: 64 << 20,
                    cpu_shares: 512,
                    ..Default::default()
                }),
                security_context: Some(pb::LinuxContainerSecurityContext {
                    capabilities: Some(pb::Capability {
                        add_capabilities: vec!["NET_ADMIN".into()],
                        drop_capabilities: vec!["CHOWN".into()],
                        ..Default::default()
                    }),
                    readonly_rootfs: true,
                    no_new_privs: true,
                    run_as_user: Some(pb::Int64Value { value: 1000 }),
                    supplemental_groups: vec![50],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let meta = Meta {
            sandbox: "p1".into(),
            ..Default::default()
        };
        let p = pod(pb::NamespaceOption::default());
        let r = create_request(&cfg, &p, "img:1", &meta).unwrap();
        let c = &r.config;
        assert_eq!(c.image, "img:1");
        // command replaces the entrypoint, args the cmd
        assert_eq!(c.entrypoint.as_deref(), Some(&["/bin/app".to_string()][..]));
        assert_eq!(c.cmd.as_deref().map(<[String]>::len), Some(2));
        assert_eq!(c.env.as_deref(), Some(&["A=b c".to_string()][..]));
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str(), c.hostname.as_str()),
            ("/srv", "1000", "web")
        );
        let label = &c.labels.as_ref().unwrap()[LABEL];
        assert_eq!(serde_json::from_str::<Meta>(label).unwrap().sandbox, "p1");
        let hc = &r.host_config;
        assert_eq!(
            (hc.network_mode.as_str(), hc.log_config.kind.as_str()),
            ("none", "none")
        );
        let x = &hc.extra;
        assert_eq!(x["Binds"], json!(["/var/data:/data:rw,rprivate"]));
        assert_eq!(x["CapAdd"], json!(["NET_ADMIN"]));
        assert_eq!(x["CapDrop"], json!(["CHOWN"]));
        assert_eq!(x["ReadonlyRootfs"], json!(true));
        assert_eq!(
            x["SecurityOpt"],
            json!(["no-new-privileges", "seccomp=unconfined"])
        );
        assert_eq!(x["GroupAdd"], json!(["50"]));
        assert_eq!(
            (x["Memory"].clone(), x["CpuShares"].clone()),
            (json!(64 << 20), json!(512))
        );
        assert!(!x.contains_key("CpuQuota"), "unset resources stay unset");
        assert_eq!(x["Sysctls"]["net.ipv4.ip_forward"], "1");
        assert_eq!(x["CgroupParent"], "/kubepods/pod1");
        assert!(!x.contains_key("PidMode") && !x.contains_key("IpcMode"));
        assert_eq!(
            pid_mode(&p, &pb::LinuxContainerSecurityContext::default()),
            pb::NamespaceMode::Pod
        );

        // only args: the image's entrypoint stays; host network, IPC and PID
        let host = pod(pb::NamespaceOption {
            network: pb::NamespaceMode::Node as i32,
            pid: pb::NamespaceMode::Node as i32,
            ipc: pb::NamespaceMode::Node as i32,
            ..Default::default()
        });
        let only_args = pb::ContainerConfig {
            args: vec!["x".into()],
            ..Default::default()
        };
        let r = create_request(&only_args, &host, "img:1", &meta).unwrap();
        assert!(r.config.entrypoint.is_none());
        assert_eq!(r.config.cmd.as_deref(), Some(&["x".to_string()][..]));
        assert_eq!(r.host_config.network_mode, "host");
        assert_eq!(r.host_config.extra["PidMode"], "host");
        assert_eq!(r.host_config.extra["IpcMode"], "host");
        // a group without a user is refused
        let bad = pb::ContainerConfig {
            linux: Some(pb::LinuxContainerConfig {
                security_context: Some(pb::LinuxContainerSecurityContext {
                    run_as_group: Some(pb::Int64Value { value: 5 }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(create_request(&bad, &p, "img:1", &meta).is_err());
    }
}
