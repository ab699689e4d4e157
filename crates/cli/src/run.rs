//! `run`, `create` and `start`.

use crate::client::{Client, DaemonError};
use crate::flags::{self, b, v, Spec};
use crate::http::ReqBody;
use crate::jv::js;
use crate::support::parse_ulimit;
use crate::{args_error, fail, flag_error, help_text, stdcopy, term};
use anyhow::Result;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

const RUN_FLAGS: &[Spec] = &[
    b(Some('d'), "detach"),
    b(Some('i'), "interactive"),
    b(Some('t'), "tty"),
    b(None, "rm"),
    v(None, "name"),
    v(Some('e'), "env"),
    v(Some('w'), "workdir"),
    v(Some('h'), "hostname"),
    v(None, "entrypoint"),
    v(Some('u'), "user"),
    v(Some('l'), "label"),
    b(None, "sig-proxy"),
    v(None, "restart"),
    v(None, "health-cmd"),
    v(None, "health-interval"),
    v(None, "health-retries"),
    v(None, "health-timeout"),
    v(None, "health-start-period"),
    b(None, "no-healthcheck"),
    b(None, "init"),
    v(None, "label-file"),
    v(None, "env-file"),
    v(Some('m'), "memory"),
    v(None, "memory-swap"),
    v(None, "cpus"),
    v(Some('c'), "cpu-shares"),
    v(None, "cpuset-cpus"),
    v(None, "pids-limit"),
    v(None, "ulimit"),
    v(None, "shm-size"),
    v(None, "log-driver"),
    v(None, "log-opt"),
    v(None, "stop-signal"),
    v(None, "stop-timeout"),
    v(None, "detach-keys"),
    v(Some('a'), "attach"),
    b(None, "privileged"),
    v(None, "security-opt"),
    v(None, "cap-add"),
    v(None, "cap-drop"),
    v(None, "device"),
    v(None, "device-cgroup-rule"),
    v(None, "sysctl"),
    v(None, "ipc"),
    v(None, "uts"),
    v(None, "pid"),
    v(None, "cgroupns"),
    v(None, "userns"),
    v(None, "group-add"),
    v(None, "oom-score-adj"),
    b(None, "oom-kill-disable"),
    v(None, "cgroup-parent"),
    v(None, "memory-reservation"),
    v(None, "memory-swappiness"),
    v(None, "cpu-period"),
    v(None, "cpu-quota"),
    v(None, "cpuset-mems"),
    v(None, "blkio-weight"),
    b(None, "read-only"),
    v(Some('v'), "volume"),
    v(None, "mount"),
    v(None, "tmpfs"),
    v(None, "volumes-from"),
    v(None, "network"),
    v(None, "net"),
    v(None, "ip"),
    v(None, "ip6"),
    v(None, "network-alias"),
    v(None, "net-alias"),
    v(None, "mac-address"),
    v(Some('p'), "publish"),
    b(Some('P'), "publish-all"),
    v(None, "expose"),
    v(None, "dns"),
    v(None, "dns-search"),
    v(None, "dns-option"),
    v(None, "dns-opt"),
    v(None, "add-host"),
    v(None, "link"),
    v(None, "domainname"),
    v(None, "pull"),
    v(None, "platform"),
    b(Some('q'), "quiet"),
];

/// A JSON list, `null` when empty (Go's nil slice).
fn null_or_list(v: &[String]) -> String {
    if v.is_empty() {
        "null".into()
    } else {
        strs(v)
    }
}

