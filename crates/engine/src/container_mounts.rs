//! Mounts: `-v`/`Binds`, `--mount`, `--tmpfs`, the image's and `Config.Volumes` anonymous
//! volumes, `--volumes-from`; and the volume commands (`volume create/ls/inspect/rm/prune`).

use crate::{Engine, Error, Result};
use berth_types::CreateRequest;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// One mount of a container, as inspect's `Mounts` shows it (plus what the engine needs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountPoint {
    /// bind | volume | tmpfs
    pub kind: String,
    /// volume name (empty for binds and tmpfs)
    pub name: String,
    pub source: PathBuf,
    pub destination: String,
    pub mode: String,
    pub rw: bool,
    pub propagation: String,
    /// tmpfs options (`size=…,mode=…`)
    #[serde(default)]
    pub tmpfs_options: String,
    /// a fresh volume still to be filled with the image's content at that path
    #[serde(default)]
    pub copy_pending: bool,
}

/// `Mounts` as inspect and the list show them: docker leaves out the `HostConfig.Tmpfs` ones
/// (`--tmpfs`), which are not mount points of its own.
pub(crate) fn listed_mounts(rec: &crate::container::Record) -> Vec<Value> {
    let tmpfs = rec
        .host_config
        .extra
        .get("Tmpfs")
        .and_then(Value::as_object);
    rec.mounts
        .iter()
        .filter(|m| {
            !(m.kind == "tmpfs"
                && tmpfs.is_some_and(|t| {
                    t.keys()
                        .any(|k| clean_dest(k).is_ok_and(|d| d == m.destination))
                }))
        })
        .map(MountPoint::to_json)
        .collect()
}

impl MountPoint {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Source": if self.kind == "tmpfs" { String::new() } else { self.source.to_string_lossy().into_owned() },
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation
        });
        if self.kind == "volume" {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }

    /// The OCI mount for the runtime.
    pub fn to_spec(&self) -> Value {
        if self.kind == "tmpfs" {
            let mut opts = vec![
                "nosuid".to_string(),
                "nodev".to_string(),
                "noexec".to_string(),
            ];
            opts.extend(
                self.tmpfs_options
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(String::from),
            );
            if !self.rw {
                opts.push("ro".into());
            }
            return json!({"destination": self.destination, "type": "tmpfs", "source": "tmpfs", "options": opts});
        }
        let prop = if self.propagation.is_empty() {
            "rprivate"
        } else {
            &self.propagation
        };
        json!({
            "destination": self.destination,
            "type": "bind",
            "source": self.source,
            "options": ["rbind", if self.rw { "rw" } else { "ro" }, prop]
        })
    }
}

