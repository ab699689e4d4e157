//! ps, images, logs, stop/kill/rm, inspect, load, version, info.

use crate::client::{Client, DaemonError};
use crate::flags::{self, b, v, Parsed, Spec};
use crate::http::ReqBody;
use crate::jv::J;
use crate::run::query_escape;
use crate::units::{ago, ellipsis, go_quote, human_size};
use crate::{args_error, fail, flag_error, help_text, stdcopy, tmpl};
use anyhow::Result;
use serde_json::Value;
use std::io::{Read, Write};

fn parse(cmd: &str, args: &[String], specs: &[Spec]) -> Result<Option<Parsed>> {
    let p = flags::parse(args, specs, true).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help_text(cmd, specs));
        return Ok(None);
    }
    Ok(Some(p))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

// ---------------------------------------------------------------- ps

const PS_FLAGS: &[Spec] = &[
    b(Some('a'), "all"),
    b(Some('q'), "quiet"),
    b(None, "no-trunc"),
    v(Some('f'), "filter"),
    b(Some('l'), "latest"),
    v(Some('n'), "last"),
    b(Some('s'), "size"),
    v(None, "format"),
];

/// The PORTS column (docker's grouping of runs of ports).
pub fn format_ports(ports: &Value) -> String {
    crate::ports::display_ports(&crate::ports::ps_ports(ports))
}

/// One `ps` list item as docker's container formatter shows it; keys
/// sorted like docker's `{{json .}}`.
pub fn ps_item(c: &Value, now: f64, trunc: bool) -> J {
    let id = s(c, "Id");
    let mut image = s(c, "Image").to_string();
    if image.is_empty() {
        image = "<no image>".into();
    } else if trunc && image.starts_with("sha256:") {
        image = short_id(&image);
    } else if trunc {
        if let Some((name, _)) = image.split_once('@') {
            image = name.to_string();
        }
    }
    let command = if trunc {
        ellipsis(s(c, "Command"), 20)
    } else {
        s(c, "Command").to_string()
    };
    let created = c.get("Created").and_then(|x| x.as_i64()).unwrap_or(0);
    let names: Vec<String> = c
        .get("Names")
        .and_then(|n| n.as_array())
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let labels = crate::jv::sorted_labels(c);
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .map(|m| {
            let n = if s(m, "Name").is_empty() {
                s(m, "Source")
            } else {
                s(m, "Name")
            };
            if trunc {
                ellipsis(n, 15)
            } else {
                n.to_string()
            }
        })
        .collect();
    let local_vols = c
        .get("Mounts")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter(|m| s(m, "Driver") == "local").count())
        .unwrap_or(0);
    // docker shows them in Go's random map order; sorted here
    let mut nets: Vec<String> = c
        .pointer("/NetworkSettings/Networks")
        .and_then(|n| n.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    nets.sort();
    let srw = c.get("SizeRw").and_then(|x| x.as_f64()).unwrap_or(0.0);
    let sroot = c.get("SizeRootFs").and_then(|x| x.as_f64()).unwrap_or(0.0);
    let size = if sroot > 0.0 {
        format!("{} (virtual {})", human_size(srw), human_size(sroot))
    } else {
        human_size(srw)
    };
    let st = |v: String| J::Str(v);
    J::Obj(vec![
        ("Command".into(), st(go_quote(&command))),
        (
            "CreatedAt".into(),
            st(crate::units::go_time_string(created)),
        ),
        (
            "ID".into(),
            st(if trunc {
                id.chars().take(12).collect()
            } else {
                id.to_string()
            }),
        ),
        ("Image".into(), st(image)),
        (
            "Labels".into(),
            st(labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")),
        ),
        ("LocalVolumes".into(), st(local_vols.to_string())),
        ("Mounts".into(), st(mounts.join(","))),
        ("Names".into(), st(names.join(","))),
        ("Networks".into(), st(nets.join(","))),
        ("Platform".into(), J::Null),
        (
            "Ports".into(),
            st(format_ports(c.get("Ports").unwrap_or(&Value::Null))),
        ),
        ("RunningFor".into(), st(ago(created, now))),
        ("Size".into(), st(size)),
        ("State".into(), st(s(c, "State").to_string())),
        ("Status".into(), st(s(c, "Status").to_string())),
        (
            "\u{0}labels".into(),
            J::Obj(labels.into_iter().map(|(k, v)| (k, J::Str(v))).collect()),
        ),
    ])
}

/// docker's list formatters run templates on Go structs: a missing field
/// reads "can't evaluate field X in type T".
pub fn formatter_error(e: &str, typ: &str) -> String {
    if let Some(i) = e.find("map has no entry for key \"") {
        let key = e[i + 26..].trim_end_matches('"');
        return format!(
            "failed to execute template: {}can't evaluate field {key} in type {typ}",
            &e[..i]
        );
    }
    if e.starts_with("template: :") && e.contains("executing") {
        return format!("failed to execute template: {e}");
    }
    format!("template parsing error: {e}")
}

pub const PS_HEADERS: &[(&str, &str)] = &[
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Labels", "LABELS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Mounts", "MOUNTS"),
    ("Names", "NAMES"),
    ("Networks", "NETWORKS"),
    ("Ports", "PORTS"),
    ("RunningFor", "CREATED"),
    ("Size", "SIZE"),
    ("State", "STATE"),
    ("Status", "STATUS"),
];

const PS_DEFAULT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

pub fn filters_query(filters: &[String]) -> Result<String> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    let mut m: std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>> =
        Default::default();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| fail(format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"), 125))?;
        m.entry(k.to_string())
            .or_default()
            .insert(v.to_string(), true);
    }
    Ok(format!(
        "filters={}",
        query_escape(&serde_json::to_string(&m)?)
    ))
}

