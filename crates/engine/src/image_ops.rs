//! Images as the engine sees them: load an archive, list, inspect.

use crate::layers::{Hashing, Staged};
use crate::timefmt::{parse_rfc3339, unix_secs};
use crate::{Engine, Error, Result};
use berth_types::{overlay, CONFIG_DEFAULTS};
use rand::RngCore;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

/// Unpacks the layer tars of an archive being loaded as they stream by (each byte read and
/// hashed once); the loader publishes them once the manifest has named and verified them.
struct LoadSink<'a> {
    engine: &'a Engine,
    taken: HashMap<String, (berth_snapshot::Unpacked<'a>, Staged)>,
    /// why a layer was refused
    error: Option<Error>,
}

impl berth_image::archive::FileSink for LoadSink<'_> {
    fn wants(&mut self, path: &str, size: u64, head: &[u8]) -> bool {
        // an uncompressed tar (compressed layers take the staged path); not a layer this
        // store already holds, when its name gives its diff ID (berth's own `save`)
        let is_tar = size >= 1024 && head.len() == 512 && &head[257..262] == b"ustar";
        if !is_tar {
            return false;
        }
        let named = path
            .strip_suffix("/layer.tar")
            .or_else(|| path.strip_prefix("blobs/sha256/"))
            .and_then(|h| berth_image::Digest::from_hex(h).ok());
        !named.is_some_and(|d| self.engine.images.has_blob(&d))
    }

    fn take(&mut self, path: &str, content: &mut dyn Read) -> Option<berth_image::Digest> {
        let res = self
            .engine
            .unpack_streamed(Hashing::Producer, |pipe| {
                pipe.copy_from(content).map(|_| ())
            })
            .and_then(|(u, staged)| {
                let d = berth_image::Digest::parse(&staged.diff_id)?;
                Ok((d, u, staged))
            });
        match res {
            Ok((d, u, staged)) => {
                self.taken.insert(path.to_string(), (u, staged));
                Some(d)
            }
            Err(e) => {
                tracing::warn!(path, error = %e, "layer refused while loading");
                self.error = Some(e);
                None
            }
        }
    }
}

