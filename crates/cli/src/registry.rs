//! pull, push and search: the registry commands of docker's command line.
//! The daemon does the registry work; these send docker 28's requests
//! (with X-Registry-Auth from the stored credentials) and draw the answers.

use crate::client::Client;
use crate::cmds::filters_query;
use crate::flags::{b, v, Spec};
use crate::http::ReqBody;
use crate::img::{out, parse, render};
use crate::jv::J;
use crate::progress::{self, Mode};
use crate::reference::{self, Ref, INDEX_SERVER};
use crate::support::{pull_stream, query_escape, registry_auth};
use crate::units::ellipsis;
use crate::{args_error, fail, flag_error};
use anyhow::Result;
use serde_json::Value;

fn parse_ref(s: &str) -> Result<Ref> {
    reference::parse(s).map_err(|e| fail(e, 1))
}

/// pull's and push's tag rule: `--all-tags` takes a name without a tag; otherwise a name
/// without one gets `latest`, said unless quiet.
fn default_tag(r: Ref, all_tags: bool, quiet: bool) -> Result<Ref> {
    if all_tags {
        if !r.name_only() {
            return Err(fail("tag can't be used with --all-tags/-a", 1));
        }
        return Ok(r);
    }
    if !r.name_only() {
        return Ok(r);
    }
    if !quiet {
        out("Using default tag: latest\n")?;
    }
    Ok(r.with_default_tag())
}

const PULL_FLAGS: &[Spec] = &[
    b(Some('a'), "all-tags"),
    b(Some('q'), "quiet"),
    v(None, "platform"),
    b(None, "disable-content-trust"),
];

pub fn pull(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("pull", args, PULL_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error("pull", "requires 1 argument"));
    }
    let quiet = p.has("quiet");
    let mut r = parse_ref(&p.args[0])?;
    r = default_tag(r, p.has("all-tags"), quiet)?;
    let mut c = connect()?;
    let platform = p.get("platform");
    let res = if quiet {
        pull_stream(
            &mut c,
            &r,
            platform,
            &mut std::io::sink(),
            Mode {
                terminal: false,
                width: 200,
            },
        )?
    } else {
        pull_stream(&mut c, &r, platform, &mut std::io::stdout(), Mode::of_fd(1))?
    };
    res.map_err(|e| fail(e.message, 1))?;
    out(&format!("{}\n", r.full()))?;
    Ok(0)
}

const PUSH_FLAGS: &[Spec] = &[
    b(Some('a'), "all-tags"),
    b(Some('q'), "quiet"),
    b(None, "disable-content-trust"),
];

pub fn push(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("push", args, PUSH_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error("push", "requires 1 argument"));
    }
    let quiet = p.has("quiet");
    let mut r = parse_ref(&p.args[0])?;
    if r.digest.is_some() {
        return Err(fail("cannot push a digest reference", 1));
    }
    r = default_tag(r, p.has("all-tags"), quiet)?;
    let mut path = format!("/images/{}/push", r.familiar_name());
    if let Some(t) = &r.tag {
        path.push_str(&format!("?tag={}", query_escape(t)));
    }
    let auth = registry_auth(&r.auth_key());
    let mut c = connect()?;
    let s = c.stream(
        "POST",
        &path,
        ReqBody::EmptyPost,
        &[("X-Registry-Auth", &auth)],
        false,
    )?;
    let res = if quiet {
        progress::display(
            s.body,
            &mut std::io::sink(),
            Mode {
                terminal: false,
                width: 200,
            },
            |_| {},
        )?
    } else {
        progress::display(s.body, &mut std::io::stdout(), Mode::of_fd(1), |_| {})?
    };
    res.map_err(|e| fail(e.message, 1))?;
    if quiet {
        out(&format!("{}\n", r.full()))?;
    }
    Ok(0)
}

// ---------------------------------------------------------------- search

const SEARCH_FLAGS: &[Spec] = &[
    v(None, "limit"),
    v(Some('f'), "filter"),
    v(None, "format"),
    b(None, "no-trunc"),
];

const SEARCH_HEADERS: &[(&str, &str)] = &[
    ("Description", "DESCRIPTION"),
    ("IsOfficial", "OFFICIAL"),
    ("Name", "NAME"),
    ("StarCount", "STARS"),
];

const SEARCH_DEFAULT: &str = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";

/// The registry whose credentials go with a search term (docker's
/// `ParseSearchIndexInfo`): a first component that looks like a host.
pub fn search_auth_key(term: &str) -> String {
    match term.split_once('/') {
        Some((d, _)) if d.contains(['.', ':']) || d == "localhost" => d.to_string(),
        _ => INDEX_SERVER.to_string(),
    }
}