/// `filters=` query from `--filter`; a value without `=` is a flag error
/// with the command's usage, as docker's.
pub fn checked_filters(cmd: &str, p: &Parsed, flag: &str) -> Result<String> {
    for f in p.all("filter") {
        if !f.contains('=') {
            return Err(flag_error(
                cmd,
                &format!("invalid argument \"{f}\" for \"{flag}\" flag: bad format of filter (expected name=value)"),
            ));
        }
    }
    filters_query(&p.all("filter"))
}

pub fn ps(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("ps", args, PS_FLAGS)? else {
        return Ok(0);
    };
    let format = match p.get("format") {
        Some("json") => "{{json .}}".to_string(),
        Some(f) if !f.is_empty() && f != "table" => f.to_string(),
        _ if p.has("size") => format!("{PS_DEFAULT}\t{{{{.Size}}}}"),
        _ => PS_DEFAULT.to_string(),
    };
    let limit: i64 = match p.get("last") {
        Some(n) => n.parse().map_err(|_| {
            flag_error("ps", &format!("invalid argument \"{n}\" for \"-n, --last\" flag: strconv.ParseInt: parsing \"{n}\": invalid syntax"))
        })?,
        None => -1,
    };
    let limit = if p.has("latest") && limit == -1 {
        1
    } else {
        limit
    };
    let size = p.has("size")
        || (!p.has("quiet") && (format.contains(".Size") || format.contains("json .")));
    let mut q = Vec::new();
    if p.has("all") {
        q.push("all=1".to_string());
    }
    let fq = filters_query(&p.all("filter"))?;
    if !fq.is_empty() {
        q.push(fq);
    }
    if limit > 0 {
        q.push(format!("limit={limit}"));
    }
    if size {
        q.push("size=1".into());
    }
    let path = if q.is_empty() {
        "/containers/json".to_string()
    } else {
        format!("/containers/json?{}", q.join("&"))
    };
    let trunc = !p.has("no-trunc");
    let tp = format.strip_prefix("table").unwrap_or(&format);
    tmpl::Template::parse(tp).map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let mut c = connect()?;
    let list = c.get_json(&path)?;
    if p.has("quiet") {
        let mut t = String::new();
        for x in list.as_array().into_iter().flatten() {
            let id = s(x, "Id");
            t.push_str(&if trunc {
                id.chars().take(12).collect::<String>()
            } else {
                id.to_string()
            });
            t.push('\n');
        }
        out(&t)?;
        return Ok(0);
    }
    let n = now();
    let items: Vec<J> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| ps_item(x, n, trunc))
        .collect();
    let text = if format == "{{json .}}" {
        crate::img::html_escape_json(
            &tmpl::render_list(&format, &items, PS_HEADERS)
                .map_err(|e| fail(formatter_error(&e, "*formatter.ContainerContext"), 1))?,
        )
    } else {
        tmpl::render_list(&format, &items, PS_HEADERS)
            .map_err(|e| fail(formatter_error(&e, "*formatter.ContainerContext"), 1))?
    };
    out(&text)?;
    Ok(0)
}

