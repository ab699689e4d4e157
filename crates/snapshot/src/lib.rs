//! berth-snapshot: the overlay2 layer store and container RW layers.
//!
//! INTERFACE STUB — the engine is written against these signatures.
//! Layout under `root` (= `<data-root>/overlay2`): `<chain-hex>/diff` per image layer
//! (+ metadata files), `<key>/{diff,work,merged}` per container RW layer.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("layer not found: {0}")]
    NotFound(String),
    #[error("invalid layer tar: {0}")]
    InvalidTar(String),
    #[error("layer digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
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
    _root: PathBuf,
}
impl Snapshotter {
    pub fn open(_root: &Path) -> Result<Snapshotter> {
        todo!()
    }
    /// chain(L1) = diff(L1); chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln)).
    pub fn chain_id(_parent: Option<&str>, _diff_id: &str) -> String {
        todo!()
    }
    pub fn has_layer(&self, _chain_id: &str) -> bool {
        todo!()
    }
    /// Unpacks a layer tar (gzip auto-detected) on top of `parent`, verifying the uncompressed
    /// stream hashes to `expected_diff_id`. Whiteouts become overlay whiteouts. Hostile entries are
    /// rejected and nothing is left behind on any error.
    pub fn apply_layer(
        &self,
        _parent: Option<&str>,
        _expected_diff_id: &str,
        _reader: impl Read,
    ) -> Result<LayerInfo> {
        todo!()
    }
    /// Creates `<key>/{diff,work,merged}` over the layer chain ending at `parent`.
    pub fn create_rw(&self, _key: &str, _parent: Option<&str>) -> Result<RwPaths> {
        todo!()
    }
    pub fn rw_paths(&self, _key: &str) -> Result<RwPaths> {
        todo!()
    }
    /// Mounts the overlay at `merged` (no-op if mounted) and returns `merged`.
    pub fn mount_rw(&self, _key: &str) -> Result<PathBuf> {
        todo!()
    }
    /// Unmounts (no error if not mounted).
    pub fn unmount_rw(&self, _key: &str) -> Result<()> {
        todo!()
    }
    /// Unmounts if needed and deletes the RW layer; the image's layers are untouched.
    pub fn remove_rw(&self, _key: &str) -> Result<()> {
        todo!()
    }
}

impl Snapshotter {
    /// Bytes of unpacked content of a layer (None if unknown).
    pub fn layer_size(&self, _chain_id: &str) -> Option<u64> {
        todo!()
    }
    /// The layer's directory (`<root>/<chain-hex>`, holding `diff/`), if present.
    pub fn layer_dir(&self, _chain_id: &str) -> Option<PathBuf> {
        todo!()
    }
}
