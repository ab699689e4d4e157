//! Checks of a create request before anything is written, with docker's error texts: every
//! option berth accepts is one it applies, everything else is refused here (400).
//!
//! The pure checks take a `HostConfig`/`ContainerConfig` and the host facts they need
//! (`Host`), so they are unit-tested without root; `Engine::validate_create` adds the ones that
//! look at other containers.

use crate::{Engine, Error, Result};
use berth_types::{ContainerConfig, CreateRequest, HostConfig};
use serde_json::{Map, Value};
use std::path::Path;

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidParameter(msg.into())
}

/// What the checks need to know about the host.
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub cpus: i64,
    /// AppArmor / SELinux enabled in the kernel (berth applies neither)
    pub apparmor: bool,
    pub selinux: bool,
}

impl Host {
    pub(crate) fn probe() -> Host {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .map(|s| s.trim() == "Y")
            .unwrap_or(false);
        let selinux = Path::new("/sys/fs/selinux/enforce").exists();
        Host {
            cpus,
            apparmor,
            selinux,
        }
    }
}

/// Go's name for a JSON value's kind, as `encoding/json` prints it in a type error.
fn json_kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn type_error(v: &Value, field: &str, go_type: &str) -> Error {
    // Go names the number only when it is one that does not fit an integer type
    let kind = match v {
        Value::Number(_) if !go_type.starts_with("int") && !go_type.starts_with("uint") => {
            "number".to_string()
        }
        _ => json_kind(v),
    };
    bad(format!(
        "json: cannot unmarshal {kind} into Go struct field HostConfig.HostConfig.{field} of type {go_type}"
    ))
}

/// Integer fields of HostConfig with the Go type docker decodes them into (null allowed).
const INT_FIELDS: &[(&str, &str, i64, i64)] = &[
    ("Memory", "int64", i64::MIN, i64::MAX),
    ("MemorySwap", "int64", i64::MIN, i64::MAX),
    ("MemoryReservation", "int64", i64::MIN, i64::MAX),
    ("KernelMemory", "int64", i64::MIN, i64::MAX),
    ("KernelMemoryTCP", "int64", i64::MIN, i64::MAX),
    ("NanoCpus", "int64", i64::MIN, i64::MAX),
    ("CpuShares", "int64", i64::MIN, i64::MAX),
    ("CpuPeriod", "int64", i64::MIN, i64::MAX),
    ("CpuQuota", "int64", i64::MIN, i64::MAX),
    ("CpuRealtimePeriod", "int64", i64::MIN, i64::MAX),
    ("CpuRealtimeRuntime", "int64", i64::MIN, i64::MAX),
    ("CpuCount", "int64", i64::MIN, i64::MAX),
    ("CpuPercent", "int64", i64::MIN, i64::MAX),
    ("ShmSize", "int64", i64::MIN, i64::MAX),
    ("PidsLimit", "int64", i64::MIN, i64::MAX),
    ("MemorySwappiness", "int64", i64::MIN, i64::MAX),
    ("OomScoreAdj", "int", i64::MIN, i64::MAX),
    ("BlkioWeight", "uint16", 0, u16::MAX as i64),
];

const STR_FIELDS: &[&str] = &[
    "IpcMode",
    "PidMode",
    "UTSMode",
    "UsernsMode",
    "CgroupnsMode",
    "CpusetCpus",
    "CpusetMems",
    "Cgroup",
    "CgroupParent",
];

const BOOL_FIELDS: &[&str] = &["Privileged", "ReadonlyRootfs", "Init", "OomKillDisable"];

const STR_LIST_FIELDS: &[&str] = &[
    "CapAdd",
    "CapDrop",
    "SecurityOpt",
    "DeviceCgroupRules",
    "MaskedPaths",
    "ReadonlyPaths",
];