// ---------------------------------------------------------------- logs

const LOGS_FLAGS: &[Spec] = &[
    b(Some('f'), "follow"),
    v(Some('n'), "tail"),
    b(Some('t'), "timestamps"),
    v(None, "since"),
    v(None, "until"),
    b(None, "details"),
];

fn time_arg(k: &str, v: &str) -> Result<String> {
    crate::units::get_timestamp(v, now())
        .map(|t| query_escape(&t))
        .map_err(|e| fail(format!("invalid value for \"{k}\": {e}"), 1))
}

pub fn logs(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("logs", args, LOGS_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error("logs", "requires exactly 1 argument"));
    }
    let mut c = connect()?;
    let info = c.get_json(&format!("/containers/{}/json", p.args[0]))?;
    let id = s(&info, "Id").to_string();
    let tty = info
        .pointer("/Config/Tty")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let mut q = Vec::new();
    if p.has("details") {
        q.push("details=1".to_string());
    }
    if p.has("follow") {
        q.push("follow=1".into());
    }
    if let Some(since) = p.get("since") {
        q.push(format!("since={}", time_arg("since", since)?));
    }
    q.push("stderr=1".into());
    q.push("stdout=1".into());
    q.push(format!(
        "tail={}",
        query_escape(p.get("tail").unwrap_or("all"))
    ));
    if p.has("timestamps") {
        q.push("timestamps=1".into());
    }
    if let Some(until) = p.get("until") {
        q.push(format!("until={}", time_arg("until", until)?));
    }
    let st = c.stream(
        "GET",
        &format!("/containers/{id}/logs?{}", q.join("&")),
        ReqBody::Empty,
        &[],
        false,
    )?;
    let res = if tty {
        let mut o = std::io::stdout().lock();
        let mut body = st.body;
        std::io::copy(&mut body, &mut o).map(|_| ())
    } else {
        stdcopy::demux(
            st.body,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )
    };
    match res {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(fail(e.to_string(), 1)),
    }
}

// ---------------------------------------------------------------- stop / kill / rm

const STOP_FLAGS: &[Spec] = &[v(Some('t'), "time"), v(Some('s'), "signal")];
const KILL_FLAGS: &[Spec] = &[v(Some('s'), "signal")];
const RM_FLAGS: &[Spec] = &[
    b(Some('f'), "force"),
    b(Some('v'), "volumes"),
    b(Some('l'), "link"),
];

pub fn lifecycle(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let specs = match cmd {
        "stop" => STOP_FLAGS,
        "kill" => KILL_FLAGS,
        _ => RM_FLAGS,
    };
    let Some(p) = parse(cmd, args, specs)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let mut q = Vec::new();
    match cmd {
        "stop" => {
            if let Some(sig) = p.get("signal") {
                q.push(format!("signal={}", query_escape(sig)));
            }
            if let Some(t) = p.get("time") {
                q.push(format!("t={}", query_escape(t)));
            }
        }
        "kill" => {
            if let Some(sig) = p.get("signal") {
                q.push(format!("signal={}", query_escape(sig)));
            }
        }
        _ => {
            if p.has("force") {
                q.push("force=1".into());
            }
            if p.has("link") {
                q.push("link=1".into());
            }
            if p.has("volumes") {
                q.push("v=1".into());
            }
        }
    }
    let qs = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    let verb = cmd.to_string();
    crate::ctr::each(&connect, &p.args, true, move |c, name| {
        match verb.as_str() {
            "rm" => c.call("DELETE", &format!("/containers/{name}{qs}"), ReqBody::Empty),
            v => c.post(&format!("/containers/{name}/{v}{qs}")),
        }
        .map(|_| ())
    })
}

// ---------------------------------------------------------------- inspect

const INSPECT_FLAGS: &[Spec] = &[
    v(Some('f'), "format"),
    v(None, "type"),
    b(Some('s'), "size"),
];

pub fn inspect(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    inspect_as(connect, "inspect", args, None)
}

