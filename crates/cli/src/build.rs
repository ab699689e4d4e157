//! `berth build`: docker's legacy builder client. The context (a directory
//! filtered by its `.dockerignore`, a tar on stdin, or a Dockerfile on stdin;
//! see `build/context.rs`) is streamed to `POST /build` as a chunked tar
//! while it is walked, with the query docker 28 sends; the JSON stream that
//! comes back is printed as the docker CLI prints it.

mod context;

use crate::client::{error_from, Client};
use crate::flags::{self, b, v, Parsed, Spec};
use crate::progress::{self, Mode};
use crate::support::{go_json, parse_ulimit, query_escape, registry_config};
use crate::units::{go_g_size, ram_in_bytes};
use crate::{args_error, fail, flag_error, help_text};
use anyhow::Result;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

const FLAGS: &[Spec] = &[
    v(None, "add-host"),
    v(None, "build-arg"),
    v(None, "cache-from"),
    v(None, "cgroup-parent"),
    b(None, "compress"),
    v(None, "cpu-period"),
    v(None, "cpu-quota"),
    v(Some('c'), "cpu-shares"),
    v(None, "cpuset-cpus"),
    v(None, "cpuset-mems"),
    b(None, "disable-content-trust"),
    v(Some('f'), "file"),
    b(None, "force-rm"),
    v(None, "iidfile"),
    v(None, "isolation"),
    v(None, "label"),
    v(Some('m'), "memory"),
    v(None, "memory-swap"),
    v(None, "network"),
    b(None, "no-cache"),
    v(None, "platform"),
    b(None, "pull"),
    b(Some('q'), "quiet"),
    b(None, "rm"),
    v(None, "security-opt"),
    v(None, "shm-size"),
    b(None, "squash"),
    v(Some('t'), "tag"),
    v(None, "target"),
    v(None, "ulimit"),
];

/// What the flags ask of the build, validated as docker's flag types do.
#[derive(Debug, Default, PartialEq)]
pub struct Opts {
    pub tags: Vec<String>,
    pub quiet: bool,
    pub no_cache: bool,
    pub pull: bool,
    pub rm: bool,
    pub force_rm: bool,
    pub cache_from: Vec<String>,
    /// `k=v` → `"v"`, a bare `k` not in the environment → null
    pub build_args: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub target: String,
    pub network: String,
    pub extra_hosts: Vec<String>,
    pub platform: String,
    pub shm_size: i64,
    pub memory: i64,
    pub memory_swap: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub cgroup_parent: String,
    pub security_opt: Vec<String>,
    /// JSON objects, as `parse_ulimit` writes them
    pub ulimits: Vec<String>,
    pub isolation: String,
    pub iidfile: String,
    pub compress: bool,
}

/// docker's label of a flag in its errors: `-t, --tag` or `--label`.
fn flag_name(long: &str) -> String {
    match FLAGS.iter().find(|s| s.long == long).and_then(|s| s.short) {
        Some(c) => format!("-{c}, --{long}"),
        None => format!("--{long}"),
    }
}

fn bad_value(long: &str, value: &str, why: &str) -> String {
    format!(
        "invalid argument {value:?} for \"{}\" flag: {why}",
        flag_name(long)
    )
}