/// One search result: the row for templates and the line for `{{json .}}`.
pub fn search_row(v: &Value, trunc: bool) -> (J, String) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let mut desc = s("description").replace('\n', " ");
    if trunc {
        desc = ellipsis(&desc, 45);
    }
    let stars = v.get("star_count").and_then(Value::as_i64).unwrap_or(0);
    let official = v
        .get("is_official")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let m = vec![
        ("Description".to_string(), J::str(desc.clone())),
        (
            "IsOfficial".to_string(),
            J::str(if official { "[OK]" } else { "" }),
        ),
        ("Name".to_string(), J::str(s("name"))),
        ("StarCount".to_string(), J::str(stars.to_string())),
    ];
    let json = serde_json::json!({
        "Description": desc,
        "IsOfficial": official.to_string(),
        "Name": s("name"),
        "StarCount": stars.to_string(),
    });
    (J::Obj(m), crate::img::html_escape_json(&json.to_string()))
}

pub fn search(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let Some(p) = parse("search", args, SEARCH_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(args_error("search", "requires 1 argument"));
    }
    let term = &p.args[0];
    let limit: i64 = match p.get("limit") {
        None => 0,
        Some(l) => l.parse().map_err(|_| {
            flag_error(
                "search",
                &format!(
                    "invalid argument \"{l}\" for \"--limit\" flag: strconv.ParseInt: parsing \"{l}\": invalid syntax"
                ),
            )
        })?,
    };
    for f in p.all("filter") {
        if !f.contains('=') {
            return Err(flag_error(
                "search",
                &format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"),
            ));
        }
    }
    let format = match p.get("format").unwrap_or("") {
        "" | "table" => SEARCH_DEFAULT.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let tp = format.strip_prefix("table").unwrap_or(&format);
    crate::tmpl::Template::parse(tp)
        .map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let mut q = Vec::new();
    let fq = filters_query(&p.all("filter"))?;
    if !fq.is_empty() {
        q.push(fq);
    }
    if limit != 0 {
        q.push(format!("limit={limit}"));
    }
    q.push(format!("term={}", query_escape(term)));
    let path = format!("/images/search?{}", q.join("&"));
    let auth = registry_auth(&search_auth_key(term));
    let mut c = connect()?;
    let r = c.raw(
        "GET",
        &c.path(&path),
        ReqBody::Empty,
        &[("X-Registry-Auth", &auth)],
    )?;
    if r.status >= 400 {
        return Err(crate::client::error_from(r.status, &r.body).into());
    }
    let list = r.json()?;
    let rows: Vec<(J, String)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| search_row(v, !p.has("no-trunc")))
        .collect();
    let text = if format == "{{json .}}" {
        rows.iter().map(|(_, j)| format!("{j}\n")).collect()
    } else {
        let items: Vec<J> = rows.into_iter().map(|(j, _)| j).collect();
        render(&format, &items, SEARCH_HEADERS, "*registry.searchContext")?
    };
    out(&text)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_rows_and_auth_keys() {
        let v: Value = serde_json::from_str(
            r#"{"star_count":12,"is_official":true,"name":"busybox","is_automated":false,
            "description":"Busybox base image, a very long description that goes on and on beyond forty-five characters"}"#,
        )
        .unwrap();
        let (j, json) = search_row(&v, true);
        assert_eq!(
            j.get("Description").and_then(J::as_str),
            Some("Busybox base image, a very long description …")
        );
        assert_eq!(j.get("IsOfficial").and_then(J::as_str), Some("[OK]"));
        assert_eq!(
            json,
            r#"{"Description":"Busybox base image, a very long description …","IsOfficial":"true","Name":"busybox","StarCount":"12"}"#
        );
        let v: Value =
            serde_json::from_str(r#"{"name":"me/bb","description":"a\nb","star_count":3}"#)
                .unwrap();
        let (j, _) = search_row(&v, false);
        assert_eq!(j.get("Description").and_then(J::as_str), Some("a b"));
        assert_eq!(j.get("IsOfficial").and_then(J::as_str), Some(""));
        assert_eq!(search_auth_key("busybox"), INDEX_SERVER);
        assert_eq!(search_auth_key("me/bb"), INDEX_SERVER);
        assert_eq!(search_auth_key("127.0.0.1:5000/bb"), "127.0.0.1:5000");
    }
}