/// `inspect`, or `image inspect`/`volume inspect` (`forced` type: only
/// that kind is looked up and a miss prints the daemon's error).
pub fn inspect_as(
    connect: impl Fn() -> Result<Client>,
    cmd: &str,
    args: &[String],
    forced: Option<&str>,
) -> Result<i32> {
    let net_specs = [v(Some('f'), "format"), b(Some('v'), "verbose")];
    let ctr_specs = [v(Some('f'), "format"), b(Some('s'), "size")];
    let specs: &[Spec] = match forced {
        Some("network") => &net_specs,
        Some("container") => &ctr_specs,
        Some(_) => &INSPECT_FLAGS[..1],
        None => INSPECT_FLAGS,
    };
    let Some(p) = parse(cmd, args, specs)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let template = match p.get("format") {
        Some(f) if !f.is_empty() && f != "json" => Some(
            tmpl::Template::parse(f)
                .map_err(|e| fail(format!("template parsing error: {e}"), 1))?,
        ),
        _ => None,
    };
    let typ = forced.unwrap_or(p.get("type").unwrap_or(""));
    const TYPES: [&str; 10] = [
        "config",
        "container",
        "image",
        "network",
        "node",
        "plugin",
        "secret",
        "service",
        "task",
        "volume",
    ];
    if !typ.is_empty() && !TYPES.contains(&typ) {
        return Err(fail(
            format!(
                "unknown type: \"{typ}\": must be one of {}",
                TYPES
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            1,
        ));
    }
    let mut c = connect()?;
    let mut raws: Vec<Vec<u8>> = Vec::new();
    // which raws are networks (docker decodes those into its typed struct
    // before templating, which adds the fields the daemon left out)
    let mut is_net: Vec<bool> = Vec::new();
    let mut errors = Vec::new();
    let size = if p.has("size") { "?size=1" } else { "" };
    let verbose = if p.has("verbose") {
        "?verbose=true"
    } else {
        ""
    };
    // docker's order when no type is given: container, image, network,
    // volume, then plugin (swarm objects only on a manager).
    let kinds: Vec<&str> = if typ.is_empty() {
        vec!["container", "image", "network", "volume", "plugin"]
    } else {
        vec![typ]
    };
    for name in &p.args {
        let mut found = None;
        let mut miss = None;
        let mut kind = "";
        for k in &kinds {
            let path = match *k {
                "container" => format!("/containers/{name}/json{size}"),
                "image" => format!("/images/{name}/json"),
                "network" => format!("/networks/{name}{verbose}"),
                "volume" => format!("/volumes/{name}"),
                "plugin" => {
                    // docker asks whether this is a swarm manager first
                    if typ.is_empty() {
                        let _ = c.call("GET", "/info", ReqBody::Empty);
                    }
                    format!("/plugins/{name}/json")
                }
                _ => continue,
            };
            match c.call("GET", &path, ReqBody::Empty) {
                Ok(r) => {
                    found = Some(r.body);
                    kind = k;
                    break;
                }
                Err(e) => match e.downcast_ref::<DaemonError>() {
                    Some(d) if d.status == 404 || (typ.is_empty() && d.status < 500) => {
                        miss = Some(d.to_string())
                    }
                    _ => return Err(e),
                },
            }
        }
        match found {
            Some(b) => {
                raws.push(b);
                is_net.push(kind == "network");
            }
            None if !typ.is_empty() => errors.push(miss.unwrap_or_default()),
            None => errors.push(format!("Error: No such object: {name}")),
        }
    }
    let mut text = String::new();
    match template {
        None if p.get("format") == Some("json") => {
            // `--format json`: the objects as the daemon sent them, compact
            let mut parts = Vec::new();
            for r in &raws {
                parts.push(J::parse(r).map_err(|e| fail(e, 1))?.to_json());
            }
            text.push_str(&crate::img::html_escape_json(&format!(
                "[{}]\n",
                parts.join(",")
            )));
        }
        None => {
            if raws.is_empty() {
                text.push_str("[]\n");
            } else {
                let mut all = b"[".to_vec();
                for (i, r) in raws.iter().enumerate() {
                    if i > 0 {
                        all.push(b',');
                    }
                    all.extend_from_slice(r.trim_ascii());
                }
                all.push(b']');
                text.push_str(&tmpl::indent_json(&all, "    "));
                text.push('\n');
            }
        }
        // docker's template inspector writes a bare newline when it printed nothing
        Some(_) if raws.is_empty() => text.push('\n'),
        Some(t) => {
            for (r, net) in raws.iter().zip(&is_net) {
                let mut v = crate::jv::J::parse(r).map_err(|e| fail(e, 1))?;
                if *net {
                    typed_network(&mut v);
                }
                let line = t.execute(&v).map_err(|e| {
                    let _ = out(&format!("{text}\n"));
                    // volume inspect templates a typed struct
                    let e = match (forced, e.find("map has no entry for key \"")) {
                        (Some("volume"), Some(i)) => format!(
                            "{}can't evaluate field {} in type volume.Volume",
                            &e[..i],
                            e[i + 26..].trim_end_matches('"')
                        ),
                        _ => e,
                    };
                    fail(format!("template parsing error: {e}"), 1)
                })?;
                text.push_str(&line);
                text.push('\n');
            }
        }
    }
    out(&text)?;
    if !errors.is_empty() {
        eprintln!("{}", errors.join("\n"));
        return Ok(1);
    }
    Ok(0)
}

/// docker 28's network struct has `EnableIPv4` after `Driver`; a daemon
/// that does not send it reads as false.
fn typed_network(v: &mut J) {
    if let J::Obj(m) = v {
        if !m.iter().any(|(k, _)| k == "EnableIPv4") {
            let at = m
                .iter()
                .position(|(k, _)| k == "Driver")
                .map(|i| i + 1)
                .unwrap_or(m.len());
            m.insert(at, ("EnableIPv4".into(), J::Bool(false)));
        }
    }
}

// ---------------------------------------------------------------- load

const LOAD_FLAGS: &[Spec] = &[v(Some('i'), "input"), b(Some('q'), "quiet")];

pub fn load(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("load", args, LOAD_FLAGS)? else {
        return Ok(0);
    };
    let mut input: Box<dyn Read> = match p.get("input") {
        Some(f) => Box::new(
            std::fs::File::open(f).map_err(|e| fail(format!("open {f}: {}", io_msg(&e)), 1))?,
        ),
        None => {
            if crate::term::isatty(0) {
                return Err(fail("requested load from stdin, but stdin is empty", 1));
            }
            Box::new(std::io::stdin())
        }
    };
    let quiet = p.has("quiet") || !crate::term::isatty(1);
    let mut c = connect()?;
    let path = format!("/images/load?quiet={}", if quiet { 1 } else { 0 });
    let st = c.stream(
        "POST",
        &path,
        ReqBody::Chunked("application/x-tar", &mut *input),
        &[],
        false,
    )?;
    // docker's progress drawing: "Loading layer" bars in place on a terminal
    let mode = crate::progress::Mode::of_fd(1);
    match crate::progress::display(st.body, &mut std::io::stdout().lock(), mode, |_| {})? {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("{}", e.message);
            Ok(if e.code != 0 { e.code as i32 } else { 1 })
        }
    }
}

