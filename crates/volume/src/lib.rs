//! berth-volume: named volumes of the `local` driver under `<data-root>/volumes/<name>/_data`,
//! their metadata (`opts.json`, written atomically), and the copy of an image's content into a
//! fresh volume. Knows nothing of containers: which container uses what is the engine's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}
pub type Result<T> = std::result::Result<T, Error>;

/// What `opts.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// RFC 3339
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// created for a container without a name (`-v /path`, image `VOLUME`)
    #[serde(default)]
    pub anonymous: bool,
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

impl Volume {
    /// docker's volume JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": if self.labels.is_empty() { serde_json::Value::Null } else { serde_json::json!(self.labels) },
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": if self.options.is_empty() { serde_json::Value::Null } else { serde_json::json!(self.options) },
            "Scope": "local"
        })
    }
}

/// docker's rule for local volume names.
pub fn validate_name(name: &str) -> Result<()> {
    let b = name.as_bytes();
    if b.len() < 2 {
        return Err(Error::InvalidName(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    if !b[0].is_ascii_alphanumeric()
        || !b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    {
        return Err(Error::InvalidName(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

pub struct VolumeStore {
    root: PathBuf,
    lock: Mutex<()>,
    /// `berthd --userns-remap`: new volumes' `_data` belongs to the container's root
    owner: Option<(u32, u32)>,
}

impl VolumeStore {
    pub fn open(root: &Path) -> Result<VolumeStore> {
        std::fs::create_dir_all(root)?;
        // each volume's directory is root's alone (its `_data` reaches containers as a mount);
        // fix up those an older berthd left open
        for e in std::fs::read_dir(root)?.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                close_dir(&e.path())?;
            }
        }
        Ok(VolumeStore {
            root: root.to_path_buf(),
            lock: Mutex::new(()),
            owner: None,
        })
    }

    /// New volumes' `_data` gets this host uid/gid (the remapped root). Each volume's
    /// directory is then `0710 root:<gid>`, so the remapped root (which mounts `_data` from
    /// inside its user namespace) can pass through it and nobody else can.
    pub fn with_owner(mut self, owner: Option<(u32, u32)>) -> Result<VolumeStore> {
        self.owner = owner;
        if owner.is_some() {
            for e in std::fs::read_dir(&self.root)?.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    self.close_dir(&e.path())?;
                }
            }
        }
        Ok(self)
    }

    /// A volume's directory: root's alone (`0700`), or `0710 root:<gid>` when remapped.
    fn close_dir(&self, dir: &Path) -> std::io::Result<()> {
        match self.owner {
            None => close_dir(dir),
            Some((_, gid)) => {
                std::os::unix::fs::chown(dir, Some(0), Some(gid))?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))
            }
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Creates a volume (a random 64-hex name when `name` is None). Creating an existing name
    /// returns it unchanged, as docker does.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume> {
        let _g = self.lock.lock().expect("volume lock");
        let (name, anonymous) = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                validate_name(n)?;
                (n.to_string(), false)
            }
            None => {
                let mut b = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
                (hex::encode(b), true)
            }
        };
        if let Ok(v) = self.get(&name) {
            return Ok(v);
        }
        let dir = self.dir(&name);
        std::fs::create_dir_all(dir.join("_data"))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(dir.join("_data"), Some(uid), Some(gid))?;
        }
        self.close_dir(&dir)?;
        let v = Volume {
            name: name.clone(),
            driver: "local".into(),
            created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            labels,
            options,
            anonymous,
            mountpoint: dir.join("_data"),
        };
        berth_util::fs::write_atomic(&dir.join("opts.json"), &serde_json::to_vec(&v)?)?;
        tracing::info!(volume = %name, "volume created");
        Ok(v)
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        if validate_name(name).is_err() {
            return Err(Error::NotFound(name.to_string()));
        }
        let dir = self.dir(name);
        let data =
            std::fs::read(dir.join("opts.json")).map_err(|_| Error::NotFound(name.to_string()))?;
        let mut v: Volume = serde_json::from_slice(&data)?;
        v.mountpoint = dir.join("_data");
        Ok(v)
    }

    pub fn list(&self) -> Result<Vec<Volume>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.root)?.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if let Ok(v) = self.get(n) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes the volume and its data (the caller checks that no container uses it).
    pub fn remove(&self, name: &str) -> Result<()> {
        let _g = self.lock.lock().expect("volume lock");
        self.get(name)?;
        // metadata first: a crash half-way leaves data without a volume, never the reverse
        std::fs::remove_file(self.dir(name).join("opts.json"))?;
        std::fs::remove_dir_all(self.dir(name))?;
        Ok(())
    }

    /// Bytes stored in the volume.
    pub fn size(&self, v: &Volume) -> u64 {
        let mut total = 0;
        let mut stack = vec![v.mountpoint.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let Ok(md) = e.path().symlink_metadata() else {
                    continue;
                };
                if md.is_dir() {
                    stack.push(e.path());
                } else {
                    total += md.len();
                }
            }
        }
        total
    }
}

