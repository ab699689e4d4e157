//! images, image ls/inspect/rm/prune/history, tag, rmi, history, commit,
//! diff, export, import, save.

use crate::client::{print_json_messages, Client};
use crate::cmds::{filters_query, formatter_error};
use crate::flags::{self, b, v, Parsed, Spec};
use crate::http::ReqBody;
use crate::jv::J;
use crate::run::{normalize_ref, query_escape};
use crate::units::{ago, ellipsis, go_time_string, human_size};
use crate::{args_error, fail, flag_error, help_text, tmpl};

use anyhow::Result;
use serde_json::Value;
use std::io::{Read, Write};

pub fn parse(cmd: &str, args: &[String], specs: &[Spec]) -> Result<Option<Parsed>> {
    let p = flags::parse(args, specs, true).map_err(|e| flag_error(cmd, &e))?;
    if p.help {
        print!("{}", help_text(cmd, specs));
        return Ok(None);
    }
    Ok(Some(p))
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn i(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(|x| x.as_i64()).unwrap_or(0)
}

pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

pub fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn strs(v: &Value, k: &str) -> Vec<String> {
    v.get(k)
        .and_then(|t| t.as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

/// docker's `reference.FamiliarName`: drops `docker.io/` and `library/`.
pub fn familiar(name: &str) -> String {
    let n = name.strip_prefix("docker.io/").unwrap_or(name);
    n.strip_prefix("library/").unwrap_or(n).to_string()
}

/// Splits `repo:tag` (a `:` after the last `/`).
fn split_tag(r: &str) -> Option<(&str, &str)> {
    let i = r.rfind(':')?;
    if r[i..].contains('/') {
        return None;
    }
    Some((&r[..i], &r[i + 1..]))
}

// ---------------------------------------------------------------- images

const IMAGES_FLAGS: &[Spec] = &[
    b(Some('a'), "all"),
    b(Some('q'), "quiet"),
    b(None, "no-trunc"),
    b(None, "digests"),
    b(None, "tree"),
    v(Some('f'), "filter"),
    v(None, "format"),
];

pub const IMAGES_HEADERS: &[(&str, &str)] = &[
    ("Containers", "CONTAINERS"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedSince", "CREATED"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("SharedSize", "SHARED SIZE"),
    ("Size", "SIZE"),
    ("Tag", "TAG"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

const IMAGES_DEFAULT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const IMAGES_DIGESTS: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// The (repository, tag, digest) rows of one image, as docker's
/// `imageFormatTaggedAndDigest` makes them (insertion order for repos).
pub fn image_refs(img: &Value, digests: bool) -> Vec<(String, String, String)> {
    let tags = strs(img, "RepoTags");
    let dig = strs(img, "RepoDigests");
    let dangling = (tags.is_empty() && dig.is_empty())
        || (tags == ["<none>:<none>"] && dig == ["<none>@<none>"]);
    if dangling {
        return vec![("<none>".into(), "<none>".into(), "<none>".into())];
    }
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in &tags {
        if t.contains('@') {
            continue;
        }
        if let Some((r, tg)) = split_tag(t) {
            let r = familiar(r);
            match repo_tags.iter_mut().find(|(k, _)| *k == r) {
                Some((_, v)) => v.push(tg.to_string()),
                None => repo_tags.push((r, vec![tg.to_string()])),
            }
        }
    }
    let mut repo_dig: Vec<(String, Vec<String>)> = Vec::new();
    for d in &dig {
        if let Some((r, dg)) = d.split_once('@') {
            let r = familiar(r);
            match repo_dig.iter_mut().find(|(k, _)| *k == r) {
                Some((_, v)) => v.push(dg.to_string()),
                None => repo_dig.push((r, vec![dg.to_string()])),
            }
        }
    }
    let mut rows = Vec::new();
    for (repo, tgs) in &repo_tags {
        let ds = match repo_dig.iter().position(|(k, _)| k == repo) {
            Some(p) => repo_dig.remove(p).1,
            None => Vec::new(),
        };
        let ds = if digests { ds } else { Vec::new() };
        for t in tgs {
            if ds.is_empty() {
                rows.push((repo.clone(), t.clone(), "<none>".into()));
            }
            for d in &ds {
                rows.push((repo.clone(), t.clone(), d.clone()));
            }
        }
    }
    for (repo, ds) in repo_dig {
        if digests {
            for d in ds {
                rows.push((repo.clone(), "<none>".into(), d));
            }
        } else {
            rows.push((repo, "<none>".into(), String::new()));
        }
    }
    rows
}

/// One formatter context per row (docker's `imageContext`).
pub fn image_items(list: &Value, now: f64, trunc: bool, digests: bool) -> Vec<J> {
    let mut items = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        let id = s(img, "Id");
        let id = if trunc { short_id(id) } else { id.to_string() };
        let created = i(img, "Created");
        let size = i(img, "Size");
        let shared = i(img, "SharedSize");
        let containers = i(img, "Containers");
        let hs = |n: i64| crate::units::go_g_size(n as f64, 4);
        let na = |n: i64, f: &dyn Fn() -> String| if n == -1 { "N/A".into() } else { f() };
        for (repo, tag, digest) in image_refs(img, digests) {
            items.push(J::Obj(vec![
                (
                    "Containers".into(),
                    J::str(na(containers, &|| containers.to_string())),
                ),
                ("CreatedAt".into(), J::str(go_time_string(created))),
                ("CreatedSince".into(), J::str(ago(created, now))),
                ("Digest".into(), J::str(digest)),
                ("ID".into(), J::str(id.clone())),
                ("Repository".into(), J::str(repo)),
                ("SharedSize".into(), J::str(na(shared, &|| hs(shared)))),
                ("Size".into(), J::str(human_size(size as f64))),
                ("Tag".into(), J::str(tag)),
                (
                    "UniqueSize".into(),
                    J::str(if size == -1 || shared == -1 {
                        "N/A".into()
                    } else {
                        hs(size - shared)
                    }),
                ),
                ("VirtualSize".into(), J::str(hs(size))),
            ]));
        }
    }
    items
}

pub fn images(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let Some(p) = parse(cmd, args, IMAGES_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() > 1 {
        return Err(args_error(cmd, "requires at most 1 argument"));
    }
    let mut filters = p.all("filter");
    if let Some(r) = p.args.first() {
        filters.push(format!("reference={r}"));
    }
    let mut q = Vec::new();
    if p.has("all") {
        q.push("all=1".to_string());
    }
    let fq = filters_query(&filters)?;
    if !fq.is_empty() {
        q.push(fq);
    }
    let path = if q.is_empty() {
        "/images/json".to_string()
    } else {
        format!("/images/json?{}", q.join("&"))
    };
    let digests = p.has("digests");
    let quiet = p.has("quiet");
    let format = match p.get("format").unwrap_or("") {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" if digests => IMAGES_DIGESTS.to_string(),
        "" | "table" => IMAGES_DEFAULT.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let tp = format.strip_prefix("table").unwrap_or(&format);
    tmpl::Template::parse(tp).map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let mut c = connect()?;
    let list = c.get_json(&path)?;
    let items = image_items(&list, now(), !p.has("no-trunc"), digests);
    let text = render(&format, &items, IMAGES_HEADERS, "*formatter.imageContext")?;
    out(&text)?;
    Ok(0)
}

/// `render_list` with docker's errors for these formatters, and Go's
/// HTML-safe escaping for `{{json .}}` of a whole row (the formatter
/// marshals the context with `json.Marshal`).
pub fn render(format: &str, items: &[J], headers: &[(&str, &str)], typ: &str) -> Result<String> {
    let err = |e: String| {
        fail(
            formatter_error(&e, typ).replacen(
                "failed to execute template: ",
                "template parsing error: ",
                1,
            ),
            1,
        )
    };
    if format == "{{json .}}" {
        let mut t = String::new();
        for it in items {
            let line = tmpl::render_list(format, std::slice::from_ref(it), headers).map_err(err)?;
            t.push_str(&html_escape_json(&line));
        }
        return Ok(t);
    }
    tmpl::render_list(format, items, headers).map_err(err)
}

/// Go's `json.Marshal` escapes `<`, `>` and `&` inside strings.
pub fn html_escape_json(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

// ---------------------------------------------------------------- tag / rmi

/// docker's reference check, reduced: lowercase repository, valid tag.
pub fn check_ref(r: &str) -> Result<(), String> {
    let bad = || "invalid reference format".to_string();
    if r.is_empty() || r.contains(char::is_whitespace) {
        return Err(bad());
    }
    let name = match r.split_once('@') {
        Some((n, _)) => n,
        None => r,
    };
    let (repo, tag) = match split_tag(name) {
        Some((a, t)) => (a, Some(t)),
        None => (name, None),
    };
    if let Some(t) = tag {
        if t.is_empty()
            || t.len() > 128
            || t.starts_with(['.', '-'])
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(bad());
        }
    }
    if repo.is_empty() || repo.ends_with('/') || repo.starts_with('/') {
        return Err(bad());
    }
    let path = match repo.split_once('/') {
        Some((d, rest)) if d.contains(['.', ':']) || d == "localhost" => rest,
        _ => repo,
    };
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "invalid reference format: repository name ({}) must be lowercase",
            if path.contains('/') {
                path.to_string()
            } else {
                format!("library/{path}")
            }
        ));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return Err(bad());
    }
    Ok(())
}

/// The `repo` and `tag` query values docker sends for a target reference.
pub fn repo_tag(target: &str) -> Result<(String, String), String> {
    check_ref(target)?;
    if target.contains('@') {
        return Err("refusing to create a tag with a digest reference".into());
    }
    Ok(normalize_ref(target))
}

pub fn tag(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("tag", args, &[])? else {
        return Ok(0);
    };
    if p.args.len() != 2 {
        return Err(args_error("tag", "requires 2 arguments"));
    }
    let (repo, tag) = repo_tag(&p.args[1]).map_err(|e| {
        fail(
            if e.starts_with("invalid reference") {
                format!(
                    "Error parsing reference: \"{}\" is not a valid repository/tag: {e}",
                    p.args[1]
                )
            } else {
                e
            },
            1,
        )
    })?;
    let mut c = connect()?;
    c.post(&format!(
        "/images/{}/tag?repo={}&tag={}",
        p.args[0],
        query_escape(&repo),
        query_escape(&tag)
    ))?;
    Ok(0)
}

pub fn rmi(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let Some(p) = parse(cmd, args, &[b(Some('f'), "force"), b(None, "no-prune")])? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let mut q = Vec::new();
    if p.has("force") {
        q.push("force=1");
    }
    if p.has("no-prune") {
        q.push("noprune=1");
    }
    let q = if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    };
    let mut c = connect()?;
    let mut errs = Vec::new();
    for img in &p.args {
        match c.call("DELETE", &format!("/images/{img}{q}"), ReqBody::Empty) {
            Ok(r) => {
                let v = r.json()?;
                let mut t = String::new();
                for d in v.as_array().into_iter().flatten() {
                    match d
                        .get("Deleted")
                        .and_then(|x| x.as_str())
                        .filter(|x| !x.is_empty())
                    {
                        Some(x) => t.push_str(&format!("Deleted: {x}\n")),
                        None => t.push_str(&format!("Untagged: {}\n", s(d, "Untagged"))),
                    }
                }
                out(&t)?;
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    if !errs.is_empty() {
        return Err(fail(errs.join("\n"), 1));
    }
    Ok(0)
}

// ---------------------------------------------------------------- history

pub const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("Comment", "COMMENT"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("CreatedSince", "CREATED"),
    ("ID", "IMAGE"),
    ("Size", "SIZE"),
];

/// Unix seconds → RFC 3339 in UTC (`2006-01-02T15:04:05Z`).
pub fn rfc3339(secs: i64) -> String {
    let t = go_time_string(secs);
    format!("{}T{}Z", &t[..10], &t[11..19])
}

pub fn history_items(list: &Value, now: f64, trunc: bool, human: bool) -> Vec<J> {
    let mut items = Vec::new();
    for h in list.as_array().into_iter().flatten() {
        let id = s(h, "Id");
        let id = if trunc && id != "<missing>" {
            short_id(id)
        } else {
            id.to_string()
        };
        let created = i(h, "Created");
        let since = if human {
            ago(created, now)
        } else {
            rfc3339(created)
        };
        let by = s(h, "CreatedBy").replace('\t', " ");
        let by = if trunc { ellipsis(&by, 45) } else { by };
        let size = i(h, "Size");
        let size = if human {
            human_size(size as f64)
        } else {
            size.to_string()
        };
        items.push(J::Obj(vec![
            ("Comment".into(), J::str(s(h, "Comment"))),
            ("CreatedAt".into(), J::str(rfc3339(created))),
            ("CreatedBy".into(), J::str(by)),
            ("CreatedSince".into(), J::str(since)),
            ("ID".into(), J::str(id)),
            ("Size".into(), J::str(size)),
        ]));
    }
    items
}

pub fn history(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let specs = [
        b(Some('H'), "human"),
        b(None, "no-trunc"),
        b(Some('q'), "quiet"),
        v(None, "format"),
        v(None, "platform"),
    ];
    let Some(p) = parse(cmd, args, &specs)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error(cmd, "requires 1 argument"));
    }
    let human = p.get("human").map(|v| v != "false").unwrap_or(true);
    let format = match p.get("format").unwrap_or("") {
        "" | "table" if p.has("quiet") => "{{.ID}}".to_string(),
        "" | "table" => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".to_string()
        }
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let mut c = connect()?;
    let list = c.get_json(&format!("/images/{}/history", p.args[0]))?;
    let items = history_items(&list, now(), !p.has("no-trunc"), human);
    let headers: Vec<(&str, &str)> = HISTORY_HEADERS
        .iter()
        .map(|&(k, h)| match k {
            "CreatedSince" if !human => (k, "CREATED AT"),
            _ => (k, h),
        })
        .collect();
    let text = render(&format, &items, &headers, "*image.historyContext")?;
    out(&text)?;
    Ok(0)
}

// ---------------------------------------------------------------- image prune

pub fn image_prune(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse(
        "image prune",
        args,
        &[
            b(Some('a'), "all"),
            b(Some('f'), "force"),
            v(None, "filter"),
        ],
    )?
    else {
        return Ok(0);
    };
    let all = p.has("all");
    let warn = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !p.has("force") && !confirm(warn)? {
        return Ok(0);
    }
    let mut c = connect()?;
    let (text, n) = prune_images(&mut c, all, &p.all("filter"))?;
    out(&format!("{text}{}", reclaimed(n)))?;
    Ok(0)
}

/// docker's last prune line (go-units `HumanSize`, 4 digits).
pub fn reclaimed(bytes: u64) -> String {
    format!(
        "Total reclaimed space: {}\n",
        crate::units::go_g_size(bytes as f64, 4)
    )
}

/// `SpaceReclaimed` of a prune answer.
pub fn space(v: &Value) -> u64 {
    v.get("SpaceReclaimed")
        .and_then(|x| x.as_u64())
        .unwrap_or(0)
}

/// A prune answer's list under `key` as docker prints it: "Deleted
/// {what}:", one per line, a blank line; nothing when the list is empty.
pub fn deleted_list(v: &Value, key: &str, what: &str) -> String {
    let gone: Vec<&str> = v
        .get(key)
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str())
        .collect();
    if gone.is_empty() {
        return String::new();
    }
    let mut t = format!("Deleted {what}:\n");
    for g in gone {
        t.push_str(g);
        t.push('\n');
    }
    t.push('\n');
    t
}

/// `[y/N]` prompt as docker's `command.PromptForConfirmation`.
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let a = line.trim().to_lowercase();
    Ok(a == "y" || a == "yes")
}

/// Calls image prune; returns the "Deleted Images:" text and the bytes.
pub fn prune_images(c: &mut Client, all: bool, filters: &[String]) -> Result<(String, u64)> {
    let mut f = filters.to_vec();
    f.push(format!("dangling={}", !all));
    let v = c
        .post(&format!("/images/prune?{}", filters_query(&f)?))?
        .json()?;
    let mut t = String::new();
    let del = v.get("ImagesDeleted").and_then(|d| d.as_array());
    if let Some(del) = del.filter(|d| !d.is_empty()) {
        t.push_str("Deleted Images:\n");
        for d in del {
            if let Some(u) = d
                .get("Untagged")
                .and_then(|x| x.as_str())
                .filter(|x| !x.is_empty())
            {
                t.push_str(&format!("untagged: {u}\n"));
            }
            if let Some(u) = d
                .get("Deleted")
                .and_then(|x| x.as_str())
                .filter(|x| !x.is_empty())
            {
                t.push_str(&format!("deleted: {u}\n"));
            }
        }
        t.push('\n');
    }
    Ok((t, space(&v)))
}

// ---------------------------------------------------------------- commit / diff

pub fn commit_query(
    p: &Parsed,
    container: &str,
    reference: Option<&str>,
) -> Result<String, String> {
    let (repo, tag) = match reference {
        Some(r) => repo_tag(r)?,
        None => (String::new(), String::new()),
    };
    let mut q: Vec<(&str, String)> = vec![
        ("author", p.get("author").unwrap_or("").to_string()),
        ("comment", p.get("message").unwrap_or("").to_string()),
        ("container", container.to_string()),
    ];
    for ch in p.all("change") {
        q.push(("changes", ch));
    }
    if !p.get("pause").map(|v| v != "false").unwrap_or(true) {
        q.push(("pause", "0".into()));
    }
    q.push(("repo", repo));
    q.push(("tag", tag));
    q.sort_by(|a, b| a.0.cmp(b.0));
    Ok(q.iter()
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

pub fn commit(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let specs = [
        v(Some('a'), "author"),
        v(Some('c'), "change"),
        v(Some('m'), "message"),
        b(Some('p'), "pause"),
    ];
    let Some(p) = parse("commit", args, &specs)? else {
        return Ok(0);
    };
    if p.args.is_empty() || p.args.len() > 2 {
        return Err(args_error(
            "commit",
            "requires at least 1 and at most 2 arguments",
        ));
    }
    let q =
        commit_query(&p, &p.args[0], p.args.get(1).map(|s| s.as_str())).map_err(|e| fail(e, 1))?;
    let mut c = connect()?;
    let v = c.post(&format!("/commit?{q}"))?.json()?;
    out(&format!("{}\n", s(&v, "Id")))?;
    Ok(0)
}

pub fn diff(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let Some(p) = parse(cmd, args, &[])? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error(cmd, "requires 1 argument"));
    }
    let mut c = connect()?;
    let v = c.get_json(&format!("/containers/{}/changes", p.args[0]))?;
    let mut t = String::new();
    for ch in v.as_array().into_iter().flatten() {
        let k = match i(ch, "Kind") {
            0 => "C",
            1 => "A",
            2 => "D",
            _ => "",
        };
        t.push_str(&format!("{k} {}\n", s(ch, "Path")));
    }
    out(&t)?;
    Ok(0)
}

// ---------------------------------------------------------------- export / save / import

const COWARD: &str = "cowardly refusing to save to a terminal. Use the -o flag or redirect";

/// Streams a GET body to `-o FILE` or stdout (refusing a terminal).
fn download(c: &mut Client, path: &str, output: Option<&str>) -> Result<()> {
    let mut st = c.stream("GET", path, ReqBody::Empty, &[], false)?;
    match output {
        None => {
            let mut o = std::io::stdout().lock();
            std::io::copy(&mut st.body, &mut o)?;
            o.flush()?;
        }
        Some(f) => {
            let dir = std::path::Path::new(f)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.tmp{}",
                std::path::Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let mut file = std::fs::File::create(&tmp)
                .map_err(|e| fail(format!("failed to save image: invalid output path: {e}"), 1))?;
            let r = std::io::copy(&mut st.body, &mut file).and_then(|_| file.sync_all());
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            std::fs::rename(&tmp, f)?;
        }
    }
    Ok(())
}

pub fn export(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let Some(p) = parse(cmd, args, &[v(Some('o'), "output")])? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error(cmd, "requires 1 argument"));
    }
    let output = p.get("output").filter(|o| !o.is_empty());
    if output.is_none() && crate::term::isatty(1) {
        return Err(fail(COWARD, 1));
    }
    let mut c = connect()?;
    download(&mut c, &format!("/containers/{}/export", p.args[0]), output)?;
    Ok(0)
}