pub fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

// ---------------------------------------------------------------- version / info

/// RFC 3339 → Go's `time.ANSIC` ("Mon Jan  2 15:04:05 2006"), in UTC.
pub fn ansic(rfc: &str) -> String {
    let parse = || -> Option<String> {
        let (date, time) = rfc.split_once('T')?;
        let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
        let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
        let hms: Vec<&str> = time.get(..8)?.split(':').collect();
        if hms.len() != 3 {
            return None;
        }
        // days from civil (Howard Hinnant)
        let yy = if m <= 2 { y - 1 } else { y };
        let era = yy.div_euclid(400);
        let yoe = yy - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + dd - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146097 + doe - 719468;
        let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
        let mon = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .get((m - 1) as usize)?;
        Some(format!(
            "{wd} {mon} {dd:>2} {}:{}:{} {y}",
            hms[0], hms[1], hms[2]
        ))
    };
    parse().unwrap_or_else(|| rfc.to_string())
}

fn kv(out: &mut String, indent: &str, width: usize, k: &str, v: &str) {
    let label = format!("{indent}{k}:");
    out.push_str(&format!("{label:<width$}{v}\n"));
}

pub fn version(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("version", args, &[v(Some('f'), "format")])? else {
        return Ok(0);
    };
    if let Some(f) = p.get("format").filter(|f| !f.is_empty()) {
        return version_formatted(connect, f);
    }
    let mut t = String::from("Client:\n");
    kv(&mut t, " ", 20, "Version", env!("CARGO_PKG_VERSION"));
    let conn = connect().and_then(|mut c| c.negotiate().map(|_| c));
    let api = match &conn {
        Ok(c) if c.version != crate::client::MAX_API => {
            format!("{} (downgraded from {})", c.version, crate::client::MAX_API)
        }
        _ => crate::client::MAX_API.to_string(),
    };
    kv(&mut t, " ", 20, "API version", &api);
    kv(
        &mut t,
        " ",
        20,
        "OS/Arch",
        &format!(
            "linux/{}",
            if cfg!(target_arch = "x86_64") {
                "amd64"
            } else {
                std::env::consts::ARCH
            }
        ),
    );
    kv(&mut t, " ", 20, "Context", "default");
    let mut c = match conn {
        Ok(c) => c,
        Err(e) => {
            out(&t)?;
            return Err(fail(e.to_string(), 1));
        }
    };
    let v = c.get_json("/version")?;
    let pname = v
        .pointer("/Platform/Name")
        .and_then(|x| x.as_str())
        .unwrap_or("");
    t.push_str(&format!(
        "\nServer:{}\n",
        if pname.is_empty() {
            String::new()
        } else {
            format!(" {pname}")
        }
    ));
    for comp in v
        .get("Components")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let name = s(comp, "Name");
        let det = comp.get("Details").cloned().unwrap_or(Value::Null);
        let d = |k: &str| -> String {
            match det.get(k) {
                Some(Value::String(x)) => x.clone(),
                Some(Value::Null) | None => String::new(),
                Some(o) => o.to_string(),
            }
        };
        t.push_str(&format!(" {name}:\n"));
        if name == "Engine" {
            kv(&mut t, "  ", 20, "Version", s(comp, "Version"));
            kv(
                &mut t,
                "  ",
                20,
                "API version",
                &format!(
                    "{} (minimum version {})",
                    d("ApiVersion"),
                    d("MinAPIVersion")
                ),
            );
            kv(&mut t, "  ", 20, "Go version", &d("GoVersion"));
            kv(&mut t, "  ", 20, "Git commit", &d("GitCommit"));
            kv(&mut t, "  ", 20, "Built", &ansic(&d("BuildTime")));
            kv(
                &mut t,
                "  ",
                20,
                "OS/Arch",
                &format!("{}/{}", d("Os"), d("Arch")),
            );
            kv(&mut t, "  ", 20, "Experimental", &d("Experimental"));
        } else {
            kv(&mut t, "  ", 20, "Version", s(comp, "Version"));
            let mut keys: Vec<String> = det
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            for k in keys {
                kv(&mut t, "  ", 20, &k, &d(&k));
            }
        }
    }
    out(&t)?;
    Ok(0)
}

