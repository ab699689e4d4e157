//! berth-image: references, digests, the content store, image configs and image archives.
//!
//! INTERFACE STUB — the engine is written against these signatures.
//! Layout under `root` (= `<data-root>/image`): `blobs/sha256/<hex>` (content by digest,
//! verified on write) and `repositories.json` (reference → image ID), written atomically.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
}
pub type Result<T> = std::result::Result<T, Error>;

/// `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);
impl Digest {
    pub fn parse(_s: &str) -> Result<Digest> {
        todo!()
    }
    pub fn sha256_of(_data: &[u8]) -> Digest {
        todo!()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }
}

/// A docker image reference, normalised like docker's (`busybox` = `docker.io/library/busybox:latest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}
impl Reference {
    /// Parses and normalises; adds `latest` when neither tag nor digest is given.
    pub fn parse(_s: &str) -> Result<Reference> {
        todo!()
    }
    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        todo!()
    }
    /// `docker.io/library/busybox:latest`
    pub fn full(&self) -> String {
        todo!()
    }
    /// `busybox:latest`, `localhost:5000/a/b:c` (docker's "familiar" form, as in `docker images`)
    pub fn familiar(&self) -> String {
        todo!()
    }
}

/// Docker's image config (`application/vnd.docker.container.image.v1+json`).
/// Unknown keys are kept in `extra`; the raw bytes are what the ID is computed from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `config` part of an image config (Docker's capitalised field names).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// An image known to the store.
#[derive(Debug, Clone)]
pub struct Image {
    /// config digest
    pub id: Digest,
    pub config: ImageConfig,
    /// familiar `name:tag` forms, sorted
    pub repo_tags: Vec<String>,
}

pub struct ImageStore {
    _root: PathBuf,
}
impl ImageStore {
    pub fn open(_root: &Path) -> Result<ImageStore> {
        todo!()
    }
    /// Streams `reader` into the store, verifying it hashes to `expected`; nothing is kept on mismatch.
    pub fn put_blob_verified(&self, _expected: &Digest, _reader: impl Read) -> Result<u64> {
        todo!()
    }
    pub fn read_blob(&self, _d: &Digest) -> Result<Vec<u8>> {
        todo!()
    }
    /// Stores a config blob and returns the image (ID = sha256 of the bytes). Validates it parses.
    pub fn add_image(&self, _config_bytes: &[u8]) -> Result<Image> {
        todo!()
    }
    /// Points `reference` at `id` (moving it from any previous image). Atomic write.
    pub fn tag(&self, _id: &Digest, _reference: &Reference) -> Result<()> {
        todo!()
    }
    /// All images, newest first.
    pub fn list(&self) -> Result<Vec<Image>> {
        todo!()
    }
    /// By reference (`busybox`, `busybox:latest`, `docker.io/library/busybox`), full ID
    /// (`sha256:…` or bare hex) or unique ID prefix. `Error::NotFound` otherwise.
    pub fn get(&self, _name_or_id: &str) -> Result<Image> {
        todo!()
    }
}

/// Archive reading (`docker save` docker-archive incl. docker 25+'s OCI form, plain OCI
/// image-layout tars; gzip or not). Hostile entries (`..`, absolute paths, links escaping the
/// staging dir) are rejected.
pub mod archive {
    use super::*;
    /// One image found in an archive.
    #[derive(Debug)]
    pub struct ArchiveImage {
        /// raw config bytes (digest verified)
        pub config: Vec<u8>,
        /// layer tar files in the staging dir, bottom first (may be gzip-compressed)
        pub layers: Vec<PathBuf>,
        /// references from the archive (`RepoTags`, OCI ref annotations), normalised
        pub repo_tags: Vec<Reference>,
    }
    /// Unpacks the archive into `staging` (created empty by the caller) and parses it.
    pub fn unpack(_reader: impl Read, _staging: &Path) -> Result<Vec<ArchiveImage>> {
        todo!()
    }
}