fn clean_dest(d: &str) -> Result<String> {
    if !d.starts_with('/') {
        return Err(Error::InvalidParameter(format!(
            "invalid mount path: '{d}' mount path must be absolute"
        )));
    }
    if d == "/" {
        return Err(Error::InvalidParameter(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(d.trim_end_matches('/').to_string())
}

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

impl Engine {
    fn volume_err(e: berth_volume::Error) -> Error {
        match e {
            berth_volume::Error::NotFound(_) => Error::NotFound(e.to_string()),
            berth_volume::Error::InvalidName(_) => Error::InvalidParameter(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }

    fn volume_mount(
        &self,
        name: Option<&str>,
        dest: String,
        rw: bool,
        mode: String,
        nocopy: bool,
        labels: BTreeMap<String, String>,
    ) -> Result<MountPoint> {
        let v = self
            .volumes
            .create(name, labels, BTreeMap::new())
            .map_err(Self::volume_err)?;
        let fresh = berth_volume::is_empty_dir(&v.mountpoint);
        Ok(MountPoint {
            kind: "volume".into(),
            name: v.name.clone(),
            source: v.mountpoint.clone(),
            destination: dest,
            mode,
            rw,
            propagation: String::new(),
            tmpfs_options: String::new(),
            copy_pending: fresh && !nocopy,
        })
    }

    /// Turns the create request's mount options into the container's mount points.
    pub(crate) fn resolve_mounts(
        &self,
        req: &CreateRequest,
        image_volumes: &[String],
    ) -> Result<Vec<MountPoint>> {
        let hc = &req.host_config.extra;
        let mut out: Vec<MountPoint> = Vec::new();
        let push = |m: MountPoint, out: &mut Vec<MountPoint>| -> Result<()> {
            if out.iter().any(|o| o.destination == m.destination) {
                return Err(Error::InvalidParameter(format!(
                    "Duplicate mount point: {}",
                    m.destination
                )));
            }
            out.push(m);
            Ok(())
        };
        // -v src:dst[:opts]
        for b in hc
            .get("Binds")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let b = b.as_str().unwrap_or("").to_string();
            let parts: Vec<&str> = b.split(':').collect();
            let (src, dst, opts) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, o] => (*s, *d, *o),
                _ => {
                    return Err(Error::InvalidParameter(format!(
                        "invalid volume specification: '{b}'"
                    )))
                }
            };
            let dst = clean_dest(dst)?;
            let mut rw = true;
            let mut prop = String::new();
            let mut nocopy = false;
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => rw = false,
                    "rw" => rw = true,
                    "z" | "Z" | "consistent" | "cached" | "delegated" => {}
                    "nocopy" => nocopy = true,
                    p if PROPAGATIONS.contains(&p) => prop = p.to_string(),
                    _ => return Err(Error::InvalidParameter(format!("invalid mode: {o}"))),
                }
            }
            if src.starts_with('/') {
                let p = Path::new(src);
                if !p.exists() {
                    // docker's -v creates a missing host directory
                    std::fs::create_dir_all(p)?;
                }
                push(
                    MountPoint {
                        kind: "bind".into(),
                        name: String::new(),
                        source: p.to_path_buf(),
                        destination: dst,
                        mode: opts.to_string(),
                        rw,
                        propagation: if prop.is_empty() {
                            "rprivate".into()
                        } else {
                            prop
                        },
                        tmpfs_options: String::new(),
                        copy_pending: false,
                    },
                    &mut out,
                )?;
            } else {
                let m = self.volume_mount(
                    Some(src),
                    dst,
                    rw,
                    opts.to_string(),
                    nocopy,
                    BTreeMap::new(),
                )?;
                push(m, &mut out)?;
            }
        }
        // --mount type=…
        for m in hc
            .get("Mounts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let kind = m.get("Type").and_then(Value::as_str).unwrap_or("volume");
            let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
            // dockerd names the mount type before the path's error
            let dst =
                clean_dest(m.get("Target").and_then(Value::as_str).unwrap_or("")).map_err(|e| {
                    match e {
                        Error::InvalidParameter(msg) => Error::InvalidParameter(format!(
                            "invalid mount config for type \"{kind}\": {msg}"
                        )),
                        e => e,
                    }
                })?;
            let rw = !m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
            match kind {
                "bind" => {
                    if !Path::new(src).exists() {
                        return Err(Error::InvalidParameter(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {src}"
                        )));
                    }
                    let prop = m
                        .pointer("/BindOptions/Propagation")
                        .and_then(Value::as_str)
                        .unwrap_or("rprivate");
                    push(
                        MountPoint {
                            kind: "bind".into(),
                            name: String::new(),
                            source: PathBuf::from(src),
                            destination: dst,
                            mode: String::new(),
                            rw,
                            propagation: prop.into(),
                            tmpfs_options: String::new(),
                            copy_pending: false,
                        },
                        &mut out,
                    )?;
                }
                "volume" => {
                    let nocopy = m
                        .pointer("/VolumeOptions/NoCopy")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let labels: BTreeMap<String, String> = m
                        .pointer("/VolumeOptions/Labels")
                        .and_then(|l| serde_json::from_value(l.clone()).ok())
                        .unwrap_or_default();
                    let name = (!src.is_empty()).then_some(src);
                    let mp = self.volume_mount(name, dst, rw, "z".into(), nocopy, labels)?;
                    push(mp, &mut out)?;
                }
                "tmpfs" => {
                    let mut o = Vec::new();
                    if let Some(sz) = m.pointer("/TmpfsOptions/SizeBytes").and_then(Value::as_i64) {
                        o.push(format!("size={sz}"));
                    }
                    if let Some(mode) = m.pointer("/TmpfsOptions/Mode").and_then(Value::as_u64) {
                        o.push(format!("mode={mode:o}"));
                    }
                    push(
                        MountPoint {
                            kind: "tmpfs".into(),
                            name: String::new(),
                            source: PathBuf::new(),
                            destination: dst,
                            mode: String::new(),
                            rw,
                            propagation: String::new(),
                            tmpfs_options: o.join(","),
                            copy_pending: false,
                        },
                        &mut out,
                    )?;
                }
                other => {
                    return Err(Error::InvalidParameter(format!(
                        "mount type unknown: {other}"
                    )))
                }
            }
        }
        // --tmpfs /path[:opts]
        if let Some(Value::Object(t)) = hc.get("Tmpfs") {
            for (dst, opts) in t {
                let dst = clean_dest(dst)?;
                let opts = opts.as_str().unwrap_or("");
                let rw = !opts.split(',').any(|o| o == "ro");
                let opts: Vec<&str> = opts
                    .split(',')
                    .filter(|o| !o.is_empty() && *o != "ro" && *o != "rw")
                    .collect();
                push(
                    MountPoint {
                        kind: "tmpfs".into(),
                        name: String::new(),
                        source: PathBuf::new(),
                        destination: dst,
                        mode: String::new(),
                        rw,
                        propagation: String::new(),
                        tmpfs_options: opts.join(","),
                        copy_pending: false,
                    },
                    &mut out,
                )?;
            }
        }
        // --volumes-from c[:ro|rw]
        for vf in hc
            .get("VolumesFrom")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let vf = vf.as_str().unwrap_or("");
            let (name, mode) = vf.split_once(':').unwrap_or((vf, ""));
            let other = self.get_container(name)?;
            for m in other.record().mounts {
                if m.kind == "tmpfs" || out.iter().any(|o| o.destination == m.destination) {
                    continue;
                }
                let mut m = m.clone();
                m.copy_pending = false;
                match mode {
                    "ro" => m.rw = false,
                    "rw" => m.rw = true,
                    _ => {}
                }
                out.push(m);
            }
        }
        // anonymous volumes: the image's VOLUMEs and `-v /path`
        let mut anon: Vec<String> = image_volumes.to_vec();
        if let Some(Value::Object(v)) = req.config.extra.get("Volumes") {
            anon.extend(v.keys().cloned());
        }
        for dst in anon {
            let dst = clean_dest(&dst)?;
            if out.iter().any(|o| o.destination == dst) {
                continue;
            }
            let m = self.volume_mount(None, dst, true, String::new(), false, BTreeMap::new())?;
            out.push(m);
        }
        Ok(out)
    }

    /// Fills fresh volumes with the image's content at their path (first start only).
    pub(crate) fn copy_up_volumes(&self, c: &crate::Container, rootfs: &Path) -> Result<()> {
        let mounts = c.record().mounts;
        if !mounts.iter().any(|m| m.copy_pending) {
            return Ok(());
        }
        for m in &mounts {
            if !m.copy_pending || !berth_volume::is_empty_dir(&m.source) {
                continue;
            }
            // the path as the container sees it: links followed inside the rootfs only (where
            // the runtime mounts the volume), never out to the host
            let root = berth_util::inroot::open_root(rootfs)?;
            let src = match berth_util::inroot::open_in_root(
                root.as_fd(),
                Path::new(&m.destination),
                libc::O_PATH | libc::O_DIRECTORY,
            ) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::debug!(dest = %m.destination, error = %e, "no image content to copy up");
                    continue;
                }
            };
            // below the opened directory nothing is followed (copy_tree)
            berth_volume::copy_tree(&berth_util::inroot::fd_path(&src), &m.source)?;
        }
        c.update(|r| r.mounts.iter_mut().for_each(|m| m.copy_pending = false));
        c.save(&self.container_dir(&c.id))?;
        Ok(())
    }

    /// Containers (IDs) that mount the volume.
    fn volume_users(&self, name: &str) -> Vec<String> {
        self.all_containers()
            .into_iter()
            .filter(|c| {
                c.record()
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.name == name)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Removes the container's anonymous volumes that no other container uses (`rm -v`).
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            let Ok(v) = self.volumes.get(&m.name) else {
                continue;
            };
            if v.anonymous && self.volume_users(&m.name).is_empty() {
                let _ = self.volumes.remove(&m.name);
            }
        }
    }

    pub fn volume_create(
        &self,
        name: Option<&str>,
        driver: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Value> {
        if let Some(d) = driver.filter(|d| !d.is_empty() && *d != "local") {
            return Err(Error::NotFound(format!(
                "error looking up volume plugin {d}: plugin \"{d}\" not found"
            )));
        }
        let v = self
            .volumes
            .create(name, labels, options)
            .map_err(Self::volume_err)?;
        self.events.emit(
            "volume",
            "create",
            &v.name,
            [("driver".to_string(), "local".to_string())].into(),
        );
        Ok(v.to_json())
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Value> {
        Ok(self.volumes.get(name).map_err(Self::volume_err)?.to_json())
    }

    fn volume_matches(
        &self,
        v: &berth_volume::Volume,
        filters: &HashMap<String, Vec<String>>,
    ) -> bool {
        filters.iter().all(|(k, vals)| {
            if k == "label" {
                return berth_util::filters::labels_match(vals, &v.labels);
            }
            vals.is_empty()
                || vals.iter().any(|x| match k.as_str() {
                    "name" => v.name.contains(x.as_str()),
                    "driver" => x == "local",
                    "dangling" => {
                        (x == "true" || x == "1") == self.volume_users(&v.name).is_empty()
                    }
                    _ => true,
                })
        })
    }

    pub fn volume_list(
        &self,
        filters: &HashMap<String, Vec<String>>,
        usage: bool,
    ) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for v in self.volumes.list().map_err(Self::volume_err)? {
            if !self.volume_matches(&v, filters) {
                continue;
            }
            let mut j = v.to_json();
            if usage {
                j["UsageData"] = json!({"RefCount": self.volume_users(&v.name).len(), "Size": self.volumes.size(&v)});
            }
            out.push(j);
        }
        Ok(out)
    }

    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let v = self.volumes.get(name).map_err(Self::volume_err)?;
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        match self.volumes.remove(&v.name) {
            Err(e) if !force => Err(Self::volume_err(e)),
            _ => {
                self.events.emit(
                    "volume",
                    "destroy",
                    &v.name,
                    [("driver".to_string(), "local".to_string())].into(),
                );
                Ok(())
            }
        }
    }

    /// Removes unused volumes (API 1.41: named ones too, like docker 20.10).
    pub fn volume_prune(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64)> {
        let mut deleted = Vec::new();
        let mut space = 0;
        for v in self.volumes.list().map_err(Self::volume_err)? {
            if !self.volume_users(&v.name).is_empty() || !self.volume_matches(&v, filters) {
                continue;
            }
            let size = self.volumes.size(&v);
            if self.volumes.remove(&v.name).is_ok() {
                space += size;
                deleted.push(v.name);
            }
        }
        Ok((deleted, space))
    }
}
