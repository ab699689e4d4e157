//! Container lifecycle commands: exec, attach, restart, pause, unpause,
//! rename, wait, update, container prune, top, stats, events.

use crate::client::Client;
use crate::flags::{self, b, v, Parsed, Spec};
use crate::http::ReqBody;
use crate::jv::js;
use crate::jv::J;
use crate::run::{install_signal_proxy, pump, query_escape, AttachOpts};
use crate::units::{human_size, rfc3339_nano_fixed};
use crate::{args_error, fail, flag_error, help_text, term, tmpl};
use anyhow::Result;
use std::io::Write;

fn parse(cmd: &str, args: &[String], specs: &[Spec], interspersed: bool) -> Result<Option<Parsed>> {
    let p = flags::parse(args, specs, interspersed).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help_text(cmd, specs));
        return Ok(None);
    }
    Ok(Some(p))
}

fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

// ---------------------------------------------------------------- exec

const EXEC_FLAGS: &[Spec] = &[
    b(Some('d'), "detach"),
    b(Some('i'), "interactive"),
    b(Some('t'), "tty"),
    v(Some('e'), "env"),
    v(None, "env-file"),
    v(Some('w'), "workdir"),
    v(Some('u'), "user"),
    b(None, "privileged"),
    v(None, "detach-keys"),
];

pub struct ExecOpts {
    pub detach: bool,
    pub stdin: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub privileged: bool,
    pub detach_keys: String,
    pub cmd: Vec<String>,
}

/// The exec create body, key for key as docker 28 sends it (capture 08/09).
pub fn exec_body(o: &ExecOpts) -> String {
    let att = !o.detach;
    format!(
        r#"{{"User":{},"Privileged":{},"Tty":{},"AttachStdin":{},"AttachStderr":{},"AttachStdout":{},"Detach":{},"DetachKeys":{},"Env":{},"WorkingDir":{},"Cmd":{}}}"#,
        js(&o.user),
        o.privileged,
        o.tty,
        o.stdin && att,
        att,
        att,
        o.detach,
        js(&o.detach_keys),
        if o.env.is_empty() {
            "null".into()
        } else {
            serde_json::to_string(&o.env).unwrap_or_default()
        },
        js(&o.workdir),
        serde_json::to_string(&o.cmd).unwrap_or_default()
    )
}

pub fn exec(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("exec", args, EXEC_FLAGS, false)? else {
        return Ok(0);
    };
    if p.args.len() < 2 {
        return Err(args_error("exec", "requires at least 2 arguments"));
    }
    let mut env = Vec::new();
    for f in p.all("env-file") {
        env.extend(crate::run::read_kv_file(&f).map_err(|e| fail(e, 1))?);
    }
    env.extend(p.all("env"));
    // `-e NAME` takes NAME's value from our environment, as for run
    let env: Vec<String> = env
        .into_iter()
        .map(|e| match (e.contains('='), std::env::var(&e)) {
            (false, Ok(v)) => format!("{e}={v}"),
            _ => e,
        })
        .collect();
    let o = ExecOpts {
        detach: p.has("detach"),
        stdin: p.has("interactive"),
        tty: p.has("tty"),
        env,
        workdir: p.get("workdir").unwrap_or("").into(),
        user: p.get("user").unwrap_or("").into(),
        privileged: p.has("privileged"),
        detach_keys: p.get("detach-keys").unwrap_or("").into(),
        cmd: p.args[1..].to_vec(),
    };
    if o.tty && o.stdin && !o.detach && !term::isatty(0) {
        return Err(fail("the input device is not a TTY", 1));
    }
    let name = &p.args[0];
    let mut c = connect()?;
    c.get_json(&format!("/containers/{name}/json"))?;
    let body = exec_body(&o);
    let r = c.call(
        "POST",
        &format!("/containers/{name}/exec"),
        ReqBody::Bytes("application/json", body.as_bytes()),
    )?;
    let id = r
        .json()?
        .get("Id")
        .and_then(|x| x.as_str())
        .unwrap_or("")
        .to_string();
    let start = format!(r#"{{"Detach":{},"Tty":{}}}"#, o.detach, o.tty);
    if o.detach {
        c.call(
            "POST",
            &format!("/exec/{id}/start"),
            ReqBody::Bytes("application/json", start.as_bytes()),
        )?;
        return Ok(0);
    }
    let (sock, rest) = c.hijack_with(&format!("/exec/{id}/start"), Some(start.as_bytes()))?;
    install_signal_proxy(&c, &id, o.tty, false, format!("/exec/{id}/resize"));
    let raw = if o.tty && o.stdin && term::isatty(0) {
        term::RawMode::enter(0)
    } else {
        None
    };
    let ao = AttachOpts {
        tty: o.tty,
        stdin: o.stdin,
        stdout: true,
        stderr: true,
        rm: false,
        sig_proxy: false,
        detach_keys: p.get("detach-keys").map(str::to_string),
    };
    let keys = ao.keys();
    let (tty, stdin) = (o.tty, o.stdin);
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || {
        let r = pump(sock, rest, tty, stdin, keys);
        let _ = tx.send(());
        r
    });
    if o.tty {
        if let Some((h, w)) = term::winsize(1) {
            let _ = c.post(&format!("/exec/{id}/resize?h={h}&w={w}"));
        }
    }
    let _ = rx.recv();
    let res = th.join().unwrap_or(Ok(false));
    drop(raw);
    match res {
        Ok(true) => return Ok(0),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("{e}"),
    }
    let info = c.get_json(&format!("/exec/{id}/json"))?;
    Ok(info.get("ExitCode").and_then(|x| x.as_i64()).unwrap_or(0) as i32)
}