/// A JSON list, `[]` when empty.
fn strs(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
fn js_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub struct RunOpts {
    pub detach: bool,
    pub stdin: bool,
    pub tty: bool,
    pub rm: bool,
    pub name: Option<String>,
    pub image: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub hostname: String,
    pub entrypoint: Option<String>,
    pub user: String,
    pub labels: Vec<(String, String)>,
    pub console: (u16, u16),
    /// `--pull`: `missing` (default), `always` or `never`
    pub pull: String,
    pub platform: Option<String>,
    /// `-q`: no pull output
    pub quiet: bool,
    pub x: Extra,
}

/// The rest of the run/create options, already in wire form.
#[derive(Default)]
pub struct Extra {
    /// `,"Healthcheck":{…}` or empty
    pub healthcheck: String,
    /// `,"StopSignal":"…","StopTimeout":N` parts or empty
    pub stop: String,
    pub restart: (String, i64),
    pub init: bool,
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    pub cpuset_cpus: String,
    pub pids_limit: i64,
    pub ulimits: String,
    pub shm_size: i64,
    pub log_type: String,
    pub log_config: String,
    pub privileged: bool,
    /// `--security-opt`, as the docker CLI sends it (a seccomp file's content, compacted)
    pub security_opt: Vec<String>,
    /// `--cap-add`, `--cap-drop`, `--group-add`, `--device-cgroup-rule` (null when empty)
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub group_add: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    /// `--device`, as docker's `Devices` entries (JSON objects in docker's key order)
    pub devices: Vec<String>,
    /// `--sysctl k=v`
    pub sysctls: serde_json::Map<String, Value>,
    /// `--ipc`, `--uts`, `--pid`, `--cgroupns`, `--userns`, `--cgroup-parent`, `--cpuset-mems`
    pub ipc: String,
    pub uts: String,
    pub pid: String,
    pub cgroupns: String,
    pub userns: String,
    pub cgroup_parent: String,
    pub cpuset_mems: String,
    pub oom_score_adj: i64,
    pub oom_kill_disable: bool,
    pub memory_reservation: i64,
    /// -1 when not given, as docker
    pub memory_swappiness: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub blkio_weight: i64,
    pub read_only: bool,
    /// `-a` streams; empty = docker's default (stdout+stderr, stdin if -i)
    pub attach: Vec<String>,
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
    pub net: crate::netopts::NetOpts,
    pub storage: crate::mountopts::MountOpts,
}

/// The create body, key for key and in the order docker 28 sends it.
pub fn create_body(o: &RunOpts) -> String {
    let env = if o.env.is_empty() {
        "null".into()
    } else {
        js_list(&o.env)
    };
    let cmd = if o.cmd.is_empty() {
        "null".into()
    } else {
        js_list(&o.cmd)
    };
    let entrypoint = match &o.entrypoint {
        Some(e) => js_list(std::slice::from_ref(e)),
        None => "null".into(),
    };
    let labels: serde_json::Map<String, Value> = o
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let x = &o.x;
    let n = &x.net;
    let want = |n: &str| x.attach.is_empty() || x.attach.iter().any(|a| a.eq_ignore_ascii_case(n));
    let attach_out = !o.detach && want("stdout");
    let attach_err = !o.detach && want("stderr");
    let attach_in = o.stdin && !o.detach && (x.attach.is_empty() || want("stdin"));
    let stdin_once = o.stdin && !o.detach;
    format!(
        concat!(
            r#"{{"Hostname":{},"Domainname":{},"User":{},"AttachStdin":{},"AttachStdout":{},"AttachStderr":{}{},"#,
            r#""Tty":{},"OpenStdin":{},"StdinOnce":{},"Env":{},"Cmd":{}{},"Image":{},"Volumes":{},"WorkingDir":{},"#,
            r#""Entrypoint":{},"OnBuild":null,"Labels":{}{},"#,
            r#""HostConfig":{{"Binds":{},"ContainerIDFile":"","LogConfig":{{"Type":{},"Config":{}}},"NetworkMode":{},"PortBindings":{},"#,
            r#""RestartPolicy":{{"Name":{},"MaximumRetryCount":{}}},"AutoRemove":{},"VolumeDriver":"","VolumesFrom":{},"ConsoleSize":[{},{}],"#,
            r#""CapAdd":{},"CapDrop":{},"CgroupnsMode":{},"Dns":{},"DnsOptions":{},"DnsSearch":{},"ExtraHosts":{},"GroupAdd":{},"#,
            r#""IpcMode":{},"Cgroup":"","Links":{},"OomScoreAdj":{},"PidMode":{},"Privileged":{},"PublishAllPorts":{},"#,
            r#""ReadonlyRootfs":{},"SecurityOpt":{}{},"UTSMode":{},"UsernsMode":{},"ShmSize":{}{},"Isolation":"","CpuShares":{},"#,
            r#""Memory":{},"NanoCpus":{},"CgroupParent":{},"BlkioWeight":{},"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"#,
            r#""BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":{},"CpuQuota":{},"#,
            r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":{},"CpusetMems":{},"Devices":{},"DeviceCgroupRules":{},"#,
            r#""DeviceRequests":null,"MemoryReservation":{},"MemorySwap":{},"MemorySwappiness":{},"OomKillDisable":{},"PidsLimit":{},"#,
            r#""Ulimits":{},"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0{},"MaskedPaths":null,"ReadonlyPaths":null{}}},"#,
            r#""NetworkingConfig":{{"EndpointsConfig":{}}}}}"#
        ),
        js(&o.hostname),
        js(&n.domainname),
        js(&o.user),
        attach_in,
        attach_out,
        attach_err,
        n.ports.exposed_json(),
        o.tty,
        o.stdin,
        stdin_once,
        env,
        cmd,
        x.healthcheck,
        js(&o.image),
        x.storage.volumes_json(),
        js(&o.workdir),
        entrypoint,
        serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into()),
        x.stop,
        x.storage.binds_json(),
        js(&x.log_type),
        if x.log_config.is_empty() {
            "{}"
        } else {
            &x.log_config
        },
        js(&n.network_mode),
        n.ports.bindings_json(),
        js(&x.restart.0),
        x.restart.1,
        o.rm,
        x.storage.volumes_from_json(),
        o.console.0,
        o.console.1,
        null_or_list(&x.cap_add),
        null_or_list(&x.cap_drop),
        js(&x.cgroupns),
        strs(&n.dns),
        strs(&n.dns_options),
        strs(&n.dns_search),
        if n.extra_hosts.is_empty() {
            "null".into()
        } else {
            strs(&n.extra_hosts)
        },
        null_or_list(&x.group_add),
        js(&x.ipc),
        if n.links.is_empty() {
            "null".into()
        } else {
            strs(&n.links)
        },
        x.oom_score_adj,
        js(&x.pid),
        x.privileged,
        n.publish_all,
        x.read_only,
        if x.security_opt.is_empty() {
            "null".into()
        } else {
            strs(&x.security_opt)
        },
        x.storage.tmpfs_part(),
        js(&x.uts),
        js(&x.userns),
        x.shm_size,
        if x.sysctls.is_empty() {
            String::new()
        } else {
            format!(",\"Sysctls\":{}", Value::Object(x.sysctls.clone()))
        },
        x.cpu_shares,
        x.memory,
        x.nano_cpus,
        js(&x.cgroup_parent),
        x.blkio_weight,
        x.cpu_period,
        x.cpu_quota,
        js(&x.cpuset_cpus),
        js(&x.cpuset_mems),
        format!("[{}]", x.devices.join(",")),
        null_or_list(&x.device_cgroup_rules),
        x.memory_reservation,
        x.memory_swap,
        x.memory_swappiness,
        x.oom_kill_disable,
        x.pids_limit,
        if x.ulimits.is_empty() {
            "[]"
        } else {
            &x.ulimits
        },
        x.storage.mounts_part(),
        if x.init { ",\"Init\":true" } else { "" },
        n.endpoints_json(),
    )
}

