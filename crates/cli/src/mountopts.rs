//! `run`/`create` storage flags as docker CLI 28 sends them: `-v/--volume` (binds and named
//! volumes into `HostConfig.Binds`, a bare container path into `Config.Volumes`), `--mount`
//! (`HostConfig.Mounts`), `--tmpfs` (`HostConfig.Tmpfs`), `--volumes-from`. Like docker, the
//! client checks only the shape; the daemon judges sources, types and options.

use crate::flags::Parsed;
use crate::jv::map_json;
use crate::units::ram_in_bytes;
use serde_json::{json, Map, Value};

#[derive(Debug, Default, Clone)]
pub struct MountOpts {
    pub binds: Vec<String>,
    /// anonymous volumes: container paths
    pub anon: Vec<String>,
    pub volumes_from: Vec<String>,
    /// each entry's JSON text, keys in docker's order
    pub mounts: Vec<String>,
    pub tmpfs: Vec<(String, String)>,
}

/// A JSON object with its keys in the given order (docker's field order).
fn obj(fields: &[(&str, String)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", Value::String(k.to_string())))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn list_or_null(v: &[String]) -> String {
    if v.is_empty() {
        "null".into()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| "null".into())
    }
}

impl MountOpts {
    /// `Config.Volumes`
    pub fn volumes_json(&self) -> String {
        let m: Map<String, Value> = self.anon.iter().map(|p| (p.clone(), json!({}))).collect();
        Value::Object(m).to_string()
    }
    pub fn binds_json(&self) -> String {
        list_or_null(&self.binds)
    }
    pub fn volumes_from_json(&self) -> String {
        list_or_null(&self.volumes_from)
    }
    /// `,"Tmpfs":{…}` or nothing
    pub fn tmpfs_part(&self) -> String {
        if self.tmpfs.is_empty() {
            return String::new();
        }
        let m: Map<String, Value> = self
            .tmpfs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        format!(",\"Tmpfs\":{}", Value::Object(m))
    }
    /// `,"Mounts":[…]` or nothing
    pub fn mounts_part(&self) -> String {
        if self.mounts.is_empty() {
            return String::new();
        }
        format!(",\"Mounts\":[{}]", self.mounts.join(","))
    }
}

/// A relative host path (`./x`, `../x`, `.`) becomes absolute, as docker 23+ does.
fn absolute_source(src: &str) -> String {
    let relative = src == "." || src == ".." || src.starts_with("./") || src.starts_with("../");
    if !relative {
        return src.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => {
            let mut out = cwd;
            for part in src.split('/') {
                match part {
                    "" | "." => {}
                    ".." => {
                        out.pop();
                    }
                    p => out.push(p),
                }
            }
            out.to_string_lossy().into_owned()
        }
        Err(_) => src.to_string(),
    }
}

/// One `-v` value.
pub fn parse_volume(v: &str, o: &mut MountOpts) -> Result<(), String> {
    if v.is_empty() {
        return Err(format!(
            "invalid argument \"{v}\" for \"-v, --volume\" flag: invalid empty volume spec"
        ));
    }
    match v.split_once(':') {
        None => o.anon.push(v.to_string()),
        Some((src, rest)) => o.binds.push(format!("{}:{rest}", absolute_source(src))),
    }
    Ok(())
}

fn bool_of(v: Option<&str>, field: &str) -> Result<bool, String> {
    match v {
        None => Ok(true),
        Some(s) => match s.to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(format!("invalid value for {field}: {s}")),
        },
    }
}