// ---------------------------------------------------------------- attach

const ATTACH_FLAGS: &[Spec] = &[
    b(None, "no-stdin"),
    b(None, "sig-proxy"),
    v(None, "detach-keys"),
];

pub fn attach(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("attach", args, ATTACH_FLAGS, true)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error("attach", "requires exactly 1 argument"));
    }
    let name = &p.args[0];
    let mut c = connect()?;
    // docker: wait first (its body tells the exit code), then inspect.
    let wait = c.stream(
        "POST",
        &format!("/containers/{name}/wait"),
        ReqBody::EmptyPost,
        &[],
        false,
    )?;
    let info = c.get_json(&format!("/containers/{name}/json"))?;
    let st = |k: &str| {
        info.pointer(&format!("/State/{k}"))
            .and_then(|x| x.as_bool())
            .unwrap_or(false)
    };
    if !st("Running") {
        return Err(fail(
            "You cannot attach to a stopped container, start it first",
            1,
        ));
    }
    if st("Paused") {
        return Err(fail(
            "You cannot attach to a paused container, unpause it first",
            1,
        ));
    }
    if st("Restarting") {
        return Err(fail(
            "You cannot attach to a restarting container, wait until it is running",
            1,
        ));
    }
    let tty = info
        .pointer("/Config/Tty")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    let open_stdin = info
        .pointer("/Config/OpenStdin")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    let stdin = open_stdin && !p.has("no-stdin");
    if tty && stdin && !term::isatty(0) {
        return Err(fail("the input device is not a TTY", 1));
    }
    let ao = AttachOpts {
        tty,
        stdin,
        stdout: true,
        stderr: true,
        rm: false,
        sig_proxy: p.get("sig-proxy").map(|v| v != "false").unwrap_or(true),
        detach_keys: p.get("detach-keys").map(str::to_string),
    };
    if let Some(k) = &ao.detach_keys {
        crate::run::parse_detach_keys(k).map_err(|e| fail(e, 1))?;
    }
    let (sock, rest) = c.hijack(&format!("/containers/{name}/attach?{}", ao.query()))?;
    install_signal_proxy(
        &c,
        name,
        tty,
        ao.sig_proxy,
        format!("/containers/{name}/resize"),
    );
    let raw = if tty && stdin && term::isatty(0) {
        term::RawMode::enter(0)
    } else {
        None
    };
    let keys = ao.keys();
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || {
        let r = pump(sock, rest, tty, stdin, keys);
        let _ = tx.send(());
        r
    });
    if tty {
        // h+1/w+1 first, then the real size: forces a redraw (capture 11).
        let _ = c.get_json(&format!("/containers/{name}/json"));
        // docker skips a 0x0 resize but still sends the +1 one.
        let (h, w) = term::winsize(1).unwrap_or((0, 0));
        if term::isatty(1) {
            let _ = c.post(&format!(
                "/containers/{name}/resize?h={}&w={}",
                h + 1,
                w + 1
            ));
            if (h, w) != (0, 0) {
                let _ = c.post(&format!("/containers/{name}/resize?h={h}&w={w}"));
            }
        }
    }
    let _ = rx.recv();
    let res = th.join().unwrap_or(Ok(false));
    drop(raw);
    match res {
        Ok(true) => return Err(fail("read escape sequence", 1)),
        Ok(false) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("{e}"),
    }
    crate::run::wait_code(wait, "attach")
}

