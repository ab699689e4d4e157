//! `volume create/ls/inspect/rm/prune`.

use crate::client::{version_lt, Client};
use crate::cmds::checked_filters;
use crate::flags::{self, b, v, Parsed, Spec};
use crate::http::ReqBody;
use crate::img::{confirm, deleted_list, out, reclaimed, render, space};
use crate::jv::J;
use crate::{args_error, fail, flag_error};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;

pub const FORMAT_HELP: &str = "      --format string   Format output using a custom template:
                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
";

fn help(cmd: &str) -> String {
    match cmd {
        "volume create" => "Usage:  berth volume create [OPTIONS] [VOLUME]

Create a volume

Options:
  -d, --driver string   Specify volume driver name (default \"local\")
      --label list      Set metadata for a volume
  -o, --opt map         Set driver specific options (default map[])
"
        .into(),
        "volume ls" => format!(
            "Usage:  berth volume ls [OPTIONS]

List volumes

Aliases:
  berth volume ls, berth volume list

Options:
  -f, --filter filter   Provide filter values (e.g. \"dangling=true\")
{FORMAT_HELP}  -q, --quiet           Only display volume names
"
        ),
        "volume inspect" => "Usage:  berth volume inspect [OPTIONS] VOLUME [VOLUME...]

Display detailed information on one or more volumes

Options:
  -f, --format string   Format output using a custom template:
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
"
        .into(),
        "volume rm" => "Usage:  berth volume rm [OPTIONS] VOLUME [VOLUME...]

Remove one or more volumes. You cannot remove a volume that is in use by a container.

Aliases:
  berth volume rm, berth volume remove

Options:
  -f, --force   Force the removal of one or more volumes
"
        .into(),
        "volume prune" => "Usage:  berth volume prune [OPTIONS]

Remove unused local volumes

Options:
      --filter filter   Provide filter values (e.g. \"label=<label>\")
  -f, --force           Do not prompt for confirmation
"
        .into(),
        _ => crate::commands::group("volume")
            .map(crate::commands::group_help)
            .unwrap_or_default(),
    }
}

/// Parses flags; `--help` prints the command's help.
pub fn parse_with(
    cmd: &str,
    args: &[String],
    specs: &[Spec],
    help: impl Fn(&str) -> String,
) -> Result<Option<Parsed>> {
    let p = flags::parse(args, specs, true).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help(cmd));
        return Ok(None);
    }
    Ok(Some(p))
}

fn kv_map(vals: &[String]) -> BTreeMap<String, String> {
    vals.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect()
}

// ---------------------------------------------------------------- create

const CREATE_FLAGS: &[Spec] = &[
    v(Some('d'), "driver"),
    v(None, "label"),
    v(Some('o'), "opt"),
    v(None, "name"),
];

/// The create body as docker sends it (empty maps and name left out).
pub fn create_body(p: &Parsed) -> Result<String, String> {
    for l in p.all("label") {
        let k = l.split_once('=').map(|(k, _)| k).unwrap_or(&l);
        if k.trim().is_empty() {
            return Err(format!(
                "invalid argument \"{l}\" for \"--label\" flag: invalid label '{l}': empty name"
            ));
        }
    }
    let mut m = serde_json::Map::new();
    m.insert(
        "Driver".into(),
        Value::String(p.get("driver").unwrap_or("local").to_string()),
    );
    let opts = kv_map(&p.all("opt"));
    if !opts.is_empty() {
        m.insert(
            "DriverOpts".into(),
            serde_json::to_value(opts).unwrap_or_default(),
        );
    }
    let labels = kv_map(&p.all("label"));
    if !labels.is_empty() {
        m.insert(
            "Labels".into(),
            serde_json::to_value(labels).unwrap_or_default(),
        );
    }
    let name = p.args.first().map(|s| s.as_str()).or(p.get("name"));
    if let Some(n) = name.filter(|n| !n.is_empty()) {
        m.insert("Name".into(), Value::String(n.to_string()));
    }
    Ok(Value::Object(m).to_string())
}

pub fn create(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "volume create";
    let Some(p) = parse_with(cmd, args, CREATE_FLAGS, help)? else {
        return Ok(0);
    };
    if p.args.len() > 1 {
        // (docker's text has this "SRun")
        return Err(fail(
            format!(
                "berth: 'berth {cmd}' requires at most 1 argument\n\nUsage:  berth {cmd} [OPTIONS] [VOLUME]\n\nSRun 'berth {cmd} --help' for more information"
            ),
            1,
        ));
    }
    if !p.args.is_empty() && p.get("name").is_some_and(|n| !n.is_empty()) {
        return Err(fail(
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
            1,
        ));
    }
    let body = create_body(&p).map_err(|e| flag_error(cmd, &e))?;
    let mut c = connect()?;
    let v = c
        .call(
            "POST",
            "/volumes/create",
            ReqBody::Bytes("application/json", body.as_bytes()),
        )?
        .json()?;
    out(&format!(
        "{}\n",
        v.get("Name").and_then(|n| n.as_str()).unwrap_or("")
    ))?;
    Ok(0)
}

// ---------------------------------------------------------------- ls

pub const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Availability", "AVAILABILITY"),
    ("Driver", "DRIVER"),
    ("Group", "GROUP"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Name", "VOLUME NAME"),
    ("Scope", "SCOPE"),
    ("Size", "SIZE"),
    ("Status", "STATUS"),
];

/// One volume as docker's volume formatter shows it (keys sorted).
pub fn volume_item(v: &Value) -> J {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let labels: BTreeMap<String, String> = v
        .get("Labels")
        .and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let usage = v.get("UsageData").filter(|u| !u.is_null());
    let na = || J::str("N/A");
    let (links, size) = match usage {
        Some(u) => {
            let n = |k: &str| u.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
            (
                J::str(n("RefCount").to_string()),
                J::str(crate::units::go_g_size(n("Size") as f64, 4)),
            )
        }
        None => (na(), na()),
    };
    J::Obj(vec![
        ("Availability".into(), na()),
        ("Driver".into(), J::str(s("Driver"))),
        ("Group".into(), na()),
        (
            "Labels".into(),
            J::str(
                labels
                    .iter()
                    .map(|(k, x)| format!("{k}={x}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
        ("Links".into(), links),
        ("Mountpoint".into(), J::str(s("Mountpoint"))),
        ("Name".into(), J::str(s("Name"))),
        ("Scope".into(), J::str(s("Scope"))),
        ("Size".into(), size),
        ("Status".into(), na()),
        (
            "\u{0}labels".into(),
            J::Obj(labels.into_iter().map(|(k, x)| (k, J::Str(x))).collect()),
        ),
    ])
}

/// `sortorder.NaturalLess`: runs of digits compare as numbers.
pub fn natural_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da && db {
            let si = i;
            while i < a.len() && a[i] == b'0' {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j] == b'0' {
                j += 1;
            }
            let (ni, nj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (&a[ni..i], &b[nj..j]);
            if x.len() != y.len() {
                return x.len() < y.len();
            }
            if x != y {
                return x < y;
            }
            // equal numbers: fewer leading zeros first
            if ni - si != nj - sj {
                return ni - si < nj - sj;
            }
        } else {
            if a[i] != b[j] {
                return a[i] < b[j];
            }
            i += 1;
            j += 1;
        }
    }
    a.len() - i < b.len() - j
}

const LS_FLAGS: &[Spec] = &[
    v(Some('f'), "filter"),
    v(None, "format"),
    b(Some('q'), "quiet"),
    b(None, "cluster"),
];

pub fn ls(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "volume ls";
    let Some(p) = parse_with(cmd, args, LS_FLAGS, help)? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(args_error(cmd, "accepts no arguments"));
    }
    let fq = checked_filters(cmd, &p, "-f, --filter")?;
    let format = match p.get("format").unwrap_or("") {
        "" | "table" if p.has("quiet") => "{{.Name}}".to_string(),
        "" | "table" => "table {{.Driver}}\t{{.Name}}".to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let tp = format.strip_prefix("table").unwrap_or(&format);
    crate::tmpl::Template::parse(tp)
        .map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let path = if fq.is_empty() {
        "/volumes".to_string()
    } else {
        format!("/volumes?{fq}")
    };
    let mut c = connect()?;
    let v = c.get_json(&path)?;
    let mut vols: Vec<&Value> = v
        .get("Volumes")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .collect();
    let name = |x: &Value| {
        x.get("Name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string()
    };
    vols.sort_by(|a, b| {
        let (a, b) = (name(a), name(b));
        if natural_less(&a, &b) {
            std::cmp::Ordering::Less
        } else if natural_less(&b, &a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let items: Vec<J> = vols.iter().map(|x| volume_item(x)).collect();
    out(&render(
        &format,
        &items,
        VOLUME_HEADERS,
        "*formatter.volumeContext",
    )?)?;
    Ok(0)
}

// ---------------------------------------------------------------- inspect / rm

pub fn inspect(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "volume inspect";
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help(cmd));
        return Ok(0);
    }
    crate::cmds::inspect_as(connect, cmd, args, Some("volume"))
}

pub fn rm(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "volume rm";
    let Some(p) = parse_with(cmd, args, &[b(Some('f'), "force")], help)? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let q = if p.has("force") { "?force=1" } else { "" };
    let mut c = connect()?;
    let mut errs = Vec::new();
    for name in &p.args {
        match c.call("DELETE", &format!("/volumes/{name}{q}"), ReqBody::Empty) {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) => errs.push(e.to_string()),
        }
    }
    if !errs.is_empty() {
        return Err(fail(errs.join("\n"), 1));
    }
    Ok(0)
}

// ---------------------------------------------------------------- prune

/// Calls volume prune (`fq`: a `filters=` query or ""); returns the
/// "Deleted Volumes:" text and the bytes reclaimed.
pub fn prune_volumes(c: &mut Client, fq: &str) -> Result<(String, u64)> {
    let path = if fq.is_empty() {
        "/volumes/prune".to_string()
    } else {
        format!("/volumes/prune?{fq}")
    };
    let v = c.post(&path)?.json()?;
    Ok((deleted_list(&v, "VolumesDeleted", "Volumes"), space(&v)))
}

pub fn prune(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "volume prune";
    let specs = [
        b(Some('a'), "all"),
        v(None, "filter"),
        b(Some('f'), "force"),
    ];
    let Some(p) = parse_with(cmd, args, &specs, help)? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(args_error(cmd, "accepts no arguments"));
    }
    let mut c = connect()?;
    let new_api = !version_lt(&c.version, "1.42");
    if p.has("all") && !new_api {
        return Err(fail(
            format!(
                "\"--all\" requires API version 1.42, but the Docker daemon API version is {}",
                c.version
            ),
            1,
        ));
    }
    let mut filters = p.all("filter");
    // API < 1.42 removes named volumes too
    let mut warning = if new_api {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    } else {
        "WARNING! This will remove all local volumes not used by at least one container."
    };
    if p.has("all") {
        if filters.iter().any(|f| f.starts_with("all=")) {
            return Err(fail(
                "conflicting options: cannot specify both --all and --filter all=1",
                1,
            ));
        }
        filters.push("all=true".into());
        warning = "WARNING! This will remove all local volumes not used by at least one container.";
    }
    checked_filters(cmd, &p, "--filter")?;
    let fq = crate::cmds::filters_query(&filters)?;
    if !p.has("force") && !confirm(warning)? {
        return Ok(0);
    }
    let (t, n) = prune_volumes(&mut c, &fq)?;
    out(&format!("{t}{}", reclaimed(n)))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &[&str]) -> Parsed {
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        flags::parse(&a, CREATE_FLAGS, true).unwrap()
    }

    // bodies as capture 27 shows docker 28 sending them
    #[test]
    fn create_bodies() {
        assert_eq!(
            create_body(&p(&["ac-v1"])).unwrap(),
            r#"{"Driver":"local","Name":"ac-v1"}"#
        );
        assert_eq!(
            create_body(&p(&[
                "--name",
                "ac-v2",
                "-o",
                "type=tmpfs",
                "-o",
                "device=tmpfs",
                "--label",
                "a=b"
            ]))
            .unwrap(),
            r#"{"Driver":"local","DriverOpts":{"device":"tmpfs","type":"tmpfs"},"Labels":{"a":"b"},"Name":"ac-v2"}"#
        );
        assert_eq!(create_body(&p(&[])).unwrap(), r#"{"Driver":"local"}"#);
        assert!(create_body(&p(&["--label", "=x"])).is_err());
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["v10", "v2", "a", "v1", "B"];
        v.sort_by(|a, b| {
            if natural_less(a, b) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        assert_eq!(v, ["B", "a", "v1", "v2", "v10"]);
    }

    #[test]
    fn ls_rows() {
        let v: Value = serde_json::from_str(r#"{"CreatedAt":"2026-11-22T10:34:09Z","Driver":"local","Labels":{"c":"","a":"b"},"Mountpoint":"/m","Name":"ac-v2","Options":null,"Scope":"local"}"#).unwrap();
        let it = volume_item(&v);
        assert_eq!(
            render("{{json .}}", std::slice::from_ref(&it), VOLUME_HEADERS, "").unwrap(),
            "{\"Availability\":\"N/A\",\"Driver\":\"local\",\"Group\":\"N/A\",\"Labels\":\"a=b,c=\",\"Links\":\"N/A\",\"Mountpoint\":\"/m\",\"Name\":\"ac-v2\",\"Scope\":\"local\",\"Size\":\"N/A\",\"Status\":\"N/A\"}\n"
        );
        assert_eq!(
            render("table {{.Driver}}\t{{.Name}}", &[it], VOLUME_HEADERS, "").unwrap(),
            "DRIVER    VOLUME NAME\nlocal     ac-v2\n"
        );
    }
}
