//! `POST /images/create?fromImage=…`: pull an image from a registry.
//!
//! The manifest (a list or index resolved to one platform) and the config come first; then
//! the layers, up to `max_concurrent_downloads` at a time: each blob streams from the
//! registry through its digest check into a decompressor and the streamed unpacker of
//! `layers.rs` (so the layer is on disk when its last byte arrives), is checked against its
//! diff ID and published once its parent is. Nothing is tagged unless every layer and the
//! config verified; a failed pull leaves the image a tag named before untouched.

use crate::image_registry::{short_id, BlobSource, Progress};
use crate::layers::Hashing;
use crate::{Engine, Error, Result};
use berth_image::Reference;
use berth_registry::{media, Credentials, Session};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// What a client asked to pull.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage`
    pub image: String,
    /// `tag` (a tag or a digest; empty with a bare name: every tag)
    pub tag: String,
    /// `platform` (`linux/arm64/v8`)
    pub platform: Option<String>,
    pub creds: Credentials,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize, Clone, Default)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ImageManifest {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

/// The platform a pull wants: `platform=` or this machine's (`linux/amd64`).
fn wanted_platform(p: Option<&str>) -> Result<Platform> {
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        a => a,
    };
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return Ok(Platform {
            os: "linux".into(),
            architecture: host_arch.into(),
            variant: None,
        });
    };
    let parts: Vec<&str> = p.split('/').collect();
    let bad = || {
        Error::InvalidParameter(format!(
            "\"{p}\": unknown operating system or architecture: invalid argument"
        ))
    };
    match parts.as_slice() {
        [os] if !os.is_empty() => Ok(Platform {
            os: os.to_lowercase(),
            architecture: host_arch.into(),
            variant: None,
        }),
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_lowercase(),
            architecture: arch.to_lowercase(),
            variant: None,
        }),
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_lowercase(),
            architecture: arch.to_lowercase(),
            variant: Some(variant.to_lowercase()).filter(|v| !v.is_empty()),
        }),
        _ => Err(bad()),
    }
}

fn platform_matches(have: &Platform, want: &Platform) -> bool {
    have.os == want.os
        && have.architecture == want.architecture
        && match (&want.variant, &have.variant) {
            (Some(w), Some(h)) => w == h,
            (Some(w), None) => w == "v8" && want.architecture == "arm64",
            (None, _) => true,
        }
}

/// Whether a `fromImage` value names a tag itself (`a:b`, `host:5000/a:b`).
pub(crate) fn has_tag(name: &str) -> bool {
    let name = name.split('@').next().unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

/// A blocking `Read` over byte chunks sent from the async side (a blob from a registry, a
/// request body); used on blocking threads by the unpackers.
pub struct BytesReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl BytesReader {
    pub fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> BytesReader {
        BytesReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for BytesReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// A reader of the uncompressed layer: gzip and zstd are recognised by their magic, anything
/// else is taken as a plain tar (the unpacker refuses what is not one).
fn decompress<'a>(mut r: impl Read + Send + 'a) -> std::io::Result<Box<dyn Read + Send + 'a>> {
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match r.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let joined = std::io::Cursor::new(magic[..n].to_vec()).chain(r);
    if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(64 * 1024, joined),
        )))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Ok(Box::new(zstd::stream::read::Decoder::new(joined)?))
    } else {
        Ok(Box::new(joined))
    }
}

const PARENT_FAILED: &str = "a lower layer of the image failed";

/// The result of pulling one tag or digest.
struct Pulled {
    new: bool,
}

