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
///
/// The files are the container's: opened inside `rootfs` (symlinks resolved as if `rootfs`
/// were `/`, never to the host's files), without blocking on a FIFO or device, regular files
/// only (anything else counts as absent) and at most `USER_DB_MAX` bytes. Blocking file
/// I/O: call it off the async workers (`resolve_user_blocking`).
pub fn resolve_user(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    let passwd = user_db(rootfs, "etc/passwd")?;
    let group = user_db(rootfs, "etc/group")?;
    resolve_user_in(&passwd, &group, spec, group_add)
}

/// `resolve_user` on tokio's blocking pool.
pub async fn resolve_user_blocking(
    rootfs: std::path::PathBuf,
    spec: String,
    group_add: Vec<String>,
) -> Result<User> {
    tokio::task::spawn_blocking(move || resolve_user(&rootfs, &spec, &group_add))
        .await
        .map_err(|e| Error::Internal(format!("resolving the user: {e}")))?
}

/// Largest `/etc/passwd` or `/etc/group` read from a container (glibc's and docker's readers
/// have no limit; real files are a few KiB, and a container must not make berthd read until
/// it runs out of memory).
pub const USER_DB_MAX: u64 = 1 << 20;

/// The content of `rootfs/<rel>` as the container sees it (see `resolve_user`); "" when it
/// is absent, not a regular file, or unreadable.
fn user_db(rootfs: &Path, rel: &str) -> Result<String> {
    match berth_util::inroot::read_regular(rootfs, Path::new(rel), USER_DB_MAX) {
        Ok(Some(data)) => Ok(String::from_utf8_lossy(&data).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            Err(Error::InvalidParameter(format!(
                "unable to read /{rel} of the container: larger than {} MiB",
                USER_DB_MAX >> 20
            )))
        }
        Err(e) => {
            tracing::debug!("/{rel} of the container: {e}");
            Ok(String::new())
        }
    }
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

/// The device cgroup rules: docker's allow-list (deny all; mknod of character devices; the
/// usual character devices), then the container's own devices and `DeviceCgroupRules`.
/// Stricter than docker: no `b *:* m`, so no block device node can be made.
fn device_rules(hc: &HostConfig, privileged: bool, own: &[Device]) -> Vec<Value> {
    if privileged {
        return vec![json!({"allow": true, "access": "rwm"})];
    }
    let mut v = vec![json!({"allow": false, "access": "rwm"})];
    // mknod of any character device; access only to the usual ones
    v.push(json!({"allow": true, "type": "c", "access": "m"}));
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
    for d in own {
        v.push(json!({"allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "access": d.access}));
        // the runtime makes the node (possibly already inside this cgroup): mknod of exactly
        // this device, not docker's `b *:* m`
        if !d.access.contains('m') {
            v.push(json!({"allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor, "access": "m"}));
        }
    }
    for r in crate::container_validate::str_list(&hc.extra, "DeviceCgroupRules") {
        if let Some((t, maj, min, access)) = crate::container_validate::parse_cgroup_rule(&r) {
            let mut rule = json!({"allow": true, "type": t.to_string(), "access": access});
            if let Some(m) = maj {
                rule["major"] = json!(m);
            }
            if let Some(m) = min {
                rule["minor"] = json!(m);
            }
            v.push(rule);
        }
    }
    v
}

/// A device node to create in the container and allow in its device cgroup.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Device {
    pub path: String,
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub access: String,
}

fn device_of(md: &std::fs::Metadata, path: String, access: &str) -> Option<Device> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let ft = md.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        return None;
    };
    let rdev = md.rdev();
    Some(Device {
        path,
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        access: access.to_string(),
    })
}

/// Whether the host's blkio controller has `file` (e.g. `blkio.weight`, missing on kernels
/// without CFQ/BFQ weights).
pub(crate) fn blkio_has(file: &str) -> bool {
    Path::new("/sys/fs/cgroup/blkio").join(file).exists()
        || Path::new("/sys/fs/cgroup/io.weight").exists() && file == "blkio.weight"
}

/// The major/minor of a block device named in a `--device-*-bps/iops` option.
pub(crate) fn block_device(path: &str) -> Result<(u64, u64)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::metadata(path).map_err(|e| {
        Error::InvalidParameter(match e.kind() {
            std::io::ErrorKind::NotFound => format!("stat {path}: no such file or directory"),
            _ => format!("stat {path}: {e}"),
        })
    })?;
    if !md.file_type().is_block_device() {
        return Err(Error::InvalidParameter(format!(
            "{path} is not a block device"
        )));
    }
    Ok((
        nix::sys::stat::major(md.rdev()),
        nix::sys::stat::minor(md.rdev()),
    ))
}

/// `--device HOST[:CONTAINER[:PERMS]]`: the device node (or every node below a directory)
/// with docker's errors for a missing path or a file that is no device.
pub(crate) fn host_devices(on_host: &str, in_ctr: &str) -> Result<Vec<Device>> {
    host_devices_perms(on_host, in_ctr, "rwm")
}

fn host_devices_perms(on_host: &str, in_ctr: &str, perms: &str) -> Result<Vec<Device>> {
    let gather = |why: String| {
        Error::InvalidParameter(format!(
            "error gathering device information while adding custom device {on_host:?}: {why}"
        ))
    };
    let in_ctr = if in_ctr.is_empty() { on_host } else { in_ctr };
    let perms = if perms.is_empty() { "rwm" } else { perms };
    let md = std::fs::metadata(on_host).map_err(|e| {
        gather(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".into(),
            _ => e.to_string(),
        })
    })?;
    if let Some(d) = device_of(&md, in_ctr.to_string(), perms) {
        return Ok(vec![d]);
    }
    if !md.is_dir() {
        return Err(gather("not a device node".into()));
    }
    // a directory: every device node below it, at the same place below `in_ctr`
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(on_host)];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(on_host).unwrap_or(&p);
            let dest = Path::new(in_ctr).join(rel).to_string_lossy().into_owned();
            out.extend(device_of(&md, dest, perms));
        }
    }
    Ok(out)
}

