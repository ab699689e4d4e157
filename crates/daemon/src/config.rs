//! `daemon.json`: docker's configuration file keys, read at start (`--config-file`, default
//! `/etc/berth/daemon.json`), by `--validate`, and again on `SIGHUP`. Pure parsing and
//! checking; no syscalls, so it is tested without root.

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where berthd looks when `--config-file` is not given (a missing file there is fine).
pub const DEFAULT_FILE: &str = "/etc/berth/daemon.json";

/// One `default-address-pools` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub base: String,
    pub size: u32,
}

/// The keys berthd reads from `daemon.json`, docker's names and meanings. Absent = not set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    pub data_root: Option<PathBuf>,
    pub exec_root: Option<PathBuf>,
    pub hosts: Option<Vec<String>>,
    pub pidfile: Option<PathBuf>,
    pub group: Option<String>,
    pub log_level: Option<String>,
    pub debug: Option<bool>,
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub mtu: Option<u32>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_opts: Option<Vec<String>>,
    pub default_address_pools: Option<Vec<Pool>>,
    pub registry_mirrors: Option<Vec<String>>,
    pub insecure_registries: Option<Vec<String>>,
    pub max_concurrent_downloads: Option<i64>,
    pub max_concurrent_uploads: Option<i64>,
    pub max_download_attempts: Option<i64>,
    pub log_driver: Option<String>,
    pub log_opts: Option<BTreeMap<String, String>>,
    pub default_ulimits: Option<BTreeMap<String, Value>>,
    pub default_shm_size: Option<String>,
    pub live_restore: Option<bool>,
    pub labels: Option<Vec<String>>,
    pub userns_remap: Option<String>,
    pub seccomp_profile: Option<String>,
    pub no_new_privileges: Option<bool>,
    pub shutdown_timeout: Option<i64>,
    pub cluster_store: Option<String>,
    pub cluster_advertise: Option<String>,
    pub cluster_store_opts: Option<BTreeMap<String, String>>,
    pub features: Option<BTreeMap<String, bool>>,
    pub storage_driver: Option<String>,
    pub experimental: Option<bool>,
}

/// Every key the file may hold.
pub const KEYS: &[&str] = &[
    "data-root",
    "exec-root",
    "hosts",
    "pidfile",
    "group",
    "log-level",
    "debug",
    "bridge",
    "bip",
    "fixed-cidr",
    "mtu",
    "dns",
    "dns-search",
    "dns-opts",
    "default-address-pools",
    "registry-mirrors",
    "insecure-registries",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "log-driver",
    "log-opts",
    "default-ulimits",
    "default-shm-size",
    "live-restore",
    "labels",
    "userns-remap",
    "seccomp-profile",
    "no-new-privileges",
    "shutdown-timeout",
    "cluster-store",
    "cluster-advertise",
    "cluster-store-opts",
    "features",
    "storage-driver",
    "experimental",
];

/// The keys dockerd applies on `SIGHUP`; any other key changed in the file is ignored (logged).
pub const RELOADABLE: &[&str] = &[
    "debug",
    "log-level",
    "labels",
    "registry-mirrors",
    "insecure-registries",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "max-download-attempts",
    "live-restore",
    "default-ulimits",
    "default-shm-size",
    "shutdown-timeout",
    "features",
    "cluster-store",
    "cluster-advertise",
    "cluster-store-opts",
];

/// The file, parsed and checked, with the raw JSON of each key (for conflict texts and for
/// telling which keys a reload changed).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub cfg: FileConfig,
    pub raw: serde_json::Map<String, Value>,
}

/// Reads `path`. `Ok(None)` when `path` is the default file and it does not exist.
pub fn load(path: &Path, explicit: bool) -> Result<Option<Loaded>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(wrap(path, &format!("open {}: {e}", path.display()))),
    };
    parse(&text).map(Some).map_err(|e| wrap(path, &e))
}

/// dockerd's frame for every file error.
pub fn wrap(path: &Path, e: &str) -> String {
    format!(
        "unable to configure the Docker daemon with file {}: {e}",
        path.display()
    )
}

/// Parses and checks the text of a `daemon.json`.
pub fn parse(text: &str) -> Result<Loaded, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(raw) = v else {
        return Err("the configuration file must hold a JSON object ({\"key\": value, …})".into());
    };
    let unknown: Vec<&str> = raw
        .keys()
        .map(String::as_str)
        .filter(|k| !KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "the following directives don't match any configuration option: {}",
            unknown.join(", ")
        ));
    }
    // key by key, so a wrong type names its key
    for (k, v) in &raw {
        let mut one = serde_json::Map::new();
        one.insert(k.clone(), v.clone());
        serde_json::from_value::<FileConfig>(Value::Object(one))
            .map_err(|e| format!("invalid value for \"{k}\": {e}"))?;
    }
    let cfg: FileConfig =
        serde_json::from_value(Value::Object(raw.clone())).map_err(|e| e.to_string())?;
    validate(&cfg).map_err(|e| format!("configuration validation from file failed: {e}"))?;
    Ok(Loaded { cfg, raw })
}

