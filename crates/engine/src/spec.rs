//! The OCI runtime spec for a container: image config + create options + mounts.

use crate::container::Record;
use crate::{Error, Result};
use berth_types::HostConfig;
use serde_json::{json, Value};
use std::path::Path;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// docker's default capability set.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A resolved `User`: uid, gid, extra groups, home.
#[derive(Debug, PartialEq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// Resolves `user[:group]` (names or numbers) against the rootfs's /etc/passwd and /etc/group,
/// plus `HostConfig.GroupAdd` (names or numbers) as extra groups.
pub fn resolve_user(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    resolve_user_in(&passwd, &group, spec, group_add)
}

/// `HostConfig.GroupAdd` as a list of strings (absent or null: none).
pub fn group_add(hc: &HostConfig) -> Vec<String> {
    hc.extra
        .get("GroupAdd")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn resolve_user_in(passwd: &str, group: &str, spec: &str, group_add: &[String]) -> Result<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let pw: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let entry = pw.iter().find(|f| f[0] == u || f[2] == u);
    let (uid, mut gid, home, uname) = match (entry, u.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[5].to_string(),
            f[0].to_string(),
        ),
        (None, Ok(n)) => (n, n, "/".to_string(), String::new()),
        (None, Err(_)) => {
            return Err(Error::InvalidParameter(format!(
                "unable to find user {u}: no matching entries in passwd file"
            )))
        }
    };
    let gr: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    if let Some(g) = g {
        gid = match gr.iter().find(|f| f[0] == g || f[2] == g) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::InvalidParameter(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    // like docker: the primary group, the groups listing the user, then GroupAdd
    let mut groups = vec![gid];
    groups.extend(
        gr.iter()
            .filter(|f| !uname.is_empty() && f[3].split(',').any(|m| m == uname))
            .filter_map(|f| f[2].parse::<u32>().ok()),
    );
    for g in group_add {
        let id = match gr.iter().find(|f| f[0] == g.as_str()) {
            Some(f) => f[2].parse().unwrap_or(0),
            None => g.parse().map_err(|_| {
                Error::InvalidParameter(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        groups.push(id);
    }
    let mut seen = std::collections::HashSet::new();
    groups.retain(|g| seen.insert(*g));
    Ok(User {
        uid,
        gid,
        groups,
        home,
    })
}

fn bind(src: &Path, dst: &str) -> Value {
    json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
}

fn hc_i64(hc: &HostConfig, k: &str) -> i64 {
    hc.extra.get(k).and_then(Value::as_i64).unwrap_or(0)
}
fn hc_str<'a>(hc: &'a HostConfig, k: &str) -> &'a str {
    hc.extra.get(k).and_then(Value::as_str).unwrap_or("")
}
fn hc_bool(hc: &HostConfig, k: &str) -> bool {
    hc.extra.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// docker's default device rules: deny all, allow mknod and the usual character devices.
fn default_devices(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut v = vec![json!({"allow": false, "access": "rwm"})];
    // mknod of any device; access only to the usual ones
    v.push(json!({"allow": true, "type": "c", "access": "m"}));
    v.push(json!({"allow": true, "type": "b", "access": "m"}));
    for (maj, min) in [
        (1, 3),
        (1, 8),
        (1, 7),
        (5, 0),
        (1, 5),
        (1, 9),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        v.push(json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rwm"}));
    }
    v.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    v
}

/// OCI `linux.resources` from a HostConfig (also what `update` sends to a live container).
pub fn resources(hc: &HostConfig, privileged: bool) -> Result<Value> {
    let mut r = serde_json::Map::new();
    let mut mem = serde_json::Map::new();
    let limit = hc_i64(hc, "Memory");
    if limit > 0 {
        if limit < 6 * 1024 * 1024 {
            return Err(Error::InvalidParameter(
                "Minimum memory limit allowed is 6MB".into(),
            ));
        }
        mem.insert("limit".into(), json!(limit));
        let swap = hc_i64(hc, "MemorySwap");
        // docker: unset swap = twice the memory; -1 = unlimited
        let swap = if swap == 0 { limit * 2 } else { swap };
        if swap > 0 && swap < limit {
            return Err(Error::InvalidParameter(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            ));
        }
        mem.insert("swap".into(), json!(swap));
    }
    let reservation = hc_i64(hc, "MemoryReservation");
    if reservation > 0 {
        mem.insert("reservation".into(), json!(reservation));
    }
    if !mem.is_empty() {
        r.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = serde_json::Map::new();
    let shares = hc_i64(hc, "CpuShares");
    if shares > 0 {
        cpu.insert("shares".into(), json!(shares));
    }
    let nano = hc_i64(hc, "NanoCpus");
    let (mut quota, mut period) = (hc_i64(hc, "CpuQuota"), hc_i64(hc, "CpuPeriod"));
    if nano > 0 {
        period = 100_000;
        quota = nano * period / 1_000_000_000;
    }
    if quota > 0 {
        cpu.insert("quota".into(), json!(quota));
    }
    if period > 0 {
        cpu.insert("period".into(), json!(period));
    }
    for (k, key) in [("CpusetCpus", "cpus"), ("CpusetMems", "mems")] {
        if !hc_str(hc, k).is_empty() {
            cpu.insert(key.into(), json!(hc_str(hc, k)));
        }
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    let pids = hc_i64(hc, "PidsLimit");
    if pids != 0 {
        r.insert(
            "pids".into(),
            json!({"limit": if pids < 0 { -1 } else { pids }}),
        );
    }
    let weight = hc_i64(hc, "BlkioWeight");
    if weight > 0 {
        r.insert("blockIO".into(), json!({"weight": weight}));
    }
    r.insert("devices".into(), Value::Array(default_devices(privileged)));
    Ok(Value::Object(r))
}

/// All capabilities the kernel knows (for `--privileged`).
fn all_caps() -> Vec<String> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    const NAMES: &[&str] = &[
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    NAMES
        .iter()
        .take(last as usize + 1)
        .map(|n| format!("CAP_{n}"))
        .collect()
}

/// The capability set: docker's defaults (or all, privileged) ± CapAdd/CapDrop.
pub fn capabilities(hc: &HostConfig, privileged: bool) -> Vec<String> {
    let norm = |c: &str| {
        let up = c.to_ascii_uppercase();
        if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        }
    };
    let list = |k: &str| -> Vec<String> {
        hc.extra
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(norm)).collect())
            .unwrap_or_default()
    };
    let mut caps: Vec<String> = if privileged {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    let add = list("CapAdd");
    let drop = list("CapDrop");
    if add.iter().any(|c| c == "CAP_ALL") {
        caps = all_caps();
    } else {
        for c in add {
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    if drop.iter().any(|c| c == "CAP_ALL") {
        caps.clear();
    } else {
        caps.retain(|c| !drop.contains(c));
    }
    caps
}

/// `Ulimits: [{"Name":"nofile","Soft":1024,"Hard":2048}]` → OCI rlimits.
pub(crate) fn rlimits(hc: &HostConfig) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for u in hc
        .extra
        .get("Ulimits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        let name = u.get("Name").and_then(Value::as_str).unwrap_or("");
        let known = [
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
            "as",
        ];
        if !known.contains(&name) {
            return Err(Error::InvalidParameter(format!(
                "invalid ulimit type: {name}"
            )));
        }
        out.push(json!({
            "type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": u.get("Soft").and_then(Value::as_i64).unwrap_or(0),
            "hard": u.get("Hard").and_then(Value::as_i64).unwrap_or(0),
        }));
    }
    Ok(out)
}

/// The environment docker gives a process: PATH if missing, HOSTNAME, TERM with a tty, HOME.
pub fn process_env(base: &[String], hostname: &str, tty: bool, home: &str) -> Vec<String> {
    let mut env: Vec<String> = base.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    env.insert(1.min(env.len()), format!("HOSTNAME={hostname}"));
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", if home.is_empty() { "/" } else { home }));
    }
    env
}

/// Builds the spec and checks it against the OCI types.
pub(crate) fn build(
    rec: &Record,
    rootfs: &Path,
    net: &crate::container_network::NetPlan,
) -> Result<Value> {
    use crate::container_network::NetNs;
    let ctr_dir = net.files.as_path();
    let cfg = &rec.config;
    let hc = &rec.host_config;
    let privileged = hc_bool(hc, "Privileged");
    let user = resolve_user(rootfs, &cfg.user, &group_add(hc))?;
    let mut env = process_env(
        cfg.env.as_deref().unwrap_or(&[]),
        &cfg.hostname,
        cfg.tty,
        &user.home,
    );
    // legacy links' variables come before the container's own, which win in getenv
    for (i, e) in net.link_env.iter().enumerate() {
        env.insert(i, e.clone());
    }
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    let cwd = if cfg.working_dir.is_empty() {
        "/".to_string()
    } else {
        cfg.working_dir.clone()
    };
    let caps = capabilities(hc, privileged);
    let security = crate::seccomp::SecurityOpts::from_host_config(hc)?;
    let seccomp = crate::seccomp::for_container(&security, &caps, privileged)?;
    let shm = match hc_i64(hc, "ShmSize") {
        n if n > 0 => n,
        _ => 64 * 1024 * 1024,
    };
    let sys_opts = if privileged {
        json!(["nosuid", "noexec", "nodev"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}),
        bind(&ctr_dir.join("resolv.conf"), "/etc/resolv.conf"),
        bind(&ctr_dir.join("hostname"), "/etc/hostname"),
        bind(&ctr_dir.join("hosts"), "/etc/hosts"),
    ];
    mounts.extend(rec.mounts.iter().map(|m| m.to_spec()));
    // parents before children (a volume on /etc must not hide /etc/hostname): docker's order
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.trim_end_matches('/').matches('/').count())
            .unwrap_or(0)
    });
    let (masked, readonly_paths): (&[&str], &[&str]) = if privileged {
        (&[], &[])
    } else {
        (berth_types::MASKED_PATHS, berth_types::READONLY_PATHS)
    };
    let mut annotations = serde_json::Map::new();
    if hc_bool(hc, "Init") {
        annotations.insert("io.berth.init".into(), json!("true"));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &net.ns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Host => {}
        NetNs::Join(path) => namespaces.push(json!({"type": "network", "path": path})),
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.groups},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": rlimits(hc)?,
            "noNewPrivileges": security.no_new_privileges()
        },
        "root": {"path": rootfs, "readonly": hc_bool(hc, "ReadonlyRootfs")},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "annotations": annotations,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": format!("/berth/{}", rec.id),
            "resources": resources(hc, privileged)?,
            "maskedPaths": masked,
            "readonlyPaths": readonly_paths
        }
    });
    let mut spec = spec;
    if let Some(s) = seccomp {
        spec["linux"]["seccomp"] = s;
    }
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone())
        .map_err(|e| Error::Internal(format!("bad runtime spec: {e}")))?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GR: &str = "root:x:0:\nstaff:x:50:bob\nbob:x:1000:\n";

    #[test]
    fn resources_from_docker_flags() {
        let mut hc = HostConfig::default();
        hc.extra.insert("Memory".into(), json!(64 * 1024 * 1024));
        hc.extra.insert("NanoCpus".into(), json!(1_500_000_000i64));
        hc.extra.insert("PidsLimit".into(), json!(50));
        let r = resources(&hc, false).unwrap();
        assert_eq!(r["memory"]["limit"], 64 * 1024 * 1024);
        assert_eq!(r["memory"]["swap"], 128 * 1024 * 1024);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 50);
        hc.extra.insert("Memory".into(), json!(1024));
        assert!(resources(&hc, false).is_err());
    }

    #[test]
    fn capabilities_add_and_drop() {
        let mut hc = HostConfig::default();
        assert_eq!(capabilities(&hc, false).len(), 14);
        hc.extra.insert("CapAdd".into(), json!(["NET_ADMIN"]));
        hc.extra
            .insert("CapDrop".into(), json!(["chown", "CAP_KILL"]));
        let c = capabilities(&hc, false);
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
        assert!(capabilities(&HostConfig::default(), true).len() > 30);
    }

    #[test]
    fn users_resolve_by_name_and_number() {
        let u = resolve_user_in(PW, GR, "", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.groups, [0]);
        let u = resolve_user_in(PW, GR, "bob", &[]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone()),
            (1000, 1000, vec![1000, 50])
        );
        let u = resolve_user_in(PW, GR, "1234:staff", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 50));
        assert!(resolve_user_in(PW, GR, "nosuch", &[]).is_err());
        // GroupAdd by name or number, without repeats
        let add = ["staff".to_string(), "100".to_string(), "1000".to_string()];
        let u = resolve_user_in(PW, GR, "bob", &add).unwrap();
        assert_eq!(u.groups, [1000, 50, 100]);
        assert!(resolve_user_in(PW, GR, "bob", &["nosuch".to_string()]).is_err());
    }
}