/// `HostConfig.Devices` resolved on the host (again at start: a device may have gone).
pub(crate) fn own_devices(hc: &HostConfig) -> Result<Vec<Device>> {
    let mut out = Vec::new();
    for d in hc
        .extra
        .get("Devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("");
        out.extend(host_devices_perms(
            s("PathOnHost"),
            s("PathInContainer"),
            s("CgroupPermissions"),
        )?);
    }
    Ok(out)
}

/// `--privileged`: every device node of the host's /dev, as docker gives them.
fn privileged_devices() -> Vec<Device> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/dev")];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if dir == Path::new("/dev")
                && matches!(
                    name.as_ref(),
                    "pts" | "shm" | "fd" | "mqueue" | "console" | ".lxc" | ".lxd-mounts" | ".udev"
                )
            {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                stack.push(p);
                continue;
            }
            let path = p.to_string_lossy().into_owned();
            out.extend(device_of(&md, path, "rwm"));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// OCI `linux.resources` from a HostConfig (also what `update` sends to a live container).
pub fn resources(hc: &HostConfig) -> Result<Value> {
    if hc_i64(hc, "CpuRealtimePeriod") > 0 || hc_i64(hc, "CpuRealtimeRuntime") > 0 {
        return Err(Error::InvalidParameter(
            "CPU real-time scheduling (CpuRealtimePeriod, CpuRealtimeRuntime) is not supported by berth".into(),
        ));
    }
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
    if let Some(s) = hc.extra.get("MemorySwappiness").and_then(Value::as_i64) {
        if (0..=100).contains(&s) {
            mem.insert("swappiness".into(), json!(s));
        }
    }
    if hc_bool(hc, "OomKillDisable") {
        mem.insert("disableOOMKiller".into(), json!(true));
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
    let mut bio = serde_json::Map::new();
    let weight = hc_i64(hc, "BlkioWeight");
    if weight > 0 && blkio_has("blkio.weight") {
        bio.insert("weight".into(), json!(weight));
    }
    for (k, key) in [
        ("BlkioDeviceReadBps", "throttleReadBpsDevice"),
        ("BlkioDeviceWriteBps", "throttleWriteBpsDevice"),
        ("BlkioDeviceReadIOps", "throttleReadIOPSDevice"),
        ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice"),
    ] {
        let mut list = Vec::new();
        for d in hc
            .extra
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = d.get("Path").and_then(Value::as_str).unwrap_or("");
            let rate = d.get("Rate").and_then(Value::as_u64).unwrap_or(0);
            let (major, minor) = block_device(path)?;
            list.push(json!({"major": major, "minor": minor, "rate": rate}));
        }
        if !list.is_empty() {
            bio.insert(key.into(), Value::Array(list));
        }
    }
    if !bio.is_empty() {
        r.insert("blockIO".into(), Value::Object(bio));
    }
    Ok(Value::Object(r))
}