/// `version --format`: docker's `{Client, Server}` value through the template (`json`: the
/// value itself). Without a daemon the client part is still printed, then the error.
fn version_formatted(connect: impl Fn() -> Result<Client>, format: &str) -> Result<i32> {
    let template = if format == "json" {
        None
    } else {
        Some(
            tmpl::Template::parse(format)
                .map_err(|e| fail(format!("template parsing error: {e}"), 1))?,
        )
    };
    let arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        std::env::consts::ARCH
    };
    let conn = connect().and_then(|mut c| c.negotiate().map(|_| c));
    let api = match &conn {
        Ok(c) => c.version.clone(),
        Err(_) => crate::client::MAX_API.to_string(),
    };
    let client = serde_json::json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": crate::client::MAX_API,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "BuildTime": "",
        "Context": "default"
    });
    let (server, err) = match conn.and_then(|mut c| c.get_json("/version")) {
        Ok(v) => (v, None),
        Err(e) => (Value::Null, Some(e)),
    };
    let all = serde_json::json!({"Client": client, "Server": server});
    let text = match &template {
        None => serde_json::to_string(&all).unwrap_or_default(),
        Some(t) => t
            .execute(&crate::jv::J::from_serde(&all))
            .map_err(|e| fail(format!("template parsing error: {e}"), 1))?,
    };
    out(&format!("{text}\n"))?;
    match err {
        Some(e) => Err(fail(e.to_string(), 1)),
        None => Ok(0),
    }
}

/// go-units `BytesSize` (%.4g, powers of 1024).
pub fn bytes_size(n: f64) -> String {
    const U: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut x = n;
    let mut i = 0;
    while x >= 1024.0 && i < U.len() - 1 {
        x /= 1024.0;
        i += 1;
    }
    format!("{}{}", crate::units::go_g(x, 4), U[i])
}