impl Engine {
    /// Pulls as `POST /images/create?fromImage=` does, sending docker's progress messages.
    /// Errors before the first message should become an HTTP error status; later ones an
    /// `errorDetail` message (the API decides, by whether a message was sent).
    pub async fn image_pull(self: &Arc<Self>, req: PullRequest, p: &Progress) -> Result<()> {
        let name = req.image.trim().to_string();
        let all_tags = req.tag.is_empty() && !name.contains('@') && !has_tag(&name);
        let spec = if req.tag.is_empty() {
            name.clone()
        } else if req.tag.contains(':') {
            format!("{name}@{}", req.tag)
        } else {
            format!("{name}:{}", req.tag)
        };
        let r = Reference::parse(&spec).map_err(|e| match e {
            berth_image::Error::InvalidReference(m) if m == spec => {
                Error::InvalidParameter("invalid reference format".into())
            }
            e => Error::InvalidParameter(e.to_string()),
        })?;
        let want = wanted_platform(req.platform.as_deref())?;
        let endpoints = self.registry().endpoints(&r.domain);
        let mut last_err = None;
        for ep in &endpoints {
            let res = self.pull_from(ep, &r, all_tags, &want, &req.creds, p).await;
            match res {
                Err(e) if ep.mirror && !p.started() => {
                    tracing::warn!(mirror = %ep.base, error = %e, "mirror failed, trying the next endpoint");
                    last_err = Some(e);
                }
                other => return other,
            }
        }
        Err(last_err.unwrap_or_else(|| Error::Internal("no registry endpoint".into())))
    }

    async fn pull_from(
        self: &Arc<Self>,
        ep: &berth_registry::Endpoint,
        r: &Reference,
        all_tags: bool,
        want: &Platform,
        creds: &Credentials,
        p: &Progress,
    ) -> Result<()> {
        let t0 = std::time::Instant::now();
        let session = Arc::new(
            self.registry()
                .session(ep, &r.path, creds, false)
                .await
                .map_err(|e| self.pull_error(r, e))?,
        );
        tracing::debug!(
            endpoint = %ep.base,
            requests = session.requests(),
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "pull: session open"
        );
        if all_tags {
            let mut tags = session.tags().await.map_err(|e| self.pull_error(r, e))?;
            tags.sort();
            if tags.is_empty() {
                return Err(Error::NotFound(format!(
                    "repository {} not found: does not exist or no pull access",
                    r.familiar_name()
                )));
            }
            let mut any_new = false;
            for t in tags {
                let mut tr = r.clone();
                tr.tag = Some(t);
                tr.digest = None;
                any_new |= self.pull_one(&session, &tr, want, p).await?.new;
            }
            let what = r.familiar_name();
            p.status(if any_new {
                format!("Status: Downloaded newer image for {what}")
            } else {
                format!("Status: Image is up to date for {what}")
            })
            .await;
            return Ok(());
        }
        let pulled = self.pull_one(&session, r, want, p).await?;
        let what = r.familiar();
        p.status(if pulled.new {
            format!("Status: Downloaded newer image for {what}")
        } else {
            format!("Status: Image is up to date for {what}")
        })
        .await;
        tracing::debug!(
            reference = %r.full(),
            new = pulled.new,
            requests = session.requests(),
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "pull: done"
        );
        Ok(())
    }

    /// Docker's text for a registry error on a pull.
    fn pull_error(&self, r: &Reference, e: berth_registry::Error) -> Error {
        match e.status() {
            Some(404) => Error::NotFound(format!("manifest for {} not found: {e}", r.familiar())),
            _ => e.into(),
        }
    }

