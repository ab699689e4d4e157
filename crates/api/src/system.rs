//! `/_ping`, `/version`, `/info`.

use crate::body::{full, Body};
use crate::{json_response, not_found, with_headers, API_VERSION, MIN_API_VERSION};
use berth_engine::Engine;
use hyper::{Method, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn os_name() -> String {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// A value of /etc/os-release (`VERSION_ID`: dockerd's `OSVersion`), "" when absent.
fn os_release(key: &str) -> String {
    let s = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

/// dockerd leaves `DefaultAddressPools` out of `/info` when none is configured, and the
/// cluster keys when the daemon is not in a cluster (`omitempty`).
fn without_empty_pools(mut info: serde_json::Value) -> serde_json::Value {
    if let Some(m) = info.as_object_mut() {
        if m.get("DefaultAddressPools").is_some_and(|v| v.is_null()) {
            m.remove("DefaultAddressPools");
        }
        for k in ["ClusterStore", "ClusterAdvertise", "ClusterLease"] {
            if m.get(k).is_some_and(|v| v.as_str() == Some("")) {
                m.remove(k);
            }
        }
    }
    info
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn mem_total() -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| k * 1024)
        .unwrap_or(0)
}

pub async fn route(engine: &Arc<Engine>, method: &Method, segs: &[&str]) -> Response<Body> {
    match (method.as_str(), segs) {
        ("GET" | "HEAD", ["_ping"]) => {
            let mut r = Response::new(full(if method == Method::HEAD { "" } else { "OK" }));
            let h = r.headers_mut();
            h.insert(
                "Content-Type",
                "text/plain; charset=utf-8".parse().expect("static"),
            );
            h.insert(
                "Cache-Control",
                "no-cache, no-store, must-revalidate"
                    .parse()
                    .expect("static"),
            );
            h.insert("Pragma", "no-cache".parse().expect("static"));
            with_headers(r)
        }
        ("GET", ["version"]) => {
            let kv = kernel_version();
            let v = env!("CARGO_PKG_VERSION");
            json_response(
                StatusCode::OK,
                &json!({
                    "Platform": {"Name": "berth"},
                    "Components": [{"Name": "Engine", "Version": v, "Details": {
                        "ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "", "Experimental": "false",
                        "GitCommit": "", "GoVersion": "", "KernelVersion": kv, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"}}],
                    "Version": v, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                    "GitCommit": "", "GoVersion": "", "Os": "linux", "Arch": "amd64",
                    "KernelVersion": kv, "BuildTime": ""
                }),
            )
        }
        ("GET", ["info"]) => {
            let (total, running, paused, stopped) = engine.counts();
            let images = engine.images().list().map(|l| l.len()).unwrap_or(0);
            let cfg = engine.config();
            let st = engine.settings();
            let reg = engine.registry_config();
            let warnings = berth_engine::settings::host_warnings(std::path::Path::new("/"));
            let swap_limit = !warnings.iter().any(|w| w.contains("No swap limit"));
            let pools: Vec<_> = st
                .default_address_pools
                .iter()
                .map(|p| json!({"Base": p.base, "Size": p.size}))
                .collect();
            let cgv2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let ncpu = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            json_response(
                StatusCode::OK,
                &crate::compat::info(without_empty_pools(json!({
                    "ID": engine.engine_id(), "Containers": total, "ContainersRunning": running, "ContainersPaused": paused,
                    "ContainersStopped": stopped, "Images": images, "Driver": "overlay2",
                    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Native Overlay Diff", "true"]],
                    "Plugins": {"Volume": ["local"], "Network": ["null"], "Authorization": null, "Log": ["json-file", "none"]},
                    "MemoryLimit": true, "SwapLimit": swap_limit, "KernelMemory": false, "KernelMemoryTCP": false,
                    "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
                    "IPv4Forwarding": !warnings.iter().any(|w| w.contains("IPv4 forwarding")),
                    "BridgeNfIptables": !warnings.iter().any(|w| w.contains("bridge-nf-call-iptables")),
                    "BridgeNfIp6tables": !warnings.iter().any(|w| w.contains("bridge-nf-call-ip6tables")), "Debug": st.debug,
                    "NFd": count_entries("/proc/self/fd"), "OomKillDisable": true,
                    "NGoroutines": count_entries("/proc/self/task"),
                    "SystemTime": berth_engine::format_rfc3339_nanos(Some(std::time::SystemTime::now())),
                    "LoggingDriver": st.log_driver, "CgroupDriver": "cgroupfs", "CgroupVersion": if cgv2 { "2" } else { "1" },
                    "NEventsListener": 0, "KernelVersion": kernel_version(), "OperatingSystem": os_name(),
                    "OSVersion": os_release("VERSION_ID"), "OSType": "linux", "Architecture": "x86_64",
                    "IndexServerAddress": "https://index.docker.io/v1/",
                    "RegistryConfig": berth_engine::settings::registry_info(&reg),
                    "NCPU": ncpu, "MemTotal": mem_total(), "GenericResources": null,
                    "DockerRootDir": cfg.data_root, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
                    "Name": hostname.trim(), "Labels": st.labels, "ExperimentalBuild": st.experimental,
                    "ServerVersion": env!("CARGO_PKG_VERSION"),
                    "Runtimes": {"berth": {"path": cfg.shim_path}}, "DefaultRuntime": "berth",
                    "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
                        "Error": "", "RemoteManagers": null},
                    "LiveRestoreEnabled": st.live_restore,
                    "ClusterStore": st.cluster_store, "ClusterAdvertise": st.cluster_advertise,
                    "ClusterLease": st.cluster_lease, "Isolation": "", "InitBinary": "",
                    "ContainerdCommit": {"ID": engine.engine_id(), "Expected": ""}, "RuncCommit": {"ID": engine.engine_id(), "Expected": ""},
                    "InitCommit": {"ID": engine.engine_id(), "Expected": ""},
                    "SecurityOptions": security_options(cfg, cgv2),
                    "DefaultAddressPools": if pools.is_empty() { serde_json::Value::Null } else { json!(pools) },
                    "Warnings": if warnings.is_empty() { serde_json::Value::Null } else { json!(warnings) }
                }))),
            )
        }
        ("GET", ["system", "df"]) => match engine.system_df() {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => crate::error_response(e),
        },
        _ => not_found(),
    }
}

/// `/info` SecurityOptions as docker lists them (`name=userns` with `--userns-remap`).
/// docker's order: seccomp, userns, then the rest (no-new-privileges, cgroupns).
fn security_options(cfg: &berth_engine::Config, cgv2: bool) -> Vec<String> {
    let mut v = berth_engine::seccomp::security_options(cgv2);
    if cfg.userns.is_some() {
        let at = v
            .iter()
            .position(|o| o.starts_with("name=seccomp"))
            .map_or(0, |i| i + 1);
        v.insert(at, "name=userns".to_string());
    }
    v
}
