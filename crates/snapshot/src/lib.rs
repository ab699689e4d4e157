//! berth-snapshot: the overlay2 layer store and container RW layers.
//!
//! Layout under `root` (= `<data-root>/overlay2`):
//! - `<chain-hex>/diff` per image layer, with metadata files `diff_id`, `parent` (chain ID or
//!   empty) and `size` next to it. A layer is unpacked into `tmp-<random>/` and renamed into
//!   place only once complete and verified, so a layer directory is always whole.
//! - `<key>/{diff,work,merged}` per container RW layer, plus `lower` (the chain IDs of the
//!   image's layers, topmost first, one per line) and `empty/` (the lower dir of an image
//!   without layers).
//! - `l/<short-id>` symlinks to `../<chain-hex>/diff`, used in overlay's `lowerdir` to keep the
//!   mount options (one page, 4096 bytes) short: about 70 layers fit with a typical root.

mod layer;
mod rw;
mod tar_safe;
mod util;

use berth_util::idmap::IdMaps;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use layer::Unpacked;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("layer not found: {0}")]
    NotFound(String),
    #[error("invalid layer tar: {0}")]
    InvalidTar(String),
    #[error("layer digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid RW layer key: {0:?}")]
    InvalidKey(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Sys(#[from] nix::Error),
}
pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// `sha256:…`
    pub chain_id: String,
    /// `sha256:…` of the uncompressed tar
    pub diff_id: String,
    /// bytes of unpacked content
    pub size: u64,
}

/// Paths of a container's RW layer (for inspect's GraphDriver.Data).
#[derive(Debug, Clone)]
pub struct RwPaths {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// lower dirs, topmost first
    pub lowers: Vec<PathBuf>,
}

pub struct Snapshotter {
    root: PathBuf,
    /// `berthd --userns-remap`: layer files are owned by the mapped host ids (shifted at
    /// unpack) and RW layers' roots by the mapped root
    ids: Option<IdMaps>,
    /// where (inode region) and when this process removed layers: see `layer::fresh_tmp_dir`
    removed: std::sync::Mutex<Vec<(std::time::Instant, u64)>>,
}

impl Snapshotter {
    pub fn open(root: &Path) -> Result<Snapshotter> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        // each layer and RW layer in a fresh block group: see spread_subdirs
        if let Err(e) = berth_util::fs::spread_subdirs(&root) {
            tracing::debug!(path = %root.display(), error = %e, "top-directory flag not set");
        }
        // half-written layers of an interrupted apply_layer / create_rw
        for e in std::fs::read_dir(&root)?.flatten() {
            if e.file_name().to_string_lossy().starts_with("tmp-") {
                tracing::info!(path = %e.path().display(), "removing leftover temp dir");
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(Snapshotter {
            root,
            ids: None,
            removed: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unpacks layers with their owners shifted by `ids` (a remapped daemon keeps its own
    /// store: the same layer unpacked without a map has other owners).
    pub fn with_id_maps(mut self, ids: Option<IdMaps>) -> Snapshotter {
        self.ids = ids;
        self
    }

    pub fn id_maps(&self) -> Option<&IdMaps> {
        self.ids.as_ref()
    }

    /// chain(L1) = diff(L1); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)).
    pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
        match parent {
            None => diff_id.to_string(),
            Some(p) => format!(
                "sha256:{}",
                util::sha256_hex(format!("{p} {diff_id}").as_bytes())
            ),
        }
    }

    pub fn has_layer(&self, chain_id: &str) -> bool {
        match util::digest_hex(chain_id) {
            Some(hex) => self.root.join(hex).join("diff_id").is_file(),
            None => false,
        }
    }

    /// Metadata of a stored layer.
    pub fn layer_info(&self, chain_id: &str) -> Result<LayerInfo> {
        layer::info(self, chain_id)
    }

    /// The diff dir of a stored layer.
    pub fn layer_diff_path(&self, chain_id: &str) -> Result<PathBuf> {
        let hex = self.layer_hex(chain_id)?;
        Ok(self.root.join(hex).join("diff"))
    }

    /// Deletes an image layer (the caller makes sure nothing still uses it).
    pub fn remove_layer(&self, chain_id: &str) -> Result<()> {
        let hex = self.layer_hex(chain_id)?;
        let _ = std::fs::remove_file(self.root.join("l").join(layer::short_id(hex)));
        layer::note_removal(self, &self.root.join(hex));
        std::fs::remove_dir_all(self.root.join(hex))?;
        Ok(())
    }

    fn layer_hex<'a>(&self, chain_id: &'a str) -> Result<&'a str> {
        match util::digest_hex(chain_id) {
            Some(h) if self.has_layer(chain_id) => Ok(h),
            _ => Err(Error::NotFound(chain_id.to_string())),
        }
    }

    /// Unpacks a layer tar (gzip auto-detected) on top of `parent`, verifying the uncompressed
    /// stream hashes to `expected_diff_id`. Whiteouts become overlay whiteouts. Hostile entries are
    /// rejected and nothing is left behind on any error.
    pub fn apply_layer(
        &self,
        parent: Option<&str>,
        expected_diff_id: &str,
        reader: impl Read,
    ) -> Result<LayerInfo> {
        layer::apply(self, parent, expected_diff_id, reader)
    }

    /// Unpacks a layer tar (gzip auto-detected) into a temp dir while hashing it, for callers
    /// that learn the diff ID from the stream itself (import, commit) or only later (load).
    /// Hostile entries are rejected with nothing left behind; the result is published with
    /// [`Unpacked::commit`] once the caller has checked its diff ID, and removed if dropped.
    pub fn unpack_layer(&self, reader: impl Read) -> Result<Unpacked<'_>> {
        layer::unpack(self, reader, true)
    }

    /// [`Snapshotter::unpack_layer`] for a producer that hashes the stream itself as it writes
    /// it (on another thread, so that the two share the work): it names the layer with
    /// [`Unpacked::set_diff_id`] before committing it.
    pub fn unpack_layer_unhashed(&self, reader: impl Read) -> Result<Unpacked<'_>> {
        layer::unpack(self, reader, false)
    }

