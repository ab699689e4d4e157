//! `POST /images/{name}/push`: send an image's layers, config and manifest to a registry.
//!
//! Per layer, cheapest first: a compressed form the target repository already has (`Layer
//! already exists`), one another repository of the same registry has (a cross-repository
//! mount), else the stored layer tar gzip-compressed as it streams up (one PATCH, digest at
//! the end). The manifest is the one the image was pulled as when its blobs are all there
//! (so its digest is kept), else a new Docker schema 2 manifest.

use crate::image_registry::{short_id, BlobSource, Progress};
use crate::{Engine, Error, Result};
use berth_image::Reference;
use berth_registry::{media, Credentials, Session};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use sha2::Digest as _;
use std::io::{Read, Write};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// What a client asked to push.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// the repository (`127.0.0.1:5000/a/b`)
    pub name: String,
    /// one tag; empty: every tag of the repository
    pub tag: String,
    pub creds: Credentials,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct Desc {
    #[serde(rename = "mediaType")]
    media_type: String,
    size: u64,
    digest: String,
}

#[derive(Serialize)]
struct ManifestOut<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: Desc,
    layers: &'a [Desc],
}

/// Docker's manifest layout: indented by three spaces.
fn manifest_bytes(m: &ManifestOut<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"   ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    m.serialize(&mut ser)?;
    Ok(out)
}

/// A writer that sends what the compressor produces up the upload, hashing and counting it.
struct UploadWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    hasher: sha2::Sha256,
    len: u64,
}

const UPLOAD_CHUNK: usize = 256 * 1024;