/// One `--mount` value → the `Mounts` entry docker 28 sends (as JSON text).
pub fn parse_mount(v: &str) -> Result<String, String> {
    let bad = |m: String| format!("invalid argument \"{v}\" for \"--mount\" flag: {m}");
    let mut kind = "volume".to_string();
    let (mut source, mut target, mut consistency) = (String::new(), String::new(), String::new());
    let mut read_only = false;
    let mut bind: Vec<(&str, String)> = Vec::new();
    let mut nocopy = false;
    let mut vol_labels = std::collections::BTreeMap::new();
    let mut driver_name = String::new();
    let mut driver_opts = std::collections::BTreeMap::new();
    let mut tmpfs: Vec<(&str, String)> = Vec::new();
    let mut any_vol = false;
    for field in v.split(',') {
        let (k, val) = match field.split_once('=') {
            Some((k, val)) => (k.trim().to_ascii_lowercase(), Some(val)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |val: Option<&str>| {
            val.map(str::to_string)
                .ok_or_else(|| bad(format!("invalid field '{field}' must be a key=value pair")))
        };
        match k.as_str() {
            "type" => kind = need(val)?,
            "source" | "src" => source = need(val)?,
            "target" | "dst" | "destination" => target = need(val)?,
            "readonly" | "ro" => read_only = bool_of(val, &k).map_err(bad)?,
            "consistency" => consistency = need(val)?,
            "bind-propagation" => bind.push(("Propagation", json!(need(val)?).to_string())),
            "bind-nonrecursive" => bind.push((
                "NonRecursive",
                json!(bool_of(val, &k).map_err(bad)?).to_string(),
            )),
            "volume-nocopy" => {
                any_vol = true;
                nocopy = bool_of(val, &k).map_err(bad)?;
            }
            "volume-label" => {
                any_vol = true;
                let l = need(val)?;
                let (lk, lv) = l.split_once('=').unwrap_or((&l, ""));
                vol_labels.insert(lk.to_string(), lv.to_string());
            }
            "volume-driver" => {
                any_vol = true;
                driver_name = need(val)?;
            }
            "volume-opt" => {
                any_vol = true;
                let o = need(val)?;
                let (ok, ov) = o.split_once('=').unwrap_or((&o, ""));
                driver_opts.insert(ok.to_string(), ov.to_string());
            }
            "tmpfs-size" => {
                let s = need(val)?;
                tmpfs.push(("SizeBytes", ram_in_bytes(&s).map_err(bad)?.to_string()));
            }
            "tmpfs-mode" => {
                let s = need(val)?;
                let mode = u32::from_str_radix(&s, 8)
                    .map_err(|_| bad(format!("invalid value for tmpfs-mode: {s}")))?;
                tmpfs.push(("Mode", mode.to_string()));
            }
            _ => return Err(bad(format!("unexpected key '{k}' in '{field}'"))),
        }
    }
    if target.is_empty() {
        return Err(bad("target is required".into()));
    }
    let js = |s: &str| Value::String(s.to_string()).to_string();
    let mut m: Vec<(&str, String)> = vec![("Type", js(&kind))];
    if !source.is_empty() {
        m.push(("Source", js(&source)));
    }
    m.push(("Target", js(&target)));
    if read_only {
        m.push(("ReadOnly", "true".into()));
    }
    if !consistency.is_empty() {
        m.push(("Consistency", js(&consistency)));
    }
    if !bind.is_empty() {
        m.push(("BindOptions", obj(&bind)));
    }
    if any_vol {
        let mut vol: Vec<(&str, String)> = Vec::new();
        if nocopy {
            vol.push(("NoCopy", "true".into()));
        }
        if !vol_labels.is_empty() {
            vol.push(("Labels", map_json(&vol_labels)));
        }
        let mut driver: Vec<(&str, String)> = Vec::new();
        if !driver_name.is_empty() {
            driver.push(("Name", js(&driver_name)));
        }
        if !driver_opts.is_empty() {
            driver.push(("Options", map_json(&driver_opts)));
        }
        vol.push(("DriverConfig", obj(&driver)));
        m.push(("VolumeOptions", obj(&vol)));
    }
    if !tmpfs.is_empty() {
        m.push(("TmpfsOptions", obj(&tmpfs)));
    }
    Ok(obj(&m))
}

pub fn parse_mount_opts(p: &Parsed) -> Result<MountOpts, String> {
    let mut o = MountOpts::default();
    for v in p.all("volume") {
        parse_volume(&v, &mut o)?;
    }
    for m in p.all("mount") {
        o.mounts.push(parse_mount(&m)?);
    }
    for t in p.all("tmpfs") {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        o.tmpfs.push((path.to_string(), opts.to_string()));
    }
    o.volumes_from = p.all("volumes-from");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_as_docker_28_sends_them() {
        let m = parse_mount("type=bind,source=/x,target=/y,readonly").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"bind","Source":"/x","Target":"/y","ReadOnly":true}"#
        );
        let m = parse_mount("type=volume,src=v1,dst=/v,volume-nocopy").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"volume","Source":"v1","Target":"/v","VolumeOptions":{"NoCopy":true,"DriverConfig":{}}}"#
        );
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576}}"#
        );
        let m = parse_mount("type=bind,src=/x,dst=/y,bind-propagation=rslave").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"bind","Source":"/x","Target":"/y","BindOptions":{"Propagation":"rslave"}}"#
        );
        let m = parse_mount("type=volume,src=v2,dst=/w,volume-label=a=b,volume-opt=type=tmpfs,volume-driver=local,readonly=false").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"volume","Source":"v2","Target":"/w","VolumeOptions":{"Labels":{"a":"b"},"DriverConfig":{"Name":"local","Options":{"type":"tmpfs"}}}}"#
        );
        let m = parse_mount("type=tmpfs,dst=/t2,tmpfs-mode=1770").unwrap();
        assert_eq!(
            m,
            r#"{"Type":"tmpfs","Target":"/t2","TmpfsOptions":{"Mode":1016}}"#
        );
    }

    #[test]
    fn mount_errors_as_docker() {
        assert_eq!(
            parse_mount("src=/a").unwrap_err(),
            "invalid argument \"src=/a\" for \"--mount\" flag: target is required"
        );
        assert_eq!(
            parse_mount("type=bind,src=/a,dst=/b,foo=1").unwrap_err(),
            "invalid argument \"type=bind,src=/a,dst=/b,foo=1\" for \"--mount\" flag: unexpected key 'foo' in 'foo=1'"
        );
    }

    #[test]
    fn volumes_split_into_binds_and_anonymous() {
        let mut o = MountOpts::default();
        parse_volume("/host:/ctr:ro", &mut o).unwrap();
        parse_volume("named:/n", &mut o).unwrap();
        parse_volume("/anon", &mut o).unwrap();
        assert_eq!(o.binds, ["/host:/ctr:ro", "named:/n"]);
        assert_eq!(o.volumes_json(), r#"{"/anon":{}}"#);
        parse_volume("./rel:/r", &mut o).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(o.binds[2], format!("{}/rel:/r", cwd.display()));
        assert_eq!(MountOpts::default().binds_json(), "null");
        assert_eq!(MountOpts::default().tmpfs_part(), "");
    }
}