/// The capabilities in this process's bounding set (what `ALL`/`--privileged` can give: a
/// daemon without e.g. CAP_SYS_RESOURCE cannot hand it to a container), by number.
pub(crate) fn bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// All capabilities the kernel knows and the daemon holds (for `--privileged` and `ALL`).
fn all_caps() -> Vec<String> {
    let last: usize = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    let bnd = bounding_set();
    berth_runtime::capability_names()
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The capability set as docker computes it: `ALL` in CapAdd = every capability but the
/// dropped ones; `ALL` in CapDrop = only the added ones; else defaults − drops + adds.
/// Privileged: every capability, less any dropped (docker ignores the drops: stricter).
pub fn capabilities(hc: &HostConfig, privileged: bool) -> Vec<String> {
    use crate::container_validate::{normalize_cap, str_list};
    let list = |k: &str| -> Vec<String> {
        str_list(&hc.extra, k)
            .iter()
            .map(|c| normalize_cap(c))
            .collect()
    };
    let add = list("CapAdd");
    let drop = list("CapDrop");
    let mut caps: Vec<String> = if privileged || add.iter().any(|c| c == "ALL") {
        all_caps()
            .into_iter()
            .filter(|c| !drop.contains(c))
            .collect()
    } else if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if !privileged {
        for c in add {
            if c != "ALL" && !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    caps
}

/// `Ulimits: [{"Name":"nofile","Soft":1024,"Hard":2048}]` → OCI rlimits.
pub(crate) fn rlimits(hc: &HostConfig) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut given = hc
        .extra
        .get("Ulimits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // the daemon's `default-ulimits` for the names the container does not set
    for d in crate::settings::default_ulimits() {
        if !given.iter().any(|u| u.get("Name") == d.get("Name")) {
            given.push(d);
        }
    }
    for u in given {
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

/// docker's cgroup namespace mode for a container: the one asked for, else the daemon's
/// default for the host's cgroup version (`host` on v1 and hybrid hosts, `private` on a
/// unified cgroup v2 host), as dockerd 20.10 picks it.
pub(crate) fn cgroupns_mode(hc: &HostConfig) -> &'static str {
    match hc_str(hc, "CgroupnsMode") {
        "host" => "host",
        "private" => "private",
        _ => default_cgroupns_mode(),
    }
}

/// `private` when the host runs cgroup v2 alone (its root has `cgroup.controllers`).
pub(crate) fn default_cgroupns_mode() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "private"
    } else {
        "host"
    }
}

/// docker's default sysctls for a container with a network namespace of its own
/// (unprivileged ping and low ports, as dockerd 20.10 sets them), under the container's own
/// `Sysctls`, which win.
pub(crate) fn sysctls(hc: &HostConfig, own_netns: bool) -> Value {
    let mut out = serde_json::Map::new();
    if own_netns {
        out.insert("net.ipv4.ping_group_range".into(), json!("0 2147483647"));
        out.insert("net.ipv4.ip_unprivileged_port_start".into(), json!("0"));
    }
    if let Some(Value::Object(m)) = hc.extra.get("Sysctls") {
        out.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(out)
}

/// The container's cgroup below every hierarchy: `/berth/<id>`, or `<CgroupParent>/<id>`.
pub(crate) fn cgroup_path(hc: &HostConfig, id: &str) -> String {
    let parent = hc_str(hc, "CgroupParent").trim_matches('/');
    if parent.is_empty() {
        format!("/berth/{id}")
    } else {
        format!("/{parent}/{id}")
    }
}

/// A CRI container joins its sandbox's IPC and UTS namespaces (or the host's).
fn pod_namespaces(namespaces: &mut Vec<Value>, pod: &crate::PodLink) {
    namespaces.retain(|n| !matches!(n["type"].as_str(), Some("ipc" | "uts")));
    for (kind, path) in [("ipc", &pod.ipc), ("uts", &pod.uts)] {
        if let Some(p) = path {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }
}

/// Builds the spec and checks it against the OCI types.
pub(crate) fn build(
    rec: &Record,
    rootfs: &Path,
    net: &crate::container_network::NetPlan,
    user: &User,
) -> Result<Value> {
    use crate::container_network::NetNs;
    let ctr_dir = net.files.as_path();
    let cfg = &rec.config;
    let hc = &rec.host_config;
    let privileged = hc_bool(hc, "Privileged");
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
    let cgroup_opts = if privileged {
        json!(["nosuid", "noexec", "nodev", "relatime"])
    } else {
        json!(["nosuid", "noexec", "nodev", "relatime", "ro"])
    };
    let ipc_mode = hc_str(hc, "IpcMode");
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": cgroup_opts}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        bind(&ctr_dir.join("resolv.conf"), "/etc/resolv.conf"),
        bind(&ctr_dir.join("hostname"), "/etc/hostname"),
        bind(&ctr_dir.join("hosts"), "/etc/hosts"),
    ];
    match ipc_mode {
        // the host's /dev/shm with the host's IPC namespace; none: no /dev/shm at all
        "host" => mounts.push(bind(Path::new("/dev/shm"), "/dev/shm")),
        "none" => {}
        _ => mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]})),
    }
    // a CRI pod's containers share one /dev/shm, as they share the IPC namespace
    if let Some(shm) = rec.pod.as_ref().and_then(|p| p.shm.as_deref()) {
        mounts.retain(|m| m["destination"] != "/dev/shm");
        mounts.push(bind(shm, "/dev/shm"));
    }
    mounts.extend(rec.mounts.iter().map(|m| m.to_spec()));
    // parents before children (a volume on /etc must not hide /etc/hostname): docker's order
    mounts.sort_by_key(|m| {
        m["destination"]
            .as_str()
            .map(|d| d.trim_end_matches('/').matches('/').count())
            .unwrap_or(0)
    });
    // docker: privileged masks nothing; a list in HostConfig (the docker CLI sends empty
    // ones for `--security-opt systempaths=unconfined`) replaces the defaults
    let paths = |k: &str, default: &[&str]| -> Vec<String> {
        if privileged {
            return Vec::new();
        }
        match hc.extra.get(k) {
            Some(Value::Array(_)) => crate::container_validate::str_list(&hc.extra, k),
            _ => default.iter().map(|s| s.to_string()).collect(),
        }
    };
    let masked = paths("MaskedPaths", berth_types::MASKED_PATHS);
    let readonly_paths = paths("ReadonlyPaths", berth_types::READONLY_PATHS);
    let devices = if privileged {
        privileged_devices()
    } else {
        own_devices(hc)?
    };
    let mut resources = resources(hc)?;
    resources["devices"] = Value::Array(device_rules(hc, privileged, &devices));
    let linux_devices: Vec<Value> = devices
        .iter()
        .map(|d| {
            json!({"path": d.path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
                   "fileMode": d.mode, "uid": d.uid, "gid": d.gid})
        })
        .collect();
    let sysctl = sysctls(hc, matches!(net.ns, NetNs::New));
    let mut annotations = serde_json::Map::new();
    if hc_bool(hc, "Init") {
        annotations.insert("io.berth.init".into(), json!("true"));
    }
    let mut namespaces = vec![json!({"type": "pid"})];
    // `container:x` is rewritten at start by container_ipc::apply
    if ipc_mode != "host" {
        namespaces.push(json!({"type": "ipc"}));
    }
    if hc_str(hc, "UTSMode") != "host" {
        namespaces.push(json!({"type": "uts"}));
    }
    namespaces.push(json!({"type": "mount"}));
    if cgroupns_mode(hc) == "private" {
        namespaces.push(json!({"type": "cgroup"}));
    }
    match &net.ns {
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Host => {}
        NetNs::Join(path) => namespaces.push(json!({"type": "network", "path": path})),
    }
    if let Some(pod) = &rec.pod {
        pod_namespaces(&mut namespaces, pod);
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
            "oomScoreAdj": hc_i64(hc, "OomScoreAdj"),
            "noNewPrivileges": security.no_new_privileges()
        },
        "root": {"path": rootfs, "readonly": hc_bool(hc, "ReadonlyRootfs")},
        "hostname": cfg.hostname,
        "domainname": cfg.domainname,
        "mounts": mounts,
        "annotations": annotations,
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": cgroup_path(hc, &rec.id),
            "resources": resources,
            "devices": linux_devices,
            "sysctl": sysctl,
            "maskedPaths": masked,
            "readonlyPaths": readonly_paths
        }
    });
    let mut spec = spec;
    if let Some(s) = seccomp {
        spec["linux"]["seccomp"] = s;
    }
    if let Some(p) = rootfs_propagation(&spec["mounts"]) {
        spec["linux"]["rootfsPropagation"] = json!(p);
    }
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone())
        .map_err(|e| Error::Internal(format!("bad runtime spec: {e}")))?;
    Ok(spec)
}

