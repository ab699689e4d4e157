//! Ports: `-p`/`--expose` specs as docker's command line reads them,
//! the PORTS column of `ps`, and `berth port`.

use crate::client::Client;
use crate::jv::js;
use crate::{args_error, fail};
use anyhow::Result;
use serde_json::Value;
use std::collections::BTreeMap;

/// One `HostConfig.PortBindings` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub host_ip: String,
    pub host_port: String,
}

/// Ports exposed and bound, keyed `80/tcp`; JSON maps come out sorted
/// by key, as Go marshals them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PortSet {
    pub exposed: BTreeMap<String, ()>,
    pub bindings: BTreeMap<String, Vec<Binding>>,
}

impl PortSet {
    /// `,"ExposedPorts":{…}` for the create body, or nothing.
    pub fn exposed_json(&self) -> String {
        if self.exposed.is_empty() {
            return String::new();
        }
        let keys: Vec<String> = self
            .exposed
            .keys()
            .map(|k| format!("{}:{{}}", js(k)))
            .collect();
        format!(",\"ExposedPorts\":{{{}}}", keys.join(","))
    }

    /// The `PortBindings` object.
    pub fn bindings_json(&self) -> String {
        let parts: Vec<String> = self
            .bindings
            .iter()
            .map(|(k, bs)| {
                let v: Vec<String> = bs
                    .iter()
                    .map(|b| {
                        format!(
                            r#"{{"HostIp":{},"HostPort":{}}}"#,
                            js(&b.host_ip),
                            js(&b.host_port)
                        )
                    })
                    .collect();
                format!("{}:[{}]", js(k), v.join(","))
            })
            .collect();
        format!("{{{}}}", parts.join(","))
    }
}

/// Go's `strconv.ParseUint(s, 10, 16)` error text.
fn parse_u16(s: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.ParseUint: parsing {}: invalid syntax",
            go_q(s)
        ));
    }
    s.parse::<u16>()
        .map_err(|_| format!("strconv.ParseUint: parsing {}: value out of range", go_q(s)))
}

fn go_q(s: &str) -> String {
    js(s)
}

/// `80` or `80-90` → (start, end).
pub fn port_range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    match s.split_once('-') {
        None => {
            let p = parse_u16(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let a = parse_u16(a)?;
            let b = parse_u16(b)?;
            if b < a {
                return Err(format!("invalid range specified for port: {s}"));
            }
            Ok((a, b))
        }
    }
}

/// `80/udp` → ("udp", "80"); no protocol is tcp; extra `/…` is ignored.
pub fn split_proto(s: &str) -> (String, &str) {
    let mut it = s.split('/');
    let port = it.next().unwrap_or("");
    match it.next() {
        Some(p) if !p.is_empty() => (p.to_lowercase(), port),
        _ => ("tcp".into(), port),
    }
}