impl Engine {
    /// Loads a `docker save` / OCI archive (blocking: call from a blocking task). Returns the
    /// lines docker prints (`Loaded image: busybox:latest`). Nothing is tagged unless every
    /// layer of that image was verified and unpacked.
    pub fn load_image(self: &Arc<Self>, reader: impl Read) -> Result<Vec<String>> {
        let mut rnd = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut rnd);
        let staging = self
            .cfg
            .data_root
            .join("tmp")
            .join(format!("load-{}", hex::encode(rnd)));
        std::fs::create_dir_all(&staging)?;
        let result = self.load_staged(reader, &staging);
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn load_staged(&self, reader: impl Read, staging: &std::path::Path) -> Result<Vec<String>> {
        let t0 = std::time::Instant::now();
        let mut sink = LoadSink {
            engine: self,
            taken: HashMap::new(),
            error: None,
        };
        let found = match berth_image::archive::unpack_with(reader, staging, &mut sink) {
            Ok(f) => f,
            Err(e) => return Err(sink.error.take().unwrap_or_else(|| e.into())),
        };
        tracing::debug!(
            layers_unpacked = sink.taken.len(),
            ms = t0.elapsed().as_millis() as u64,
            "archive read"
        );
        if found.is_empty() {
            return Err(Error::InvalidParameter(
                "no images found in the archive".into(),
            ));
        }
        let mut out = Vec::new();
        for img in found {
            let cfg: berth_image::ImageConfig = serde_json::from_slice(&img.config)
                .map_err(|e| Error::InvalidParameter(format!("invalid image config: {e}")))?;
            let diff_ids = &cfg.rootfs.diff_ids;
            if diff_ids.len() != img.layers.len() {
                return Err(Error::InvalidParameter(format!(
                    "image has {} layers but its config lists {} diff IDs",
                    img.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut parent: Option<String> = None;
            for (diff, path) in diff_ids.iter().zip(&img.layers) {
                let chain = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), diff);
                let have_tar = berth_image::Digest::parse(diff)
                    .map(|d| self.images.has_blob(&d))
                    .unwrap_or(false);
                if !self.snaps.has_layer(&chain) || !have_tar {
                    let key = path
                        .strip_prefix(staging)
                        .ok()
                        .and_then(|p| p.to_str())
                        .unwrap_or("");
                    if let Some((unpacked, staged)) = sink.taken.remove(key) {
                        // unpacked while the archive streamed
                        if staged.diff_id != *diff {
                            return Err(Error::InvalidParameter(format!(
                                "layer digest mismatch: expected {diff}, got {}",
                                staged.diff_id
                            )));
                        }
                        self.publish_layer(parent.as_deref(), unpacked, staged)?;
                        parent = Some(chain);
                        continue;
                    }
                    // a layer file shared by two images of the archive may already be moved
                    // into the store by the first: read it back from there
                    let staged = match path.exists() {
                        true => self.stage_layer_file(path)?,
                        false => self.stage_layer(std::io::BufReader::new(std::fs::File::open(
                            self.layer_tar(diff)?,
                        )?))?,
                    };
                    if staged.diff_id != *diff {
                        return Err(Error::InvalidParameter(format!(
                            "layer digest mismatch: expected {diff}, got {}",
                            staged.diff_id
                        )));
                    }
                    self.commit_layer(parent.as_deref(), staged)?;
                }
                parent = Some(chain);
            }
            let image = self.images.add_image(&img.config)?;
            // A tag that moves leaves its old image dangling (`<none>:<none>`), as with docker.
            if img.repo_tags.is_empty() {
                out.push(format!("Loaded image ID: {}", image.id.as_str()));
            }
            for r in &img.repo_tags {
                self.images.tag(&image.id, r)?;
                out.push(format!("Loaded image: {}", r.familiar()));
            }
        }
        Ok(out)
    }

    pub(crate) fn image_size(&self, img: &berth_image::Image) -> u64 {
        let mut parent: Option<String> = None;
        let mut total = 0;
        for d in &img.config.rootfs.diff_ids {
            let chain = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), d);
            total += self.snaps.layer_info(&chain).map(|i| i.size).unwrap_or(0);
            parent = Some(chain);
        }
        total
    }

    fn created_secs(img: &berth_image::Image) -> i64 {
        img.config
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map(unix_secs)
            .unwrap_or(0)
    }

    /// The `/images/json` array.
    /// `all`: the intermediate images of builds too (untagged images with children are
    /// left out otherwise, as docker does).
    pub fn image_list(
        &self,
        filters: &std::collections::HashMap<String, Vec<String>>,
        all: bool,
    ) -> Result<Value> {
        let mut out = Vec::new();
        let parents: HashMap<String, String> = self
            .images
            .parents()
            .into_iter()
            .map(|(c, p)| (c.as_str().to_string(), p.as_str().to_string()))
            .collect();
        let has_children: std::collections::HashSet<&str> =
            parents.values().map(String::as_str).collect();
        for img in self.images.list()? {
            let with_children = has_children.contains(img.id.as_str());
            if !all && img.repo_tags.is_empty() && img.repo_digests.is_empty() && with_children {
                continue;
            }
            if !self.image_matches(&img, filters) {
                continue;
            }
            // dangling: untagged leaves only
            if with_children
                && filters
                    .get("dangling")
                    .is_some_and(|v| v.iter().any(|x| x == "true"))
            {
                continue;
            }
            let size = self.image_size(&img);
            // docker narrows the names it lists to those the reference filter matched
            let tags: Vec<String> = match filters.get("reference").filter(|v| !v.is_empty()) {
                Some(pats) => img
                    .repo_tags
                    .iter()
                    .filter(|t| {
                        pats.iter()
                            .any(|p| berth_util::filters::reference_matches(p, t))
                    })
                    .cloned()
                    .collect(),
                None => img.repo_tags.clone(),
            };
            let labels = img.config.config.as_ref().and_then(|c| c.labels.clone());
            out.push(json!({
                "Containers": -1,
                "Created": Self::created_secs(&img),
                "Id": img.id.as_str(),
                "Labels": labels,
                "ParentId": parents.get(img.id.as_str()).cloned().unwrap_or_default(),
                "RepoDigests": if !img.repo_digests.is_empty() { json!(img.repo_digests) } else if tags.is_empty() { json!(["<none>@<none>"]) } else { Value::Null },
                "RepoTags": if tags.is_empty() { json!(["<none>:<none>"]) } else { json!(tags) },
                "SharedSize": -1,
                "Size": size,
                "VirtualSize": size
            }));
        }
        Ok(Value::Array(out))
    }