    /// Creates `<key>/{diff,work,merged}` over the layer chain ending at `parent`.
    pub fn create_rw(&self, key: &str, parent: Option<&str>) -> Result<RwPaths> {
        rw::create(self, key, parent)
    }

    pub fn rw_paths(&self, key: &str) -> Result<RwPaths> {
        rw::paths(self, key)
    }

    /// Mounts the overlay at `merged` (no-op if mounted) and returns `merged`.
    pub fn mount_rw(&self, key: &str) -> Result<PathBuf> {
        rw::mount(self, key)
    }

    /// Unmounts (no error if not mounted).
    pub fn unmount_rw(&self, key: &str) -> Result<()> {
        rw::unmount(self, key)
    }

    /// Unmounts if needed and deletes the RW layer; the image's layers are untouched.
    pub fn remove_rw(&self, key: &str) -> Result<()> {
        rw::remove(self, key)
    }
}

/// Checks that every entry of a tar stays below its root (no absolute path, no `..`).
pub fn validate_tar(reader: impl Read) -> Result<u64> {
    let mut n = 0;
    berth_util::io::for_each_tar_entry(
        reader,
        |e| Error::InvalidTar(e.to_string()),
        |e| {
            tar_safe::clean_path(&e.path_bytes())?;
            n += 1;
            Ok(())
        },
    )?;
    Ok(n)
}

/// Extracts a plain tar into the existing directory `dir` with the rules layers follow (no
/// entry escapes `dir`, no symlink is followed while creating); `.wh.` names are kept as they
/// are. For `cp` into a container. Returns the bytes of file content written.
pub fn extract_into(dir: &Path, reader: impl Read) -> Result<u64> {
    extract_into_mapped(dir, reader, None)
}

/// [`extract_into`] with owners shifted to the host ids of a remapped container.
pub fn extract_into_mapped(dir: &Path, reader: impl Read, ids: Option<&IdMaps>) -> Result<u64> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    let fd = open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    extract_into_fd(fd, reader, ids)
}

/// [`extract_into_mapped`] for a directory already opened (in a container's root, with
/// `RESOLVE_IN_ROOT`): entries are created relative to `dir`, never through a path.
pub fn extract_into_fd(
    dir: std::os::fd::OwnedFd,
    reader: impl Read,
    ids: Option<&IdMaps>,
) -> Result<u64> {
    let mut ex = tar_safe::Extractor::new(dir);
    ex.whiteouts = false;
    ex.ids = ids.cloned();
    let mut reader = reader;
    ex.run(&mut reader)?;
    Ok(ex.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids() {
        let d1 = format!("sha256:{}", "a".repeat(64));
        let d2 = format!("sha256:{}", "b".repeat(64));
        assert_eq!(Snapshotter::chain_id(None, &d1), d1);
        let c2 = Snapshotter::chain_id(Some(&d1), &d2);
        assert_eq!(
            c2,
            format!(
                "sha256:{}",
                util::sha256_hex(format!("{d1} {d2}").as_bytes())
            )
        );
        assert!(util::digest_hex(&c2).is_some());
    }
}