// ---------------------------------------------------------------- simple per-container verbs

/// Runs `f` for each name on its own connection, in parallel like docker;
/// prints the name on success and the daemon's error otherwise, in order.
pub fn each<F>(
    connect: &dyn Fn() -> Result<Client>,
    names: &[String],
    print: bool,
    f: F,
) -> Result<i32>
where
    F: Fn(&mut Client, &str) -> Result<()> + Sync,
{
    let first = connect()?;
    let (sock, ver) = (first.socket.clone(), first.version.clone());
    drop(first);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let hs: Vec<_> = names
            .iter()
            .map(|n| {
                let (sock, ver, f) = (sock.clone(), ver.clone(), &f);
                s.spawn(move || {
                    let mut c = Client::with_version(sock, ver)?;
                    f(&mut c, n)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
            })
            .collect()
    });
    // names in argument order on stdout, then the errors (as docker does)
    let mut errs = Vec::new();
    let mut text = String::new();
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(()) => {
                if print {
                    text.push_str(n);
                    text.push('\n');
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    let failed = !errs.is_empty();
    for e in errs {
        eprintln!("{e}");
    }
    out(&text)?;
    Ok(if failed { 1 } else { 0 })
}

pub fn simple(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let specs: &[Spec] = match cmd {
        "restart" => &[v(Some('t'), "time"), v(Some('s'), "signal")],
        _ => &[],
    };
    let Some(p) = parse(cmd, args, specs, true)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let mut q = Vec::new();
    if let Some(s) = p.get("signal") {
        q.push(format!("signal={}", query_escape(s)));
    }
    if let Some(t) = p.get("time") {
        t.parse::<i64>().map_err(|_| {
            flag_error(cmd, &format!("invalid argument \"{t}\" for \"-t, --time\" flag: strconv.ParseInt: parsing \"{t}\": invalid syntax"))
        })?;
        q.push(format!("t={t}"));
    }
    let qs = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    let verb = cmd.to_string();
    each(&connect, &p.args, true, move |c, n| {
        c.post(&format!("/containers/{n}/{verb}{qs}")).map(|_| ())
    })
}

pub fn rename(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("rename", args, &[], true)? else {
        return Ok(0);
    };
    if p.args.len() != 2 {
        return Err(args_error("rename", "requires exactly 2 arguments"));
    }
    let (old, new) = (p.args[0].trim(), p.args[1].trim());
    if old.is_empty() || new.is_empty() {
        return Err(fail("Error: Neither old nor new names may be empty", 1));
    }
    let mut c = connect()?;
    if let Err(e) = c.post(&format!(
        "/containers/{old}/rename?name={}",
        query_escape(new)
    )) {
        eprintln!("{e}");
        return Err(fail(
            format!("Error: failed to rename container named {old}"),
            1,
        ));
    }
    Ok(0)
}

pub fn wait(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("wait", args, &[], true)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error("wait", "requires at least 1 argument"));
    }
    let mut c = connect()?;
    let mut failed = false;
    for n in &p.args {
        let r = c
            .call("POST", &format!("/containers/{n}/wait"), ReqBody::EmptyPost)
            .and_then(|r| r.json());
        match r {
            Ok(v) => out(&format!(
                "{}\n",
                v.get("StatusCode").and_then(|x| x.as_i64()).unwrap_or(0)
            ))?,
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

// ---------------------------------------------------------------- update

const UPDATE_FLAGS: &[Spec] = &[
    v(Some('m'), "memory"),
    v(None, "memory-swap"),
    v(None, "memory-reservation"),
    v(None, "cpus"),
    v(Some('c'), "cpu-shares"),
    v(None, "cpuset-cpus"),
    v(None, "cpuset-mems"),
    v(None, "cpu-period"),
    v(None, "cpu-quota"),
    v(None, "pids-limit"),
    v(None, "restart"),
    v(None, "blkio-weight"),
];

/// The update body in docker's field order (Resources, then RestartPolicy).
pub fn update_body(p: &Parsed) -> Result<String, String> {
    use crate::units::ram_in_bytes;
    let flag = |k: &str, short: Option<char>| match short {
        Some(c) => format!("-{c}, --{k}"),
        None => format!("--{k}"),
    };
    let size = |k: &str, short: Option<char>| -> Result<i64, String> {
        match p.get(k) {
            None | Some("") => Ok(0),
            Some("-1") if k == "memory-swap" => Ok(-1),
            Some(v) => ram_in_bytes(v).map_err(|e| {
                format!(
                    "invalid argument \"{v}\" for \"{}\" flag: {e}",
                    flag(k, short)
                )
            }),
        }
    };
    let int = |k: &str, short: Option<char>| -> Result<i64, String> {
        match p.get(k) {
            None => Ok(0),
            Some(v) => v.parse().map_err(|_| format!("invalid argument \"{v}\" for \"{}\" flag: strconv.ParseInt: parsing \"{v}\": invalid syntax", flag(k, short))),
        }
    };
    let nano = match p.get("cpus") {
        Some(c) => (c.parse::<f64>().map_err(|_| format!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number"))? * 1e9).round() as i64,
        None => 0,
    };
    let restart = match p.get("restart") {
        Some(r) => crate::run::parse_restart(r)?,
        None => (String::new(), 0),
    };
    let pids = match p.get("pids-limit") {
        Some(_) => format!(r#","PidsLimit":{}"#, int("pids-limit", None)?),
        None => String::new(),
    };
    Ok(format!(
        concat!(
            r#"{{"CpuShares":{},"Memory":{},"NanoCpus":{},"CgroupParent":"","BlkioWeight":{},"BlkioWeightDevice":null,"#,
            r#""BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"#,
            r#""CpuPeriod":{},"CpuQuota":{},"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":{},"CpusetMems":{},"#,
            r#""Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":{},"MemorySwap":{},"#,
            r#""MemorySwappiness":null,"OomKillDisable":null{},"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"#,
            r#""IOMaximumBandwidth":0,"RestartPolicy":{{"Name":{},"MaximumRetryCount":{}}}}}"#
        ),
        int("cpu-shares", Some('c'))?,
        size("memory", Some('m'))?,
        nano,
        int("blkio-weight", None)?,
        int("cpu-period", None)?,
        int("cpu-quota", None)?,
        js(p.get("cpuset-cpus").unwrap_or("")),
        js(p.get("cpuset-mems").unwrap_or("")),
        size("memory-reservation", None)?,
        size("memory-swap", None)?,
        pids,
        js(&restart.0),
        restart.1,
    ))
}

pub fn update(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("update", args, UPDATE_FLAGS, true)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error("update", "requires at least 1 argument"));
    }
    if p.flags.is_empty() {
        return Err(fail(
            "you must provide one or more flags when using this command",
            1,
        ));
    }
    let body = update_body(&p).map_err(|e| {
        if e.starts_with("invalid argument") {
            flag_error("update", &e)
        } else {
            fail(e, 1)
        }
    })?;
    let mut c = connect()?;
    let mut failed = false;
    let mut text = String::new();
    for n in &p.args {
        match c.call(
            "POST",
            &format!("/containers/{n}/update"),
            ReqBody::Bytes("application/json", body.as_bytes()),
        ) {
            Ok(r) => {
                if let Ok(v) = r.json() {
                    for w in v
                        .get("Warnings")
                        .and_then(|w| w.as_array())
                        .into_iter()
                        .flatten()
                    {
                        if let Some(w) = w.as_str() {
                            eprintln!("{w}");
                        }
                    }
                }
                text.push_str(n);
                text.push('\n');
            }
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    out(&text)?;
    Ok(if failed { 1 } else { 0 })
}

// ---------------------------------------------------------------- container prune

pub fn prune(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse(
        "container prune",
        args,
        &[b(Some('f'), "force"), v(None, "filter")],
        true,
    )?
    else {
        return Ok(0);
    };
    if !p.has("force") && !crate::img::confirm("WARNING! This will remove all stopped containers.")?
    {
        return Ok(0);
    }
    let fq = crate::cmds::filters_query(&p.all("filter"))?;
    let mut c = connect()?;
    let (t, n) = prune_containers(&mut c, &fq)?;
    out(&format!("{t}{}", crate::img::reclaimed(n)))?;
    Ok(0)
}

/// Calls container prune (`fq`: a `filters=` query or ""); returns the
/// "Deleted Containers:" text and the bytes reclaimed.
pub fn prune_containers(c: &mut Client, fq: &str) -> Result<(String, u64)> {
    let path = if fq.is_empty() {
        "/containers/prune".to_string()
    } else {
        format!("/containers/prune?{fq}")
    };
    let v = c.post(&path)?.json()?;
    Ok((
        crate::img::deleted_list(&v, "ContainersDeleted", "Containers"),
        crate::img::space(&v),
    ))
}

// ---------------------------------------------------------------- top

pub fn top(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("top", args, &[], false)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error("top", "requires at least 1 argument"));
    }
    let name = &p.args[0];
    let ps = p.args[1..].join(" ");
    let path = if ps.is_empty() {
        format!("/containers/{name}/top")
    } else {
        format!("/containers/{name}/top?ps_args={}", query_escape(&ps))
    };
    let mut c = connect()?;
    let v = c.get_json(&path)?;
    let strs = |x: &serde_json::Value| -> Vec<String> {
        x.as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut rows = vec![strs(v.get("Titles").unwrap_or(&serde_json::Value::Null))];
    for r in v
        .get("Processes")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        rows.push(strs(r));
    }
    out(&table_w(&rows, 20, 1))?;
    Ok(0)
}

/// Go tabwriter with `minwidth`, `padding`, cells tab-terminated (the last
/// cell of each row is not padded).
pub fn table_w(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max((c.chars().count() + padding).max(minwidth));
            }
        }
    }
    let mut o = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            o.push_str(c);
            if i + 1 < r.len() {
                o.extend(std::iter::repeat_n(' ', widths[i] - c.chars().count()));
            }
        }
        o.push('\n');
    }
    o
}