pub fn parse_run(args: &[String], is_create: bool) -> Result<RunOpts> {
    let cmd = if is_create { "create" } else { "run" };
    let p = flags::parse(args, RUN_FLAGS, false).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help_text(cmd, RUN_FLAGS));
        return Err(fail("", 0));
    }
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let tty = p.has("tty");
    let console = if tty {
        term::winsize(1).unwrap_or((0, 0))
    } else {
        (0, 0)
    };
    let cerr = |m: String| {
        fail(
            format!(
                "berth: {m}\n\nRun 'berth {} --help' for more information",
                crate::shown(cmd)
            ),
            125,
        )
    };
    let mut env_src = Vec::new();
    for f in p.all("env-file") {
        env_src.extend(read_kv_file(&f).map_err(cerr)?);
    }
    env_src.extend(p.all("env"));
    let env = env_src
        .into_iter()
        .map(|e| {
            // `-e NAME` takes NAME's value from our environment, as docker does.
            if e.contains('=') {
                e
            } else {
                match std::env::var(&e) {
                    Ok(v) => format!("{e}={v}"),
                    Err(_) => e,
                }
            }
        })
        .collect();
    let mut label_src = Vec::new();
    for f in p.all("label-file") {
        label_src.extend(read_kv_file(&f).map_err(cerr)?);
    }
    label_src.extend(p.all("label"));
    let labels = label_src
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect();
    let x = parse_extra(&p).map_err(|e| {
        if e.starts_with("invalid argument") {
            flag_error(cmd, &e)
        } else {
            cerr(e)
        }
    })?;
    let pull = p.get("pull").unwrap_or("missing").to_string();
    if !matches!(pull.as_str(), "missing" | "always" | "never") {
        return Err(cerr(format!(
            "invalid pull option: '{pull}': must be one of \"always\", \"missing\" or \"never\""
        )));
    }
    if p.has("rm") && x.restart.0 != "no" && !x.restart.0.is_empty() {
        return Err(cerr(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    Ok(RunOpts {
        detach: p.has("detach"),
        stdin: p.has("interactive"),
        tty,
        rm: p.has("rm"),
        name: p.get("name").map(str::to_string),
        image: p.args[0].clone(),
        cmd: p.args[1..].to_vec(),
        env,
        workdir: p.get("workdir").unwrap_or("").to_string(),
        hostname: p.get("hostname").unwrap_or("").to_string(),
        entrypoint: p.get("entrypoint").map(str::to_string),
        user: p.get("user").unwrap_or("").to_string(),
        labels,
        console,
        pull,
        platform: p
            .get("platform")
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        quiet: p.has("quiet"),
        x,
    })
}

/// Reads an `--env-file`/`--label-file`: one `K=V` per line, `#` comments
/// and blank lines skipped.
pub fn read_kv_file(path: &str) -> Result<Vec<String>, String> {
    let data = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "open {path}: {}",
            match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                _ => e.to_string(),
            }
        )
    })?;
    let mut out = Vec::new();
    for line in data.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.split_once('=')
            .map(|(k, _)| k.contains([' ', '\t']))
            .unwrap_or(false)
        {
            return Err(format!(
                "variable '{}' contains whitespaces",
                l.split_once('=').unwrap().0
            ));
        }
        out.push(l.to_string());
    }
    Ok(out)
}

/// `--restart` spec → (Name, MaximumRetryCount).
pub fn parse_restart(v: &str) -> Result<(String, i64), String> {
    let (name, count) = match v.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (v, None),
    };
    match name {
        "" => Ok(("no".into(), 0)),
        "on-failure" => {
            let n = match count {
                Some(c) => c.parse::<i64>().map_err(|_| {
                    "invalid restart policy format: maximum retry count must be an integer"
                        .to_string()
                })?,
                None => 0,
            };
            Ok(("on-failure".into(), n))
        }
        // unknown names are the daemon's to reject
        _ => Ok((name.into(), count.and_then(|c| c.parse().ok()).unwrap_or(0))),
    }
}

fn fname(k: &str) -> String {
    match RUN_FLAGS.iter().find(|s| s.long == k).and_then(|s| s.short) {
        Some(c) => format!("-{c}, --{k}"),
        None => format!("--{k}"),
    }
}

