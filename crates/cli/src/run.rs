//! `run`, `create` and `start`.

use crate::client::{Client, DaemonError};
use crate::flags::{self, b, v, Spec};
use crate::http::ReqBody;
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
];

fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
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
    let attach_out = !o.detach;
    let attach_in = o.stdin && !o.detach;
    let stdin_once = o.stdin && !o.detach;
    format!(
        concat!(
            r#"{{"Hostname":{},"Domainname":"","User":{},"AttachStdin":{},"AttachStdout":{},"AttachStderr":{},"#,
            r#""Tty":{},"OpenStdin":{},"StdinOnce":{},"Env":{},"Cmd":{},"Image":{},"Volumes":{{}},"WorkingDir":{},"#,
            r#""Entrypoint":{},"OnBuild":null,"Labels":{},"#,
            r#""HostConfig":{{"Binds":null,"ContainerIDFile":"","LogConfig":{{"Type":"","Config":{{}}}},"NetworkMode":"default","PortBindings":{{}},"#,
            r#""RestartPolicy":{{"Name":"no","MaximumRetryCount":0}},"AutoRemove":{},"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[{},{}],"#,
            r#""CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"#,
            r#""IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"#,
            r#""ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"#,
            r#""Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"#,
            r#""BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"#,
            r#""CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"#,
            r#""DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"#,
            r#""Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null}},"#,
            r#""NetworkingConfig":{{"EndpointsConfig":{{"default":{{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","#,
            r#""DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"#,
            r#""IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}}}}}"#
        ),
        js(&o.hostname),
        js(&o.user),
        attach_in,
        attach_out,
        attach_out,
        o.tty,
        o.stdin,
        stdin_once,
        env,
        cmd,
        js(&o.image),
        js(&o.workdir),
        entrypoint,
        serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into()),
        o.rm,
        o.console.0,
        o.console.1,
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
    let env = p
        .all("env")
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
    let labels = p
        .all("label")
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect();
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
    })
}

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

pub fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

/// docker prefixes run errors with the program name and a hint.
fn run_error(cmd: &str, msg: &str, code: i32) -> anyhow::Error {
    fail(
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
        code,
    )
}

fn create(c: &mut Client, o: &RunOpts, cmd: &str) -> Result<String> {
    let body = create_body(o);
    let path = match &o.name {
        Some(n) => format!("/containers/create?name={}", query_escape(n)),
        None => "/containers/create".to_string(),
    };
    let r = c.call(
        "POST",
        &path,
        ReqBody::Bytes("application/json", body.as_bytes()),
    );
    let r = match r {
        Ok(r) => r,
        Err(e) => match e.downcast::<DaemonError>() {
            Ok(d) if d.status == 404 && d.message.to_lowercase().contains("no such image") => {
                let (full, tag) = normalize_ref(&o.image);
                let shown = if o.image.contains(':') || o.image.contains('@') {
                    o.image.clone()
                } else {
                    format!("{}:latest", o.image)
                };
                eprintln!("Unable to find image '{shown}' locally");
                let mut q = format!("/images/create?fromImage={}", query_escape(&full));
                if !tag.is_empty() {
                    q.push_str(&format!("&tag={}", query_escape(&tag)));
                }
                let pulled = c
                    .stream(
                        "POST",
                        &q,
                        ReqBody::EmptyPost,
                        &[("X-Registry-Auth", "e30=")],
                        false,
                    )
                    .and_then(|s| {
                        crate::client::print_json_messages(s.body, &mut std::io::stderr())
                    });
                match pulled {
                    Ok(None) => {}
                    Ok(Some((m, _))) => return Err(run_error(cmd, &m, 125)),
                    Err(e) => return Err(run_error(cmd, &e.to_string(), 125)),
                }
                c.call(
                    "POST",
                    &path,
                    ReqBody::Bytes("application/json", body.as_bytes()),
                )
                .map_err(|e| run_error(cmd, &e.to_string(), 125))?
            }
            Ok(d) => return Err(run_error(cmd, &d.to_string(), 125)),
            Err(e) => return Err(run_error(cmd, &e.to_string(), 125)),
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
    attach_start_wait(&mut c, &id, o.tty, o.stdin, o.rm, true, cmd)
}

/// attach (hijack) → wait (headers) → start → resize; stream output;
/// return the exit code from the wait body.
pub fn attach_start_wait(
    c: &mut Client,
    id: &str,
    tty: bool,
    stdin: bool,
    rm: bool,
    sig_proxy: bool,
    cmd: &str,
) -> Result<i32> {
    let q = if stdin {
        "stderr=1&stdin=1&stdout=1&stream=1"
    } else {
        "stderr=1&stdout=1&stream=1"
    };
    let (sock, rest) = c
        .hijack(&format!("/containers/{id}/attach?{q}"))
        .map_err(|e| run_error(cmd, &e.to_string(), 125))?;
    if !stdin {
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }
    let cond = if rm { "removed" } else { "next-exit" };
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
    let socket = c.socket.clone();
    let version = c.version.clone();
    let idc = id.to_string();
    if tty {
        term::handle_signals(&[libc::SIGWINCH], move |_| {
            if let Some((h, w)) = term::winsize(1) {
                if let Ok(mut c2) = Client::with_version(socket.clone(), version.clone()) {
                    let _ = c2.post(&format!("/containers/{idc}/resize?h={h}&w={w}"));
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

    // Stdin: raw terminal when -t, copied until EOF, then half-close.
    let raw = if tty && stdin && term::isatty(0) {
        term::RawMode::enter(0)
    } else {
        None
    };
    if stdin {
        let mut w = sock.try_clone()?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 32768];
            let mut input = std::io::stdin().lock();
            loop {
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if w.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = w.shutdown(std::net::Shutdown::Write);
        });
    }

    if let Err(e) = c.post(&format!("/containers/{id}/start")) {
        drop(raw);
        let msg = e.to_string();
        return Err(run_error(cmd, &msg, start_exit_code(&msg)));
    }
    if tty {
        if let Some((h, w)) = term::winsize(1) {
            let _ = c.post(&format!("/containers/{id}/resize?h={h}&w={w}"));
        }
    }

    let out_res = stream_output(sock, rest, tty);
    drop(raw);
    if let Err(e) = out_res {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("{e}");
        }
    }
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

fn stream_output(sock: UnixStream, rest: Vec<u8>, tty: bool) -> std::io::Result<()> {
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

const START_FLAGS: &[Spec] = &[b(Some('a'), "attach"), b(Some('i'), "interactive")];

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
        return attach_start_wait(&mut c, &id, tty, stdin, rm, true, "start");
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
}