    async fn pull_one(
        self: &Arc<Self>,
        session: &Arc<Session>,
        r: &Reference,
        want: &Platform,
        p: &Progress,
    ) -> Result<Pulled> {
        let reference = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let top = session
            .manifest(&reference)
            .await
            .map_err(|e| self.pull_error(r, e))?;
        let t0 = std::time::Instant::now();
        tracing::debug!(reference = %reference, requests = session.requests(), "pull: manifest");
        p.send(json!({"status": format!("Pulling from {}", r.path), "id": reference}))
            .await;
        let mut m = top.clone();
        if m.media_type == media::DOCKER_LIST
            || m.media_type == media::OCI_INDEX
            || (m.media_type.is_empty()
                && serde_json::from_slice::<serde_json::Value>(&m.bytes)
                    .ok()
                    .is_some_and(|v| v.get("manifests").is_some()))
        {
            let idx: Index = serde_json::from_slice(&m.bytes)
                .map_err(|e| Error::Internal(format!("invalid manifest list: {e}")))?;
            let chosen = idx
                .manifests
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|pl| platform_matches(pl, want))
                })
                .ok_or_else(|| {
                    let v = want
                        .variant
                        .as_ref()
                        .map(|v| format!("/{v}"))
                        .unwrap_or_default();
                    Error::NotFound(format!(
                        "no matching manifest for {}/{}{v} in the manifest list entries",
                        want.os, want.architecture
                    ))
                })?;
            m = match self.stored_manifest(&chosen.digest, &chosen.media_type) {
                Some(m) => m,
                None => session
                    .manifest(&chosen.digest)
                    .await
                    .map_err(|e| self.pull_error(r, e))?,
            };
        }
        if m.media_type == media::DOCKER_V1 || m.media_type == media::DOCKER_V1_SIGNED {
            return Err(Error::InvalidParameter(format!(
                "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. Suggest the author of {} to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. More information at https://docs.docker.com/go/deprecated-image-specs/",
                r.familiar()
            )));
        }
        let manifest: ImageManifest = serde_json::from_slice(&m.bytes).map_err(|e| {
            if serde_json::from_slice::<serde_json::Value>(&m.bytes)
                .ok()
                .and_then(|v| v.get("schemaVersion").and_then(|s| s.as_u64()))
                == Some(1)
            {
                Error::InvalidParameter(format!(
                    "{}: schema 1 manifests are not supported",
                    r.familiar()
                ))
            } else {
                Error::Internal(format!("invalid manifest: {e}"))
            }
        })?;
        if manifest.schema_version != 2 {
            return Err(Error::InvalidParameter(format!(
                "{}: unsupported manifest schema version {}",
                r.familiar(),
                manifest.schema_version
            )));
        }
        let config_id = berth_image::Digest::parse(&manifest.config.digest)?;
        let name_ref = |digest: &str| -> Result<Reference> {
            let mut d = r.clone();
            d.tag = None;
            d.digest = Some(digest.to_string());
            Ok(d)
        };
        // up to date: the image and all its layers are here
        let have = self.images.get(config_id.as_str()).ok();
        let complete = have.as_ref().is_some_and(|img| {
            let mut parent: Option<String> = None;
            img.config.rootfs.diff_ids.iter().all(|d| {
                let chain = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), d);
                let ok = self.snaps.has_layer(&chain)
                    && berth_image::Digest::parse(d).is_ok_and(|b| self.images.has_blob(&b));
                parent = Some(chain);
                ok
            })
        });
        tracing::debug!(
            complete,
            requests = session.requests(),
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "pull: local check"
        );
        let mut new = true;
        if complete {
            let tagged_before =
                r.tag.is_some() && self.images.resolve(r).as_ref() == Some(&config_id);
            let digest_before =
                self.images.resolve(&name_ref(&top.digest)?).as_ref() == Some(&config_id);
            new = !(tagged_before || (r.tag.is_none() && digest_before));
        } else {
            let config = session
                .blob_bytes(&manifest.config.digest, Some(manifest.config.size))
                .await
                .map_err(|e| self.pull_error(r, e))?;
            let cfg: berth_image::ImageConfig = serde_json::from_slice(&config)
                .map_err(|e| Error::Internal(format!("invalid image config: {e}")))?;
            if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
                return Err(Error::Internal(format!(
                    "the manifest lists {} layers but the image config {} diff IDs",
                    manifest.layers.len(),
                    cfg.rootfs.diff_ids.len()
                )));
            }
            self.pull_layers(session, &manifest.layers, &cfg.rootfs.diff_ids, p)
                .await?;
            self.images.add_image(&config)?;
        }
        // the tag moves only now, when everything is here
        if let Some(_t) = &r.tag {
            if r.digest.is_none() {
                self.images.tag(&config_id, r)?;
            }
        }
        self.images.tag(&config_id, &name_ref(&top.digest)?)?;
        // the image read for the up-to-date check, else the one just added (read once)
        let diff_ids = match have.filter(|_| complete) {
            Some(img) => img.config.rootfs.diff_ids,
            None => self
                .images
                .get(config_id.as_str())
                .map(|i| i.config.rootfs.diff_ids)
                .unwrap_or_default(),
        };
        for (l, diff) in manifest.layers.iter().zip(diff_ids) {
            let _ = self.record_blob_source(
                &diff,
                BlobSource {
                    digest: l.digest.clone(),
                    size: l.size,
                    media_type: l.media_type.clone(),
                    host: session.endpoint.host.clone(),
                    repo: session.repo.clone(),
                },
            );
        }
        let _ = self.record_manifest(config_id.as_str(), &m.bytes, &m.media_type);
        tracing::debug!(
            ms = t0.elapsed().as_secs_f64() * 1e3,
            "pull: tagged and recorded"
        );
        if new {
            self.events.emit(
                "image",
                "pull",
                &r.familiar(),
                [("name".to_string(), r.familiar())].into_iter().collect(),
            );
        }
        p.status(format!("Digest: {}", top.digest)).await;
        Ok(Pulled { new })
    }

    /// Fetches and unpacks the layers that are missing, concurrently; publishes them in order.
    async fn pull_layers(
        self: &Arc<Self>,
        session: &Arc<Session>,
        layers: &[Descriptor],
        diff_ids: &[String],
        p: &Progress,
    ) -> Result<()> {
        let limit = self.settings().max_concurrent_downloads.max(1);
        let sem = Arc::new(Semaphore::new(limit));
        let failed = Arc::new(AtomicBool::new(false));
        // link i: "the layers below i are published"
        let (first_tx, mut prev_rx) = oneshot::channel::<bool>();
        let _ = first_tx.send(true);
        let mut parent: Option<String> = None;
        let mut jobs = Vec::new();
        let mut queued = 0usize;
        for (l, diff) in layers.iter().zip(diff_ids) {
            let chain = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), diff);
            let (tx, rx) = oneshot::channel::<bool>();
            let parent_rx = std::mem::replace(&mut prev_rx, rx);
            let id = short_id(&l.digest);
            let present = self.snaps.has_layer(&chain)
                && berth_image::Digest::parse(diff).is_ok_and(|d| self.images.has_blob(&d));
            if present {
                p.id_status(&id, "Already exists").await;
                tokio::spawn(async move {
                    let ok = parent_rx.await.unwrap_or(false);
                    let _ = tx.send(ok);
                });
            } else {
                p.id_status(&id, "Pulling fs layer").await;
                queued += 1;
                let waiting = queued > limit;
                jobs.push((
                    id,
                    l.digest.clone(),
                    l.size,
                    diff.clone(),
                    parent.clone(),
                    parent_rx,
                    tx,
                    waiting,
                ));
            }
            parent = Some(chain);
        }
        for j in &jobs {
            if j.7 {
                p.id_status(&j.0, "Waiting").await;
            }
        }
        // permits are taken in layer order, here: a layer waiting for its parent to be
        // published never holds a download slot that parent still needs
        let mut handles = Vec::new();
        for (id, digest, size, diff, parent, parent_rx, tx, _) in jobs {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::Internal("pull cancelled".into()))?;
            let eng = self.clone();
            let session = session.clone();
            let failed = failed.clone();
            let p = p.clone();
            handles.push(tokio::spawn(async move {
                let res = eng
                    .pull_layer(
                        &session, permit, &failed, &p, &id, &digest, size, &diff, parent,
                        parent_rx, tx,
                    )
                    .await;
                if res.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                res
            }));
        }
        let mut first: Option<Error> = None;
        for h in handles {
            let r = h
                .await
                .unwrap_or_else(|e| Err(Error::Internal(format!("layer task: {e}"))));
            if let Err(e) = r {
                let secondary =
                    e.to_string() == PARENT_FAILED || e.to_string().contains("pull cancelled");
                if first.is_none()
                    || (!secondary
                        && first.as_ref().is_some_and(|f| {
                            let t = f.to_string();
                            t == PARENT_FAILED || t.contains("pull cancelled")
                        }))
                {
                    first = Some(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn pull_layer(
        self: &Arc<Self>,
        session: &Session,
        permit: tokio::sync::OwnedSemaphorePermit,
        failed: &AtomicBool,
        p: &Progress,
        id: &str,
        digest: &str,
        size: u64,
        diff: &str,
        parent: Option<String>,
        parent_rx: oneshot::Receiver<bool>,
        tx: oneshot::Sender<bool>,
    ) -> Result<()> {
        if failed.load(Ordering::SeqCst) {
            let _ = tx.send(false);
            return Err(Error::Internal("pull cancelled".into()));
        }
        let mut stream = match session.blob(digest, Some(size)).await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(false);
                return Err(e.into());
            }
        };
        let (ctx, crx) = mpsc::channel::<std::io::Result<Bytes>>(32);
        let eng = self.clone();
        let expected = diff.to_string();
        let unpack = tokio::task::spawn_blocking(move || {
            let res = eng
                .unpack_streamed(Hashing::Producer, |pipe| {
                    let mut dec = decompress(BytesReader::new(crx))
                        .map_err(|e| Error::Internal(format!("reading the layer: {e}")))?;
                    pipe.copy_from(&mut dec).map(|_| ())
                })
                .and_then(|(u, staged)| {
                    if staged.diff_id != expected {
                        return Err(Error::Internal(format!(
                            "layer digest mismatch: the config names {expected}, the layer is {}",
                            staged.diff_id
                        )));
                    }
                    if parent_rx.blocking_recv() != Ok(true) {
                        return Err(Error::Internal(PARENT_FAILED.into()));
                    }
                    eng.publish_layer(parent.as_deref(), u, staged)
                });
            let _ = tx.send(res.is_ok());
            res
        });
        let mut got = 0u64;
        let mut reported = 0u64;
        let step = (size / 100).clamp(32 * 1024, 512 * 1024);
        let mut dl_err: Option<Error> = None;
        loop {
            if failed.load(Ordering::SeqCst) {
                let _ = ctx.send(Err(std::io::Error::other("pull cancelled"))).await;
                dl_err = Some(Error::Internal("pull cancelled".into()));
                break;
            }
            match stream.chunk().await {
                Ok(Some(b)) => {
                    got += b.len() as u64;
                    if ctx.send(Ok(b)).await.is_err() {
                        // the unpacker stopped: its error is the one to report
                        break;
                    }
                    if got - reported >= step || got == size {
                        reported = got;
                        p.bar(id, "Downloading", got, size).await;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = ctx.send(Err(std::io::Error::other(e.to_string()))).await;
                    dl_err = Some(e.into());
                    break;
                }
            }
        }
        drop(ctx);
        // the download slot is free once the bytes are in
        drop(permit);
        if dl_err.is_none() {
            p.id_status(id, "Verifying Checksum").await;
            p.id_status(id, "Download complete").await;
        }
        let unpacked = unpack
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("layer unpacker: {e}"))));
        if let Some(e) = dl_err {
            return Err(e);
        }
        unpacked?;
        p.bar(id, "Extracting", size, size).await;
        p.id_status(id, "Pull complete").await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let w = wanted_platform(Some("linux/arm64/v8")).unwrap();
        assert_eq!(w.architecture, "arm64");
        assert!(platform_matches(
            &Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: Some("v8".into())
            },
            &w
        ));
        assert!(!platform_matches(
            &Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None
            },
            &w
        ));
        assert!(wanted_platform(Some("a/b/c/d")).is_err());
        assert_eq!(wanted_platform(None).unwrap().os, "linux");
    }

    #[test]
    fn tags_in_names() {
        assert!(has_tag("busybox:1"));
        assert!(has_tag("127.0.0.1:5000/a:b"));
        assert!(!has_tag("127.0.0.1:5000/a"));
        assert!(!has_tag("busybox"));
        assert!(!has_tag("busybox@sha256:00"));
    }

    #[test]
    fn layers_decompress_by_magic() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"layer bytes").unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::stream::encode_all(&b"layer bytes"[..], 1).unwrap();
        for input in [b"layer bytes".to_vec(), gz, zs] {
            let mut out = String::new();
            decompress(&input[..])
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out, "layer bytes");
        }
    }
}