/// Go's `net.SplitHostPort`, for the host part only (errors as Go words them).
fn split_host(hostport: &str) -> Result<String, String> {
    let err = |why: &str| format!("address {hostport}: {why}");
    let last = hostport
        .rfind(':')
        .ok_or_else(|| err("missing port in address"))?;
    let (host, j, k);
    if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest
            .find(']')
            .map(|e| e + 1)
            .ok_or_else(|| err("missing ']' in address"))?;
        if end + 1 == hostport.len() {
            return Err(err("missing port in address"));
        } else if end + 1 != last {
            if hostport.as_bytes()[end + 1] == b':' {
                return Err(err("too many colons in address"));
            }
            return Err(err("missing port in address"));
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..last];
        if host.contains(':') {
            return Err(err("too many colons in address"));
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if hostport[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok(host.to_string())
}

pub fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// One `-p` value into `set`; errors are docker's texts.
pub fn add_publish(set: &mut PortSet, spec: &str) -> Result<(), String> {
    let (proto, raw) = split_proto(spec);
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (mut ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    if ip.starts_with('[') {
        ip = split_host(&format!("{ip}:")).map_err(|e| format!("invalid IP address {ip}: {e}"))?;
    }
    if !ip.is_empty() && !is_ip(&ip) {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!(
            "no port specified: {}<empty>",
            &raw[..raw.len() - container.len()]
        ));
    }
    let (cs, ce) =
        port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hs, he) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && (ce - cs) != (he - hs) && ce != cs {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    for i in 0..=(ce - cs) {
        let key = format!("{}/{proto}", cs + i);
        let host_port = if host.is_empty() {
            String::new()
        } else if ce == cs && he != hs {
            format!("{hs}-{he}")
        } else {
            (hs + i).to_string()
        };
        set.exposed.insert(key.clone(), ());
        set.bindings.entry(key).or_default().push(Binding {
            host_ip: ip.clone(),
            host_port,
        });
    }
    Ok(())
}

/// One `--expose` value (`80`, `80/udp`, `80-90`) into `set`.
pub fn add_expose(set: &mut PortSet, spec: &str) -> Result<(), String> {
    if spec.contains(':') {
        return Err(format!("invalid port format for --expose: {spec}"));
    }
    let (proto, port) = split_proto(spec);
    let (s, e) = port_range(port)
        .map_err(|err| format!("invalid range format for --expose: {spec}, error: {err}"))?;
    for p in s..=e {
        set.exposed.insert(format!("{p}/{proto}"), ());
    }
    Ok(())
}

/// `host:port` with IPv6 hosts in brackets, as Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A `ps` Ports entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsPort {
    pub ip: String,
    pub private: u16,
    pub public: u16,
    pub typ: String,
}

pub fn ps_ports(v: &Value) -> Vec<PsPort> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| PsPort {
            ip: p.get("IP").and_then(|x| x.as_str()).unwrap_or("").into(),
            private: p.get("PrivatePort").and_then(|x| x.as_u64()).unwrap_or(0) as u16,
            public: p.get("PublicPort").and_then(|x| x.as_u64()).unwrap_or(0) as u16,
            typ: p.get("Type").and_then(|x| x.as_str()).unwrap_or("").into(),
        })
        .collect()
}

/// The PORTS column: consecutive ports with the same address and protocol
/// (and the same number outside and in) become one `a-b` run; mappings to
/// another host port are listed one by one, after the runs.
pub fn display_ports(ports: &[PsPort]) -> String {
    let mut ps = ports.to_vec();
    ps.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.typ).cmp(&(b.private, &b.ip, b.public, &b.typ))
    });
    // runs in the order their group first appeared: (ip, typ, first, last)
    let mut open: Vec<(String, String, u16, u16)> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    let mut mapped: Vec<String> = Vec::new();
    let show = |ip: &str, typ: &str, a: u16, b: u16| {
        let r = if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        };
        if ip.is_empty() {
            format!("{r}/{typ}")
        } else {
            format!("{}->{r}/{typ}", join_host_port(ip, &r))
        }
    };
    for p in &ps {
        if !p.ip.is_empty() && p.public != p.private {
            mapped.push(format!(
                "{}->{}/{}",
                join_host_port(&p.ip, &p.public.to_string()),
                p.private,
                p.typ
            ));
            continue;
        }
        match open.iter_mut().find(|g| g.0 == p.ip && g.1 == p.typ) {
            None => open.push((p.ip.clone(), p.typ.clone(), p.private, p.private)),
            Some(g) if g.3.checked_add(1) == Some(p.private) => g.3 = p.private,
            Some(g) => {
                done.push(show(&g.0, &g.1, g.2, g.3));
                g.2 = p.private;
                g.3 = p.private;
            }
        }
    }
    for g in &open {
        done.push(show(&g.0, &g.1, g.2, g.3));
    }
    done.extend(mapped);
    done.join(", ")
}

/// Sort key for `80/tcp`: number, then protocol.
fn port_key(k: &str) -> (u32, String) {
    let (proto, port) = split_proto(k);
    (port.parse().unwrap_or(u32::MAX), proto)
}