impl Opts {
    /// Reads the parsed flags; `env` looks up `--build-arg k` values.
    pub fn from_flags(p: &Parsed, env: &dyn Fn(&str) -> Option<String>) -> Result<Opts, String> {
        let mut o = Opts {
            rm: true,
            network: "default".into(),
            ..Default::default()
        };
        for t in p.all("tag") {
            crate::reference::parse(&t).map_err(|e| bad_value("tag", &t, &e))?;
            o.tags.push(t);
        }
        o.quiet = p.has("quiet");
        o.no_cache = p.has("no-cache");
        o.pull = p.has("pull");
        if p.get("rm").is_some() {
            o.rm = p.has("rm");
        }
        o.force_rm = p.has("force-rm");
        o.compress = p.has("compress");
        for c in p.all("cache-from") {
            o.cache_from
                .extend(c.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }
        for a in p.all("build-arg") {
            let (k, val) = match a.split_once('=') {
                Some((k, val)) => (k, Some(val.to_string())),
                None => (a.as_str(), env(&a)),
            };
            if k.is_empty() {
                return Err(bad_value(
                    "build-arg",
                    &a,
                    &format!("invalid environment variable: {a}"),
                ));
            }
            o.build_args.insert(k.to_string(), val);
        }
        for l in p.all("label") {
            let (k, val) = l.split_once('=').unwrap_or((&l, ""));
            if k.trim().is_empty() {
                return Err(bad_value(
                    "label",
                    &l,
                    &format!("invalid label '{l}': empty name"),
                ));
            }
            o.labels.insert(k.to_string(), val.to_string());
        }
        o.target = p.get("target").unwrap_or("").to_string();
        if let Some(n) = p.get("network") {
            o.network = n.to_string();
        }
        for h in p.all("add-host") {
            o.extra_hosts.push(
                crate::netopts::parse_extra_host(&h).map_err(|e| bad_value("add-host", &h, &e))?,
            );
        }
        o.platform = p
            .get("platform")
            .map(str::to_string)
            .or_else(|| env("DOCKER_DEFAULT_PLATFORM"))
            .unwrap_or_default();
        let bytes = |k: &str| -> Result<i64, String> {
            match p.get(k) {
                None | Some("") => Ok(0),
                Some("-1") if k == "memory-swap" => Ok(-1),
                Some(x) => ram_in_bytes(x).map_err(|e| bad_value(k, x, &e)),
            }
        };
        o.shm_size = bytes("shm-size")?;
        o.memory = bytes("memory")?;
        o.memory_swap = bytes("memory-swap")?;
        let int = |k: &str| -> Result<i64, String> {
            match p.get(k) {
                None => Ok(0),
                Some(x) => x.parse().map_err(|_| {
                    bad_value(
                        k,
                        x,
                        &format!("strconv.ParseInt: parsing {x:?}: invalid syntax"),
                    )
                }),
            }
        };
        o.cpu_shares = int("cpu-shares")?;
        o.cpu_period = int("cpu-period")?;
        o.cpu_quota = int("cpu-quota")?;
        o.cpuset_cpus = p.get("cpuset-cpus").unwrap_or("").to_string();
        o.cpuset_mems = p.get("cpuset-mems").unwrap_or("").to_string();
        o.cgroup_parent = p.get("cgroup-parent").unwrap_or("").to_string();
        for s in p.all("security-opt") {
            o.security_opt
                .extend(s.split(',').filter(|s| !s.is_empty()).map(str::to_string));
        }
        for u in p.all("ulimit") {
            o.ulimits
                .push(parse_ulimit(&u).map_err(|e| bad_value("ulimit", &u, &e))?);
        }
        o.isolation = p.get("isolation").unwrap_or("").to_string();
        o.iidfile = p.get("iidfile").unwrap_or("").to_string();
        Ok(o)
    }

    /// The `POST /build` query as docker 28's client encodes it: keys sorted
    /// (Go's `url.Values`), `t` repeated, maps and lists as Go's JSON, only
    /// what differs from the daemon's defaults.
    pub fn query(&self, dockerfile: Option<&str>) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        let json = |v: Value| go_json(&v);
        if !self.build_args.is_empty() {
            let m: Map<String, Value> = self
                .build_args
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.clone().map(Value::String).unwrap_or(Value::Null),
                    )
                })
                .collect();
            q.push(("buildargs", json(Value::Object(m))));
        }
        if !self.cache_from.is_empty() {
            q.push(("cachefrom", json(serde_json::json!(self.cache_from))));
        }
        if !self.cgroup_parent.is_empty() {
            q.push(("cgroupparent", self.cgroup_parent.clone()));
        }
        let num = |q: &mut Vec<(&str, String)>, k: &'static str, n: i64| {
            if n != 0 {
                q.push((k, n.to_string()));
            }
        };
        num(&mut q, "cpuperiod", self.cpu_period);
        num(&mut q, "cpuquota", self.cpu_quota);
        if !self.cpuset_cpus.is_empty() {
            q.push(("cpusetcpus", self.cpuset_cpus.clone()));
        }
        if !self.cpuset_mems.is_empty() {
            q.push(("cpusetmems", self.cpuset_mems.clone()));
        }
        num(&mut q, "cpushares", self.cpu_shares);
        if let Some(d) = dockerfile.filter(|d| !d.is_empty()) {
            q.push(("dockerfile", d.to_string()));
        }
        for h in &self.extra_hosts {
            q.push(("extrahosts", h.clone()));
        }
        if self.force_rm {
            q.push(("forcerm", "1".into()));
        }
        if !self.isolation.is_empty() && self.isolation != "default" {
            q.push(("isolation", self.isolation.clone()));
        }
        if !self.labels.is_empty() {
            q.push(("labels", json(serde_json::json!(self.labels))));
        }
        num(&mut q, "memory", self.memory);
        num(&mut q, "memswap", self.memory_swap);
        if !self.network.is_empty() && self.network != "default" {
            q.push(("networkmode", self.network.clone()));
        }
        if self.no_cache {
            q.push(("nocache", "1".into()));
        }
        if !self.platform.is_empty() {
            q.push(("platform", self.platform.to_lowercase()));
        }
        if self.pull {
            q.push(("pull", "1".into()));
        }
        if self.quiet {
            q.push(("q", "1".into()));
        }
        if !self.rm {
            q.push(("rm", "0".into()));
        }
        for s in &self.security_opt {
            q.push(("securityopt", s.clone()));
        }
        num(&mut q, "shmsize", self.shm_size);
        for t in &self.tags {
            q.push(("t", t.clone()));
        }
        if !self.target.is_empty() {
            q.push(("target", self.target.clone()));
        }
        if !self.ulimits.is_empty() {
            q.push(("ulimits", format!("[{}]", self.ulimits.join(","))));
        }
        q.push(("version", "1".into()));
        // pushed in key order already; a stable sort keeps repeated keys' order
        q.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect();
        format!("/build?{}", parts.join("&"))
    }
}

