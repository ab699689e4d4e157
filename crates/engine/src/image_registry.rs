//! What pull, push, login and search share: the progress stream (docker's JSON messages),
//! registry errors as engine errors, and the distribution records — which compressed blob
//! (digest, size, media type, registry, repository) each layer was pulled or pushed as, and
//! which manifests named an image — so a push can skip, mount or reuse instead of recompressing.

use crate::{Engine, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::PathBuf;

impl From<berth_registry::Error> for Error {
    fn from(e: berth_registry::Error) -> Self {
        match e.status() {
            Some(404) => Error::NotFound(e.to_string()),
            _ => Error::Internal(e.to_string()),
        }
    }
}

/// The JSON messages of a pull or push, as docker sends them (one object a line).
#[derive(Clone)]
pub struct Progress {
    tx: tokio::sync::mpsc::Sender<Value>,
    /// a message went out: errors now go into the stream, not into the status line
    sent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// `1.234MB`: docker's `units.HumanSize` (decimal units, 4 significant digits).
pub(crate) fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32) + 1
    };
    let decimals = (4 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", units[i])
}

/// docker's progress bar text: `[=====>      ]  1.2MB/3.4MB`.
pub(crate) fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let bars = ((current.min(total) as f64 / total as f64) * 50.0) as usize;
    let bar = if bars >= 50 {
        "=".repeat(50)
    } else {
        format!("{}>{}", "=".repeat(bars), " ".repeat(49 - bars))
    };
    format!("[{bar}] {:>8}/{}", human_size(current), human_size(total))
}

impl Progress {
    pub fn new(tx: tokio::sync::mpsc::Sender<Value>) -> Progress {
        Progress {
            tx,
            sent: Default::default(),
        }
    }

    /// Whether a message was sent already.
    pub fn started(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) async fn send(&self, v: Value) {
        self.sent.store(true, std::sync::atomic::Ordering::SeqCst);
        // a client that went away does not stop the pull (docker's behaviour)
        let _ = self.tx.send(v).await;
    }

    /// [`Progress::bar`] from a blocking thread.
    pub(crate) fn blocking_bar(&self, id: &str, s: &str, current: u64, total: u64) {
        self.sent.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.tx.blocking_send(json!({
            "status": s,
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(current, total),
            "id": id
        }));
    }

    pub(crate) async fn status(&self, s: impl Into<String>) {
        self.send(json!({"status": s.into()})).await;
    }

    pub(crate) async fn id_status(&self, id: &str, s: &str) {
        self.send(json!({"status": s, "progressDetail": {}, "id": id}))
            .await;
    }

    pub(crate) async fn bar(&self, id: &str, s: &str, current: u64, total: u64) {
        self.send(json!({
            "status": s,
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(current, total),
            "id": id
        }))
        .await;
    }

    pub(crate) async fn aux(&self, v: Value) {
        self.send(json!({ "progressDetail": {}, "aux": v })).await;
    }
}

/// One compressed form of a layer known to a registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BlobSource {
    pub digest: String,
    pub size: u64,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `127.0.0.1:5000` (the endpoint's host)
    pub host: String,
    /// `library/busybox`
    pub repo: String,
}

/// A manifest an image was pulled or pushed as (its bytes are a blob of the store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ManifestRecord {
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

/// The 12-hex short form docker shows as a layer's progress ID.
pub(crate) fn short_id(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.chars().take(12).collect()
}

impl Engine {
    fn dist_path(&self, kind: &str, digest: &str) -> Result<PathBuf> {
        let d = berth_image::Digest::parse(digest)?;
        let dir = self.images.root().join("distribution").join(kind);
        Ok(dir.join(format!("{}.json", d.hex())))
    }

    fn read_records<T: for<'de> Deserialize<'de>>(&self, kind: &str, digest: &str) -> Vec<T> {
        self.dist_path(kind, digest)
            .ok()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn add_record<T: Serialize + for<'de> Deserialize<'de> + PartialEq>(
        &self,
        kind: &str,
        digest: &str,
        rec: T,
    ) -> Result<()> {
        let _g = self.dist_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<T> = self.read_records(kind, digest);
        if all.contains(&rec) {
            return Ok(());
        }
        all.push(rec);
        // the newest first; a bounded list
        all.rotate_right(1);
        all.truncate(32);
        let data = serde_json::to_vec(&all)?;
        let path = self.dist_path(kind, digest)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        berth_util::fs::write_atomic(&path, &data)?;
        Ok(())
    }

    /// The compressed forms of the layer with diff ID `diff_id` known so far.
    pub(crate) fn blob_sources(&self, diff_id: &str) -> Vec<BlobSource> {
        self.read_records("layers", diff_id)
    }

    pub(crate) fn record_blob_source(&self, diff_id: &str, src: BlobSource) -> Result<()> {
        self.add_record("layers", diff_id, src)
    }

    /// Manifests the image with config `config_id` came as or was pushed as.
    pub(crate) fn manifest_records(&self, config_id: &str) -> Vec<ManifestRecord> {
        self.read_records("manifests", config_id)
    }

    /// Keeps a manifest's bytes (a blob) and notes it names the image `config_id`.
    pub(crate) fn record_manifest(
        &self,
        config_id: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String> {
        let d = berth_image::Digest::sha256_of(bytes);
        if !self.images.has_blob(&d) {
            self.images.put_blob_verified(&d, bytes)?;
        }
        self.add_record(
            "manifests",
            config_id,
            ManifestRecord {
                digest: d.to_string(),
                media_type: media_type.to_string(),
            },
        )?;
        Ok(d.to_string())
    }

    /// A manifest kept by an earlier pull or push (the bytes are a blob of the store, checked
    /// against `digest` again): a re-pull of an image from a list or index asks the registry
    /// for the index only.
    pub(crate) fn stored_manifest(
        &self,
        digest: &str,
        media_type: &str,
    ) -> Option<berth_registry::Manifest> {
        let d = berth_image::Digest::parse(digest).ok()?;
        let bytes = self.images.read_blob(&d).ok()?;
        if berth_image::Digest::sha256_of(&bytes) != d {
            return None;
        }
        let in_body = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(String::from)
        });
        Some(berth_registry::Manifest {
            media_type: in_body
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| media_type.to_string()),
            digest: d.to_string(),
            bytes,
        })
    }

    /// Credentials from an `X-Registry-Auth` header value.
    pub fn registry_credentials(header: Option<&str>) -> Result<berth_registry::Credentials> {
        berth_registry::Credentials::from_header(header.unwrap_or(""))
            .map_err(|e| Error::InvalidParameter(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_bars_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(2_222_000), "2.222MB");
        assert_eq!(human_size(23_070), "23.07kB");
        assert_eq!(human_size(253_400_000), "253.4MB");
        let b = progress_bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("     50B/100B"), "{b}");
        assert_eq!(progress_bar(100, 100).matches('=').count(), 50);
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