    /// `/images/{name}/json`.
    pub fn image_inspect(&self, name: &str) -> Result<Value> {
        let img = self
            .images
            .get(name)
            .map_err(|_| match berth_image::Reference::parse(name) {
                Ok(r) => Error::NotFound(format!(
                    "no such image: {name}: No such image: {}",
                    r.familiar()
                )),
                // not a reference at all: 400, as dockerd's
                Err(e) => Error::InvalidParameter(format!("no such image: {name}: {e}")),
            })?;
        let cfg = &img.config;
        // an image's config has no labels unless it set some (`null`, as dockerd shows it;
        // containers always have a map)
        let image_config = |c: &Value| {
            let mut v = overlay(CONFIG_DEFAULTS, c);
            if c.get("Labels").is_none_or(Value::is_null) {
                v["Labels"] = Value::Null;
            }
            v
        };
        let config = image_config(&serde_json::to_value(
            cfg.config.clone().unwrap_or_default(),
        )?);
        let size = self.image_size(&img);
        let mut parent: Option<String> = None;
        let mut lowers = Vec::new();
        for d in &cfg.rootfs.diff_ids {
            let chain = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), d);
            if let Ok(p) = self.snaps.layer_diff_path(&chain) {
                lowers.push(p.to_string_lossy().into_owned());
            }
            parent = Some(chain);
        }
        lowers.reverse();
        let upper = lowers.first().cloned().unwrap_or_default();
        Ok(json!({
            "Id": img.id.as_str(),
            "RepoTags": img.repo_tags,
            "RepoDigests": img.repo_digests,
            "Parent": self.images.parent(&img.id).map(|p| p.as_str().to_string()).unwrap_or_default(),
            "Comment": cfg.extra.get("comment").cloned().unwrap_or(json!("")),
            "Created": cfg.created.clone().unwrap_or_default(),
            "Container": cfg.extra.get("container").cloned().unwrap_or(json!("")),
            "ContainerConfig": image_config(cfg.extra.get("container_config").unwrap_or(&Value::Null)),
            "DockerVersion": cfg.extra.get("docker_version").cloned().unwrap_or(json!("")),
            "Author": cfg.author.clone().unwrap_or_default(),
            "Config": config,
            "Architecture": cfg.architecture.clone().unwrap_or_default(),
            "Os": cfg.os.clone().unwrap_or_default(),
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": {
                // a one-layer image has no LowerDir (dockerd leaves the key out)
                "Data": match lowers.get(1..).filter(|l| !l.is_empty()) {
                    Some(l) => json!({"LowerDir": l.join(":"), "MergedDir": "", "UpperDir": upper, "WorkDir": ""}),
                    None => json!({"MergedDir": "", "UpperDir": upper, "WorkDir": ""}),
                },
                "Name": "overlay2"
            },
            "RootFS": {"Type": "layers", "Layers": cfg.rootfs.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}
        }))
    }
}
