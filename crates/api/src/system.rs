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

fn sysctl_on(key: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/{key}")).is_ok_and(|v| v.trim() == "1")
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// The engine's ID (`/info` `ID`, which tools such as Portainer key a host by): made once,
/// kept in the data root, in dockerd's form (12 groups of 4 base32 characters).
fn engine_id(data_root: &std::path::Path) -> String {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return id.trim().to_string();
        }
    }
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // the kernel's random UUIDs as a bit source, 5 bits a character
    let bits: Vec<u8> = (0..3)
        .flat_map(|_| {
            std::fs::read_to_string("/proc/sys/kernel/random/uuid")
                .unwrap_or_default()
                .chars()
                .filter_map(|c| c.to_digit(16))
                .flat_map(|v| (0..4).rev().map(move |i| ((v >> i) & 1) as u8))
                .collect::<Vec<_>>()
        })
        .collect();
    let chars: Vec<u8> = bits
        .chunks(5)
        .take(48)
        .map(|c| B32[c.iter().fold(0usize, |a, b| a * 2 + *b as usize) % 32])
        .collect();
    let id = chars
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let tmp = data_root.join("engine-id.tmp");
    if std::fs::write(&tmp, &id).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
    id
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
            let cgv2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            let ncpu = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            json_response(
                StatusCode::OK,
                &crate::compat::info(json!({
                    "ID": engine_id(&cfg.data_root), "Containers": total, "ContainersRunning": running, "ContainersPaused": paused,
                    "ContainersStopped": stopped, "Images": images, "Driver": "overlay2",
                    "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Native Overlay Diff", "true"]],
                    "Plugins": {"Volume": ["local"], "Network": ["null"], "Authorization": null, "Log": ["json-file", "none"]},
                    "MemoryLimit": true, "SwapLimit": swap_accounting(cgv2), "KernelMemory": false, "KernelMemoryTCP": false,
                    "CpuCfsPeriod": true, "CpuCfsQuota": true, "CPUShares": true, "CPUSet": true, "PidsLimit": true,
                    "IPv4Forwarding": true, "BridgeNfIptables": sysctl_on("net/bridge/bridge-nf-call-iptables"),
                    "BridgeNfIp6tables": sysctl_on("net/bridge/bridge-nf-call-ip6tables"), "Debug": false,
                    "NFd": count_entries("/proc/self/fd"), "OomKillDisable": true,
                    "NGoroutines": count_entries("/proc/self/task"),
                    "SystemTime": berth_engine::format_rfc3339_nanos(Some(std::time::SystemTime::now())),
                    "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": if cgv2 { "2" } else { "1" },
                    "NEventsListener": 0, "KernelVersion": kernel_version(), "OperatingSystem": os_name(),
                    "OSVersion": os_release("VERSION_ID"), "OSType": "linux", "Architecture": "x86_64",
                    "IndexServerAddress": "https://index.docker.io/v1/",
                    "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                        "InsecureRegistryCIDRs": ["127.0.0.0/8"], "Mirrors": [],
                        "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [], "Secure": true, "Official": true}}},
                    "NCPU": ncpu, "MemTotal": mem_total(), "GenericResources": null,
                    "DockerRootDir": cfg.data_root, "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
                    "Name": hostname.trim(), "Labels": [], "ExperimentalBuild": false,
                    "ServerVersion": env!("CARGO_PKG_VERSION"),
                    "Runtimes": {"berth": {"path": cfg.shim_path}}, "DefaultRuntime": "berth",
                    "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
                        "Error": "", "RemoteManagers": null},
                    "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": "",
                    "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
                    "InitCommit": {"ID": "", "Expected": ""},
                    "SecurityOptions": security_options(cfg, cgv2), "Warnings": null
                })),
            )
        }
        ("GET", ["system", "df"]) => match engine.system_df() {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => crate::error_response(e),
        },
        _ => not_found(),
    }
}

/// Whether the host accounts swap per cgroup (docker's `SwapLimit`): v1's `memory.memsw.*`
/// files, or on v2 a `memory.swap.max` in the daemon's own cgroup or its parents.
fn swap_accounting(cgv2: bool) -> bool {
    let root = std::path::Path::new("/sys/fs/cgroup");
    if !cgv2 {
        return root.join("memory/memory.memsw.limit_in_bytes").exists();
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dir = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| root.join(p.trim_start_matches('/')));
    while let Some(d) = dir {
        if d.join("memory.swap.max").exists() {
            return true;
        }
        dir = d
            .parent()
            .filter(|p| p.starts_with(root))
            .map(|p| p.to_path_buf());
    }
    false
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