// ---------------------------------------------------------------- stats

/// One row of `docker stats`, computed like docker does.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatRow {
    /// the name or ID as the user gave it
    pub container: String,
    pub id: String,
    pub name: String,
    pub cpu: f64,
    pub mem: f64,
    pub limit: f64,
    pub mem_pct: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub blk_r: f64,
    pub blk_w: f64,
    pub pids: u64,
}

pub fn stat_row(id: &str, s: &serde_json::Value) -> StatRow {
    let f = |p: &str| s.pointer(p).and_then(|x| x.as_f64()).unwrap_or(0.0);
    let cpu_delta =
        f("/cpu_stats/cpu_usage/total_usage") - f("/precpu_stats/cpu_usage/total_usage");
    let sys_delta = f("/cpu_stats/system_cpu_usage") - f("/precpu_stats/system_cpu_usage");
    let mut online = f("/cpu_stats/online_cpus");
    if online == 0.0 {
        online = s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(|x| x.as_array())
            .map(|a| a.len() as f64)
            .unwrap_or(0.0);
    }
    let cpu = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let usage = f("/memory_stats/usage");
    let stats = s.pointer("/memory_stats/stats");
    let stat = |k: &str| stats.and_then(|m| m.get(k)).and_then(|x| x.as_f64());
    let mem = match (stat("total_inactive_file"), stat("inactive_file")) {
        (Some(v), _) if v < usage => usage - v,
        (_, Some(v)) if v < usage => usage - v,
        _ => usage,
    };
    let limit = f("/memory_stats/limit");
    let mem_pct = if limit != 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(n) = s.get("networks").and_then(|n| n.as_object()) {
        for v in n.values() {
            rx += v.get("rx_bytes").and_then(|x| x.as_f64()).unwrap_or(0.0);
            tx += v.get("tx_bytes").and_then(|x| x.as_f64()).unwrap_or(0.0);
        }
    }
    let (mut br, mut bw) = (0.0, 0.0);
    for e in s
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
    {
        let v = e.get("value").and_then(|x| x.as_f64()).unwrap_or(0.0);
        match e
            .get("op")
            .and_then(|x| x.as_str())
            .and_then(|o| o.chars().next())
        {
            Some('r') | Some('R') => br += v,
            Some('w') | Some('W') => bw += v,
            _ => {}
        }
    }
    let name = s.get("name").and_then(|x| x.as_str()).unwrap_or("");
    StatRow {
        container: id.to_string(),
        id: s
            .get("id")
            .and_then(|x| x.as_str())
            .unwrap_or(id)
            .chars()
            .take(12)
            .collect(),
        name: name.strip_prefix('/').unwrap_or(name).to_string(),
        cpu,
        mem,
        limit,
        mem_pct,
        net_rx: rx,
        net_tx: tx,
        blk_r: br,
        blk_w: bw,
        pids: s
            .pointer("/pids_stats/current")
            .and_then(|x| x.as_u64())
            .unwrap_or(0),
    }
}