/// The root's propagation, as docker derives it: shared when a mount is to be shared with the
/// host (`rshared`/`shared`: a mount the container makes there must reach the host's peer
/// group, which a slave root would cut), else left to the runtime's default (a slave).
fn rootfs_propagation(mounts: &Value) -> Option<&'static str> {
    let shared = mounts.as_array()?.iter().any(|m| {
        m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|o| o == "rshared" || o == "shared"))
    });
    shared.then_some("rshared")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_mount_makes_the_root_shared() {
        let m = json!([{"destination": "/a", "options": ["rbind", "rprivate"]}]);
        assert_eq!(rootfs_propagation(&m), None);
        let m = json!([{"destination": "/a", "options": ["rbind", "rprivate"]},
                       {"destination": "/b", "options": ["rbind", "rshared"]}]);
        assert_eq!(rootfs_propagation(&m), Some("rshared"));
    }

    const PW: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GR: &str = "root:x:0:\nstaff:x:50:bob\nbob:x:1000:\n";

    #[test]
    fn resources_from_docker_flags() {
        let mut hc = HostConfig::default();
        hc.extra.insert("Memory".into(), json!(64 * 1024 * 1024));
        hc.extra.insert("NanoCpus".into(), json!(1_500_000_000i64));
        hc.extra.insert("PidsLimit".into(), json!(50));
        let r = resources(&hc).unwrap();
        assert_eq!(r["memory"]["limit"], 64 * 1024 * 1024);
        assert_eq!(r["memory"]["swap"], 128 * 1024 * 1024);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 50);
        hc.extra.insert("Memory".into(), json!(1024));
        assert!(resources(&hc).is_err());
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
        // docker's order: ALL dropped, then the added ones
        let mut hc = HostConfig::default();
        hc.extra.insert("CapDrop".into(), json!(["ALL"]));
        hc.extra
            .insert("CapAdd".into(), json!(["chown", "CAP_KILL"]));
        assert_eq!(capabilities(&hc, false), ["CAP_CHOWN", "CAP_KILL"]);
        // ALL added: everything the daemon holds but the dropped ones
        let mut hc = HostConfig::default();
        hc.extra.insert("CapAdd".into(), json!(["all"]));
        hc.extra.insert("CapDrop".into(), json!(["sys_admin"]));
        let c = capabilities(&hc, false);
        assert!(c.len() > 14 && !c.contains(&"CAP_SYS_ADMIN".to_string()));
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