/// dockerd's value checks (its texts).
fn validate(c: &FileConfig) -> Result<(), String> {
    if let Some(n) = c.max_concurrent_downloads {
        if n < 0 {
            return Err(format!("invalid max concurrent downloads: {n}"));
        }
    }
    if let Some(n) = c.max_concurrent_uploads {
        if n < 0 {
            return Err(format!("invalid max concurrent uploads: {n}"));
        }
    }
    if let Some(n) = c.max_download_attempts {
        if n < 0 {
            return Err(format!("invalid max download attempts: {n}"));
        }
    }
    if let Some(d) = &c.storage_driver {
        check_storage_driver(d)?;
    }
    if let Some(l) = &c.log_level {
        parse_level(l)?;
    }
    for l in c.labels.iter().flatten() {
        if !l.contains('=') || l.starts_with('=') {
            return Err(format!("bad attribute format: {l}"));
        }
    }
    for m in c.registry_mirrors.iter().flatten() {
        validate_mirror(m)?;
    }
    for r in c.insecure_registries.iter().flatten() {
        berth_registry::validate_insecure(r).map_err(|e| e.to_string())?;
    }
    for (name, u) in c.default_ulimits.iter().flatten() {
        let n = |k: &str| u.get(k).and_then(Value::as_i64);
        match (n("Soft"), n("Hard")) {
            (Some(s), Some(h)) if s <= h => {}
            (Some(s), Some(h)) => {
                return Err(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {s} > {h}"
                ))
            }
            _ => {
                return Err(format!(
                    "invalid default-ulimits entry {name:?}: needs Soft and Hard"
                ))
            }
        }
    }
    if let Some(s) = &c.default_shm_size {
        parse_size(s).ok_or_else(|| format!("invalid size: '{s}'"))?;
    }
    for p in c.default_address_pools.iter().flatten() {
        let bits = p
            .base
            .split_once('/')
            .and_then(|(ip, b)| {
                ip.parse::<std::net::Ipv4Addr>().ok()?;
                b.parse::<u32>().ok()
            })
            .ok_or_else(|| format!("invalid base pool {:?}", p.base))?;
        if p.size < bits || p.size > 32 {
            return Err(format!(
                "invalid pools size {} for base {} (it must be between {bits} and 32)",
                p.size, p.base
            ));
        }
    }
    Ok(())
}

/// berth stores layers with overlay2 only.
pub fn check_storage_driver(d: &str) -> Result<(), String> {
    if d == "overlay2" {
        Ok(())
    } else {
        Err(format!(
            "error initializing graphdriver: driver not supported: {d} (berth supports overlay2)"
        ))
    }
}

/// A registry mirror: `http://` or `https://` (dockerd's text otherwise).
pub fn validate_mirror(m: &str) -> Result<(), String> {
    match m.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() => Ok(()),
        Some((scheme, _)) => Err(format!(
            "invalid mirror: unsupported scheme {scheme:?} in {m:?}"
        )),
        None => Err(format!("invalid mirror: unsupported scheme \"\" in {m:?}")),
    }
}

/// docker's log levels; `fatal` and `panic` log as errors here.
pub fn parse_level(l: &str) -> Result<&'static str, String> {
    Ok(match l {
        "debug" | "trace" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => return Err(format!("unable to parse logging level: {l}")),
    })
}

/// docker's sizes: `67108864`, `64m`, `64MB`, `1g` (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

/// Go's `%v` of a JSON value (how dockerd prints a file value in the conflict text).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Null => "<nil>".into(),
        other => other.to_string(),
    }
}

/// dockerd's refusal of keys given both ways. `flags` holds, for each key set on the command
/// line, the flag's value as dockerd prints it.
pub fn conflicts(
    raw: &serde_json::Map<String, Value>,
    flags: &[(&str, String)],
) -> Result<(), String> {
    let both: Vec<String> = flags
        .iter()
        .filter_map(|(k, fv)| {
            raw.get(*k)
                .map(|v| format!("{k}: (from flag: {fv}, from file: {})", go_value(v)))
        })
        .collect();
    if both.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            both.join(", ")
        ))
    }
}