impl StatRow {
    pub fn fields(&self) -> J {
        let o = |k: &str, v: String| (k.to_string(), J::Str(v));
        J::Obj(vec![
            o(
                "BlockIO",
                format!("{} / {}", human_size(self.blk_r), human_size(self.blk_w)),
            ),
            o("CPUPerc", format!("{:.2}%", self.cpu)),
            o("Container", self.container.clone()),
            o("ID", self.id.clone()),
            o("MemPerc", format!("{:.2}%", self.mem_pct)),
            o(
                "MemUsage",
                format!(
                    "{} / {}",
                    crate::cmds::bytes_size(self.mem),
                    crate::cmds::bytes_size(self.limit)
                ),
            ),
            o(
                "Name",
                if self.name.is_empty() {
                    "--".into()
                } else {
                    self.name.clone()
                },
            ),
            o(
                "NetIO",
                format!("{} / {}", human_size(self.net_rx), human_size(self.net_tx)),
            ),
            o("PIDs", self.pids.to_string()),
        ])
    }
}

const STATS_HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const STATS_DEFAULT: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

pub fn render_stats(rows: &[StatRow], format: &str) -> Result<String, String> {
    let items: Vec<J> = rows.iter().map(|r| r.fields()).collect();
    tmpl::render_list(format, &items, STATS_HEADERS)
}

