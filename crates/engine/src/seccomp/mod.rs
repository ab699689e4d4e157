//! Seccomp profiles in docker's JSON format: the built-in default (`default.json`, docker's
//! default profile), `--security-opt seccomp=<json>|unconfined|builtin`, and the
//! per-container resolution into the OCI spec's `linux.seccomp` (entries kept or dropped by
//! the container's capabilities, the host's architecture and kernel version). The runtime
//! compiles that to BPF (`berth_runtime::seccomp`), so a user's profile and the default one
//! go through the same compiler.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `berthd --no-new-privileges`: the default for containers that do not say.
static DAEMON_NO_NEW_PRIVILEGES: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_daemon_no_new_privileges(on: bool) {
    DAEMON_NO_NEW_PRIVILEGES.store(on, Ordering::Relaxed);
}

fn daemon_no_new_privileges() -> bool {
    DAEMON_NO_NEW_PRIVILEGES.load(Ordering::Relaxed)
}

/// docker's default profile, in docker's format.
const DEFAULT_JSON: &str = include_str!("default.json");

/// A profile in docker's format (`profiles/seccomp` JSON).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch_map: Option<Vec<ArchMap>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscalls: Option<Vec<Syscall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Syscall {
    /// the old format's single name
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Arg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Filter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Filter>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// `includes` / `excludes`: an entry applies only if the container has all `caps`, the
/// host is one of `arches` (Go names: amd64, arm64...) and its kernel is at least
/// `minKernel`; `excludes` drops it if any cap or arch matches.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caps: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arches: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("Decoding seccomp profile failed: {0}")]
    Decode(String),
    #[error("{0}")]
    Invalid(String),
}

/// The daemon's `seccomp-profile` (path, profile): the default of containers that ask for none.
static DAEMON_PROFILE: OnceLock<(String, Profile)> = OnceLock::new();

/// `berthd --seccomp-profile` / `daemon.json` `seccomp-profile`: reads and checks the file once
/// at start; `unconfined` and `builtin` are docker's names and need no file. dockerd's texts.
pub fn set_daemon_profile(path: &str) -> Result<(), ProfileError> {
    if path.is_empty() || path == "builtin" || path == "default" {
        return Ok(());
    }
    let text = if path == "unconfined" {
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.to_string()
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            ProfileError::Invalid(format!("opening seccomp profile ({path}) failed: {e}"))
        })?
    };
    let p: Profile =
        serde_json::from_str(&text).map_err(|e| ProfileError::Decode(format!("{path}: {e}")))?;
    // it must also resolve for this host
    resolve(&p, &[], host_arch(), kernel_version())?;
    let _ = DAEMON_PROFILE.set((path.to_string(), p));
    Ok(())
}

/// The path of the daemon's own default profile, if one was given.
pub fn daemon_profile_path() -> Option<&'static str> {
    DAEMON_PROFILE.get().map(|(p, _)| p.as_str())
}

/// The built-in profile, parsed once.
pub fn default_profile() -> &'static Profile {
    static P: OnceLock<Profile> = OnceLock::new();
    P.get_or_init(|| serde_json::from_str(DEFAULT_JSON).expect("built-in seccomp profile"))
}

/// What `HostConfig.SecurityOpt` asks of seccomp and no_new_privs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityOpts {
    pub seccomp: SeccompOpt,
    /// `None`: not said (the daemon's `--no-new-privileges` decides)
    pub no_new_privileges: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompOpt {
    /// the built-in profile (also `seccomp=builtin`)
    #[default]
    Default,
    /// `seccomp=unconfined`
    Unconfined,
    /// `seccomp=<profile JSON>` (the docker CLI sends the file's content)
    Custom(String),
}

