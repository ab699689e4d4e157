//! The daemon settings `daemon.json` may change while berthd runs (`SIGHUP`), and the ones
//! `GET /info` reports. `Engine::reload` swaps them and sends docker's `daemon reload` event.

use crate::{Engine, Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One `default-address-pools` entry: docker's `{"base": "172.80.0.0/16", "size": 24}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPool {
    pub base: String,
    pub size: u32,
}

/// What `GET /info` and the reload event show, and what a reload may change.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `debug`
    pub debug: bool,
    /// `labels` (`key=value`)
    pub labels: Vec<String>,
    /// `live-restore` (berth's containers always outlive the daemon; this is reported)
    pub live_restore: bool,
    /// `max-concurrent-downloads`: layers fetched at once by a pull
    pub max_concurrent_downloads: usize,
    /// `max-concurrent-uploads`: layers sent at once by a push
    pub max_concurrent_uploads: usize,
    /// `max-download-attempts`
    pub max_download_attempts: u32,
    /// `shutdown-timeout` (seconds)
    pub shutdown_timeout: u64,
    /// `features` (`{"buildkit": true}`)
    pub features: BTreeMap<String, bool>,
    /// `default-ulimits`, as given (docker's `{"nofile": {"Name":…, "Soft":…, "Hard":…}}`)
    pub default_ulimits: BTreeMap<String, Value>,
    /// `default-shm-size` in bytes
    pub default_shm_size: u64,
    /// `default-address-pools` (not reloadable)
    pub default_address_pools: Vec<AddressPool>,
    /// `experimental` (reported)
    pub experimental: bool,
    /// `log-driver` (not reloadable)
    pub log_driver: String,
    /// `log-opts`: the default options of `log-driver` (not reloadable)
    pub log_opts: BTreeMap<String, String>,
    /// `cluster-store`, `cluster-advertise` (accepted and stored)
    pub cluster_store: String,
    pub cluster_advertise: String,
    /// this host's subnet lease in cluster mode (`10.250.3.0/24 (PublicIP …)`), else empty
    pub cluster_lease: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            debug: false,
            labels: Vec::new(),
            live_restore: false,
            max_concurrent_downloads: 3,
            max_concurrent_uploads: 5,
            max_download_attempts: 5,
            shutdown_timeout: 15,
            features: BTreeMap::new(),
            default_ulimits: BTreeMap::new(),
            default_shm_size: 64 * 1024 * 1024,
            default_address_pools: Vec::new(),
            experimental: false,
            log_driver: "json-file".into(),
            log_opts: BTreeMap::new(),
            cluster_store: String::new(),
            cluster_advertise: String::new(),
            cluster_lease: String::new(),
        }
    }
}

/// Go's `%v` of a `map[string]bool` (docker's `features` attribute): `map[a:true b:false]`.
fn go_map(m: &BTreeMap<String, bool>) -> String {
    let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("map[{}]", items.join(" "))
}

/// A JSON list as docker marshals it in event attributes (`null` when empty and never set).
fn json_list(v: &[String]) -> String {
    if v.is_empty() {
        "[]".into()
    } else {
        Value::from(v.to_vec()).to_string()
    }
}

/// The `daemon reload` event's attributes, docker's names and formats.
pub fn reload_attributes(
    s: &Settings,
    reg: &berth_registry::Config,
    runtime: (&str, &str),
    name: &str,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        a.insert(k.to_string(), v);
    };
    put("allow-nondistributable-artifacts", "[]".into());
    put("cluster-advertise", s.cluster_advertise.clone());
    put("cluster-store", s.cluster_store.clone());
    put("cluster-store-opts", "null".into());
    put("debug", s.debug.to_string());
    put("default-cgroupns-mode", default_cgroupns_mode().into());
    put("default-ipc-mode", "private".into());
    put("default-runtime", runtime.0.into());
    put("default-shm-size", s.default_shm_size.to_string());
    put("features", go_map(&s.features));
    put("insecure-registries", json_list(&reg.insecure));
    put("labels", json_list(&s.labels));
    put("live-restore", s.live_restore.to_string());
    put(
        "max-concurrent-downloads",
        s.max_concurrent_downloads.to_string(),
    );
    put(
        "max-concurrent-uploads",
        s.max_concurrent_uploads.to_string(),
    );
    put("max-download-attempts", s.max_download_attempts.to_string());
    put("name", name.into());
    put("registry-mirrors", json_list(&reg.mirrors));
    put("runtimes", format!("{}:{}", runtime.0, runtime.1));
    put("shutdown-timeout", s.shutdown_timeout.to_string());
    a
}

/// docker's default: `private` on cgroup v2, `host` on v1.
fn default_cgroupns_mode() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "private"
    } else {
        "host"
    }
}