/// `berth port` output from an inspect body; `Err` is the message.
pub fn port_lines(info: &Value, name: &str, want: Option<&str>) -> Result<String, String> {
    let ports = info
        .pointer("/NetworkSettings/Ports")
        .and_then(|p| p.as_object());
    let bindings = |key: &str| -> Vec<String> {
        ports
            .and_then(|m| m.get(key))
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .map(|b| {
                join_host_port(
                    b.get("HostIp").and_then(|x| x.as_str()).unwrap_or(""),
                    b.get("HostPort").and_then(|x| x.as_str()).unwrap_or(""),
                )
            })
            .collect()
    };
    let mut out = String::new();
    match want {
        Some(w) => {
            let (proto, port) = match w.split_once('/') {
                Some((p, pr)) => (pr.to_string(), p),
                None => ("tcp".to_string(), w),
            };
            let n = port.parse::<u16>().map_err(|_| {
                let why = parse_u16(port).err().unwrap_or_default();
                format!("Error: invalid port ({port}): {why}")
            })?;
            let b = bindings(&format!("{n}/{proto}"));
            if b.is_empty() {
                return Err(format!("Error: No public port '{w}' published for {name}"));
            }
            for h in b {
                out.push_str(&h);
                out.push('\n');
            }
        }
        None => {
            let mut keys: Vec<&String> = ports.map(|m| m.keys().collect()).unwrap_or_default();
            keys.sort_by_key(|k| port_key(k));
            for k in keys {
                for h in bindings(k) {
                    out.push_str(&format!("{k} -> {h}\n"));
                }
            }
        }
    }
    Ok(out)
}

pub const PORT_HELP: &str = "Usage:  berth port CONTAINER [PRIVATE_PORT[/PROTO]]

List port mappings or a specific mapping for the container

Aliases:
  berth container port, berth port
";