impl SecurityOpts {
    /// Reads the options berth applies (`seccomp`, `no-new-privileges`); other keys are left
    /// to the create-time validation. Both `key=value` and the old `key:value` are accepted.
    pub fn parse(opts: &[String]) -> Result<SecurityOpts, ProfileError> {
        let mut out = SecurityOpts::default();
        for o in opts {
            let (k, v) = match o.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => match o.split_once(':') {
                    Some((k, v)) => (k, Some(v)),
                    None => (o.as_str(), None),
                },
            };
            match (k, v) {
                ("no-new-privileges", None) => out.no_new_privileges = Some(true),
                ("no-new-privileges", Some(v)) => {
                    out.no_new_privileges = match v {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => {
                            return Err(ProfileError::Invalid(format!(
                                "invalid --security-opt 2: {o:?}"
                            )))
                        }
                    }
                }
                ("seccomp", Some("unconfined")) => out.seccomp = SeccompOpt::Unconfined,
                ("seccomp", Some("builtin")) | ("seccomp", Some("")) => {
                    out.seccomp = SeccompOpt::Default
                }
                ("seccomp", Some(json)) => out.seccomp = SeccompOpt::Custom(json.to_string()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Whether the container's processes get `no_new_privs`: its own option, else the
    /// daemon's default.
    pub fn no_new_privileges(&self) -> bool {
        self.no_new_privileges
            .unwrap_or_else(daemon_no_new_privileges)
    }

    /// From `HostConfig.SecurityOpt` as stored in the record.
    pub fn from_host_config(hc: &berth_types::HostConfig) -> Result<SecurityOpts, ProfileError> {
        let opts: Vec<String> = hc
            .extra
            .get("SecurityOpt")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Self::parse(&opts)
    }
}

/// The OCI `linux.seccomp` for a container with capability set `caps` (`CAP_*` names), or
/// `None` (unconfined, or privileged: docker gives a privileged container no filter).
pub fn for_container(
    opts: &SecurityOpts,
    caps: &[String],
    privileged: bool,
) -> Result<Option<Value>, ProfileError> {
    if privileged {
        return Ok(None);
    }
    let custom;
    let profile = match &opts.seccomp {
        SeccompOpt::Unconfined => return Ok(None),
        SeccompOpt::Default => match DAEMON_PROFILE.get() {
            Some((_, p)) => p,
            None => default_profile(),
        },
        SeccompOpt::Custom(json) => {
            custom = serde_json::from_str::<Profile>(json)
                .map_err(|e| ProfileError::Decode(e.to_string()))?;
            &custom
        }
    };
    resolve(profile, caps, host_arch(), kernel_version()).map(Some)
}

/// `GET /info`'s `SecurityOptions`, docker's entries: the built-in seccomp profile (when the
/// kernel has seccomp filters) and, on cgroup v2, private cgroup namespaces (berth's default,
/// as docker's there).
pub fn security_options(cgroup_v2: bool) -> Vec<String> {
    let mut out = Vec::new();
    let seccomp = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    if seccomp {
        let profile = daemon_profile_path().unwrap_or("builtin");
        out.push(format!("name=seccomp,profile={profile}"));
    }
    if daemon_no_new_privileges() {
        out.push("name=no-new-privileges".to_string());
    }
    if cgroup_v2 {
        out.push("name=cgroupns".to_string());
    }
    out
}

/// docker's (Go) name of the host architecture, as used in `includes.arches`.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// `SCMP_ARCH_*` of the host (the key of `archMap`).
fn host_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "x86" => "SCMP_ARCH_X86",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// The running kernel's (major, minor), from `/proc/sys/kernel/osrelease`.
pub fn kernel_version() -> (u32, u32) {
    static V: OnceLock<(u32, u32)> = OnceLock::new();
    *V.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|s| parse_kernel(&s))
            .unwrap_or((0, 0))
    })
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.trim().split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

const ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

fn check_action(a: &str) -> Result<(), ProfileError> {
    if ACTIONS.contains(&a) {
        Ok(())
    } else {
        Err(ProfileError::Invalid(format!(
            "invalid seccomp profile: unknown action {a:?}"
        )))
    }
}

/// Keeps the entries that apply to a container with `caps` on a host of `arch` (Go name)
/// running kernel `kernel`, in the OCI shape (`linux.seccomp`).
pub fn resolve(
    p: &Profile,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<Value, ProfileError> {
    check_action(&p.default_action)?;
    let arches = p.architectures.as_deref().unwrap_or(&[]);
    let map = p.arch_map.as_deref().unwrap_or(&[]);
    if !arches.is_empty() && !map.is_empty() {
        return Err(ProfileError::Invalid(
            "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let architectures: Vec<String> = if !map.is_empty() {
        map.iter()
            .filter(|m| m.architecture == host_scmp_arch())
            .flat_map(|m| {
                std::iter::once(m.architecture.clone())
                    .chain(m.sub_architectures.clone().unwrap_or_default())
            })
            .collect()
    } else {
        arches.to_vec()
    };
    let has_cap = |c: &String| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
    let mut syscalls = Vec::new();
    for sc in p.syscalls.as_deref().unwrap_or(&[]) {
        check_action(&sc.action)?;
        let names: Vec<String> = match &sc.names {
            Some(n) if !n.is_empty() => {
                if !sc.name.is_empty() {
                    return Err(ProfileError::Invalid("use either 'name' or 'names'".into()));
                }
                n.clone()
            }
            _ if !sc.name.is_empty() => vec![sc.name.clone()],
            _ => continue,
        };
        if let Some(inc) = &sc.includes {
            if let Some(a) = inc.arches.as_deref().filter(|a| !a.is_empty()) {
                if !a.iter().any(|x| x == arch) {
                    continue;
                }
            }
            if let Some(c) = inc.caps.as_deref().filter(|c| !c.is_empty()) {
                if !c.iter().all(has_cap) {
                    continue;
                }
            }
            if let Some(k) = inc.min_kernel.as_deref().filter(|k| !k.is_empty()) {
                let min = parse_kernel(k).ok_or_else(|| {
                    ProfileError::Invalid(format!("invalid kernel version: {k:?}"))
                })?;
                if kernel < min {
                    continue;
                }
            }
        }
        if let Some(exc) = &sc.excludes {
            if exc
                .arches
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .any(|x| x == arch)
            {
                continue;
            }
            if exc.caps.as_deref().unwrap_or(&[]).iter().any(has_cap) {
                continue;
            }
        }
        let mut entry = serde_json::Map::new();
        entry.insert("names".into(), serde_json::json!(names));
        entry.insert("action".into(), Value::from(sc.action.clone()));
        if let Some(e) = sc.errno_ret {
            entry.insert("errnoRet".into(), Value::from(e));
        }
        let args = sc.args.as_deref().unwrap_or(&[]);
        if !args.is_empty() {
            let mut out = Vec::with_capacity(args.len());
            for a in args {
                if !OPS.contains(&a.op.as_str()) {
                    return Err(ProfileError::Invalid(format!(
                        "invalid seccomp profile: unknown operator {:?}",
                        a.op
                    )));
                }
                out.push(serde_json::json!({
                    "index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op
                }));
            }
            entry.insert("args".into(), Value::Array(out));
        }
        syscalls.push(Value::Object(entry));
    }
    let mut out = serde_json::Map::new();
    out.insert(
        "defaultAction".into(),
        Value::from(p.default_action.clone()),
    );
    if let Some(e) = p.default_errno_ret {
        out.insert("defaultErrnoRet".into(), Value::from(e));
    }
    if !architectures.is_empty() {
        out.insert("architectures".into(), serde_json::json!(architectures));
    }
    if let Some(f) = p.flags.as_ref().filter(|f| !f.is_empty()) {
        out.insert("flags".into(), serde_json::json!(f));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

#[cfg(test)]
mod daemon_profile_tests {
    use super::*;

    #[test]
    fn unconfined_parses_and_a_missing_file_is_dockerds_error() {
        let p: Profile =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).expect("minimal");
        assert!(resolve(&p, &[], host_arch(), (5, 10)).is_ok());
        let e = set_daemon_profile("/nonexistent/p.json").expect_err("missing");
        assert!(e
            .to_string()
            .starts_with("opening seccomp profile (/nonexistent/p.json) failed: "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn names_with(v: &Value, action: &str) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == action)
            .flat_map(|s| s["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    fn default_caps() -> Vec<String> {
        crate::spec::capabilities(&berth_types::HostConfig::default(), false)
    }

    #[test]
    fn default_profile_filtered_by_caps() {
        let v = resolve(default_profile(), &default_caps(), "amd64", (6, 1)).unwrap();
        let allowed = names_with(&v, "SCMP_ACT_ALLOW");
        for denied in [
            "unshare",
            "mount",
            "setns",
            "keyctl",
            "add_key",
            "perf_event_open",
            "mbind",
            "set_mempolicy",
            "bpf",
            "reboot",
            "kexec_load",
            "clone3",
        ] {
            assert!(!allowed.iter().any(|n| n == denied), "{denied} allowed");
        }
        for ok in ["read", "execve", "clone", "chroot", "arch_prctl", "ptrace"] {
            assert!(allowed.iter().any(|n| n == ok), "{ok} denied");
        }
        // clone only with the namespace flags masked off; clone3 answers ENOSYS
        let clone = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["names"] == serde_json::json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["value"], 0x7E02_0000u64);
        assert_eq!(names_with(&v, "SCMP_ACT_ERRNO"), vec!["clone3"]);
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            serde_json::json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        // old kernels: no ptrace
        let old = resolve(default_profile(), &default_caps(), "amd64", (4, 4)).unwrap();
        assert!(!names_with(&old, "SCMP_ACT_ALLOW").contains(&"ptrace".to_string()));
        // without CAP_SYS_CHROOT: no chroot
        let mut c = default_caps();
        c.retain(|c| c != "CAP_SYS_CHROOT");
        let v = resolve(default_profile(), &c, "amd64", (6, 1)).unwrap();
        assert!(!names_with(&v, "SCMP_ACT_ALLOW").contains(&"chroot".to_string()));
    }

    #[test]
    fn sys_admin_allows_namespaces_and_real_clone3() {
        let mut c = default_caps();
        c.push("CAP_SYS_ADMIN".into());
        let v = resolve(default_profile(), &c, "amd64", (6, 1)).unwrap();
        let allowed = names_with(&v, "SCMP_ACT_ALLOW");
        for n in ["unshare", "mount", "setns", "clone3", "clone"] {
            assert!(allowed.contains(&n.to_string()), "{n}");
        }
        assert!(names_with(&v, "SCMP_ACT_ERRNO").is_empty());
        // no masked clone rule any more: clone is allowed whole
        assert!(v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["names"] != serde_json::json!(["clone"]) || s.get("args").is_none()));
    }

    #[test]
    fn default_profile_compiles_under_the_kernel_limit() {
        for extra in [
            &[][..],
            &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE"][..],
        ] {
            let mut c = default_caps();
            c.extend(extra.iter().map(|s| s.to_string()));
            let v = resolve(default_profile(), &c, host_arch(), (6, 1)).unwrap();
            let t0 = std::time::Instant::now();
            let oci: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
            let f = berth_runtime::seccomp::compile(&oci).unwrap();
            let n = f.instructions();
            eprintln!(
                "caps +{extra:?}: {} filters, instructions {n:?}, compiled in {:?}",
                f.len(),
                t0.elapsed()
            );
            assert!(n.iter().all(|&n| n < 4096), "{n:?}");
            assert!(n.iter().sum::<usize>() > 500, "{n:?}");
            // ENOSYS overlay for clone3 only without CAP_SYS_ADMIN
            assert_eq!(f.len(), if extra.is_empty() { 2 } else { 1 });
        }
    }

    #[test]
    fn security_opts_parse_like_docker() {
        let p = |v: &[&str]| SecurityOpts::parse(&caps(v));
        assert_eq!(p(&[]).unwrap(), SecurityOpts::default());
        assert_eq!(p(&[]).unwrap().no_new_privileges, None);
        assert!(p(&["no-new-privileges"]).unwrap().no_new_privileges());
        assert!(p(&["no-new-privileges=true"]).unwrap().no_new_privileges());
        assert!(p(&["no-new-privileges:true"]).unwrap().no_new_privileges());
        assert_eq!(
            p(&["no-new-privileges=false"]).unwrap().no_new_privileges,
            Some(false)
        );
        assert!(p(&["no-new-privileges=maybe"]).is_err());
        assert_eq!(
            p(&["seccomp=unconfined"]).unwrap().seccomp,
            SeccompOpt::Unconfined
        );
        assert_eq!(
            p(&["seccomp:unconfined"]).unwrap().seccomp,
            SeccompOpt::Unconfined
        );
        assert_eq!(
            p(&["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])
                .unwrap()
                .seccomp,
            SeccompOpt::Custom("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}".into())
        );
    }

    #[test]
    fn custom_profiles_and_privileged() {
        let o = |s: &str| SecurityOpts::parse(&[s.to_string()]).unwrap();
        let c = default_caps();
        assert!(for_container(&SecurityOpts::default(), &c, true)
            .unwrap()
            .is_none());
        assert!(for_container(&o("seccomp=unconfined"), &c, false)
            .unwrap()
            .is_none());
        let v = for_container(
            &o(r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#),
            &c,
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(v["syscalls"][0]["errnoRet"], 13);
        let e = for_container(&o("seccomp=/tmp/p.json"), &c, false).unwrap_err();
        assert!(e.to_string().starts_with("Decoding seccomp profile failed"));
        let e = for_container(
            &o(r#"seccomp={"defaultAction":"SCMP_ACT_NOPE"}"#),
            &c,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown action"), "{e}");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v1272\n"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("x"), None);
    }
}