/// docker's upload line, e.g. `Sending build context to Docker daemon  3.072kB`
/// (`HumanSize` right-aligned in 8 columns).
pub fn sending_line(bytes: u64) -> String {
    format!(
        "Sending build context to Docker daemon {:>8}",
        go_g_size(bytes as f64, 4)
    )
}

/// Counts the body's bytes and, on a terminal, redraws the upload line every
/// 512 kB (docker's progress reader).
struct Counting<'a> {
    inner: &'a mut dyn Write,
    n: u64,
    last: u64,
    live: bool,
}

impl Write for Counting<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(b)?;
        self.n += n as u64;
        if self.live && self.n - self.last > 512 * 1024 {
            self.last = self.n;
            let mut o = std::io::stdout().lock();
            let _ = write!(o, "{}\r", sending_line(self.n));
            let _ = o.flush();
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A writer whose bytes are kept (docker's buffers for `-q`).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn build(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let p = flags::parse(args, FLAGS, true).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help_text(cmd, FLAGS));
        return Ok(0);
    }
    if p.args.len() != 1 {
        return Err(args_error(cmd, "requires 1 argument"));
    }
    let o = Opts::from_flags(&p, &|k| std::env::var(k).ok()).map_err(|e| flag_error(cmd, &e))?;
    if p.has("squash") {
        return Err(fail(
            "\"--squash\" is only supported on a Docker daemon with experimental features enabled",
            1,
        ));
    }
    if !o.isolation.is_empty() && o.isolation != "default" {
        // berthd runs Linux containers only: the daemon's answer, given here
        return Err(fail(
            format!(
                "Error response from daemon: Unsupported isolation: {:?}",
                o.isolation
            ),
            1,
        ));
    }
    if !o.iidfile.is_empty() {
        match std::fs::remove_file(&o.iidfile) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(fail(format!("Removing image ID file: {e}"), 1));
            }
            _ => {}
        }
    }
    let plan = context::prepare(&p.args[0], p.get("file"), &mut std::io::stdin().lock())
        .map_err(|e| fail(e, 1))?;
    let query = o.query(plan.dockerfile.as_deref());
    let auth = registry_config();
    let mut c = connect()?;

    // docker's progBuff and buildBuff: stdout, or buffers with -q
    let quiet = o.quiet;
    let prog = Shared::default();
    let out_tty = !quiet && crate::term::isatty(1);
    let compress = o.compress;
    let source = plan.source;
    let up = c.upload(
        "POST",
        &query,
        "application/x-tar",
        &[("X-Registry-Config", &auth)],
        move |w: &mut dyn Write| -> std::io::Result<()> {
            let mut cw = Counting {
                inner: w,
                n: 0,
                last: 0,
                live: out_tty,
            };
            let mut stdin = std::io::stdin().lock();
            if compress {
                let mut gz = flate2::write::GzEncoder::new(&mut cw, flate2::Compression::default());
                context::write_tar(&source, &mut stdin, &mut gz)?;
                gz.finish()?;
            } else {
                context::write_tar(&source, &mut stdin, &mut cw)?;
            }
            cw.flush()
        },
    )?;
    let mut prog_text = Vec::new();
    let body_sent = |writer: &std::thread::JoinHandle<std::io::Result<u64>>, wait: bool| {
        // the body ends before the daemon's answer starts (it reads the whole
        // context first); allow the writer a moment to finish its last chunk
        let t0 = std::time::Instant::now();
        while wait && !writer.is_finished() && t0.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        writer.is_finished()
    };
    if body_sent(&up.writer, up.head.status < 400) {
        match up.writer.join() {
            Ok(Ok(n)) => {
                prog_text = format!("{}\r\r\n", sending_line(n)).into_bytes();
            }
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(fail(e.to_string(), 1));
            }
            _ => {}
        }
    }
    if !quiet {
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(&prog_text);
        let _ = so.flush();
    } else {
        let mut pw = prog.clone();
        let _ = pw.write_all(&prog_text);
    }
    let mut body = up.body;
    if up.head.status >= 400 {
        let mut data = Vec::new();
        let _ = body.read_to_end(&mut data);
        if quiet {
            eprint!("{}", String::from_utf8_lossy(&prog.take()));
        }
        return Err(error_from(up.head.status, &data).into());
    }
    let mut image_id = String::new();
    let mut aux = |a: &Value| {
        if let Some(id) = a.get("ID").and_then(Value::as_str) {
            image_id = id.to_string();
        }
    };
    let build_buf = Shared::default();
    let res = if quiet {
        progress::display(
            &mut body,
            &mut build_buf.clone(),
            Mode {
                terminal: false,
                width: 200,
            },
            &mut aux,
        )
    } else {
        let mut so = std::io::stdout().lock();
        progress::display(&mut body, &mut so, Mode::of_fd(1), &mut aux)
    };
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            return Err(fail(format!("error reading the build output: {e}"), 1));
        }
    };
    if let Err(e) = res {
        if quiet {
            let mut all = prog.take();
            all.extend(build_buf.take());
            eprint!("{}", String::from_utf8_lossy(&all));
        }
        let code = if e.code == 0 { 1 } else { e.code as i32 };
        return Err(fail(e.message, code));
    }
    if quiet {
        let text = String::from_utf8_lossy(&build_buf.take()).into_owned();
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(text.as_bytes());
        let _ = so.flush();
        image_id = text;
    }
    if !o.iidfile.is_empty() {
        if image_id.is_empty() {
            return Err(fail(
                format!(
                    "Server did not provide an image ID. Cannot write {}",
                    o.iidfile
                ),
                1,
            ));
        }
        std::fs::write(&o.iidfile, image_id.as_bytes())
            .map_err(|e| fail(format!("open {}: {}", o.iidfile, context::io_text(&e)), 1))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests;
