//! `network create/ls/inspect/rm/prune/connect/disconnect`.

use crate::client::{Client, DaemonError};
use crate::cmds::checked_filters as filters;
use crate::flags::{b, v, Parsed, Spec};
use crate::http::ReqBody;
use crate::img::{confirm, out, render};
use crate::jv::J;
use crate::jv::{js, map_json};
use crate::netopts::Endpoint;
use crate::{fail, tmpl};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;

const FORMAT_HELP: &str = "Format output using a custom template:
                        'table':            Print output in table format
                        with column headers (default)
                        'table TEMPLATE':   Print output in table format
                        using the given Go template
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates";

fn help(cmd: &str) -> String {
    match cmd {
        "network create" => "Usage:  berth network create [OPTIONS] NETWORK

Create a network

Options:
      --attachable           Enable manual container attachment
      --aux-address map      Auxiliary IPv4 or IPv6 addresses used by
                             Network driver (default map[])
      --config-from string   The network from which to copy the configuration
      --config-only          Create a configuration only network
  -d, --driver string        Driver to manage the Network (default \"bridge\")
      --gateway strings      IPv4 or IPv6 Gateway for the master subnet
      --ingress              Create swarm routing-mesh network
      --internal             Restrict external access to the network
      --ip-range strings     Allocate container ip from a sub-range
      --ipam-driver string   IP Address Management Driver (default \"default\")
      --ipam-opt map         Set IPAM driver specific options (default map[])
      --ipv4                 Enable or disable IPv4 address assignment
                             (default true)
      --ipv6                 Enable or disable IPv6 address assignment
      --label list           Set metadata on a network
  -o, --opt map              Set driver specific options (default map[])
      --scope string         Control the network's scope
      --subnet strings       Subnet in CIDR format that represents a
                             network segment
"
        .into(),
        "network ls" => format!(
            "Usage:  berth network ls [OPTIONS]

List networks

Aliases:
  berth network ls, berth network list

Options:
  -f, --filter filter   Provide filter values (e.g. \"driver=bridge\")
      --format string   {FORMAT_HELP}
      --no-trunc        Do not truncate the output
  -q, --quiet           Only display network IDs
"
        ),
        "network inspect" => "Usage:  berth network inspect [OPTIONS] NETWORK [NETWORK...]

Display detailed information on one or more networks

Options:
  -f, --format string   Format output using a custom template:
                        'json':             Print in JSON format
                        'TEMPLATE':         Print output using the given
                        Go template.
                        Refer to https://docs.docker.com/go/formatting/
                        for more information about formatting output with
                        templates
  -v, --verbose         Verbose output for diagnostics
"
        .into(),
        "network rm" => "Usage:  berth network rm NETWORK [NETWORK...]

Remove one or more networks

Aliases:
  berth network rm, berth network remove

Options:
  -f, --force   Do not error if the network does not exist
"
        .into(),
        "network prune" => "Usage:  berth network prune [OPTIONS]

Remove all unused networks

Options:
      --filter filter   Provide filter values (e.g. \"until=<timestamp>\")
  -f, --force           Do not prompt for confirmation
"
        .into(),
        "network connect" => "Usage:  berth network connect [OPTIONS] NETWORK CONTAINER

Connect a container to a network

Options:
      --alias strings           Add network-scoped alias for the container
      --driver-opt strings      driver options for the network
      --gw-priority int         Highest gw-priority provides the default
                                gateway. Accepts positive and negative values.
      --ip string               IPv4 address (e.g., \"172.30.100.104\")
      --ip6 string              IPv6 address (e.g., \"2001:db8::33\")
      --link list               Add link to another container
      --link-local-ip strings   Add a link-local address for the container
"
        .into(),
        "network disconnect" => "Usage:  berth network disconnect [OPTIONS] NETWORK CONTAINER

Disconnect a container from a network

Options:
  -f, --force   Force the container to disconnect from a network
"
        .into(),
        _ => crate::commands::group("network")
            .map(crate::commands::group_help)
            .unwrap_or_default(),
    }
}

fn parse(cmd: &str, args: &[String], specs: &[Spec]) -> Result<Option<Parsed>> {
    crate::vol::parse_with(cmd, args, specs, help)
}

// ---------------------------------------------------------------- create

const CREATE_FLAGS: &[Spec] = &[
    v(Some('d'), "driver"),
    v(None, "subnet"),
    v(None, "gateway"),
    v(None, "ip-range"),
    v(None, "aux-address"),
    b(None, "internal"),
    v(None, "label"),
    v(Some('o'), "opt"),
    b(None, "attachable"),
    b(None, "ipv6"),
    b(None, "ipv4"),
    v(None, "ipam-driver"),
    v(None, "ipam-opt"),
    v(None, "scope"),
    v(None, "config-from"),
    b(None, "config-only"),
    b(None, "ingress"),
];

/// A v4/v6 CIDR → (address bits as u128, prefix length, is_v6).
fn cidr(s: &str) -> Option<(u128, u32, bool)> {
    let (a, l) = s.split_once('/')?;
    let ip: std::net::IpAddr = a.parse().ok()?;
    let (bits, max, v6) = match ip {
        std::net::IpAddr::V4(x) => (u32::from(x) as u128, 32, false),
        std::net::IpAddr::V6(x) => (u128::from(x), 128, true),
    };
    let l: u32 = l.parse().ok().filter(|l| *l <= max)?;
    Some((bits, l, v6))
}

fn mask(bits: u128, len: u32, v6: bool) -> u128 {
    let width = if v6 { 128 } else { 32 };
    if len == 0 {
        0
    } else {
        let m = if width == 128 {
            u128::MAX << (128 - len)
        } else {
            ((u32::MAX as u128) << (32 - len)) & (u32::MAX as u128)
        };
        bits & m
    }
}

/// Does the address or CIDR `x` lie in `subnet`? Errors are docker's.
fn in_subnet(subnet: &str, x: &str) -> Result<bool, String> {
    let (sb, sl, s6) =
        cidr(subnet).ok_or_else(|| format!("invalid subnet: invalid CIDR address: {subnet}"))?;
    let (xb, x6) = if x.contains('/') {
        match cidr(x) {
            Some((b, _, v6)) => (b, v6),
            None => return Ok(false),
        }
    } else {
        match x.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => (u32::from(a) as u128, false),
            Ok(std::net::IpAddr::V6(a)) => (u128::from(a), true),
            Err(_) => return Ok(false),
        }
    };
    Ok(s6 == x6 && mask(sb, sl, s6) == mask(xb, sl, s6))
}

#[derive(Default)]
struct Pool {
    subnet: String,
    range: String,
    gateway: String,
    aux: BTreeMap<String, String>,
}

/// docker's IPAM config from `--subnet/--ip-range/--gateway/--aux-address`.
fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[(String, String)],
) -> Result<Vec<Pool>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut pools: Vec<Pool> = Vec::new();
    for s in subnets {
        for p in &pools {
            let (a, al, a6) = cidr(&p.subnet)
                .ok_or_else(|| format!("invalid subnet: invalid CIDR address: {}", p.subnet))?;
            let (b, bl, b6) =
                cidr(s).ok_or_else(|| format!("invalid subnet: invalid CIDR address: {s}"))?;
            let l = al.min(bl);
            if a6 == b6 && mask(a, l, a6) == mask(b, l, b6) {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        pools.push(Pool {
            subnet: s.clone(),
            ..Default::default()
        });
    }
    for r in ranges {
        let mut found = false;
        for p in pools.iter_mut() {
            if in_subnet(&p.subnet, r)? {
                if !p.range.is_empty() {
                    return Err(format!(
                        "cannot configure multiple ranges ({}, {r}) on the same subnet ({})",
                        p.range, p.subnet
                    ));
                }
                p.range = r.clone();
                found = true;
            }
        }
        if !found {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut found = false;
        for p in pools.iter_mut() {
            if in_subnet(&p.subnet, g)? {
                if !p.gateway.is_empty() {
                    return Err(format!(
                        "cannot configure multiple gateways ({}, {g}) for the same subnet ({})",
                        p.gateway, p.subnet
                    ));
                }
                p.gateway = g.clone();
                found = true;
            }
        }
        if !found {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (k, a) in aux {
        let mut found = false;
        for p in pools.iter_mut() {
            if in_subnet(&p.subnet, a)? {
                p.aux.insert(k.clone(), a.clone());
                found = true;
            }
        }
        if !found {
            return Err(format!("no matching subnet for aux-address {a}"));
        }
    }
    Ok(pools)
}

fn kv_map(vals: &[String]) -> BTreeMap<String, String> {
    vals.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect()
}

/// Values of a `strings` flag: each may hold several, comma-separated.
fn strings(p: &Parsed, k: &str) -> Vec<String> {
    p.all(k)
        .iter()
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The create body, key for key as docker 28 sends it at `version`.
pub fn create_body(p: &Parsed, name: &str, version: &str) -> Result<String, String> {
    let aux: Vec<(String, String)> = p
        .all("aux-address")
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (a.clone(), String::new()),
        })
        .collect();
    let pools = ipam_config(
        &strings(p, "subnet"),
        &strings(p, "ip-range"),
        &strings(p, "gateway"),
        &aux,
    )?;
    let cfg: Vec<String> = pools
        .iter()
        .map(|pl| {
            let mut f = vec![format!("\"Subnet\":{}", js(&pl.subnet))];
            if !pl.range.is_empty() {
                f.push(format!("\"IPRange\":{}", js(&pl.range)));
            }
            if !pl.gateway.is_empty() {
                f.push(format!("\"Gateway\":{}", js(&pl.gateway)));
            }
            if !pl.aux.is_empty() {
                f.push(format!("\"AuxiliaryAddresses\":{}", map_json(&pl.aux)));
            }
            format!("{{{}}}", f.join(","))
        })
        .collect();
    let mut enable = String::new();
    if let Some(v4) = p.get("ipv4") {
        enable.push_str(&format!(",\"EnableIPv4\":{}", v4 != "false"));
    }
    if let Some(v6) = p.get("ipv6") {
        enable.push_str(&format!(",\"EnableIPv6\":{}", v6 != "false"));
    }
    let config_from = match p.get("config-from") {
        Some(n) if !n.is_empty() => format!("{{\"Network\":{}}}", js(n)),
        _ => "null".into(),
    };
    let check = if crate::client::version_lt(version, "1.44") {
        ",\"CheckDuplicate\":true"
    } else {
        ""
    };
    Ok(format!(
        r#"{{"Driver":{},"Scope":{}{enable},"IPAM":{{"Driver":{},"Options":{},"Config":[{}]}},"Internal":{},"Attachable":{},"Ingress":{},"ConfigOnly":{},"ConfigFrom":{config_from},"Options":{},"Labels":{},"Name":{}{check}}}"#,
        js(p.get("driver").unwrap_or("bridge")),
        js(p.get("scope").unwrap_or("")),
        js(p.get("ipam-driver").unwrap_or("default")),
        map_json(&kv_map(&p.all("ipam-opt"))),
        cfg.join(","),
        p.has("internal"),
        p.has("attachable"),
        p.has("ingress"),
        p.has("config-only"),
        map_json(&kv_map(&p.all("opt"))),
        map_json(&kv_map(&p.all("label"))),
        js(name),
    ))
}

pub fn create(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network create";
    let Some(p) = parse(cmd, args, CREATE_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 1 {
        return Err(crate::args_error(cmd, "requires 1 argument"));
    }
    let mut c = connect()?;
    let body = create_body(&p, &p.args[0], &c.version.clone()).map_err(|e| fail(e, 1))?;
    let v = c
        .call(
            "POST",
            "/networks/create",
            ReqBody::Bytes("application/json", body.as_bytes()),
        )?
        .json()?;
    if let Some(w) = v.get("Warning").and_then(|w| w.as_str()) {
        if !w.is_empty() {
            eprintln!("WARNING: {w}");
        }
    }
    out(&format!(
        "{}\n",
        v.get("Id").and_then(|i| i.as_str()).unwrap_or("")
    ))?;
    Ok(0)
}

// ---------------------------------------------------------------- ls

const LS_FLAGS: &[Spec] = &[
    v(Some('f'), "filter"),
    v(None, "format"),
    b(None, "no-trunc"),
    b(Some('q'), "quiet"),
];

pub const NET_HEADERS: &[(&str, &str)] = &[
    ("CreatedAt", "CREATED AT"),
    ("Driver", "DRIVER"),
    ("ID", "NETWORK ID"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("Name", "NAME"),
    ("Scope", "SCOPE"),
];

const LS_DEFAULT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// RFC 3339 (as the daemon writes `Created`) → Go's `time.Time.String()`
/// in UTC: `2026-11-22 10:34:15.708982475 +0000 UTC`.
pub fn go_time_from_rfc3339(s: &str) -> String {
    let Some((date, rest)) = s.split_once('T') else {
        return s.to_string();
    };
    let rest = rest.strip_suffix('Z').unwrap_or(rest);
    let (clock, frac) = match rest.split_once('.') {
        Some((c, f)) => (c, f.trim_end_matches('0')),
        None => (rest, ""),
    };
    if frac.is_empty() {
        format!("{date} {clock} +0000 UTC")
    } else {
        format!("{date} {clock}.{frac} +0000 UTC")
    }
}

/// One `network ls` row, keys sorted as docker's `{{json .}}`.
pub fn net_item(n: &Value, trunc: bool) -> J {
    let s = |k: &str| n.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let bl = |k: &str| {
        n.get(k)
            .and_then(|x| x.as_bool())
            .unwrap_or(false)
            .to_string()
    };
    let id = s("Id");
    let labels = crate::jv::sorted_labels(n);
    J::Obj(vec![
        (
            "CreatedAt".into(),
            J::Str(go_time_from_rfc3339(&s("Created"))),
        ),
        ("Driver".into(), J::Str(s("Driver"))),
        (
            "ID".into(),
            J::Str(if trunc {
                id.chars().take(12).collect()
            } else {
                id
            }),
        ),
        ("IPv4".into(), J::Str(bl("EnableIPv4"))),
        ("IPv6".into(), J::Str(bl("EnableIPv6"))),
        ("Internal".into(), J::Str(bl("Internal"))),
        (
            "Labels".into(),
            J::Str(
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ),
        ("Name".into(), J::Str(s("Name"))),
        ("Scope".into(), J::Str(s("Scope"))),
        (
            "\u{0}labels".into(),
            J::Obj(labels.into_iter().map(|(k, v)| (k, J::Str(v))).collect()),
        ),
    ])
}

pub fn ls(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network ls";
    let Some(p) = parse(cmd, args, LS_FLAGS)? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(crate::args_error(cmd, "accepts no arguments"));
    }
    let quiet = p.has("quiet");
    let format = match p.get("format").unwrap_or("") {
        "" | "table" if quiet => "{{.ID}}".to_string(),
        "" | "table" => LS_DEFAULT.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    };
    let fq = filters(cmd, &p, "-f, --filter")?;
    let tp = format.strip_prefix("table").unwrap_or(&format);
    tmpl::Template::parse(tp).map_err(|e| fail(format!("template parsing error: {e}"), 1))?;
    let path = if fq.is_empty() {
        "/networks".to_string()
    } else {
        format!("/networks?{fq}")
    };
    let mut c = connect()?;
    let list = c.get_json(&path)?;
    let mut nets: Vec<&Value> = list.as_array().into_iter().flatten().collect();
    nets.sort_by(|a, b| {
        let n = |x: &Value| {
            x.get("Name")
                .and_then(|s| s.as_str())
                .unwrap_or("")
                .to_string()
        };
        n(a).cmp(&n(b))
    });
    let trunc = !p.has("no-trunc");
    let items: Vec<J> = nets.iter().map(|n| net_item(n, trunc)).collect();
    let text = render(&format, &items, NET_HEADERS, "*network.networkContext")?;
    out(&text)?;
    Ok(0)
}

// ---------------------------------------------------------------- inspect

pub fn inspect(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network inspect";
    let Some(p) = parse(
        cmd,
        args,
        &[v(Some('f'), "format"), b(Some('v'), "verbose")],
    )?
    else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(crate::args_error(cmd, "requires at least 1 argument"));
    }
    let mut a: Vec<String> = Vec::new();
    if let Some(f) = p.get("format") {
        a.push("--format".into());
        a.push(f.to_string());
    }
    if p.has("verbose") {
        a.push("--verbose".into());
    }
    a.extend(p.args.iter().cloned());
    crate::cmds::inspect_as(connect, cmd, &a, Some("network"))
}

// ---------------------------------------------------------------- rm

pub fn rm(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network rm";
    let Some(p) = parse(cmd, args, &[b(Some('f'), "force")])? else {
        return Ok(0);
    };
    if p.args.is_empty() {
        return Err(crate::args_error(cmd, "requires at least 1 argument"));
    }
    let mut c = connect()?;
    let mut failed = false;
    for name in &p.args {
        // docker looks the network up first (to ask before removing an
        // ingress network); a miss there is left to the DELETE.
        let _ = c.call("GET", &format!("/networks/{name}"), ReqBody::Empty);
        match c.call("DELETE", &format!("/networks/{name}"), ReqBody::Empty) {
            Ok(_) => out(&format!("{name}\n"))?,
            Err(e) => {
                if let Some(d) = e.downcast_ref::<DaemonError>() {
                    if p.has("force") && d.status == 404 {
                        continue;
                    }
                }
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(fail("exit status 1", 1));
    }
    Ok(0)
}

// ---------------------------------------------------------------- prune

pub fn prune(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network prune";
    let Some(p) = parse(cmd, args, &[b(Some('f'), "force"), v(None, "filter")])? else {
        return Ok(0);
    };
    if !p.args.is_empty() {
        return Err(crate::args_error(cmd, "accepts no arguments"));
    }
    let fq = filters(cmd, &p, "--filter")?;
    if !p.has("force")
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(0);
    }
    let mut c = connect()?;
    out(&prune_networks(&mut c, &fq)?)?;
    Ok(0)
}

/// Calls network prune (`fq`: a `filters=` query or ""); returns the
/// "Deleted Networks:" text docker prints.
pub fn prune_networks(c: &mut Client, fq: &str) -> Result<String> {
    let path = if fq.is_empty() {
        "/networks/prune".to_string()
    } else {
        format!("/networks/prune?{fq}")
    };
    let v = c.post(&path)?.json()?;
    Ok(crate::img::deleted_list(&v, "NetworksDeleted", "Networks"))
}

// ---------------------------------------------------------------- connect / disconnect

const CONNECT_FLAGS: &[Spec] = &[
    v(None, "ip"),
    v(None, "ip6"),
    v(None, "alias"),
    v(None, "link"),
    v(None, "link-local-ip"),
    v(None, "driver-opt"),
    v(None, "gw-priority"),
];

pub fn connect_body(p: &Parsed, container: &str) -> Result<String, String> {
    let mut e = Endpoint {
        ipv4: p.get("ip").unwrap_or("").to_string(),
        ipv6: p.get("ip6").unwrap_or("").to_string(),
        aliases: strings(p, "alias"),
        link_local: strings(p, "link-local-ip"),
        ..Default::default()
    };
    for l in p.all("link") {
        crate::netopts::validate_link(&l)
            .map_err(|m| format!("invalid argument \"{l}\" for \"--link\" flag: {m}"))?;
        e.links.push(l);
    }
    for o in strings(p, "driver-opt") {
        let (k, v) = o.split_once('=').unwrap_or((&o, ""));
        e.driver_opts.insert(k.to_string(), v.to_string());
    }
    if let Some(g) = p.get("gw-priority") {
        e.gw_priority = g.parse().map_err(|_| {
            format!("invalid argument \"{g}\" for \"--gw-priority\" flag: strconv.ParseInt: parsing {}: invalid syntax", js(g))
        })?;
    }
    Ok(format!(
        r#"{{"Container":{},"EndpointConfig":{}}}"#,
        js(container),
        e.connect_json()
    ))
}

pub fn connect_cmd(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network connect";
    let Some(p) = parse(cmd, args, CONNECT_FLAGS)? else {
        return Ok(0);
    };
    if p.args.len() != 2 {
        return Err(crate::args_error(cmd, "requires 2 arguments"));
    }
    let body = connect_body(&p, &p.args[1]).map_err(|e| crate::flag_error(cmd, &e))?;
    let mut c = connect()?;
    c.call(
        "POST",
        &format!("/networks/{}/connect", p.args[0]),
        ReqBody::Bytes("application/json", body.as_bytes()),
    )?;
    Ok(0)
}

pub fn disconnect(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let cmd = "network disconnect";
    let Some(p) = parse(cmd, args, &[b(Some('f'), "force")])? else {
        return Ok(0);
    };
    if p.args.len() != 2 {
        return Err(crate::args_error(cmd, "requires 2 arguments"));
    }
    let body = format!(
        r#"{{"Container":{},"Force":{}}}"#,
        js(&p.args[1]),
        p.has("force")
    );
    let mut c = connect()?;
    c.call(
        "POST",
        &format!("/networks/{}/disconnect", p.args[0]),
        ReqBody::Bytes("application/json", body.as_bytes()),
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    fn p(args: &[&str], specs: &[Spec]) -> Parsed {
        crate::flags::parse(&s(args), specs, true).unwrap()
    }

    // Bodies as docker CLI 28.2.2 sent them (capture 28 and a fake daemon).
    #[test]
    fn create_bodies() {
        let x = p(&["--subnet", "172.30.0.0/16", "ac-n1"], CREATE_FLAGS);
        assert_eq!(
            create_body(&x, "ac-n1", "1.41").unwrap(),
            r#"{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.30.0.0/16"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"ac-n1","CheckDuplicate":true}"#
        );
        let x = p(&["--ipv6", "x1"], CREATE_FLAGS);
        assert_eq!(
            create_body(&x, "x1", "1.50").unwrap(),
            r#"{"Driver":"bridge","Scope":"","EnableIPv6":true,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{},"Name":"x1"}"#
        );
        let x = p(
            &[
                "-d",
                "overlay",
                "--subnet",
                "10.1.0.0/16",
                "--subnet",
                "10.2.0.0/16",
                "--gateway",
                "10.1.0.1",
                "--ip-range",
                "10.1.1.0/24",
                "--aux-address",
                "a=10.1.0.5",
                "--aux-address",
                "b=10.1.0.6",
                "--internal",
                "--label",
                "k=v",
                "--label",
                "k2",
                "-o",
                "com.x=1",
                "-o",
                "y=2",
                "--attachable",
                "--ipv6",
                "x2",
            ],
            CREATE_FLAGS,
        );
        assert_eq!(
            create_body(&x, "x2", "1.41").unwrap(),
            r#"{"Driver":"overlay","Scope":"","EnableIPv6":true,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.1.0.0/16","IPRange":"10.1.1.0/24","Gateway":"10.1.0.1","AuxiliaryAddresses":{"a":"10.1.0.5","b":"10.1.0.6"}},{"Subnet":"10.2.0.0/16"}]},"Internal":true,"Attachable":true,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{"com.x":"1","y":"2"},"Labels":{"k":"v","k2":""},"Name":"x2","CheckDuplicate":true}"#
        );
        let x = p(&["--ipv6=false", "--subnet", "bad", "x"], CREATE_FLAGS);
        assert!(create_body(&x, "x", "1.41")
            .unwrap()
            .contains(r#""Scope":"","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"bad"}]}"#));
    }

    #[test]
    fn create_errors() {
        let e = |a: &[&str]| create_body(&p(a, CREATE_FLAGS), "x", "1.41").unwrap_err();
        assert_eq!(
            e(&["--gateway", "10.1.0.1"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            e(&["--subnet", "10.1.0.0/16", "--gateway", "10.2.0.1"]),
            "no matching subnet for gateway 10.2.0.1"
        );
        assert_eq!(
            e(&["--subnet", "10.1.0.0/16", "--gateway", "zz"]),
            "no matching subnet for gateway zz"
        );
        assert_eq!(
            e(&["--aux-address", "foo"]),
            "no matching subnet for aux-address "
        );
        assert_eq!(
            e(&["--subnet", "10.1.0.0/16", "--aux-address", "a=10.9.0.1"]),
            "no matching subnet for aux-address 10.9.0.1"
        );
        assert_eq!(
            e(&["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            e(&["--subnet", "bad", "--gateway", "1.2.3.4"]),
            "invalid subnet: invalid CIDR address: bad"
        );
    }

    #[test]
    fn connect_bodies() {
        assert_eq!(
            connect_body(&p(&[], CONNECT_FLAGS), "ac-nc1").unwrap(),
            r#"{"Container":"ac-nc1","EndpointConfig":{"IPAMConfig":{},"Links":null,"Aliases":[],"MacAddress":"","DriverOpts":{},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#
        );
        let x = p(
            &[
                "--ip",
                "172.30.0.9",
                "--ip6",
                "fe80::9",
                "--alias",
                "foo",
                "--alias",
                "bar",
                "--link",
                "a:b",
                "--link",
                "c",
            ],
            CONNECT_FLAGS,
        );
        assert_eq!(
            connect_body(&x, "ac-w1").unwrap(),
            r#"{"Container":"ac-w1","EndpointConfig":{"IPAMConfig":{"IPv4Address":"172.30.0.9","IPv6Address":"fe80::9"},"Links":["a:b","c"],"Aliases":["foo","bar"],"MacAddress":"","DriverOpts":{},"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#
        );
        let x = p(
            &[
                "--driver-opt",
                "x=y",
                "--gw-priority",
                "3",
                "--link-local-ip",
                "169.254.0.1",
            ],
            CONNECT_FLAGS,
        );
        assert_eq!(
            connect_body(&x, "ac-w1").unwrap(),
            r#"{"Container":"ac-w1","EndpointConfig":{"IPAMConfig":{"LinkLocalIPs":["169.254.0.1"]},"Links":null,"Aliases":[],"MacAddress":"","DriverOpts":{"x":"y"},"GwPriority":3,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}"#
        );
    }

    #[test]
    fn ls_rows() {
        let list: Value = serde_json::from_str(r#"[{"Name":"ac-n1","Id":"a6e9b9f7895b8c4ba03f9f233172751f99974a27b9a34f09bb2ccdb17b29f622","Created":"2026-11-22T10:34:15.708982475Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"Internal":false,"Labels":{}},
            {"Name":"host","Id":"fa06abef53a3dd2bab174714a30a35de7e244f30d39b1c5655df11db2608becc","Created":"2026-11-22T09:31:37.5Z","Scope":"local","Driver":"host","Labels":{"b":"2","a":"1"}}]"#).unwrap();
        let items: Vec<J> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| net_item(n, true))
            .collect();
        assert_eq!(
            render(LS_DEFAULT, &items, NET_HEADERS, "").unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\na6e9b9f7895b   ac-n1     bridge    local\nfa06abef53a3   host      host      local\n"
        );
        assert_eq!(
            render("{{json .}}", &items[..1], NET_HEADERS, "").unwrap(),
            "{\"CreatedAt\":\"2026-11-22 10:34:15.708982475 +0000 UTC\",\"Driver\":\"bridge\",\"ID\":\"a6e9b9f7895b\",\"IPv4\":\"false\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"\",\"Name\":\"ac-n1\",\"Scope\":\"local\"}\n"
        );
        assert_eq!(
            render("{{.Labels}}|{{.CreatedAt}}", &items[1..], NET_HEADERS, "").unwrap(),
            "a=1,b=2|2026-11-22 09:31:37.5 +0000 UTC\n"
        );
    }
}