/// `GET /info`'s `RegistryConfig`: the insecure CIDRs (127.0.0.0/8 always), the index configs
/// (docker.io with its mirrors; insecure host names) and the mirrors, as dockerd fills them.
pub fn registry_info(reg: &berth_registry::Config) -> Value {
    let mirrors: Vec<String> = reg
        .mirrors
        .iter()
        .map(|m| {
            if m.ends_with('/') {
                m.clone()
            } else {
                format!("{m}/")
            }
        })
        .collect();
    let mut cidrs: Vec<String> = Vec::new();
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": mirrors, "Secure": true, "Official": true}),
    );
    for r in &reg.insecure {
        if r.parse::<ipnet_like::Cidr>().is_ok() {
            cidrs.push(r.clone());
        } else {
            index.insert(
                r.clone(),
                json!({"Name": r, "Mirrors": [], "Secure": false, "Official": false}),
            );
        }
    }
    if !cidrs.iter().any(|c| c == "127.0.0.0/8") {
        cidrs.push("127.0.0.0/8".into());
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": mirrors,
    })
}

/// A tiny `a.b.c.d/n` (or IPv6 `/n`) recogniser: enough to tell a CIDR from a host name.
mod ipnet_like {
    pub struct Cidr;
    impl std::str::FromStr for Cidr {
        type Err = ();
        fn from_str(s: &str) -> Result<Cidr, ()> {
            let (ip, len) = s.split_once('/').ok_or(())?;
            ip.parse::<std::net::IpAddr>().map_err(|_| ())?;
            len.parse::<u8>().map_err(|_| ())?;
            Ok(Cidr)
        }
    }
}

/// docker's `Warnings` in `GET /info`, computed from the host as dockerd does.
pub fn host_warnings(root: &std::path::Path) -> Vec<String> {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
    let mut w = Vec::new();
    let v2 = root.join("sys/fs/cgroup/cgroup.controllers").exists();
    let (mem, swap) = if v2 {
        let ctl = read("sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        let mem = ctl.split_whitespace().any(|c| c == "memory");
        // the daemon's own cgroup tells whether swap is accounted (memory.swap.max)
        let own = read("proc/self/cgroup")
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
            })
            .unwrap_or_default();
        let dir = root.join("sys/fs/cgroup").join(own.trim_start_matches('/'));
        let swap = mem
            && (dir.join("memory.swap.max").exists()
                || root.join("sys/fs/cgroup").join("memory.swap.max").exists()
                || has_child_with(&root.join("sys/fs/cgroup"), "memory.swap.max"));
        (mem, swap)
    } else {
        let m = root.join("sys/fs/cgroup/memory");
        (
            m.join("memory.limit_in_bytes").exists(),
            m.join("memory.memsw.limit_in_bytes").exists(),
        )
    };
    if !mem {
        w.push("WARNING: No memory limit support".to_string());
    }
    if !swap {
        w.push("WARNING: No swap limit support".to_string());
    }
    if read("proc/sys/net/ipv4/ip_forward").map(|s| s.trim().to_string()) == Some("0".into()) {
        w.push("WARNING: IPv4 forwarding is disabled".to_string());
    }
    for (f, name) in [
        ("proc/sys/net/bridge/bridge-nf-call-iptables", "iptables"),
        ("proc/sys/net/bridge/bridge-nf-call-ip6tables", "ip6tables"),
    ] {
        if read(f).map(|s| s.trim().to_string()) != Some("1".into()) {
            w.push(format!("WARNING: bridge-nf-call-{name} is disabled"));
        }
    }
    w
}

/// Whether a direct child cgroup of `dir` has the file (the root cgroup of v2 lacks the
/// memory.* files, its children have them when the controller is enabled).
fn has_child_with(dir: &std::path::Path, file: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().any(|e| e.path().join(file).exists()))
        .unwrap_or(false)
}

impl Engine {
    /// The settings in force now.
    pub fn settings(&self) -> Settings {
        self.settings.read().expect("settings lock").clone()
    }

    /// The registry client in force now (a reload may replace it).
    pub(crate) fn registry(&self) -> Arc<berth_registry::Client> {
        self.registry.read().expect("registry lock").clone()
    }

    /// The registry settings in force now.
    pub fn registry_config(&self) -> berth_registry::Config {
        self.registry().config().clone()
    }

    /// Applies reloaded settings (and registry settings) and sends docker's `daemon reload`
    /// event. Nothing changes when the registry settings are refused.
    pub fn reload(&self, s: Settings, reg: berth_registry::Config) -> Result<()> {
        let client =
            berth_registry::Client::new(reg.clone()).map_err(|e| Error::Internal(e.to_string()))?;
        *self.registry.write().expect("registry lock") = Arc::new(client);
        set_default_ulimits(&s.default_ulimits);
        *self.settings.write().expect("settings lock") = s.clone();
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let shim = self.cfg.shim_path.display().to_string();
        let attrs = reload_attributes(&s, &reg, ("berth", &shim), name.trim());
        self.events
            .emit("daemon", "reload", &self.engine_id(), attrs);
        Ok(())
    }

    /// The daemon's ID (`GET /info` `ID`, the actor of daemon events): made once, kept in
    /// `<data-root>/engine-id`.
    pub fn engine_id(&self) -> String {
        let path = self.cfg.data_root.join("engine-id");
        if let Ok(s) = std::fs::read_to_string(&path) {
            if !s.trim().is_empty() {
                return s.trim().to_string();
            }
        }
        let id = new_engine_id();
        let _ = std::fs::write(&path, &id);
        id
    }
}