/// The JSON types docker's decoder insists on (Go: a string where an int64 is due is a 400).
fn check_types(x: &Map<String, Value>) -> Result<()> {
    for &(k, ty, lo, hi) in INT_FIELDS {
        match x.get(k) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(n)) => match n.as_i64() {
                Some(i) if i >= lo && i <= hi => {}
                _ => return Err(type_error(v, k, ty)),
            },
            Some(v) => return Err(type_error(v, k, ty)),
        }
    }
    for &k in STR_FIELDS {
        match x.get(k) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(v) => return Err(type_error(v, k, &format!("container.{k}"))),
        }
    }
    for &k in BOOL_FIELDS {
        match x.get(k) {
            None | Some(Value::Null) | Some(Value::Bool(_)) => {}
            Some(v) => return Err(type_error(v, k, "bool")),
        }
    }
    for &k in STR_LIST_FIELDS {
        match x.get(k) {
            None | Some(Value::Null) => {}
            // CapAdd/CapDrop are strslices: a lone string is a list of one
            Some(Value::String(_)) if k.starts_with("Cap") => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(v) => return Err(type_error(v, k, "[]string")),
        }
    }
    match x.get("Sysctls") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            if let Some(v) = m.values().find(|v| !v.is_string()) {
                return Err(type_error(v, "Sysctls", "string"));
            }
        }
        Some(v) => return Err(type_error(v, "Sysctls", "map[string]string")),
    }
    match x.get("Devices") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => {}
        Some(v) => return Err(type_error(v, "Devices", "[]container.DeviceMapping")),
    }
    Ok(())
}