pub fn port(connect: impl Fn() -> Result<Client>, args: &[String]) -> Result<i32> {
    let p = crate::flags::parse(args, &[], true).map_err(|e| crate::flag_error("port", &e))?;
    if p.help {
        // the first usage line names the command as invoked (`container port`)
        print!(
            "{}",
            PORT_HELP.replacen("berth port", &format!("berth {}", crate::shown("port")), 1)
        );
        return Ok(0);
    }
    if p.args.is_empty() || p.args.len() > 2 {
        return Err(args_error(
            "port",
            "requires at least 1 and at most 2 arguments",
        ));
    }
    let name = &p.args[0];
    let mut c = connect()?;
    let info = c.get_json(&format!("/containers/{name}/json"))?;
    match port_lines(&info, name, p.args.get(1).map(String::as_str)) {
        Ok(t) => {
            crate::img::out(&t)?;
            Ok(0)
        }
        Err(m) => Err(fail(m, 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(specs: &[&str]) -> Result<PortSet, String> {
        let mut s = PortSet::default();
        for p in specs {
            add_publish(&mut s, p)?;
        }
        Ok(s)
    }

    fn b(ip: &str, port: &str) -> Binding {
        Binding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    // Bodies as docker CLI 28.2.2 sent them (recorded with a fake daemon).
    #[test]
    fn publish_forms() {
        let s = publish(&["8080:80"]).unwrap();
        assert_eq!(s.exposed_json(), r#","ExposedPorts":{"80/tcp":{}}"#);
        assert_eq!(
            s.bindings_json(),
            r#"{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}"#
        );
        let s = publish(&["127.0.0.1:8080:80", "127.0.0.1::80", "81", "82/udp"]).unwrap();
        assert_eq!(
            s.bindings_json(),
            r#"{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":""}],"81/tcp":[{"HostIp":"","HostPort":""}],"82/udp":[{"HostIp":"","HostPort":""}]}"#
        );
        let s = publish(&["8000-8002:80-82"]).unwrap();
        assert_eq!(s.bindings["81/tcp"], vec![b("", "8001")]);
        assert_eq!(s.bindings["82/tcp"], vec![b("", "8002")]);
        let s = publish(&["[::1]:80:80", "::1:90:90"]).unwrap();
        assert_eq!(s.bindings["80/tcp"], vec![b("::1", "80")]);
        assert_eq!(s.bindings["90/tcp"], vec![b("::1", "90")]);
        let s = publish(&["8000-8002:80"]).unwrap();
        assert_eq!(s.bindings["80/tcp"], vec![b("", "8000-8002")]);
        let s = publish(&["[::1]::80", "80-82", "127.0.0.1:8000-8001:80-81/udp"]).unwrap();
        assert_eq!(
            s.exposed_json(),
            r#","ExposedPorts":{"80/tcp":{},"80/udp":{},"81/tcp":{},"81/udp":{},"82/tcp":{}}"#
        );
        assert_eq!(s.bindings["80/tcp"], vec![b("::1", ""), b("", "")]);
        assert_eq!(s.bindings["81/udp"], vec![b("127.0.0.1", "8001")]);
        let s = publish(&["80/tcp/x", "90/TCP", "91/sctp", ":92", "0:93"]).unwrap();
        assert!(s.exposed.contains_key("80/tcp") && s.exposed.contains_key("90/tcp"));
        assert!(s.exposed.contains_key("91/sctp"));
        assert_eq!(s.bindings["92/tcp"], vec![b("", "")]);
        assert_eq!(s.bindings["93/tcp"], vec![b("", "0")]);
    }

    #[test]
    fn publish_errors() {
        let e = |s: &str| publish(&[s]).unwrap_err();
        assert_eq!(e("99999:80"), "invalid hostPort: 99999");
        assert_eq!(e("80:99999"), "invalid containerPort: 99999");
        assert_eq!(e("abc"), "invalid containerPort: abc");
        assert_eq!(e("80/xyz"), "invalid proto: xyz");
        assert_eq!(e("1.2.3:80:80"), "invalid IP address: 1.2.3");
        assert_eq!(
            e("8000-8002:80-81"),
            "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"
        );
        assert_eq!(e("8000-7000:80"), "invalid hostPort: 8000-7000");
        assert_eq!(e("80-70"), "invalid containerPort: 80-70");
        assert_eq!(e("80:"), "no port specified: 80:<empty>");
        assert_eq!(e(""), "no port specified: <empty>");
        assert_eq!(e("127.0.0.1:80"), "invalid hostPort: 127.0.0.1");
        assert_eq!(e("1:2:3:4"), "invalid IP address: 1:2");
        assert_eq!(
            e("[::1]:80"),
            "invalid IP address [:: address [::: missing ']' in address"
        );
        assert_eq!(e("[zz]:80:80"), "invalid IP address: zz");
    }

    #[test]
    fn expose() {
        let mut s = PortSet::default();
        for x in ["81", "100-102/udp", "80/xyz"] {
            add_expose(&mut s, x).unwrap();
        }
        assert_eq!(
            s.exposed_json(),
            r#","ExposedPorts":{"100/udp":{},"101/udp":{},"102/udp":{},"80/xyz":{},"81/tcp":{}}"#
        );
        let e = |x: &str| add_expose(&mut PortSet::default(), x).unwrap_err();
        assert_eq!(
            e("abc"),
            r#"invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax"#
        );
        assert_eq!(
            e("80-x"),
            r#"invalid range format for --expose: 80-x, error: strconv.ParseUint: parsing "x": invalid syntax"#
        );
        assert_eq!(e("80:90"), "invalid port format for --expose: 80:90");
    }

    fn pp(ip: &str, private: u16, public: u16, typ: &str) -> PsPort {
        PsPort {
            ip: ip.into(),
            private,
            public,
            typ: typ.into(),
        }
    }

    // PORTS columns exactly as docker 28.2.2 printed them for these lists.
    #[test]
    fn ps_ports_column() {
        assert_eq!(
            display_ports(&[pp("0.0.0.0", 80, 8080, "tcp"), pp("::", 80, 8080, "tcp")]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(
            display_ports(&[
                pp("0.0.0.0", 81, 32770, "tcp"),
                pp("::", 81, 32770, "tcp"),
                pp("127.0.0.1", 82, 32768, "udp")
            ]),
            "0.0.0.0:32770->81/tcp, [::]:32770->81/tcp, 127.0.0.1:32768->82/udp"
        );
        let l = [
            pp("0.0.0.0", 80, 8000, "tcp"),
            pp("::", 80, 8000, "tcp"),
            pp("0.0.0.0", 81, 8001, "tcp"),
            pp("::", 81, 8001, "tcp"),
            pp("0.0.0.0", 82, 8002, "tcp"),
            pp("", 90, 0, "tcp"),
            pp("", 91, 0, "tcp"),
            pp("", 92, 0, "tcp"),
            pp("", 100, 0, "udp"),
            pp("127.0.0.1", 53, 5353, "udp"),
            pp("0.0.0.0", 84, 8005, "tcp"),
            pp("0.0.0.0", 85, 8006, "tcp"),
            pp("::1", 443, 8443, "tcp"),
            pp("", 94, 0, "tcp"),
        ];
        assert_eq!(display_ports(&l), "90-92/tcp, 94/tcp, 100/udp, 127.0.0.1:5353->53/udp, 0.0.0.0:8000->80/tcp, [::]:8000->80/tcp, 0.0.0.0:8001->81/tcp, [::]:8001->81/tcp, 0.0.0.0:8002->82/tcp, 0.0.0.0:8005->84/tcp, 0.0.0.0:8006->85/tcp, [::1]:8443->443/tcp");
        let l = [
            pp("0.0.0.0", 80, 80, "tcp"),
            pp("0.0.0.0", 81, 81, "tcp"),
            pp("::", 80, 80, "tcp"),
            pp("::", 81, 81, "tcp"),
            pp("0.0.0.0", 83, 83, "tcp"),
            pp("0.0.0.0", 82, 82, "udp"),
            pp("0.0.0.0", 84, 84, "tcp"),
            pp("", 79, 0, "tcp"),
            pp("", 80, 0, "tcp"),
        ];
        assert_eq!(display_ports(&l), "0.0.0.0:80-81->80-81/tcp, 79-80/tcp, 0.0.0.0:83-84->83-84/tcp, [::]:80-81->80-81/tcp, 0.0.0.0:82->82/udp");
        assert_eq!(display_ports(&[]), "");
    }

    #[test]
    fn port_command_output() {
        let info: Value = serde_json::from_str(
            r#"{"NetworkSettings":{"Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8000"},{"HostIp":"::","HostPort":"8000"}],
            "443/tcp":[{"HostIp":"::1","HostPort":"8443"}],"90/tcp":null,"91/udp":[],"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            port_lines(&info, "c3", None).unwrap(),
            "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8000\n80/tcp -> [::]:8000\n443/tcp -> [::1]:8443\n"
        );
        assert_eq!(
            port_lines(&info, "c3", Some("80")).unwrap(),
            "0.0.0.0:8000\n[::]:8000\n"
        );
        assert_eq!(
            port_lines(&info, "c3", Some("443/tcp")).unwrap(),
            "[::1]:8443\n"
        );
        assert_eq!(
            port_lines(&info, "c3", Some("90")).unwrap_err(),
            "Error: No public port '90' published for c3"
        );
        assert_eq!(
            port_lines(&info, "c3", Some("91/udp")).unwrap_err(),
            "Error: No public port '91/udp' published for c3"
        );
        assert_eq!(
            port_lines(&info, "c3", Some("abc")).unwrap_err(),
            r#"Error: invalid port (abc): strconv.ParseUint: parsing "abc": invalid syntax"#
        );
    }
}