/// Mode 0700 on a volume's own directory (stricter than docker's 0755: a host user who knows
/// or guesses a volume's name cannot read it through the 0701 `volumes/`).
fn close_dir(dir: &Path) -> std::io::Result<()> {
    let md = std::fs::symlink_metadata(dir)?;
    if md.permissions().mode() & 0o7777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// True when `dir` has no entries.
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

/// Copies the tree at `src` into `dst` (an existing, empty directory): files, directories and
/// symlinks (never followed) with their modes, owners and the top directory's mode and owner.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    // `src` itself may be `/proc/self/fd/N` (a directory opened inside a rootfs): followed
    let md = src.metadata()?;
    if !md.is_dir() {
        return Ok(());
    }
    chown_mode(dst, &md)?;
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        for e in std::fs::read_dir(&s)? {
            let e = e?;
            let from = e.path();
            let to = d.join(e.file_name());
            let md = from.symlink_metadata()?;
            let ft = md.file_type();
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
                lchown(&to, md.uid(), md.gid());
            } else if ft.is_dir() {
                std::fs::create_dir(&to)?;
                chown_mode(&to, &md)?;
                stack.push((from, to));
            } else if ft.is_file() {
                std::fs::copy(&from, &to)?;
                chown_mode(&to, &md)?;
            }
            // devices, fifos and sockets are not copied (docker does not either)
        }
    }
    Ok(())
}

fn lchown(p: &Path, uid: u32, gid: u32) {
    if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
        // SAFETY: lchown on a path we just created; a failure only leaves root ownership.
        unsafe { libc::lchown(c.as_ptr(), uid, gid) };
    }
}

fn chown_mode(p: &Path, md: &std::fs::Metadata) -> std::io::Result<()> {
    lchown(p, md.uid(), md.gid());
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(md.mode() & 0o7777))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove() {
        let t = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(t.path()).unwrap();
        let v = s
            .create(
                Some("data1"),
                [("a".to_string(), "b".to_string())].into(),
                BTreeMap::new(),
            )
            .unwrap();
        assert!(v.mountpoint.ends_with("data1/_data") && v.mountpoint.is_dir());
        assert_eq!(s.get("data1").unwrap().labels["a"], "b");
        let anon = s.create(None, BTreeMap::new(), BTreeMap::new()).unwrap();
        assert!(anon.anonymous && anon.name.len() == 64);
        assert_eq!(s.list().unwrap().len(), 2);
        s.remove("data1").unwrap();
        assert!(matches!(s.get("data1"), Err(Error::NotFound(_))));
        assert!(s
            .create(Some("x"), BTreeMap::new(), BTreeMap::new())
            .is_err());
        assert!(s
            .create(Some("../evil"), BTreeMap::new(), BTreeMap::new())
            .is_err());
        assert!(matches!(s.get("../etc"), Err(Error::NotFound(_))));
    }

    #[test]
    fn copies_trees_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        let dst = t.path().join("dst");
        std::fs::create_dir(&dst).unwrap();
        copy_tree(&src, &dst).unwrap();
        assert_eq!(std::fs::read_to_string(dst.join("sub/f")).unwrap(), "x");
        assert_eq!(
            std::fs::symlink_metadata(dst.join("sub/f")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
    }
}