pub fn save(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let Some(p) = parse(cmd, args, &[v(Some('o'), "output"), v(None, "platform")])? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(args_error(cmd, "requires at least 1 argument"));
    }
    let output = p.get("output").filter(|o| !o.is_empty());
    if output.is_none() && crate::term::isatty(1) {
        return Err(fail(COWARD, 1));
    }
    let q: Vec<String> = p
        .args
        .iter()
        .map(|n| format!("names={}", query_escape(n)))
        .collect();
    let mut c = connect()?;
    download(&mut c, &format!("/images/get?{}", q.join("&")), output)?;
    Ok(0)
}

pub fn import(connect: impl Fn() -> Result<Client>, cmd: &str, args: &[String]) -> Result<i32> {
    let specs = [
        v(Some('c'), "change"),
        v(Some('m'), "message"),
        v(None, "platform"),
    ];
    let Some(p) = parse(cmd, args, &specs)? else {
        return Ok(0);
    };
    if p.args.is_empty() || p.args.len() > 2 {
        return Err(args_error(
            cmd,
            "requires at least 1 and at most 2 arguments",
        ));
    }
    let src = &p.args[0];
    let reference = p.args.get(1).map(|s| s.as_str()).unwrap_or("");
    if !reference.is_empty() {
        check_ref(reference).map_err(|e| fail(e, 1))?;
    }
    let mut q: Vec<(&str, String)> = Vec::new();
    for ch in p.all("change") {
        q.push(("changes", ch));
    }
    let remote = src.starts_with("http://") || src.starts_with("https://");
    q.push(("fromSrc", if remote { src.clone() } else { "-".into() }));
    if let Some(m) = p.get("message").filter(|m| !m.is_empty()) {
        q.push(("message", m.to_string()));
    }
    if let Some(pl) = p.get("platform").filter(|m| !m.is_empty()) {
        q.push(("platform", pl.to_string()));
    }
    if !reference.is_empty() {
        q.push(("repo", reference.to_string()));
    }
    q.sort_by(|a, b| a.0.cmp(b.0));
    let path = format!(
        "/images/create?{}",
        q.iter()
            .map(|(k, v)| format!("{k}={}", query_escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    );
    let mut input: Box<dyn Read> = if remote {
        Box::new(std::io::empty())
    } else if src == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(src)
                .map_err(|e| fail(format!("open {src}: {}", crate::cmds::io_msg(&e)), 1))?,
        )
    };
    let mut c = connect()?;
    let st = if remote {
        c.stream("POST", &path, ReqBody::EmptyPost, &[], false)?
    } else {
        c.stream(
            "POST",
            &path,
            ReqBody::Chunked("text/plain", &mut *input),
            &[],
            false,
        )?
    };
    match print_json_messages(st.body, &mut std::io::stdout().lock())? {
        None => Ok(0),
        Some((m, code)) => {
            eprintln!("{m}");
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_rows() {
        let img: Value = serde_json::from_str(
            r#"{"RepoTags":["busybox:latest","busybox:1","docker.io/library/x:y","localhost:5000/a/b:c"],
                "RepoDigests":["busybox@sha256:aa","other@sha256:bb"]}"#,
        )
        .unwrap();
        let r = image_refs(&img, false);
        assert_eq!(
            r,
            vec![
                ("busybox".into(), "latest".into(), "<none>".into()),
                ("busybox".into(), "1".into(), "<none>".into()),
                ("x".into(), "y".into(), "<none>".into()),
                ("localhost:5000/a/b".into(), "c".into(), "<none>".into()),
                ("other".into(), "<none>".into(), "".into()),
            ]
        );
        let r = image_refs(&img, true);
        assert_eq!(
            r[0],
            ("busybox".into(), "latest".into(), "sha256:aa".into())
        );
        assert_eq!(r[4], ("other".into(), "<none>".into(), "sha256:bb".into()));
        let none: Value = serde_json::from_str(r#"{"RepoTags":[],"RepoDigests":null}"#).unwrap();
        assert_eq!(
            image_refs(&none, false),
            vec![("<none>".into(), "<none>".into(), "<none>".into())]
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            repo_tag("ac-tagged:v1").unwrap(),
            ("docker.io/library/ac-tagged".into(), "v1".into())
        );
        assert_eq!(
            repo_tag("localhost:5000/ac/x:y").unwrap(),
            ("localhost:5000/ac/x".into(), "y".into())
        );
        assert_eq!(
            repo_tag("me/app").unwrap(),
            ("docker.io/me/app".into(), "latest".into())
        );
        assert_eq!(
            repo_tag("Foo").unwrap_err(),
            "invalid reference format: repository name (library/Foo) must be lowercase"
        );
        assert_eq!(repo_tag("a:b:c").unwrap_err(), "invalid reference format");
        assert!(repo_tag("a@sha256:00").is_err());
    }

    #[test]
    fn commit_queries() {
        let specs = [
            v(Some('a'), "author"),
            v(Some('c'), "change"),
            v(Some('m'), "message"),
            b(Some('p'), "pause"),
        ];
        let a: Vec<String> = [
            "-a",
            "me",
            "-m",
            "msg",
            "-c",
            "CMD [\"cat\",\"/tmp/host.txt\"]",
            "-p=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p = flags::parse(&a, &specs, true).unwrap();
        assert_eq!(
            commit_query(&p, "ac-w1", Some("ac-mine:2")).unwrap(),
            "author=me&changes=CMD+%5B%22cat%22%2C%22%2Ftmp%2Fhost.txt%22%5D&comment=msg&container=ac-w1&pause=0&repo=docker.io%2Flibrary%2Fac-mine&tag=2"
        );
        let p = flags::parse(&[], &specs, true).unwrap();
        assert_eq!(
            commit_query(&p, "c", None).unwrap(),
            "author=&comment=&container=c&repo=&tag="
        );
    }

    #[test]
    fn history_rows() {
        let h: Value = serde_json::from_str(
            r#"[{"Id":"sha256:d72df08b38441234","Created":0,"CreatedBy":"a\tb","Size":1980000,"Comment":""},
                {"Id":"<missing>","Created":0,"CreatedBy":"x","Size":0,"Comment":"c"}]"#,
        )
        .unwrap();
        let it = history_items(&h, 0.0, true, false);
        assert_eq!(it[0].get("ID").unwrap().as_str(), Some("d72df08b3844"));
        assert_eq!(it[0].get("CreatedBy").unwrap().as_str(), Some("a b"));
        assert_eq!(it[0].get("Size").unwrap().as_str(), Some("1980000"));
        assert_eq!(
            it[0].get("CreatedSince").unwrap().as_str(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(it[1].get("ID").unwrap().as_str(), Some("<missing>"));
    }
}