/// `default-ulimits` in the container `Ulimits` shape, read by every container spec.
static DEFAULT_ULIMITS: std::sync::RwLock<Vec<Value>> = std::sync::RwLock::new(Vec::new());

/// Makes `default-ulimits` the defaults of the containers started from now on.
pub(crate) fn set_default_ulimits(m: &BTreeMap<String, Value>) {
    let v = m
        .iter()
        .map(|(name, u)| {
            json!({
                "Name": u.get("Name").and_then(Value::as_str).unwrap_or(name),
                "Soft": u.get("Soft").cloned().unwrap_or(json!(0)),
                "Hard": u.get("Hard").cloned().unwrap_or(json!(0)),
            })
        })
        .collect();
    *DEFAULT_ULIMITS.write().expect("ulimits lock") = v;
}

/// `default-ulimits` in force, as container `Ulimits` entries.
pub(crate) fn default_ulimits() -> Vec<Value> {
    DEFAULT_ULIMITS.read().expect("ulimits lock").clone()
}

/// docker's engine ID shape: twelve groups of four base32 characters joined by `:`.
fn new_engine_id() -> String {
    use rand::Rng;
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let groups: Vec<String> = (0..12)
        .map(|_| {
            (0..4)
                .map(|_| ABC[rng.gen_range(0..ABC.len())] as char)
                .collect()
        })
        .collect();
    groups.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_have_dockers_names_and_formats() {
        let mut s = Settings {
            debug: true,
            labels: vec!["a=c".into(), "x=y".into()],
            live_restore: true,
            max_concurrent_downloads: 7,
            ..Settings::default()
        };
        s.features.insert("buildkit".into(), true);
        let reg = berth_registry::Config {
            insecure: vec!["10.1.0.0/16".into()],
            mirrors: vec!["https://m.example.com".into()],
            ..Default::default()
        };
        let a = reload_attributes(&s, &reg, ("berth", "/x/berth-shim"), "vm");
        assert_eq!(a["debug"], "true");
        assert_eq!(a["labels"], r#"["a=c","x=y"]"#);
        assert_eq!(a["insecure-registries"], r#"["10.1.0.0/16"]"#);
        assert_eq!(a["registry-mirrors"], r#"["https://m.example.com"]"#);
        assert_eq!(a["features"], "map[buildkit:true]");
        assert_eq!(a["max-concurrent-downloads"], "7");
        assert_eq!(a["max-concurrent-uploads"], "5");
        assert_eq!(a["shutdown-timeout"], "15");
        assert_eq!(a["default-shm-size"], "67108864");
        assert_eq!(a["live-restore"], "true");
        assert_eq!(a["name"], "vm");
    }

    #[test]
    fn registry_info_keeps_loopback_and_splits_hosts_from_cidrs() {
        let reg = berth_registry::Config {
            insecure: vec!["10.1.0.0/16".into(), "myreg:5000".into()],
            mirrors: vec!["https://m.example.com".into()],
            ..Default::default()
        };
        let v = registry_info(&reg);
        assert_eq!(
            v["InsecureRegistryCIDRs"],
            json!(["10.1.0.0/16", "127.0.0.0/8"])
        );
        assert_eq!(v["Mirrors"], json!(["https://m.example.com/"]));
        assert_eq!(v["IndexConfigs"]["myreg:5000"]["Secure"], json!(false));
        assert_eq!(
            v["IndexConfigs"]["docker.io"]["Mirrors"],
            json!(["https://m.example.com/"])
        );
    }

    #[test]
    fn warnings_follow_the_host_files() {
        let t = std::env::temp_dir().join(format!("berth-warn-{}", std::process::id()));
        let mem = t.join("sys/fs/cgroup/memory");
        std::fs::create_dir_all(&mem).expect("mkdir");
        std::fs::create_dir_all(t.join("proc/sys/net/bridge")).expect("mkdir");
        std::fs::create_dir_all(t.join("proc/sys/net/ipv4")).expect("mkdir");
        std::fs::write(mem.join("memory.limit_in_bytes"), "0").expect("write");
        std::fs::write(t.join("proc/sys/net/ipv4/ip_forward"), "1\n").expect("write");
        std::fs::write(t.join("proc/sys/net/bridge/bridge-nf-call-iptables"), "1\n")
            .expect("write");
        std::fs::write(
            t.join("proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            "1\n",
        )
        .expect("write");
        assert_eq!(host_warnings(&t), vec!["WARNING: No swap limit support"]);
        std::fs::write(mem.join("memory.memsw.limit_in_bytes"), "0").expect("write");
        std::fs::write(t.join("proc/sys/net/ipv4/ip_forward"), "0\n").expect("write");
        assert_eq!(
            host_warnings(&t),
            vec!["WARNING: IPv4 forwarding is disabled"]
        );
        let _ = std::fs::remove_dir_all(&t);
    }
}