pub fn info(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(_p) = parse("info", args, &[v(Some('f'), "format")])? else {
        return Ok(0);
    };
    let mut t = String::from("Client:\n Version:    ");
    t.push_str(env!("CARGO_PKG_VERSION"));
    t.push_str("\n Context:    default\n Debug Mode: false\n\nServer:\n");
    let mut c = match connect() {
        Ok(c) => c,
        Err(e) => {
            out(&t)?;
            return Err(fail(e.to_string(), 1));
        }
    };
    let i = c.get_json("/info")?;
    let n = |k: &str| {
        i.get(k)
            .map(|x| crate::tmpl::go_print(&crate::jv::J::from_serde(x)))
            .unwrap_or_else(|| "0".into())
    };
    let st = |k: &str| s(&i, k).to_string();
    let b = |k: &str| {
        i.get(k)
            .and_then(|x| x.as_bool())
            .unwrap_or(false)
            .to_string()
    };
    t.push_str(&format!(
        " Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n",
        n("Containers"),
        n("ContainersRunning"),
        n("ContainersPaused"),
        n("ContainersStopped")
    ));
    t.push_str(&format!(
        " Images: {}\n Server Version: {}\n Storage Driver: {}\n",
        n("Images"),
        st("ServerVersion"),
        st("Driver")
    ));
    for pair in i
        .get("DriverStatus")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
    {
        if let (Some(k), Some(v)) = (
            pair.get(0).and_then(|x| x.as_str()),
            pair.get(1).and_then(|x| x.as_str()),
        ) {
            t.push_str(&format!("  {k}: {v}\n"));
        }
    }
    t.push_str(&format!(
        " Logging Driver: {}\n Cgroup Driver: {}\n Cgroup Version: {}\n",
        st("LoggingDriver"),
        st("CgroupDriver"),
        st("CgroupVersion")
    ));
    t.push_str(&format!(" Default Runtime: {}\n", st("DefaultRuntime")));
    t.push_str(&info_security_options(&i));
    t.push_str(&format!(
        " Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n",
        st("KernelVersion"),
        st("OperatingSystem"),
        st("OSType"),
        st("Architecture")
    ));
    t.push_str(&format!(
        " CPUs: {}\n Total Memory: {}\n",
        n("NCPU"),
        bytes_size(i.get("MemTotal").and_then(|x| x.as_f64()).unwrap_or(0.0))
    ));
    t.push_str(&format!(
        " Name: {}\n ID: {}\n Docker Root Dir: {}\n Debug Mode: {}\n",
        st("Name"),
        st("ID"),
        st("DockerRootDir"),
        b("Debug")
    ));
    t.push_str(&info_list(" Labels:", "  ", i.get("Labels")));
    t.push_str(&format!(" Experimental: {}\n", b("ExperimentalBuild")));
    // docker 20.10's lines, shown only when set; the lease is berth's (issue 14)
    for (label, key) in [
        ("Cluster Store", "ClusterStore"),
        ("Cluster Advertise", "ClusterAdvertise"),
        ("Cluster Lease", "ClusterLease"),
    ] {
        if !st(key).is_empty() {
            t.push_str(&format!(" {label}: {}\n", st(key)));
        }
    }
    let reg = i.get("RegistryConfig");
    let mut insecure: Vec<String> = reg
        .and_then(|r| r.get("IndexConfigs"))
        .and_then(|x| x.as_object())
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.get("Secure").and_then(|x| x.as_bool()) == Some(false))
        .map(|(k, _)| k.clone())
        .collect();
    insecure.extend(
        reg.and_then(|r| r.get("InsecureRegistryCIDRs"))
            .and_then(|x| x.as_array())
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from)),
    );
    t.push_str(&info_list(
        " Insecure Registries:",
        "  ",
        Some(&serde_json::json!(insecure)),
    ));
    t.push_str(&info_list(
        " Registry Mirrors:",
        "  ",
        reg.and_then(|r| r.get("Mirrors")),
    ));
    t.push_str(&format!(
        " Live Restore Enabled: {}\n",
        b("LiveRestoreEnabled")
    ));
    let pools: Vec<String> = i
        .get("DefaultAddressPools")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "Base: {}, Size: {}",
                p.get("Base").and_then(|x| x.as_str()).unwrap_or(""),
                p.get("Size").and_then(|x| x.as_i64()).unwrap_or(0)
            )
        })
        .collect();
    t.push_str(&info_list(
        " Default Address Pools:",
        "   ",
        Some(&serde_json::json!(pools)),
    ));
    out(&t)?;
    for w in i
        .get("Warnings")
        .and_then(|w| w.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

/// `docker info`'s titled list: nothing when the list is empty.
fn info_list(title: &str, indent: &str, v: Option<&serde_json::Value>) -> String {
    let items: Vec<&str> = v
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if items.is_empty() {
        return String::new();
    }
    let mut t = format!("{title}\n");
    for i in items {
        t.push_str(&format!("{indent}{i}\n"));
    }
    t
}

/// `docker info`'s `Security Options`: each `name=x,k=v` entry as `x` and `K: v` beneath.
fn info_security_options(i: &serde_json::Value) -> String {
    let opts: Vec<&str> = i
        .get("SecurityOptions")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if opts.is_empty() {
        return String::new();
    }
    let mut t = " Security Options:\n".to_string();
    for o in opts {
        for kv in o.split(',') {
            match kv.split_once('=') {
                Some(("name", v)) => t.push_str(&format!("  {v}\n")),
                Some((k, v)) => {
                    let mut c = k.chars();
                    let k = c
                        .next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default();
                    t.push_str(&format!("   {k}: {v}\n"));
                }
                None => t.push_str(&format!("  {kv}\n")),
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ps_table() {
        let list = json!([{"Id":"7886aaaaaaaaaaaaaaaa","Names":["/ac-w1"],"Image":"busybox","Command":"sh -c 'while true; do sleep 1; done'","Created":1000,"Status":"Up 13 seconds","Ports":[]}]);
        let items: Vec<J> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|x| ps_item(x, 1013.2, true))
            .collect();
        let t = tmpl::render_list(PS_DEFAULT, &items, PS_HEADERS).unwrap();
        assert_eq!(
            t,
            "CONTAINER ID   IMAGE     COMMAND                  CREATED          STATUS          PORTS     NAMES\n\
             7886aaaaaaaa   busybox   \"sh -c 'while true; …\"   13 seconds ago   Up 13 seconds             ac-w1\n"
        );
    }

    #[test]
    fn ps_minimal_item() {
        let t = tmpl::render_list(
            PS_DEFAULT,
            &[ps_item(&json!({"Id":"abc"}), 1.78e9, true)],
            PS_HEADERS,
        )
        .unwrap();
        assert!(
            t.contains("abc            <no image>   \"\"        56 years ago"),
            "{t}"
        );
    }

    #[test]
    fn ports() {
        let p = json!([{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"PrivatePort":81,"Type":"tcp"}]);
        assert_eq!(
            format_ports(&p),
            // docker lists the runs of unmapped ports before the mappings
            "81/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
    }

    #[test]
    fn images_table() {
        let list = json!([{"Id":"sha256:d72df08b3844be1b02d81ebd1a0405d9b91bab38159c18b7914084896a628401","RepoTags":["busybox:latest"],"Created":1704067200,"Size":1982256},
                          {"Id":"sha256:0123456789abcdef","RepoTags":null,"Created":0,"Size":0}]);
        let items =
            crate::img::image_items(&list, 1704067200.0 + 2.5 * 365.0 * 86400.0, true, false);
        let t = tmpl::render_list(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
            &items,
            crate::img::IMAGES_HEADERS,
        )
        .unwrap();
        assert_eq!(
            t,
            "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE\n\
             busybox      latest    d72df08b3844   2 years ago    1.98MB\n\
             <none>       <none>    0123456789ab   56 years ago   0B\n"
        );
    }

    #[test]
    fn ansic_time() {
        assert_eq!(
            ansic("2026-05-07T21:09:36.000000000+00:00"),
            "Thu May  7 21:09:36 2026"
        );
        assert_eq!(ansic("2025-05-30T12:07:14Z"), "Fri May 30 12:07:14 2025");
    }

    #[test]
    fn binary_sizes() {
        assert_eq!(bytes_size(25_275_000_000.0), "23.54GiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn filters() {
        assert_eq!(
            filters_query(&["status=exited".into()]).unwrap(),
            "filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D"
        );
    }
}
