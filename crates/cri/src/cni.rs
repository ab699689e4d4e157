//! CNI: the network configuration from the conf dir, and running its plugins (ADD / DEL) the
//! way the CNI specification says: the plugin binary, `CNI_*` variables, the configuration
//! on stdin, the result (or an error object) on stdout.

use crate::{Error, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// A network configuration list (a single `.conf` is made into a list of one).
#[derive(Debug, Clone)]
pub struct NetConf {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Value>,
    /// as read
    pub raw: Value,
}

/// Parses a `.conflist` or a single plugin's `.conf`.
pub fn parse(text: &str) -> Result<NetConf> {
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("invalid CNI configuration: {e}")))?;
    let name = raw["name"].as_str().unwrap_or("").to_string();
    let cni_version = raw["cniVersion"].as_str().unwrap_or("0.4.0").to_string();
    let plugins = match raw.get("plugins") {
        Some(Value::Array(p)) => p.clone(),
        Some(_) => return Err(Error::InvalidArgument("CNI plugins must be a list".into())),
        None if raw.get("type").is_some() => vec![raw.clone()],
        None => {
            return Err(Error::InvalidArgument(
                "CNI configuration has no plugin".into(),
            ))
        }
    };
    if name.is_empty() {
        return Err(Error::InvalidArgument(
            "CNI configuration has no name".into(),
        ));
    }
    if plugins
        .iter()
        .any(|p| p["type"].as_str().unwrap_or("").is_empty())
    {
        return Err(Error::InvalidArgument("a CNI plugin has no type".into()));
    }
    Ok(NetConf {
        name,
        cni_version,
        plugins,
        raw,
    })
}

/// The first configuration in `dir` by file name (kubelet's and containerd's rule).
pub fn load(dir: &Path) -> Result<NetConf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::FailedPrecondition(format!("{}: {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|x| x.to_str()),
                Some("conf" | "conflist" | "json")
            )
        })
        .collect();
    files.sort();
    let first = files.first().ok_or_else(|| {
        Error::FailedPrecondition(format!("no network config found in {}", dir.display()))
    })?;
    parse(&std::fs::read_to_string(first)?)
}

/// What a plugin call is about.
pub struct Call<'a> {
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    /// `K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;…`
    pub args: String,
    /// port mappings for plugins with the `portMappings` capability
    pub port_mappings: Vec<Value>,
}

/// One plugin's stdin: its own configuration with the list's name and version, the previous
/// result, and the runtime config of the capabilities it declares.
pub fn plugin_input(conf: &NetConf, plugin: &Value, prev: Option<&Value>, call: &Call) -> Value {
    let mut p = plugin.clone();
    p["name"] = json!(conf.name);
    p["cniVersion"] = json!(conf.cni_version);
    if let Some(prev) = prev {
        p["prevResult"] = prev.clone();
    }
    if p["capabilities"]["portMappings"].as_bool() == Some(true) {
        p["runtimeConfig"] = json!({"portMappings": call.port_mappings});
    }
    if let Some(m) = p.as_object_mut() {
        m.remove("capabilities");
    }
    p
}

fn find_plugin(bin_dirs: &[PathBuf], kind: &str) -> Result<PathBuf> {
    if kind.contains('/') {
        return Err(Error::InvalidArgument(format!(
            "invalid CNI plugin type {kind:?}"
        )));
    }
    bin_dirs
        .iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "failed to find plugin {kind:?} in path {:?}",
                bin_dirs
            ))
        })
}

async fn exec(
    bin_dirs: &[PathBuf],
    command: &str,
    input: &Value,
    call: &Call<'_>,
) -> Result<Option<Value>> {
    let kind = input["type"].as_str().unwrap_or("");
    let bin = find_plugin(bin_dirs, kind)?;
    let path = std::env::join_paths(bin_dirs).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let mut child = tokio::process::Command::new(&bin)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", &call.args)
        .env("CNI_PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Internal(format!("running CNI plugin {}: {e}", bin.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&serde_json::to_vec(input)?).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let msg = match v["msg"].as_str() {
            Some(m) => format!("{m} {}", v["details"].as_str().unwrap_or("")),
            None => String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        return Err(Error::Internal(format!(
            "plugin type={kind:?} failed ({command}): {}",
            msg.trim()
        )));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(&out.stdout)?))
}

/// ADD through every plugin of the list; the last result. A failure undoes what was added.
pub async fn add(conf: &NetConf, bin_dirs: &[PathBuf], call: &Call<'_>) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for plugin in &conf.plugins {
        let input = plugin_input(conf, plugin, prev.as_ref(), call);
        match exec(bin_dirs, "ADD", &input, call).await {
            Ok(Some(r)) => prev = Some(r),
            Ok(None) => {}
            Err(e) => {
                let _ = del(conf, bin_dirs, call, prev.as_ref()).await;
                return Err(e);
            }
        }
    }
    prev.ok_or_else(|| Error::Internal("CNI ADD gave no result".into()))
}

/// DEL through every plugin, in reverse order; every plugin is tried, the first error told.
pub async fn del(
    conf: &NetConf,
    bin_dirs: &[PathBuf],
    call: &Call<'_>,
    prev: Option<&Value>,
) -> Result<()> {
    let mut first = None;
    for plugin in conf.plugins.iter().rev() {
        let input = plugin_input(conf, plugin, prev, call);
        if let Err(e) = exec(bin_dirs, "DEL", &input, call).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// The addresses of a result (`ips[].address` without the prefix length), IPv4 first.
pub fn result_ips(result: &Value) -> Vec<String> {
    let mut ips: Vec<String> = result["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ip| ip["address"].as_str())
        .map(|a| a.split('/').next().unwrap_or(a).to_string())
        .collect();
    ips.sort_by_key(|a| a.contains(':'));
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_single_confs() {
        let l = parse(r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#).unwrap();
        assert_eq!((l.name.as_str(), l.plugins.len()), ("n", 2));
        let s = parse(r#"{"cniVersion":"0.4.0","name":"one","type":"bridge"}"#).unwrap();
        assert_eq!(s.plugins.len(), 1);
        assert!(parse(r#"{"name":"x"}"#).is_err());
        assert!(parse(r#"{"plugins":[{"type":"bridge"}]}"#).is_err());
        assert!(parse("nope").is_err());
        let call = Call {
            container_id: "c",
            netns: "/proc/1/ns/net",
            ifname: "eth0",
            args: String::new(),
            port_mappings: vec![json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})],
        };
        let prev = json!({"ips": [{"address": "10.1.0.2/24"}]});
        let i = plugin_input(&l, &l.plugins[1], Some(&prev), &call);
        assert_eq!(i["name"], "n");
        assert_eq!(i["prevResult"], prev);
        assert_eq!(i["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
        assert!(i.get("capabilities").is_none());
        let i = plugin_input(&l, &l.plugins[0], None, &call);
        assert!(i.get("runtimeConfig").is_none() && i.get("prevResult").is_none());
    }

    #[test]
    fn result_addresses() {
        let r = json!({"ips": [{"address": "fd00::2/64"}, {"address": "10.1.0.2/24"}]});
        assert_eq!(result_ips(&r), ["10.1.0.2", "fd00::2"]);
        assert!(result_ips(&json!({})).is_empty());
        assert!(find_plugin(&[PathBuf::from("/nonexistent")], "bridge").is_err());
        assert!(find_plugin(&[PathBuf::from("/usr/lib/cni")], "../x").is_err());
    }
}