fn parse_extra(p: &flags::Parsed) -> Result<Extra, String> {
    use crate::units::{parse_go_duration, ram_in_bytes};
    let mut x = Extra {
        restart: ("no".into(), 0),
        sig_proxy: p.get("sig-proxy").map(|v| v != "false").unwrap_or(true),
        ..Default::default()
    };
    if let Some(r) = p.get("restart") {
        x.restart = parse_restart(r)?;
    }
    // healthcheck
    let hkeys = [
        "health-cmd",
        "health-interval",
        "health-retries",
        "health-timeout",
        "health-start-period",
    ];
    let any_health = hkeys.iter().any(|k| p.get(k).is_some());
    if p.has("no-healthcheck") {
        if any_health {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        x.healthcheck = r#","Healthcheck":{"Test":["NONE"]}"#.into();
    } else if any_health {
        let mut parts = Vec::new();
        if let Some(c) = p.get("health-cmd") {
            parts.push(format!(r#""Test":["CMD-SHELL",{}]"#, js(c)));
        }
        for (k, name) in [
            ("health-interval", "Interval"),
            ("health-timeout", "Timeout"),
            ("health-start-period", "StartPeriod"),
        ] {
            if let Some(d) = p.get(k) {
                let ns = parse_go_duration(d).map_err(|e| {
                    format!("invalid argument \"{d}\" for \"{}\" flag: {e}", fname(k))
                })?;
                if ns < 0 {
                    return Err(format!("--{k} cannot be negative"));
                }
                if ns != 0 {
                    parts.push(format!(r#""{name}":{ns}"#));
                }
            }
        }
        if let Some(r) = p.get("health-retries") {
            let n: i64 = r.parse().map_err(|_| format!("invalid argument \"{r}\" for \"--health-retries\" flag: strconv.ParseInt: parsing \"{r}\": invalid syntax"))?;
            if n < 0 {
                return Err("--health-retries cannot be negative".into());
            }
            if n != 0 {
                parts.push(format!(r#""Retries":{n}"#));
            }
        }
        x.healthcheck = format!(r#","Healthcheck":{{{}}}"#, parts.join(","));
    }
    if let Some(s) = p.get("stop-signal") {
        x.stop.push_str(&format!(r#","StopSignal":{}"#, js(s)));
    }
    if let Some(t) = p.get("stop-timeout") {
        let n: i64 = t.parse().map_err(|_| format!("invalid argument \"{t}\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"{t}\": invalid syntax"))?;
        x.stop.push_str(&format!(r#","StopTimeout":{n}"#));
    }
    x.init = p.has("init");
    let size = |k: &str| -> Result<i64, String> {
        match p.get(k) {
            None | Some("") => Ok(0),
            Some(v) => ram_in_bytes(v)
                .map_err(|e| format!("invalid argument \"{v}\" for \"{}\" flag: {e}", fname(k))),
        }
    };
    x.memory = size("memory")?;
    x.shm_size = size("shm-size")?;
    x.memory_swap = match p.get("memory-swap") {
        Some("-1") => -1,
        _ => size("memory-swap")?,
    };
    if let Some(c) = p.get("cpus") {
        let f: f64 = c.parse().map_err(|_| format!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number"))?;
        x.nano_cpus = (f * 1e9).round() as i64;
    }
    let int = |k: &str| -> Result<i64, String> {
        match p.get(k) {
            None => Ok(0),
            Some(v) => v.parse().map_err(|_| format!("invalid argument \"{v}\" for \"{}\" flag: strconv.ParseInt: parsing \"{v}\": invalid syntax", fname(k))),
        }
    };
    x.cpu_shares = int("cpu-shares")?;
    x.pids_limit = int("pids-limit")?;
    x.cpuset_cpus = p.get("cpuset-cpus").unwrap_or("").to_string();
    let ul: Vec<String> = p
        .all("ulimit")
        .iter()
        .map(|u| {
            parse_ulimit(u)
                .map_err(|e| format!("invalid argument \"{u}\" for \"--ulimit\" flag: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if !ul.is_empty() {
        x.ulimits = format!("[{}]", ul.join(","));
    }
    x.log_type = p.get("log-driver").unwrap_or("").to_string();
    let mut opts = serde_json::Map::new();
    for o in p.all("log-opt") {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("invalid key/value pair format in logging opts: {o}"))?;
        opts.insert(k.to_string(), Value::String(v.to_string()));
    }
    if !opts.is_empty() {
        x.log_config = serde_json::to_string(&opts).unwrap_or_default();
    }
    x.privileged = p.has("privileged");
    for o in p.all("security-opt") {
        x.security_opt.push(security_opt(&o)?);
    }
    x.cap_add = normalize_caps(&p.all("cap-add"));
    x.cap_drop = normalize_caps(&p.all("cap-drop"));
    x.group_add = p.all("group-add");
    x.device_cgroup_rules = p.all("device-cgroup-rule");
    for d in p.all("device") {
        x.devices.push(parse_device(&d)?);
    }
    for kv in p.all("sysctl") {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            format!("invalid argument \"{kv}\" for \"--sysctl\" flag: sysctl '{kv}' is not allowed")
        })?;
        x.sysctls
            .insert(k.to_string(), Value::String(v.to_string()));
    }
    let s = |k: &str| p.get(k).unwrap_or("").to_string();
    x.ipc = s("ipc");
    x.uts = s("uts");
    x.pid = s("pid");
    x.cgroupns = s("cgroupns");
    x.userns = s("userns");
    x.cgroup_parent = s("cgroup-parent");
    x.cpuset_mems = s("cpuset-mems");
    x.oom_score_adj = int("oom-score-adj")?;
    x.oom_kill_disable = p.has("oom-kill-disable");
    x.cpu_period = int("cpu-period")?;
    x.cpu_quota = int("cpu-quota")?;
    x.blkio_weight = int("blkio-weight")?;
    x.memory_swappiness = match p.get("memory-swappiness") {
        None => -1,
        Some(_) => int("memory-swappiness")?,
    };
    x.memory_reservation = size("memory-reservation")?;
    x.read_only = p.has("read-only");
    for a in p.all("attach") {
        let l = a.to_lowercase();
        if !matches!(l.as_str(), "stdin" | "stdout" | "stderr") {
            return Err(format!("invalid argument \"{a}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"));
        }
        x.attach.push(l);
    }
    if let Some(k) = p.get("detach-keys") {
        parse_detach_keys(k)?;
        x.detach_keys = Some(k.to_string());
    }
    x.net = crate::netopts::parse_net_opts(p)?;
    x.storage = crate::mountopts::parse_mount_opts(p)?;
    Ok(x)
}

/// Capability names as the docker CLI sends them: upper case with the `CAP_` prefix (`ALL`
/// stays), each once, sorted.
fn normalize_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = caps
        .iter()
        .map(|c| {
            let u = c.trim().to_uppercase();
            if u == "ALL" || u.starts_with("CAP_") {
                u
            } else {
                format!("CAP_{u}")
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]` as docker's `Devices` entry (permissions `rwm`
/// by default; a second part made only of r, w and m is the permissions).
fn parse_device(d: &str) -> Result<String, String> {
    let parts: Vec<&str> = d.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms_ok(p) => (*h, *c, *p),
        _ => {
            return Err(format!(
                "invalid argument \"{d}\" for \"--device\" flag: invalid device specification: {d}"
            ))
        }
    };
    if !ctr.starts_with('/') {
        return Err(format!(
            "invalid argument \"{d}\" for \"--device\" flag: invalid device specification: {d}"
        ));
    }
    Ok(format!(
        r#"{{"PathOnHost":{},"PathInContainer":{},"CgroupPermissions":{}}}"#,
        js(host),
        js(ctr),
        js(perms)
    ))
}

/// One `--security-opt` as the docker CLI sends it: `seccomp=<file>` becomes
/// `seccomp=<the file's JSON, compacted>` (`unconfined` and `builtin` stay as they are).
fn security_opt(o: &str) -> Result<String, String> {
    if o == "no-new-privileges" {
        return Ok(o.to_string());
    }
    let Some((k, v)) = o.split_once('=').or_else(|| o.split_once(':')) else {
        return Err(format!("Invalid --security-opt: {o:?}"));
    };
    if k != "seccomp" || v == "unconfined" || v == "builtin" {
        return Ok(o.to_string());
    }
    let body = std::fs::read(v).map_err(|e| {
        format!(
            "opening seccomp profile ({v}) failed: {}",
            crate::cmds::io_msg(&e)
        )
    })?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("compacting json for seccomp profile ({v}) failed: {e}"))?;
    Ok(format!("seccomp={json}"))
}

pub use berth_types::detach::parse_detach_keys;

/// Splits an image reference into docker's normalised name and tag.
pub fn normalize_ref(r: &str) -> (String, String) {
    let (name, tag) = match r.rfind(':') {
        Some(i) if !r[i..].contains('/') && !r.contains('@') => (&r[..i], r[i + 1..].to_string()),
        _ if r.contains('@') => (r, String::new()),
        _ => (r, "latest".to_string()),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    (full, tag)
}

pub use crate::support::query_escape;

/// docker prefixes run errors with the program name and a hint.
fn run_error(cmd: &str, msg: &str, code: i32) -> anyhow::Error {
    fail(
        format!(
            "berth: {msg}\n\nRun 'berth {} --help' for more information",
            crate::shown(cmd)
        ),
        code,
    )
}

/// docker's errors around create: `docker: …` and a hint with 125 for
/// run, the plain text with 1 for create.
fn create_error(cmd: &str, msg: &str) -> anyhow::Error {
    if cmd == "create" {
        fail(msg, 1)
    } else {
        run_error(cmd, msg, 125)
    }
}

/// Pulls the image of `o` for run/create, the progress on stderr as docker
/// draws it there.
fn pull_for_run(
    c: &mut Client,
    image: &crate::reference::Ref,
    o: &RunOpts,
    cmd: &str,
) -> Result<()> {
    let (mut w, mode): (Box<dyn std::io::Write>, _) = if o.quiet {
        (
            Box::new(std::io::sink()),
            crate::progress::Mode {
                terminal: false,
                width: 200,
            },
        )
    } else {
        (Box::new(std::io::stderr()), crate::progress::Mode::of_fd(2))
    };
    let res = crate::support::pull_stream(c, image, o.platform.as_deref(), &mut w, mode)
        .map_err(|e| create_error(cmd, &e.to_string()))?;
    res.map_err(|e| create_error(cmd, &e.message))
}

fn create(c: &mut Client, o: &RunOpts, cmd: &str) -> Result<String> {
    if let Some(w) = crate::netopts::dns_warning(&o.x.net.dns) {
        eprintln!("{w}");
    }
    let image = crate::reference::parse(&o.image)
        .map_err(|e| create_error(cmd, &e))?
        .with_default_tag();
    if o.pull == "always" {
        pull_for_run(c, &image, o, cmd)?;
    }
    let body = create_body(o);
    let mut q = Vec::new();
    if let Some(n) = &o.name {
        q.push(format!("name={}", query_escape(n)));
    }
    if let Some(p) = &o.platform {
        q.push(format!("platform={}", query_escape(p)));
    }
    let path = if q.is_empty() {
        "/containers/create".to_string()
    } else {
        format!("/containers/create?{}", q.join("&"))
    };
    let r = c.call(
        "POST",
        &path,
        ReqBody::Bytes("application/json", body.as_bytes()),
    );
    let r = match r {
        Ok(r) => r,
        Err(e) => match e.downcast::<DaemonError>() {
            Ok(d)
                if d.status == 404
                    && d.message.to_lowercase().contains("no such image")
                    && o.pull != "never" =>
            {
                if !o.quiet {
                    eprintln!("Unable to find image '{}' locally", image.familiar());
                }
                pull_for_run(c, &image, o, cmd)?;
                c.call(
                    "POST",
                    &path,
                    ReqBody::Bytes("application/json", body.as_bytes()),
                )
                .map_err(|e| create_error(cmd, &e.to_string()))?
            }
            Ok(d) => return Err(create_error(cmd, &d.to_string())),
            Err(e) => return Err(create_error(cmd, &e.to_string())),
        },
    };
    let v = r.json().map_err(|e| run_error(cmd, &e.to_string(), 125))?;
    for w in v
        .get("Warnings")
        .and_then(|w| w.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    v.get("Id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(|| run_error(cmd, "create response has no Id", 125))
}

/// Exit code for a failed start, as docker maps it.
pub fn start_exit_code(msg: &str) -> i32 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        125
    }
}

pub fn cmd_run(
    connect: impl Fn() -> Result<Client>,
    args: &[String],
    is_create: bool,
) -> Result<i32> {
    let cmd = if is_create { "create" } else { "run" };
    let o = match parse_run(args, is_create) {
        Ok(o) => o,
        Err(e) => {
            if let Some(c) = e.downcast_ref::<crate::CliError>() {
                if c.code == 0 {
                    return Ok(0);
                }
            }
            return Err(e);
        }
    };
    if o.tty && o.stdin && !is_create && !o.detach && !term::isatty(0) {
        return Err(run_error(cmd, "the input device is not a TTY", 1));
    }
    let mut c = connect().map_err(|e| run_error(cmd, &e.to_string(), 125))?;
    if o.x.net.has_mac() && crate::client::version_lt(&c.version, "1.44") {
        let m = format!(
            "\"specify mac-address per network\" requires API version 1.44, but the Docker daemon API version is {}",
            c.version
        );
        return Err(if is_create {
            fail(m, 1)
        } else {
            run_error(cmd, &m, 125)
        });
    }
    let id = create(&mut c, &o, cmd)?;
    if is_create {
        println!("{id}");
        return Ok(0);
    }
    if o.detach {
        // docker: wait?condition=next-exit (headers only), start, print ID.
        let wait = c
            .stream(
                "POST",
                &format!("/containers/{id}/wait?condition=next-exit"),
                ReqBody::EmptyPost,
                &[],
                false,
            )
            .map_err(|e| run_error(cmd, &e.to_string(), 125))?;
        if let Err(e) = c.post(&format!("/containers/{id}/start")) {
            let msg = e.to_string();
            return Err(run_error(cmd, &msg, start_exit_code(&msg)));
        }
        drop(wait);
        println!("{id}");
        return Ok(0);
    }
    let want = |n: &str| o.x.attach.is_empty() || o.x.attach.iter().any(|a| a == n);
    let ao = AttachOpts {
        tty: o.tty,
        stdin: o.stdin && (o.x.attach.is_empty() || want("stdin")),
        stdout: want("stdout"),
        stderr: want("stderr"),
        rm: o.rm,
        sig_proxy: o.x.sig_proxy,
        detach_keys: o.x.detach_keys.clone(),
    };
    attach_start_wait(&mut c, &id, &ao, cmd)
}

/// How an attached session is set up.
pub struct AttachOpts {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub rm: bool,
    pub sig_proxy: bool,
    pub detach_keys: Option<String>,
}

impl AttachOpts {
    pub fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(k) = &self.detach_keys {
            q.push(format!("detachKeys={}", query_escape(k)));
        }
        if self.stderr {
            q.push("stderr=1".into());
        }
        if self.stdin {
            q.push("stdin=1".into());
        }
        if self.stdout {
            q.push("stdout=1".into());
        }
        q.push("stream=1".into());
        q.join("&")
    }
    /// Detach keys in effect (client side, TTY sessions with stdin only).
    pub fn keys(&self) -> Option<Vec<u8>> {
        if !(self.tty && self.stdin) {
            return None;
        }
        match &self.detach_keys {
            Some(k) => parse_detach_keys(k).ok(),
            None => Some(vec![0x10, 0x11]),
        }
    }
}

/// Proxies SIGWINCH to `resize_path` (TTY) or the usual signals to
/// `kill?signal=` (no TTY, `--sig-proxy`). Call before spawning threads.
pub fn install_signal_proxy(c: &Client, id: &str, tty: bool, sig_proxy: bool, resize_base: String) {
    let socket = c.socket.clone();
    let version = c.version.clone();
    let idc = id.to_string();
    if tty {
        term::handle_signals(&[libc::SIGWINCH], move |_| {
            if let Some((h, w)) = term::winsize(1) {
                if let Ok(mut c2) = Client::with_version(socket.clone(), version.clone()) {
                    let _ = c2.post(&format!("{resize_base}?h={h}&w={w}"));
                }
            }
        });
    } else if sig_proxy {
        let sigs = [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ];
        term::handle_signals(&sigs, move |sig| {
            if let Ok(mut c2) = Client::with_version(socket.clone(), version.clone()) {
                let _ = c2.post(&format!(
                    "/containers/{idc}/kill?signal={}",
                    term::signal_name(sig)
                ));
            }
        });
    }
}

pub use berth_types::detach::EscapeScanner as EscapeScan;

/// Copies stdin to the hijacked socket (half-closing at EOF) and the
/// socket to stdout/stderr; returns true if the user typed the detach keys.
pub fn pump(
    sock: UnixStream,
    rest: Vec<u8>,
    tty: bool,
    stdin: bool,
    keys: Option<Vec<u8>>,
) -> std::io::Result<bool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let mut w = sock.try_clone()?;
        let flag = detached.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 32768];
            let mut input = std::io::stdin().lock();
            let mut scan = keys.map(EscapeScan::new);
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let (data, hit) = match scan.as_mut() {
                            Some(s) => s.feed(&buf[..n]),
                            None => (buf[..n].to_vec(), false),
                        };
                        if !data.is_empty() && w.write_all(&data).is_err() {
                            return;
                        }
                        if hit {
                            flag.store(true, Ordering::SeqCst);
                            let _ = w.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = w.shutdown(std::net::Shutdown::Write);
        });
    } else {
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }
    let res = stream_output(sock, rest, tty);
    if detached.load(Ordering::SeqCst) {
        return Ok(true);
    }
    res.map(|_| false)
}

/// attach (hijack) → wait (headers) → start → resize; stream output;
/// return the exit code from the wait body (0 when the user detached).
pub fn attach_start_wait(c: &mut Client, id: &str, o: &AttachOpts, cmd: &str) -> Result<i32> {
    let (sock, rest) = c
        .hijack(&format!("/containers/{id}/attach?{}", o.query()))
        .map_err(|e| run_error(cmd, &e.to_string(), 125))?;
    let cond = if o.rm { "removed" } else { "next-exit" };
    let wait = c
        .stream(
            "POST",
            &format!("/containers/{id}/wait?condition={cond}"),
            ReqBody::EmptyPost,
            &[],
            false,
        )
        .map_err(|e| run_error(cmd, &e.to_string(), 125))?;

    // Signal handlers first: the mask must be set before any thread starts.
    install_signal_proxy(
        c,
        id,
        o.tty,
        o.sig_proxy,
        format!("/containers/{id}/resize"),
    );

    let raw = if o.tty && o.stdin && term::isatty(0) {
        term::RawMode::enter(0)
    } else {
        None
    };
    // Start before pumping: stdin may already flow (the daemon buffers it).
    let (tx, rx) = std::sync::mpsc::channel();
    let keys = o.keys();
    let (tty, stdin) = (o.tty, o.stdin);
    let out = std::thread::spawn(move || {
        let r = pump(sock, rest, tty, stdin, keys);
        let _ = tx.send(());
        r
    });
    if let Err(e) = c.post(&format!("/containers/{id}/start")) {
        drop(raw);
        let msg = e.to_string();
        return Err(run_error(cmd, &msg, start_exit_code(&msg)));
    }
    if o.tty {
        if let Some((h, w)) = term::winsize(1) {
            let _ = c.post(&format!("/containers/{id}/resize?h={h}&w={w}"));
        }
    }
    let _ = rx.recv();
    let out_res = out.join().unwrap_or(Ok(false));
    drop(raw);
    match out_res {
        Ok(true) => return Ok(0),
        Ok(false) => {}
        Err(e) => {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("{e}");
            }
        }
    }
    wait_code(wait, cmd)
}

pub fn wait_code(wait: crate::client::Streaming, cmd: &str) -> Result<i32> {
    let mut body = Vec::new();
    let mut wb = wait.body;
    wb.read_to_end(&mut body)
        .map_err(|e| run_error(cmd, &e.to_string(), 125))?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(m) = v
        .get("Error")
        .and_then(|e| e.get("Message"))
        .and_then(|m| m.as_str())
    {
        if !m.is_empty() {
            return Err(run_error(cmd, m, 125));
        }
    }
    Ok(v.get("StatusCode").and_then(|s| s.as_i64()).unwrap_or(125) as i32)
}

pub fn stream_output(sock: UnixStream, rest: Vec<u8>, tty: bool) -> std::io::Result<()> {
    let reader = std::io::Cursor::new(rest).chain(sock);
    let stdout = std::io::stdout();
    if tty {
        let mut out = stdout.lock();
        let mut r = reader;
        let mut buf = [0u8; 32768];
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    } else {
        let mut out = stdout.lock();
        let mut err = std::io::stderr().lock();
        stdcopy::demux(reader, &mut out, &mut err)
    }
}

const START_FLAGS: &[Spec] = &[
    b(Some('a'), "attach"),
    b(Some('i'), "interactive"),
    v(None, "detach-keys"),
];

pub fn cmd_start(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let p = flags::parse(args, START_FLAGS, true).map_err(|e| flag_error("start", &e))?;
    if p.help {
        print!("{}", help_text("start", START_FLAGS));
        return Ok(0);
    }
    if p.args.is_empty() {
        return Err(args_error("start", "requires at least 1 argument"));
    }
    let mut c = connect()?;
    if p.has("attach") || p.has("interactive") {
        let name = &p.args[0];
        let info = c.get_json(&format!("/containers/{name}/json"))?;
        let id = info
            .get("Id")
            .and_then(|v| v.as_str())
            .unwrap_or(name)
            .to_string();
        let tty = info
            .pointer("/Config/Tty")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let rm = info
            .pointer("/HostConfig/AutoRemove")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let stdin = p.has("interactive");
        let ao = AttachOpts {
            tty,
            stdin,
            stdout: true,
            stderr: true,
            rm,
            sig_proxy: true,
            detach_keys: p.get("detach-keys").map(str::to_string),
        };
        return attach_start_wait(&mut c, &id, &ao, "start");
    }
    let mut failed = Vec::new();
    for name in &p.args {
        match c.post(&format!("/containers/{name}/start")) {
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                failed.push(name.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(fail(
            format!("Error: failed to start containers: {}", failed.join(", ")),
            1,
        ));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const DOCKER_04: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hi"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#;

    #[test]
    fn create_body_matches_capture_04() {
        let o = parse_run(&s(&["--rm", "busybox", "echo", "hi"]), false).unwrap();
        assert_eq!(create_body(&o), DOCKER_04);
    }

    #[test]
    fn create_body_it() {
        let mut o = parse_run(&s(&["-it", "--rm", "busybox", "sh"]), false).unwrap();
        o.console = (24, 80);
        let want = DOCKER_04
            .replace(r#""AttachStdin":false"#, r#""AttachStdin":true"#)
            .replace(
                r#""Tty":false,"OpenStdin":false,"StdinOnce":false"#,
                r#""Tty":true,"OpenStdin":true,"StdinOnce":true"#,
            )
            .replace(r#"["echo","hi"]"#, r#"["sh"]"#)
            .replace("[0,0]", "[24,80]");
        assert_eq!(create_body(&o), want);
    }

    #[test]
    fn create_body_detached_with_options() {
        let o = parse_run(
            &s(&[
                "-d",
                "-i",
                "--name",
                "x",
                "-e",
                "A=1",
                "-w",
                "/tmp",
                "-h",
                "hh",
                "--entrypoint",
                "sh",
                "busybox",
            ]),
            false,
        )
        .unwrap();
        let b = create_body(&o);
        assert!(b.contains(r#""Hostname":"hh""#));
        assert!(b.contains(r#""AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":true,"StdinOnce":false,"Env":["A=1"],"Cmd":null"#));
        assert!(b.contains(r#""WorkingDir":"/tmp","Entrypoint":["sh"]"#));
        let _: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(o.name.as_deref(), Some("x"));
    }

    // Bodies docker CLI 28.2.2 sent for the same command lines (recorded
    // with a fake daemon on a unix socket; Go's trailing newline dropped).
    #[test]
    fn create_body_networking_golden() {
        let o = parse_run(
            &s(&[
                "--rm",
                "-p",
                "8080:80",
                "-p",
                "127.0.0.1::81/udp",
                "--network",
                "ac-n1",
                "--ip",
                "172.30.0.5",
                "--network-alias",
                "web",
                "--dns",
                "1.1.1.1",
                "--dns-search",
                "example.com",
                "--dns-option",
                "ndots:2",
                "--add-host",
                "db:10.0.0.2",
                "busybox",
                "echo",
                "hi",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            create_body(&o),
            include_str!("../testdata/create-run-p-network-ip-dns.json")
        );
        // at API 1.50 (the MAC address goes on the first network's endpoint)
        let o = parse_run(
            &s(&[
                "-P",
                "--expose",
                "90-91",
                "-p",
                "[::1]:8443:443",
                "--link",
                "a:b",
                "--domainname",
                "d",
                "--hostname",
                "h",
                "--mac-address",
                "02:42:ac:11:00:02",
                "--network",
                "ac-n1",
                "--network",
                "ac-n2",
                "--add-host",
                "gw:host-gateway",
                "busybox",
            ]),
            true,
        )
        .unwrap();
        assert!(o.x.net.has_mac());
        assert_eq!(
            create_body(&o),
            include_str!("../testdata/create-publish-all-links-mac-two-networks-v150.json")
        );
    }

    #[test]
    fn networking_flag_errors() {
        let err = |a: &[&str]| {
            let e = parse_run(&s(a), false).err().unwrap();
            let c = e.downcast_ref::<crate::CliError>().unwrap();
            (c.code, c.msg.clone())
        };
        let (code, msg) = err(&["-p", "99999:80", "busybox"]);
        assert_eq!(code, 125);
        assert_eq!(
            msg,
            "berth: invalid hostPort: 99999\n\nRun 'berth run --help' for more information"
        );
        let (code, msg) = err(&["--add-host", "foo", "busybox"]);
        assert_eq!(code, 125);
        assert!(msg.starts_with("invalid argument \"foo\" for \"--add-host\" flag: bad format for add-host: \"foo\"\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"));
        let (_, msg) = err(&["--dns", "notanip", "busybox"]);
        assert!(msg.starts_with("invalid argument \"notanip\" for \"--dns\" flag: IP address is not correctly formatted: notanip\n"));
        let (_, msg) = err(&["--network", "bridge", "--network-alias", "x", "busybox"]);
        assert!(msg.starts_with(
            "berth: network-scoped aliases are only supported for user-defined networks\n"
        ));
        let (_, msg) = err(&["--network", "host", "--network", "n1", "busybox"]);
        assert!(msg.contains("cannot attach both user-defined and non-user-defined network-modes"));
        let (_, msg) = err(&["--network", "n1", "--network", "n1", "busybox"]);
        assert!(msg.contains("network \"n1\" is specified multiple times"));
        let (_, msg) = err(&["--mac-address", "zz", "busybox"]);
        assert!(msg.starts_with("berth: zz is not a valid mac address\n"));
    }

    #[test]
    fn create_body_network_keys() {
        let body = |a: &[&str]| create_body(&parse_run(&s(a), true).unwrap());
        // one plain --network: no endpoint is sent
        let b = body(&["--network", "n1", "busybox"]);
        assert!(b.contains(r#""NetworkMode":"n1","#));
        assert!(b.ends_with(r#""NetworkingConfig":{"EndpointsConfig":{}}}"#));
        // --ip on the default network keeps the "default" key
        let b = body(&["--ip", "10.0.0.4", "busybox"]);
        assert!(b.contains(
            r#""EndpointsConfig":{"default":{"IPAMConfig":{"IPv4Address":"10.0.0.4"},"Links":null"#
        ));
        // --link on the default bridge is a legacy link only
        let b = body(&["--network", "bridge", "--link", "a:b", "busybox"]);
        assert!(b.contains(r#""Links":["a:b"],"OomScoreAdj""#));
        assert!(b.ends_with(r#""EndpointsConfig":{}}}"#));
    }

    #[test]
    fn run_new_flags() {
        let o = parse_run(
            &s(&[
                "--restart",
                "on-failure:3",
                "-m",
                "64m",
                "--cpus",
                "1.5",
                "--ulimit",
                "nofile=1024:2048",
                "--health-cmd",
                "true",
                "--health-interval",
                "5s",
                "--init",
                "--stop-timeout",
                "5",
                "-a",
                "stdout",
                "busybox",
            ]),
            false,
        )
        .unwrap();
        let b = create_body(&o);
        assert!(b.contains(r#""AttachStdout":true,"AttachStderr":false"#));
        assert!(b.contains(r#""Cmd":null,"Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":5000000000},"Image""#));
        assert!(b.contains(r#""Labels":{},"StopTimeout":5,"HostConfig""#));
        assert!(b.contains(r#""RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}"#));
        assert!(b.contains(r#""Memory":67108864,"NanoCpus":1500000000"#));
        assert!(b.contains(r#""Ulimits":[{"Name":"nofile","Hard":2048,"Soft":1024}]"#));
        assert!(b.contains(r#""ReadonlyPaths":null,"Init":true}"#));
        let o = parse_run(&s(&["--no-healthcheck", "busybox"]), false).unwrap();
        assert!(create_body(&o).contains(r#""Healthcheck":{"Test":["NONE"]}"#));
        let e = parse_run(&s(&["--rm", "--restart", "always", "busybox"]), false)
            .err()
            .unwrap();
        let c = e.downcast_ref::<crate::CliError>().unwrap();
        assert_eq!(c.code, 125);
        assert!(c
            .msg
            .contains("conflicting options: cannot specify both --restart and --rm"));
        assert_eq!(
            parse_restart("unless-stopped").unwrap(),
            ("unless-stopped".into(), 0)
        );
        assert!(parse_restart("on-failure:x").is_err());
    }

    #[test]
    fn refs() {
        assert_eq!(
            normalize_ref("busybox"),
            ("docker.io/library/busybox".into(), "latest".into())
        );
        assert_eq!(
            normalize_ref("ac-nosuchimage:1"),
            ("docker.io/library/ac-nosuchimage".into(), "1".into())
        );
        assert_eq!(
            normalize_ref("me/app"),
            ("docker.io/me/app".into(), "latest".into())
        );
        assert_eq!(
            normalize_ref("localhost:5000/x"),
            ("localhost:5000/x".into(), "latest".into())
        );
        assert_eq!(
            query_escape("docker.io/library/x"),
            "docker.io%2Flibrary%2Fx"
        );
    }

    #[test]
    fn start_codes() {
        assert_eq!(
            start_exit_code(r#"exec: "nosuch": executable file not found in $PATH: unknown"#),
            127
        );
        assert_eq!(
            start_exit_code(r#"exec: "/etc/passwd": permission denied: unknown"#),
            126
        );
        assert_eq!(start_exit_code("something else"), 125);
    }

    #[test]
    fn run_flag_errors() {
        let e = parse_run(&s(&["--foo", "busybox"]), false).err().unwrap();
        let c = e.downcast_ref::<crate::CliError>().unwrap();
        assert_eq!(c.code, 125);
        assert!(c.msg.starts_with(
            "unknown flag: --foo\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
        ));
        let e = parse_run(&s(&[]), false).err().unwrap();
        assert_eq!(e.downcast_ref::<crate::CliError>().unwrap().code, 1);
    }

    #[test]
    fn pull_options() {
        let o = parse_run(&s(&["busybox"]), false).unwrap();
        assert_eq!(
            (o.pull.as_str(), o.platform.as_deref(), o.quiet),
            ("missing", None, false)
        );
        let o = parse_run(
            &s(&[
                "--pull",
                "always",
                "--platform",
                "linux/amd64",
                "-q",
                "busybox",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(
            (o.pull.as_str(), o.platform.as_deref(), o.quiet),
            ("always", Some("linux/amd64"), true)
        );
        // the create body does not change with them
        assert_eq!(
            create_body(
                &parse_run(
                    &s(&["--rm", "--pull", "never", "busybox", "echo", "hi"]),
                    false
                )
                .unwrap()
            ),
            DOCKER_04
        );
        let e = parse_run(&s(&["--pull", "bogus", "busybox"]), true)
            .err()
            .unwrap();
        let c = e.downcast_ref::<crate::CliError>().unwrap();
        assert_eq!(c.code, 125);
        assert_eq!(
            c.msg,
            "berth: invalid pull option: 'bogus': must be one of \"always\", \"missing\" or \"never\"\n\nRun 'berth create --help' for more information"
        );
    }
}