pub(crate) fn int(x: &Map<String, Value>, k: &str) -> i64 {
    x.get(k).and_then(Value::as_i64).unwrap_or(0)
}
fn string<'a>(x: &'a Map<String, Value>, k: &str) -> &'a str {
    x.get(k).and_then(Value::as_str).unwrap_or("")
}
/// A string list (a lone string counts as a list of one, like docker's strslice).
pub(crate) fn str_list(x: &Map<String, Value>, k: &str) -> Vec<String> {
    match x.get(k) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

const MB6: i64 = 6 * 1024 * 1024;

/// docker's resource checks (daemon/daemon_unix.go's verifyPlatformContainerResources).
fn check_resources(x: &Map<String, Value>, host: &Host) -> Result<()> {
    let memory = int(x, "Memory");
    let swap = int(x, "MemorySwap");
    let reservation = int(x, "MemoryReservation");
    if memory != 0 && memory < MB6 {
        return Err(bad("Minimum memory limit allowed is 6MB"));
    }
    if memory == 0 && swap > 0 {
        return Err(bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if let Some(s) = x.get("MemorySwappiness").and_then(Value::as_i64) {
        if s != -1 && !(0..=100).contains(&s) {
            return Err(bad(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    if reservation > 0 && reservation < MB6 {
        return Err(bad("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    let kmem = int(x, "KernelMemory");
    if kmem > 0 && kmem < MB6 {
        return Err(bad("Minimum kernel memory limit allowed is 6MB"));
    }
    let nano = int(x, "NanoCpus");
    let (period, quota) = (int(x, "CpuPeriod"), int(x, "CpuQuota"));
    if nano > 0 && period > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano < 0 || nano > host.cpus * 1_000_000_000 {
        return Err(bad(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available",
            n = host.cpus
        )));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    if int(x, "CpuShares") < 0 {
        return Err(bad("invalid CPU shares: the value can not be negative"));
    }
    let weight = int(x, "BlkioWeight");
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(bad("Range of blkio weight is from 10 to 1000"));
    }
    if int(x, "ShmSize") < 0 {
        return Err(bad("SHM size can not be less than 0"));
    }
    let oom = int(x, "OomScoreAdj");
    if !(-1000..=1000).contains(&oom) {
        return Err(bad(format!(
            "Invalid value {oom}, range for oom score adj is [-1000, 1000]"
        )));
    }
    Ok(())
}

/// docker's normalisation: upper case, `CAP_` prefixed; `ALL` (any case) stays `ALL`.
pub(crate) fn normalize_cap(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up == "ALL" || up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn check_caps(x: &Map<String, Value>) -> Result<()> {
    for key in ["CapAdd", "CapDrop"] {
        for c in str_list(x, key) {
            let n = normalize_cap(&c);
            let known = n == "ALL" || berth_runtime::capability_names().contains(&n.as_str());
            if !known {
                return Err(bad(format!("invalid {key}: unknown capability: {n:?}")));
            }
            // one the daemon itself lacks could only be dropped silently: refused instead
            // (docker fails at start with "unable to apply caps: operation not permitted")
            let bit = berth_runtime::capability_names()
                .iter()
                .position(|c| *c == n);
            if key == "CapAdd"
                && bit.is_some_and(|b| crate::spec::bounding_set() & (1u64 << b) == 0)
            {
                return Err(bad(format!(
                    "invalid CapAdd: capability {n:?} is not available: berthd does not hold it"
                )));
            }
        }
    }
    Ok(())
}

/// `--security-opt` as berth understands it (seccomp and no-new-privileges are applied by
/// the spec; AppArmor and SELinux labels are no-ops on a host that has neither).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    pub seccomp: Option<String>,
    pub apparmor: Option<String>,
    pub labels: Vec<String>,
}

/// Go's strconv.ParseBool.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `HostConfig.SecurityOpt` with docker's rules and errors.
pub(crate) fn security_opts(opts: &[String], host: &Host) -> Result<SecurityOpts> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            out.labels.push("disable".into());
            continue;
        }
        // `key=value`, or the old `key:value`
        let kv = opt.split_once('=').or_else(|| opt.split_once(':'));
        let Some((k, v)) = kv else {
            return Err(bad(format!("invalid --security-opt 1: {opt:?}")));
        };
        match k {
            "label" => out.labels.push(v.to_string()),
            "apparmor" => out.apparmor = Some(v.to_string()),
            "seccomp" => out.seccomp = Some(v.to_string()),
            "no-new-privileges" => match parse_bool(v) {
                Some(b) => out.no_new_privileges = b,
                None => return Err(bad(format!("invalid --security-opt 2: {opt:?}"))),
            },
            _ => return Err(bad(format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    // berth loads no AppArmor profile and sets no SELinux label: on a host that enforces
    // either, asking for one must not silently run the container without it
    if let Some(p) = &out.apparmor {
        if host.apparmor && !p.is_empty() && p != "unconfined" {
            return Err(bad(format!(
                "apparmor profile {p:?}: berth does not apply AppArmor profiles"
            )));
        }
    }
    if host.selinux && out.labels.iter().any(|l| l != "disable" && !l.is_empty()) {
        return Err(bad("SELinux labels are not supported by berth"));
    }
    Ok(out)
}

/// Sysctls of an IPC namespace.
fn ipc_sysctl(k: &str) -> bool {
    matches!(
        k,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || k.starts_with("fs.mqueue.")
}

/// The namespaced sysctls runc allows, refused where the namespace is the host's. Also run at
/// start: a record written by an older berthd (which took any sysctl and ignored it) must
/// not now set a host-wide one.
pub(crate) fn check_sysctls(x: &Map<String, Value>, net_mode: &str) -> Result<()> {
    let Some(Value::Object(m)) = x.get("Sysctls") else {
        return Ok(());
    };
    let ipc_host = string(x, "IpcMode") == "host";
    let uts_host = string(x, "UTSMode") == "host";
    let net_host = net_mode == "host";
    for k in m.keys() {
        let well_formed = !k.is_empty()
            && k.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !well_formed {
            return Err(bad(format!(
                "sysctl {k:?} is not in a separate kernel namespace"
            )));
        }
        if ipc_sysctl(k) {
            if ipc_host {
                return Err(bad(format!(
                    "sysctl {k:?} is not allowed in the hosts ipc namespace"
                )));
            }
        } else if k.starts_with("net.") {
            if net_host {
                return Err(bad(format!(
                    "sysctl {k:?} not allowed in host network namespace"
                )));
            }
        } else if k == "kernel.domainname" {
            if uts_host {
                return Err(bad(format!(
                    "sysctl {k:?} is not allowed in the hosts uts namespace"
                )));
            }
        } else if k == "kernel.hostname" {
            return Err(bad(format!(
                "sysctl {k:?} is not allowed as it conflicts with the OCI \"hostname\" field"
            )));
        } else {
            return Err(bad(format!(
                "sysctl {k:?} is not in a separate kernel namespace"
            )));
        }
    }
    Ok(())
}

/// `c 1:3 rwm`, `b *:* m`, `a`-less: docker's DeviceCgroupRules grammar.
pub(crate) fn parse_cgroup_rule(rule: &str) -> Option<(char, Option<i64>, Option<i64>, String)> {
    let mut it = rule.split(' ');
    let (t, mm, access) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let t = match t {
        "a" | "b" | "c" => t.chars().next()?,
        _ => return None,
    };
    let (maj, min) = mm.split_once(':')?;
    let num = |s: &str| -> Option<Option<i64>> {
        if s == "*" {
            Some(None)
        } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (maj, min) = (num(maj)?, num(min)?);
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return None;
    }
    Some((t, maj, min, access.to_string()))
}

fn check_devices(x: &Map<String, Value>) -> Result<()> {
    for r in str_list(x, "DeviceCgroupRules") {
        if parse_cgroup_rule(&r).is_none() {
            return Err(bad(format!("invalid device cgroup rule format: '{r}'")));
        }
    }
    for d in x
        .get("Devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let on_host = d.get("PathOnHost").and_then(Value::as_str).unwrap_or("");
        let in_ctr = d
            .get("PathInContainer")
            .and_then(Value::as_str)
            .unwrap_or("");
        let perms = d
            .get("CgroupPermissions")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !perms.chars().all(|c| "rwm".contains(c)) || perms.len() > 3 {
            return Err(bad(format!("bad mode specified: {perms}")));
        }
        if !in_ctr.is_empty() && !in_ctr.starts_with('/') {
            return Err(bad(format!("{in_ctr} is not an absolute path")));
        }
        crate::spec::host_devices(on_host, in_ctr)?;
    }
    Ok(())
}

fn check_namespaces(x: &Map<String, Value>, hostname_given: bool) -> Result<()> {
    let ipc = string(x, "IpcMode");
    let ipc_ok = matches!(ipc, "" | "host" | "private" | "shareable" | "none")
        || ipc
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty());
    if !ipc_ok {
        return Err(bad(format!("invalid IPC mode: {ipc}")));
    }
    let pid = string(x, "PidMode");
    let pid_ok = matches!(pid, "" | "host")
        || pid
            .strip_prefix("container:")
            .is_some_and(|c| !c.is_empty());
    if !pid_ok {
        return Err(bad(format!("invalid PID mode: {pid}")));
    }
    let uts = string(x, "UTSMode");
    if !matches!(uts, "" | "host") {
        return Err(bad(format!("invalid UTS mode: {uts}")));
    }
    if uts == "host" && hostname_given {
        return Err(bad("conflicting options: hostname and the UTS mode"));
    }
    let cgns = string(x, "CgroupnsMode");
    if !matches!(cgns, "" | "host" | "private") {
        return Err(bad(format!("invalid cgroup namespace mode: {cgns}")));
    }
    let userns = string(x, "UsernsMode");
    if !matches!(userns, "" | "host") {
        return Err(bad(format!("invalid USER mode: {userns}")));
    }
    Ok(())
}

/// Options berth does not apply and that docker refuses on Linux (or fails with at start):
/// refused here with docker's text.
fn check_unsupported(x: &Map<String, Value>) -> Result<()> {
    if int(x, "IOMaximumIOps") != 0 {
        return Err(bad(
            "Invalid QoS settings: linux does not support configuration of maximum IOPs",
        ));
    }
    if int(x, "IOMaximumBandwidth") != 0 {
        return Err(bad(
            "Invalid QoS settings: linux does not support configuration of maximum bandwidth",
        ));
    }
    let runtime = string(x, "Runtime");
    if !matches!(runtime, "" | "berth" | "runc") {
        return Err(bad(format!("Unknown runtime specified {runtime}")));
    }
    let isolation = string(x, "Isolation");
    if !matches!(isolation, "" | "default") {
        return Err(bad(format!(
            "Invalid isolation: {isolation:?} - linux only supports 'default'"
        )));
    }
    if x.get("StorageOpt")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        return Err(bad(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option",
        ));
    }
    if let Some(reqs) = x
        .get("DeviceRequests")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        // no device drivers (GPUs): docker's answer when none matches
        let r = &reqs[0];
        let driver = r.get("Driver").and_then(Value::as_str).unwrap_or("");
        let caps: Vec<String> = r
            .get("Capabilities")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|set| {
                let names: Vec<&str> = set
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                format!("[{}]", names.join(" "))
            })
            .collect();
        return Err(bad(format!(
            "could not select device driver {driver:?} with capabilities: [{}]",
            caps.join(" ")
        )));
    }
    // real-time values are kept as asked (inspect shows them, as dockerd's); dockerd's own
    // checks here, the refusal to apply them comes at start
    let (rt_period, rt_runtime) = (int(x, "CpuRealtimePeriod"), int(x, "CpuRealtimeRuntime"));
    if rt_period != 0 && rt_runtime != 0 && rt_runtime > rt_period {
        return Err(bad(
            "cpu real-time runtime cannot be higher than cpu real-time period",
        ));
    }
    let parent = string(x, "CgroupParent");
    if parent.split('/').any(|c| c == ".." || c == ".") {
        return Err(bad(format!("invalid CgroupParent {parent:?}")));
    }
    for k in [
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
    ] {
        for d in x.get(k).and_then(Value::as_array).into_iter().flatten() {
            let path = d.get("Path").and_then(Value::as_str).unwrap_or("");
            crate::spec::block_device(path)?;
        }
    }
    Ok(())
}

/// docker's warnings for options that are accepted but cannot take effect here.
pub(crate) fn warnings(x: &Map<String, Value>) -> Vec<String> {
    let mut w = Vec::new();
    if int(x, "KernelMemory") > 0 {
        w.push(
            "Specifying a kernel memory limit is deprecated and will be removed in a future release."
                .to_string(),
        );
    }
    if x.get("OomKillDisable").and_then(Value::as_bool) == Some(true) && int(x, "Memory") == 0 {
        w.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_string());
    }
    if int(x, "CpuPercent") > 0 {
        w.push("linux does not support CPU percent. Percent discarded.".to_string());
    }
    if int(x, "CpuCount") > 0 {
        w.push("linux does not support CPU count. Count discarded.".to_string());
    }
    if int(x, "BlkioWeight") > 0 && !crate::spec::blkio_has("blkio.weight") {
        w.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_string());
    }
    if x.get("BlkioWeightDevice")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
        && !crate::spec::blkio_has("blkio.weight_device")
    {
        w.push("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.".to_string());
    }
    w
}

/// `update`'s body: docker's JSON types.
pub(crate) fn check_update_types(x: &Map<String, Value>) -> Result<()> {
    check_types(x)
}

/// The resources an update leads to (the old ones merged with the body): docker's ranges.
pub(crate) fn check_update(x: &Map<String, Value>) -> Result<()> {
    check_resources(x, &Host::probe())
}

/// docker's check of `Env`: every entry needs a name before its `=`.
fn check_env(cfg: &ContainerConfig) -> Result<()> {
    for e in cfg.env.iter().flatten() {
        if e.split('=').next().unwrap_or("").is_empty() {
            return Err(bad(format!("invalid environment variable: {e}")));
        }
    }
    Ok(())
}

/// docker's check of `Healthcheck`: durations 0 (inherit) or at least 1ms, retries >= 0.
fn check_healthcheck(cfg: &ContainerConfig) -> Result<()> {
    let Some(Value::Object(h)) = cfg.extra.get("Healthcheck") else {
        return Ok(());
    };
    const MS: i64 = 1_000_000;
    for k in ["Interval", "Timeout", "StartPeriod"] {
        let v = h.get(k).and_then(Value::as_i64).unwrap_or(0);
        if v != 0 && v < MS {
            return Err(bad(format!("{k} in Healthcheck cannot be less than 1ms")));
        }
    }
    if h.get("Retries").and_then(Value::as_i64).unwrap_or(0) < 0 {
        return Err(bad("Retries in Healthcheck cannot be negative"));
    }
    Ok(())
}

/// docker's checks of `RestartPolicy`.
pub(crate) fn check_restart_policy(rp: &berth_types::RestartPolicy) -> Result<()> {
    let name = rp.name.as_str();
    if !matches!(name, "" | "no" | "always" | "unless-stopped" | "on-failure") {
        return Err(bad(format!("invalid restart policy '{name}'")));
    }
    if rp.maximum_retry_count < 0 {
        return Err(bad("maximum retry count cannot be negative"));
    }
    if rp.maximum_retry_count > 0 && name != "on-failure" {
        return Err(bad(format!(
            "maximum retry count cannot be used with restart policy '{name}'"
        )));
    }
    Ok(())
}

/// docker's check of `ExtraHosts`: `name:ip` (or `name:host-gateway`).
fn check_extra_hosts(x: &Map<String, Value>) -> Result<()> {
    for h in str_list(x, "ExtraHosts") {
        let Some((name, ip)) = h.split_once(':') else {
            return Err(bad(format!("bad format for add-host: \"{h}\"")));
        };
        if name.is_empty() {
            return Err(bad(format!("bad format for add-host: \"{h}\"")));
        }
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(format!("invalid IP address in add-host: \"{ip}\"")));
        }
    }
    Ok(())
}

/// The modes `--volumes-from c:mode` takes (docker's valid mount modes).
fn volumes_from_mode_ok(mode: &str) -> bool {
    mode.is_empty()
        || mode.split(',').all(|m| {
            matches!(
                m,
                "ro" | "rw"
                    | "z"
                    | "Z"
                    | "shared"
                    | "rshared"
                    | "slave"
                    | "rslave"
                    | "private"
                    | "rprivate"
                    | "nocopy"
            )
        })
}

/// All checks that need nothing but the request and the host.
pub(crate) fn check(
    cfg: &ContainerConfig,
    hc: &HostConfig,
    hostname_given: bool,
    host: &Host,
) -> Result<()> {
    let x = &hc.extra;
    check_types(x)?;
    if !cfg.working_dir.is_empty() && !cfg.working_dir.starts_with('/') {
        return Err(bad(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            cfg.working_dir
        )));
    }
    check_env(cfg)?;
    check_healthcheck(cfg)?;
    check_restart_policy(&hc.restart_policy)?;
    check_extra_hosts(x)?;
    if let Some(sig) = cfg.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        crate::container_kill::parse_signal(sig)
            .map_err(|_| bad(format!("Invalid signal: {sig}")))?;
    }
    check_resources(x, host)?;
    check_caps(x)?;
    security_opts(&str_list(x, "SecurityOpt"), host)?;
    check_namespaces(x, hostname_given)?;
    let net_mode = if hc.network_mode.is_empty() {
        "default"
    } else {
        hc.network_mode.as_str()
    };
    check_sysctls(x, net_mode)?;
    check_devices(x)?;
    check_unsupported(x)?;
    Ok(())
}

impl Engine {
    /// Validates a create request as docker does (400 with docker's text on a bad one);
    /// returns docker's warnings for what is accepted but cannot take effect.
    pub(crate) fn validate_create(&self, req: &CreateRequest) -> Result<Vec<String>> {
        let hostname_given = !req.config.hostname.is_empty();
        check(
            &req.config,
            &req.host_config,
            hostname_given,
            &Host::probe(),
        )?;
        let ipc = string(&req.host_config.extra, "IpcMode");
        if let Some(other) = ipc.strip_prefix("container:") {
            // docker answers 400 here, not 404
            self.get_container(other)
                .map_err(|_| bad(format!("No such container: {other}")))?;
        }
        // links and --volumes-from name existing containers: 400, not 404
        for l in str_list(&req.host_config.extra, "Links") {
            let target = l.split_once(':').map_or(l.as_str(), |(t, _)| t);
            let target = target.trim_start_matches('/');
            if self.get_container(target).is_err() {
                return Err(bad(format!(
                    "could not get container for {target}: No such container: {target}"
                )));
            }
        }
        for vf in str_list(&req.host_config.extra, "VolumesFrom") {
            let (name, mode) = vf.split_once(':').unwrap_or((vf.as_str(), ""));
            if !volumes_from_mode_ok(mode) {
                return Err(bad(format!("invalid mode: {mode}")));
            }
            if self.get_container(name).is_err() {
                return Err(bad(format!("No such container: {name}")));
            }
        }
        Ok(warnings(&req.host_config.extra))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host() -> Host {
        Host {
            cpus: 2,
            apparmor: false,
            selinux: false,
        }
    }

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    fn err(cfg: &ContainerConfig, v: Value) -> String {
        match check(cfg, &hc(v), false, &host()) {
            Err(Error::InvalidParameter(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    fn e(v: Value) -> String {
        err(&ContainerConfig::default(), v)
    }

    fn ok(v: Value) {
        check(&ContainerConfig::default(), &hc(v), false, &host()).unwrap();
    }

    #[test]
    fn types_as_go_decodes_them() {
        assert_eq!(
            e(json!({"Memory": "64m"})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        assert_eq!(
            e(json!({"Memory": 9223372036854775808u64})),
            "json: cannot unmarshal number 9223372036854775808 into Go struct field HostConfig.HostConfig.Memory of type int64"
        );
        assert!(e(json!({"NanoCpus": 1.5})).contains("number 1.5"));
        assert_eq!(
            e(json!({"Privileged": "yes"})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Privileged of type bool"
        );
        assert_eq!(
            e(json!({"SecurityOpt": "x"})),
            "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.SecurityOpt of type []string"
        );
        assert_eq!(
            e(json!({"Sysctls": {"a": 1}})),
            "json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Sysctls of type string"
        );
        ok(json!({"Memory": null, "PidsLimit": null, "CapAdd": "NET_ADMIN"}));
        ok(json!({"Memory": 9223372036854775807i64}));
    }

    #[test]
    fn resources_as_docker() {
        assert_eq!(
            e(json!({"Memory": -1})),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            e(json!({"Memory": 1000})),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            e(json!({"NanoCpus": -1})),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert!(e(json!({"NanoCpus": 3_000_000_000i64})).starts_with("Range of CPUs"));
        assert!(e(json!({"ShmSize": -1})).contains("SHM size"));
        assert!(e(json!({"CpuPeriod": 500})).starts_with("CPU cfs period"));
        assert!(e(json!({"CpuQuota": 500})).starts_with("CPU cfs quota"));
        ok(json!({"CpuQuota": -1, "PidsLimit": -5, "MemorySwappiness": -1}));
        assert!(
            e(json!({"Memory": 67108864, "MemorySwap": 1000})).starts_with("Minimum memoryswap")
        );
        assert!(e(json!({"MemorySwap": 67108864})).starts_with("You should always set"));
        assert!(e(json!({"OomScoreAdj": 1001})).contains("[-1000, 1000]"));
        assert!(e(json!({"MemorySwappiness": 101})).contains("0-100"));
        let cfg = ContainerConfig {
            working_dir: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            err(&cfg, json!({})),
            "the working directory 'x' is invalid, it needs to be an absolute path"
        );
    }

    #[test]
    fn capabilities_as_docker() {
        assert_eq!(
            e(json!({"CapAdd": ["foo"]})),
            "invalid CapAdd: unknown capability: \"CAP_FOO\""
        );
        assert_eq!(
            e(json!({"CapDrop": ["CAP_ALL"]})),
            "invalid CapDrop: unknown capability: \"CAP_ALL\""
        );
        ok(json!({"CapAdd": ["all", "net_admin", "CAP_SYS_TIME"], "CapDrop": ["ALL"]}));
    }

    #[test]
    fn security_opts_as_docker() {
        assert_eq!(
            e(json!({"SecurityOpt": ["foo"]})),
            "invalid --security-opt 1: \"foo\""
        );
        assert_eq!(
            e(json!({"SecurityOpt": ["foo=bar"]})),
            "invalid --security-opt 2: \"foo=bar\""
        );
        assert_eq!(
            e(json!({"SecurityOpt": ["no-new-privileges=maybe"]})),
            "invalid --security-opt 2: \"no-new-privileges=maybe\""
        );
        assert!(e(json!({"SecurityOpt": ["systempaths=unconfined"]})).contains(" 2: "));
        ok(
            json!({"SecurityOpt": ["label=disable", "label:user:x", "disable", "apparmor=unconfined", "apparmor=p", "no-new-privileges:true", "seccomp=unconfined"]}),
        );
        let o = security_opts(&["no-new-privileges=1".into()], &host()).unwrap();
        assert!(o.no_new_privileges);
        let aa = Host {
            apparmor: true,
            ..host()
        };
        assert!(security_opts(&["apparmor=myprof".into()], &aa).is_err());
        assert!(security_opts(&["apparmor=unconfined".into()], &aa).is_ok());
    }

    #[test]
    fn sysctls_as_runc() {
        ok(
            json!({"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "kernel.domainname": "x"}}),
        );
        assert_eq!(
            e(json!({"Sysctls": {"vm.swappiness": "1"}})),
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace"
        );
        assert_eq!(
            e(json!({"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}})),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        assert_eq!(
            e(json!({"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}})),
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        assert!(e(json!({"Sysctls": {"kernel.hostname": "x"}})).contains("OCI \"hostname\""));
        assert!(e(json!({"Sysctls": {"net/ipv4/../x": "1"}})).contains("not in a separate"));
    }

    #[test]
    fn unsupported_options_refused_and_discarded_ones_warned() {
        assert_eq!(
            e(json!({"IOMaximumIOps": 10})),
            "Invalid QoS settings: linux does not support configuration of maximum IOPs"
        );
        assert_eq!(
            e(json!({"Runtime": "foo"})),
            "Unknown runtime specified foo"
        );
        assert_eq!(
            e(json!({"Isolation": "hyperv"})),
            "Invalid isolation: \"hyperv\" - linux only supports 'default'"
        );
        assert_eq!(
            e(json!({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]})),
            "could not select device driver \"\" with capabilities: [[gpu]]"
        );
        assert!(e(json!({"StorageOpt": {"size": "1G"}})).starts_with("--storage-opt"));
        assert!(e(json!({"CgroupParent": "a/../b"})).starts_with("invalid CgroupParent"));
        assert_eq!(
            e(json!({"BlkioDeviceReadBps": [{"Path": "/dev/nosuch", "Rate": 1}]})),
            "stat /dev/nosuch: no such file or directory"
        );
        ok(
            json!({"Runtime": "runc", "Isolation": "default", "StorageOpt": {}, "DeviceRequests": []}),
        );
        let w = warnings(
            &hc(json!({"KernelMemory": 67108864, "OomKillDisable": true, "CpuPercent": 5})).extra,
        );
        assert_eq!(w.len(), 3, "{w:?}");
    }

    #[test]
    fn namespaces_and_devices() {
        assert_eq!(e(json!({"IpcMode": "foo"})), "invalid IPC mode: foo");
        assert_eq!(e(json!({"UTSMode": "foo"})), "invalid UTS mode: foo");
        assert_eq!(e(json!({"PidMode": "foo"})), "invalid PID mode: foo");
        assert_eq!(e(json!({"UsernsMode": "foo"})), "invalid USER mode: foo");
        assert_eq!(
            e(json!({"CgroupnsMode": "foo"})),
            "invalid cgroup namespace mode: foo"
        );
        ok(
            json!({"IpcMode": "shareable", "UTSMode": "host", "CgroupnsMode": "host", "UsernsMode": "host", "PidMode": "host"}),
        );
        assert!(check(
            &ContainerConfig::default(),
            &hc(json!({"UTSMode": "host"})),
            true,
            &host()
        )
        .is_err());
        assert_eq!(
            e(json!({"DeviceCgroupRules": ["x 1:3 rwm"]})),
            "invalid device cgroup rule format: 'x 1:3 rwm'"
        );
        ok(json!({"DeviceCgroupRules": ["c 1:3 rwm", "b *:* m", "a *:* r"]}));
        assert_eq!(
            e(json!({"Devices": [{"PathOnHost": "/dev/nosuch", "PathInContainer": "/dev/nosuch", "CgroupPermissions": "rwm"}]})),
            "error gathering device information while adding custom device \"/dev/nosuch\": no such file or directory"
        );
        assert!(
            e(json!({"Devices": [{"PathOnHost": "/etc/passwd"}]})).ends_with("not a device node")
        );
        assert_eq!(
            e(json!({"Devices": [{"PathOnHost": "/dev/null", "CgroupPermissions": "rwz"}]})),
            "bad mode specified: rwz"
        );
        ok(
            json!({"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "r"}]}),
        );
    }
}