/// The file's keys whose value a reload would change but dockerd does not reload.
pub fn ignored_on_reload(
    old: &serde_json::Map<String, Value>,
    new: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let mut keys: Vec<String> = old.keys().chain(new.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !RELOADABLE.contains(&k.as_str()) && old.get(k) != new.get(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses() {
        let l = parse(
            r#"{"data-root":"/d","exec-root":"/e","hosts":["unix:///s"],"bridge":"b0",
            "bip":"10.9.0.1/24","fixed-cidr":"10.9.0.0/25","mtu":1400,"dns":["1.1.1.1"],
            "dns-search":["x"],"dns-opts":["ndots:2"],
            "default-address-pools":[{"base":"10.10.0.0/16","size":24}],
            "registry-mirrors":["https://m.example"],"insecure-registries":["r:5000"],
            "max-concurrent-downloads":4,"max-concurrent-uploads":2,"log-driver":"json-file",
            "log-opts":{"max-size":"10m"},"log-level":"warn","debug":true,
            "default-ulimits":{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}},
            "default-shm-size":"128M","live-restore":true,"labels":["a=b"],
            "userns-remap":"default","seccomp-profile":"/p.json","cluster-store":"consul://x",
            "cluster-advertise":"eth0:2376","features":{"buildkit":true},"shutdown-timeout":30}"#,
        )
        .expect("parse");
        assert_eq!(l.cfg.mtu, Some(1400));
        assert_eq!(l.cfg.data_root, Some(PathBuf::from("/d")));
        assert_eq!(
            l.cfg.default_address_pools,
            Some(vec![Pool {
                base: "10.10.0.0/16".into(),
                size: 24
            }])
        );
        assert_eq!(l.cfg.features.as_ref().map(|f| f["buildkit"]), Some(true));
        assert_eq!(parse_size("128M"), Some(128 << 20));
        assert_eq!(l.raw.len(), 29);
    }

    #[test]
    fn unknown_keys_are_all_named() {
        let e = parse(r#"{"debug":true,"foo":1,"bar":2}"#).expect_err("unknown");
        assert_eq!(
            e,
            "the following directives don't match any configuration option: bar, foo"
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let e = parse("{\"debug\":true,\n \"bip\": }").expect_err("bad");
        assert!(e.contains("line 2 column"), "{e}");
        let e = parse("").expect_err("empty");
        assert!(e.contains("EOF"), "{e}");
        let e = parse("[1]").expect_err("array");
        assert!(e.contains("JSON object"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let e = parse(r#"{"debug":"yes"}"#).expect_err("type");
        assert!(e.starts_with("invalid value for \"debug\": "), "{e}");
        assert!(e.contains("boolean"), "{e}");
    }

    #[test]
    fn dockers_value_checks() {
        assert_eq!(
            parse(r#"{"max-concurrent-downloads":-1}"#).expect_err("neg"),
            "configuration validation from file failed: invalid max concurrent downloads: -1"
        );
        assert_eq!(
            parse(r#"{"log-level":"nope"}"#).expect_err("level"),
            "configuration validation from file failed: unable to parse logging level: nope"
        );
        assert_eq!(
            parse(r#"{"registry-mirrors":["ftp://x"]}"#).expect_err("mirror"),
            "configuration validation from file failed: invalid mirror: unsupported scheme \"ftp\" in \"ftp://x\""
        );
        assert!(parse(r#"{"labels":["nokey"]}"#).is_err());
        assert!(parse(r#"{"storage-driver":"overlay2","experimental":true}"#).is_ok());
        assert!(parse(r#"{"storage-driver":"devicemapper"}"#).is_err());
        assert!(parse(r#"{"default-ulimits":{"nofile":{"Soft":9,"Hard":1}}}"#).is_err());
        assert!(parse(r#"{"default-ulimits":{"nofile":{"Name":"nofile"}}}"#).is_err());
        assert!(parse(r#"{"default-address-pools":[{"base":"10.0.0.0/16","size":8}]}"#).is_err());
    }

    #[test]
    fn conflict_text_is_dockerds() {
        let l = parse(r#"{"data-root":"/x","labels":["a=b","c=d"]}"#).expect("parse");
        let e = conflicts(
            &l.raw,
            &[
                ("data-root", "/y".to_string()),
                ("debug", "true".to_string()),
            ],
        )
        .expect_err("conflict");
        assert_eq!(
            e,
            "the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /y, from file: /x)"
        );
        assert_eq!(go_value(&l.raw["labels"]), "[a=b c=d]");
        assert!(conflicts(&l.raw, &[("debug", "true".into())]).is_ok());
    }

    #[test]
    fn missing_default_file_is_fine_but_a_named_one_is_not() {
        let p = Path::new("/nonexistent-berth/daemon.json");
        assert!(matches!(load(p, false), Ok(None)));
        let e = load(p, true).expect_err("explicit");
        assert!(e.starts_with(
            "unable to configure the Docker daemon with file /nonexistent-berth/daemon.json: open /nonexistent-berth/daemon.json: "
        ), "{e}");
    }

    #[test]
    fn reload_ignores_changed_static_keys() {
        let a = parse(r#"{"bip":"10.1.0.1/24","debug":false}"#).expect("a");
        let b = parse(r#"{"bip":"10.2.0.1/24","debug":true,"mtu":1400}"#).expect("b");
        assert_eq!(ignored_on_reload(&a.raw, &b.raw), vec!["bip", "mtu"]);
    }
}
