//! berth-image: references, digests, the content store, image configs and image archives.
//!
//! Layout under `root` (= `<data-root>/image`): `blobs/sha256/<hex>` (content by digest,
//! verified on write), `images/<hex>` (one empty marker per image whose config is that blob)
//! and `repositories.json` (full reference → image ID), all written atomically.

pub mod archive;
mod config;
mod digest;
mod fsutil;
mod reference;
mod store;

pub use config::{parse_rfc3339_nanos, ContainerConfig, ImageConfig, RootFs};
pub use digest::{Digest, Hasher};
pub use reference::Reference;
pub use store::{Image, ImageStore};

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