pub fn stats(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse(
        "stats",
        args,
        &[
            b(Some('a'), "all"),
            b(None, "no-stream"),
            b(None, "no-trunc"),
            v(None, "format"),
        ],
        true,
    )?
    else {
        return Ok(0);
    };
    let format = match p.get("format") {
        Some("json") => "{{json .}}".to_string(),
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ => STATS_DEFAULT.to_string(),
    };
    tmpl::Template::parse(format.strip_prefix("table").unwrap_or(&format))
        .map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let mut c = connect()?;
    let names: Vec<String> = if p.args.is_empty() {
        let list = c.get_json(if p.has("all") {
            "/containers/json?all=1"
        } else {
            "/containers/json"
        })?;
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.get("Id").and_then(|i| i.as_str()))
            .map(|i| i.chars().take(12).collect())
            .collect()
    } else {
        p.args.clone()
    };
    let (sock, ver) = (c.socket.clone(), c.version.clone());
    if p.has("no-stream") {
        let results: Vec<Result<StatRow>> = std::thread::scope(|s| {
            let hs: Vec<_> = names
                .iter()
                .map(|n| {
                    let (sock, ver) = (sock.clone(), ver.clone());
                    s.spawn(move || -> Result<StatRow> {
                        let mut c = Client::with_version(sock, ver)?;
                        let v = c.get_json(&format!("/containers/{n}/stats?stream=0"))?;
                        Ok(stat_row(n, &v))
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked")))
                })
                .collect()
        });
        let mut rows = Vec::new();
        let mut errs = Vec::new();
        for r in results {
            match r {
                Ok(r) => rows.push(r),
                Err(e) => errs.push(e),
            }
        }
        if let Some(e) = errs.into_iter().next() {
            return Err(e);
        }
        out(&render_stats(&rows, &format).map_err(|e| fail(e, 1))?)?;
        return Ok(0);
    }
    // Streaming: one stats stream per container, redraw every second.
    use std::sync::{Arc, Mutex};
    let latest: Arc<Mutex<Vec<Option<StatRow>>>> = Arc::new(Mutex::new(vec![None; names.len()]));
    for (i, n) in names.iter().enumerate() {
        let (sock, ver, n, latest) = (sock.clone(), ver.clone(), n.clone(), latest.clone());
        std::thread::spawn(move || -> Result<()> {
            let mut c = Client::with_version(sock, ver)?;
            let st = c.stream(
                "GET",
                &format!("/containers/{n}/stats?stream=1"),
                ReqBody::Empty,
                &[],
                true,
            )?;
            let r = std::io::BufReader::new(st.body);
            use std::io::BufRead;
            for line in r.lines() {
                let line = line?;
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    latest.lock().unwrap()[i] = Some(stat_row(&n, &v));
                }
            }
            Ok(())
        });
    }
    let tty = term::isatty(1);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let rows: Vec<StatRow> = latest.lock().unwrap().iter().flatten().cloned().collect();
        let text = render_stats(&rows, &format).map_err(|e| fail(e, 1))?;
        if tty {
            out(&format!("\x1b[2J\x1b[H{text}"))?;
        } else {
            out(&text)?;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------- events

/// docker's default event line.
pub fn event_line(e: &J) -> String {
    let nanos: i128 = e
        .get("timeNano")
        .and_then(|x| match x {
            J::Num(n) => n.parse().ok(),
            _ => None,
        })
        .unwrap_or_else(|| {
            e.get("time")
                .and_then(|x| x.as_f64())
                .map(|t| t as i128 * 1_000_000_000)
                .unwrap_or(0)
        });
    let typ = e.get("Type").and_then(|x| x.as_str()).unwrap_or("");
    let action = e.get("Action").and_then(|x| x.as_str()).unwrap_or("");
    let actor = e.get("Actor");
    let id = actor
        .and_then(|a| a.get("ID"))
        .and_then(|x| x.as_str())
        .unwrap_or("");
    let mut attrs: Vec<(String, String)> = match actor.and_then(|a| a.get("Attributes")) {
        Some(J::Obj(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect(),
        _ => vec![],
    };
    attrs.sort();
    let mut line = format!("{} {typ} {action} {id}", rfc3339_nano_fixed(nanos));
    if !attrs.is_empty() {
        let a: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", a.join(", ")));
    }
    line
}

pub fn events(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse(
        "events",
        args,
        &[
            v(None, "since"),
            v(None, "until"),
            v(Some('f'), "filter"),
            v(None, "format"),
        ],
        true,
    )?
    else {
        return Ok(0);
    };
    let t = now();
    let mut q = Vec::new();
    let fq = crate::cmds::filters_query(&p.all("filter"))?;
    if !fq.is_empty() {
        q.push(fq);
    }
    for k in ["since", "until"] {
        if let Some(v) = p.get(k) {
            let ts = crate::units::get_timestamp(v, t).map_err(|e| fail(e, 1))?;
            q.push(format!("{k}={}", query_escape(&ts)));
        }
    }
    let path = if q.is_empty() {
        "/events".to_string()
    } else {
        format!("/events?{}", q.join("&"))
    };
    let template = match p.get("format") {
        Some(f) if !f.is_empty() => Some(
            if f == "json" {
                tmpl::Template::parse("{{json .}}")
            } else {
                tmpl::Template::parse(f).map(|t| t.lenient())
            }
            .map_err(|e| fail(format!("template parsing error: {e}"), 1))?,
        ),
        _ => None,
    };
    let mut c = connect()?;
    let st = c.stream("GET", &path, ReqBody::Empty, &[], false)?;
    let mut r = std::io::BufReader::new(st.body);
    use std::io::BufRead;
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let t = line.trim_ascii();
        if t.is_empty() {
            continue;
        }
        let e = J::parse(t).map_err(|e| fail(e, 1))?;
        let text = match &template {
            Some(tp) => tp.execute(&e).map_err(|e| fail(e, 1))?,
            None => event_line(&e),
        };
        out(&format!("{text}\n"))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn exec_bodies_match_captures() {
        let p = flags::parse(&s(&["ac-w1", "ls", "/"]), EXEC_FLAGS, false).unwrap();
        let o = ExecOpts {
            detach: p.has("detach"),
            stdin: false,
            tty: false,
            env: vec![],
            workdir: String::new(),
            user: String::new(),
            privileged: false,
            detach_keys: String::new(),
            cmd: p.args[1..].to_vec(),
        };
        assert_eq!(
            exec_body(&o),
            r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["ls","/"]}"#
        );
        let o = ExecOpts {
            stdin: true,
            tty: true,
            cmd: s(&["sh"]),
            ..o
        };
        assert_eq!(
            exec_body(&o),
            r#"{"User":"","Privileged":false,"Tty":true,"AttachStdin":true,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh"]}"#
        );
        let o = ExecOpts {
            detach: true,
            stdin: false,
            tty: false,
            env: s(&["A=1"]),
            workdir: "/tmp".into(),
            user: "root".into(),
            privileged: true,
            cmd: s(&["true"]),
            ..o
        };
        assert_eq!(
            exec_body(&o),
            r#"{"User":"root","Privileged":true,"Tty":false,"AttachStdin":false,"AttachStderr":false,"AttachStdout":false,"Detach":true,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/tmp","Cmd":["true"]}"#
        );
    }

    #[test]
    fn update_body_matches_docker() {
        let p = flags::parse(
            &s(&[
                "-m",
                "64m",
                "--memory-swap",
                "128m",
                "--cpus",
                "0.5",
                "--cpu-shares",
                "100",
                "--cpuset-cpus",
                "0",
                "--pids-limit",
                "20",
                "--restart",
                "always",
                "t1",
            ]),
            UPDATE_FLAGS,
            true,
        )
        .unwrap();
        assert_eq!(
            update_body(&p).unwrap(),
            r#"{"CpuShares":100,"Memory":67108864,"NanoCpus":500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"0","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":134217728,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":20,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"always","MaximumRetryCount":0}}"#
        );
    }

    #[test]
    fn stats_math() {
        let v = json!({"id":"6624ccc870189f1c","name":"/t1",
            "cpu_stats":{"cpu_usage":{"total_usage":2_000_000_000u64},"system_cpu_usage":20_000_000_000u64,"online_cpus":2},
            "precpu_stats":{"cpu_usage":{"total_usage":1_000_000_000u64},"system_cpu_usage":10_000_000_000u64},
            "memory_stats":{"usage":2_000_000,"limit":67_108_864,"stats":{"inactive_file":111_616}},
            "networks":{"eth0":{"rx_bytes":1500,"tx_bytes":700},"eth1":{"rx_bytes":500,"tx_bytes":300}},
            "blkio_stats":{"io_service_bytes_recursive":[{"op":"read","value":4096},{"op":"write","value":8192},{"op":"Read","value":4096}]},
            "pids_stats":{"current":3}});
        let r = stat_row("t1", &v);
        assert!((r.cpu - 20.0).abs() < 1e-9);
        assert_eq!(r.mem, 1_888_384.0);
        assert_eq!(r.net_rx, 2000.0);
        assert_eq!(r.blk_r, 8192.0);
        assert_eq!(
            render_stats(&[r], STATS_DEFAULT).unwrap(),
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O     BLOCK I/O         PIDS\n\
             6624ccc87018   t1        20.00%    1.801MiB / 64MiB    2.81%     2kB / 1kB   8.19kB / 8.19kB   3\n"
        );
        // cgroup v1: total_inactive_file wins
        let v = json!({"memory_stats":{"usage":1000,"limit":0,"stats":{"total_inactive_file":100,"inactive_file":10}}});
        let r = stat_row("abc", &v);
        assert_eq!((r.mem, r.mem_pct, r.cpu), (900.0, 0.0, 0.0));
    }

    #[test]
    fn event_lines() {
        let e = J::parse(br#"{"status":"die","id":"7154aa","from":"busybox","Type":"container","Action":"die","Actor":{"ID":"7154aa","Attributes":{"name":"ac-ev1","image":"busybox","exitCode":"0"}},"scope":"local","time":1795343679,"timeNano":1795343679884013345}"#).unwrap();
        assert_eq!(
            event_line(&e),
            "2026-11-22T10:34:39.884013345Z container die 7154aa (exitCode=0, image=busybox, name=ac-ev1)"
        );
        let e = J::parse(br#"{"Type":"network","Action":"connect","Actor":{"ID":"n1","Attributes":{}},"time":1,"timeNano":1000000000}"#).unwrap();
        assert_eq!(
            event_line(&e),
            "1970-01-01T00:00:01.000000000Z network connect n1"
        );
    }

    #[test]
    fn top_table() {
        let rows = vec![
            s(&["UID", "PID", "CMD"]),
            s(&["root", "2197", "sleep 1000"]),
        ];
        assert_eq!(
            table_w(&rows, 20, 1),
            "UID                 PID                 CMD\nroot                2197                sleep 1000\n"
        );
    }
}