impl UploadWriter {
    fn flush_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(UPLOAD_CHUNK));
        self.hasher.update(&chunk);
        self.len += chunk.len() as u64;
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for UploadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= UPLOAD_CHUNK {
            self.flush_buf()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Engine {
    /// Pushes as `POST /images/{name}/push` does, sending docker's progress messages.
    pub async fn image_push(self: &Arc<Self>, req: PushRequest, p: &Progress) -> Result<()> {
        let name = req.name.trim();
        let base = Reference::parse(name)
            .map_err(|_| Error::InvalidParameter("invalid reference format".into()))?;
        let tags: Vec<Reference> = if req.tag.is_empty() && !crate::image_pull::has_tag(name) {
            let mut t = self.images.tags_in_repo(&base.name());
            t.sort_by(|a, b| a.tag.cmp(&b.tag));
            t
        } else {
            let mut r = base.clone();
            if !req.tag.is_empty() {
                r.tag = Some(req.tag.clone());
            }
            if self.images.resolve(&r).is_some() {
                vec![r]
            } else {
                vec![]
            }
        };
        if tags.is_empty() {
            return Err(Error::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                base.familiar_name()
            )));
        }
        let ep = self
            .registry()
            .endpoints(&base.domain)
            .into_iter()
            .rfind(|e| !e.mirror)
            .ok_or_else(|| Error::Internal("no registry endpoint".into()))?;
        let session = Arc::new(
            self.registry()
                .session(&ep, &base.path, &req.creds, true)
                .await?,
        );
        p.status(format!("The push refers to repository [{}]", base.name()))
            .await;
        for r in tags {
            self.push_one(&session, &r, p).await?;
        }
        Ok(())
    }

    async fn push_one(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: &Reference,
        p: &Progress,
    ) -> Result<()> {
        let id = self
            .images
            .resolve(r)
            .ok_or_else(|| Error::NotFound(format!("No such image: {}", r.familiar())))?;
        let img = self.images.get(id.as_str())?;
        let config = self.images.read_blob(&id)?;
        let diff_ids = img.config.rootfs.diff_ids.clone();
        let limit = self.settings().max_concurrent_uploads.max(1);
        // docker lists the layers top first
        for d in diff_ids.iter().rev() {
            p.id_status(&short_id(d), "Preparing").await;
        }
        if diff_ids.len() > limit {
            for d in diff_ids.iter().rev().skip(limit) {
                p.id_status(&short_id(d), "Waiting").await;
            }
        }
        let sem = Arc::new(Semaphore::new(limit));
        let mut handles = Vec::new();
        for d in diff_ids.iter().rev() {
            let eng = self.clone();
            let session = session.clone();
            let sem = sem.clone();
            let p = p.clone();
            let d = d.clone();
            handles.push(tokio::spawn(async move {
                let _permit = sem
                    .acquire()
                    .await
                    .map_err(|_| Error::Internal("push cancelled".into()))?;
                eng.push_layer(&session, &d, &p).await
            }));
        }
        let mut descs = Vec::new();
        let mut first_err = None;
        for h in handles {
            match h
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("layer task: {e}"))))
            {
                Ok(d) => descs.push(d),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        descs.reverse();
        if session.has_blob(id.as_str()).await?.is_none() {
            session
                .upload_bytes(id.as_str(), Bytes::from(config.clone()))
                .await?;
        }
        // the manifest the image came as, when it names exactly these blobs
        let mut chosen: Option<(Vec<u8>, String)> = None;
        for rec in self.manifest_records(id.as_str()) {
            let Ok(d) = berth_image::Digest::parse(&rec.digest) else {
                continue;
            };
            let Ok(bytes) = self.images.read_blob(&d) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let layers: Vec<String> = v
                .get("layers")
                .and_then(|l| l.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.get("digest").and_then(|d| d.as_str()).map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let same_config = v
                .get("config")
                .and_then(|c| c.get("digest"))
                .and_then(|d| d.as_str())
                == Some(id.as_str());
            if same_config && layers == descs.iter().map(|d| d.digest.clone()).collect::<Vec<_>>() {
                chosen = Some((bytes, rec.media_type));
                break;
            }
        }
        let (bytes, media_type) = match chosen {
            Some(c) => c,
            None => {
                let m = ManifestOut {
                    schema_version: 2,
                    media_type: media::DOCKER_MANIFEST,
                    config: Desc {
                        media_type: media::DOCKER_CONFIG.into(),
                        size: config.len() as u64,
                        digest: id.to_string(),
                    },
                    layers: &descs,
                };
                (manifest_bytes(&m)?, media::DOCKER_MANIFEST.to_string())
            }
        };
        let size = bytes.len();
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let digest = session
            .put_manifest(&tag, &media_type, bytes.clone())
            .await?;
        let _ = self.record_manifest(id.as_str(), &bytes, &media_type);
        let mut dref = r.clone();
        dref.tag = None;
        dref.digest = Some(digest.clone());
        let _ = self.images.tag(&id, &dref);
        self.events.emit(
            "image",
            "push",
            &r.familiar(),
            [("name".to_string(), r.familiar())].into_iter().collect(),
        );
        p.status(format!("{tag}: digest: {digest} size: {size}"))
            .await;
        p.aux(json!({"Tag": tag, "Digest": digest, "Size": size}))
            .await;
        Ok(())
    }

    /// One layer: skipped, mounted or uploaded; returns its descriptor in the manifest.
    async fn push_layer(
        self: &Arc<Self>,
        session: &Session,
        diff: &str,
        p: &Progress,
    ) -> Result<Desc> {
        let id = short_id(diff);
        let host = &session.endpoint.host;
        let sources = self.blob_sources(diff);
        let gz = |s: &BlobSource| Desc {
            media_type: if s.media_type.is_empty() {
                media::DOCKER_LAYER_GZIP.to_string()
            } else {
                s.media_type.clone()
            },
            size: s.size,
            digest: s.digest.clone(),
        };
        // already in this repository?
        let mut seen = std::collections::HashSet::new();
        for s in &sources {
            if !seen.insert(s.digest.clone()) {
                continue;
            }
            if let Some(size) = session.has_blob(&s.digest).await? {
                p.id_status(&id, "Layer already exists").await;
                let mut d = gz(s);
                if size > 0 {
                    d.size = size;
                }
                self.note_pushed(diff, &d, session);
                return Ok(d);
            }
        }
        // in another repository of this registry: mount it
        for s in sources
            .iter()
            .filter(|s| &s.host == host && s.repo != session.repo)
        {
            if session.mount(&s.digest, &s.repo).await? {
                p.id_status(&id, &format!("Mounted from {}", s.repo)).await;
                let d = gz(s);
                self.note_pushed(diff, &d, session);
                return Ok(d);
            }
        }
        // compress the stored tar on the way up
        let tar = self.layer_tar(diff)?;
        let total = std::fs::metadata(&tar)?.len();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let (dtx, drx) = tokio::sync::oneshot::channel::<String>();
        let pb = p.clone();
        let idc = id.clone();
        let compress = tokio::task::spawn_blocking(move || -> Result<(String, u64)> {
            let mut f = std::fs::File::open(&tar)?;
            let w = UploadWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(UPLOAD_CHUNK),
                hasher: sha2::Sha256::new(),
                len: 0,
            };
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            let mut buf = vec![0u8; 256 * 1024];
            let mut read = 0u64;
            let mut reported = 0u64;
            let step = (total / 100).clamp(256 * 1024, 4 << 20);
            let res = (|| -> std::io::Result<()> {
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    enc.write_all(&buf[..n])?;
                    read += n as u64;
                    if read - reported >= step {
                        reported = read;
                        pb.blocking_bar(&idc, "Pushing", read, total);
                    }
                }
                Ok(())
            })();
            let mut w = match res.and_then(|()| enc.finish()) {
                Ok(w) => w,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return Err(e.into());
                }
            };
            w.flush_buf()?;
            let digest = format!("sha256:{}", hex::encode(w.hasher.clone().finalize()));
            let len = w.len;
            drop(w);
            drop(tx);
            let _ = dtx.send(digest.clone());
            Ok((digest, len))
        });
        let uploaded = session.upload_stream(rx, drx).await;
        let compressed = compress
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("layer compressor: {e}"))));
        // the upload's error explains a compressor that stopped for want of a reader
        let up = uploaded?;
        let (digest, len) = compressed?;
        if up != digest {
            return Err(Error::Internal(format!(
                "upload of {diff} ended as {up}, expected {digest}"
            )));
        }
        p.bar(&id, "Pushing", total, total).await;
        p.id_status(&id, "Pushed").await;
        let d = Desc {
            media_type: media::DOCKER_LAYER_GZIP.into(),
            size: len,
            digest,
        };
        self.note_pushed(diff, &d, session);
        Ok(d)
    }

    fn note_pushed(&self, diff: &str, d: &Desc, session: &Session) {
        let _ = self.record_blob_source(
            diff,
            BlobSource {
                digest: d.digest.clone(),
                size: d.size,
                media_type: d.media_type.clone(),
                host: session.endpoint.host.clone(),
                repo: session.repo.clone(),
            },
        );
    }
}
