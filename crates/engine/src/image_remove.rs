//! `tag`, `rmi`, `history`, `image prune`: references move, images go with their last one,
//! and layers are deleted only when no other image's chain uses them.

use crate::container::Status;
use crate::{Engine, Error, Result};
use berth_image::{Digest, Image, Reference};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn short(id: &Digest) -> &str {
    &id.hex()[..12]
}

impl Engine {
    /// The chain IDs of an image's layers, bottom first.
    pub(crate) fn chain_ids(img: &Image) -> Vec<String> {
        let mut parent: Option<String> = None;
        let mut out = Vec::new();
        for d in &img.config.rootfs.diff_ids {
            let c = berth_snapshot::Snapshotter::chain_id(parent.as_deref(), d);
            out.push(c.clone());
            parent = Some(c);
        }
        out
    }

    fn emit_image(&self, action: &str, id: &str, name: &str) {
        self.events.emit(
            "image",
            action,
            id,
            [("name".to_string(), name.to_string())]
                .into_iter()
                .collect(),
        );
    }

    /// Containers (id, running) created from `image`.
    fn users_of(&self, image: &Digest) -> Vec<(String, bool)> {
        self.all_containers()
            .into_iter()
            .filter_map(|c| {
                let r = c.record();
                (r.image_id == image.as_str()).then(|| {
                    (
                        r.id.clone(),
                        r.state.status.is_running() || r.state.status == Status::Restarting,
                    )
                })
            })
            .collect()
    }

    pub fn image_tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let img = self
            .images
            .get(name)
            .map_err(|_| crate::container_create::no_such_image(name))?;
        let full = match tag.filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.to_string(),
        };
        let r = Reference::parse(&full)?;
        if r.digest.is_some() {
            return Err(Error::InvalidParameter(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        // `sha256:x` would read as an image ID afterwards
        if r.domain == "docker.io" && r.path == "library/sha256" {
            return Err(Error::InvalidParameter(
                "refusing to create an ambiguous tag using digest algorithm as name".into(),
            ));
        }
        self.images.tag(&img.id, &r)?;
        self.emit_image("tag", img.id.as_str(), &r.familiar());
        Ok(())
    }

    /// Deletes the image and every layer no other image needs.
    fn delete_image(&self, img: &Image, out: &mut Vec<Value>) -> Result<()> {
        let keep: HashSet<String> = self
            .images
            .list()?
            .iter()
            .filter(|o| o.id != img.id)
            .flat_map(Self::chain_ids)
            .collect();
        let parent = self.images.parent_recorded(&img.id);
        self.images.delete(&img.id)?;
        out.push(json!({"Deleted": img.id.as_str()}));
        for chain in Self::chain_ids(img).iter().rev() {
            if !keep.contains(chain) {
                self.snaps.remove_layer(chain)?;
                out.push(json!({"Deleted": chain}));
            }
        }
        let kept_diffs: HashSet<String> = self
            .images
            .list()?
            .iter()
            .flat_map(|o| o.config.rootfs.diff_ids.clone())
            .collect();
        for d in &img.config.rootfs.diff_ids {
            if !kept_diffs.contains(d) {
                if let Ok(d) = Digest::parse(d) {
                    let _ = std::fs::remove_file(self.images.blob_path(&d));
                }
            }
        }
        self.emit_image("delete", img.id.as_str(), img.id.as_str());
        if let Some(p) = parent {
            self.delete_parents(&p, out);
        }
        Ok(())
    }

    /// After an image is deleted, its parent goes too when nothing else holds it (untagged,
    /// no other child, no container), and so on up the chain: docker's removal of a built
    /// image's intermediate images.
    fn delete_parents(&self, parent: &Digest, out: &mut Vec<Value>) {
        let Ok(p) = self.images.get(parent.as_str()) else {
            return;
        };
        if !p.repo_tags.is_empty() || !p.repo_digests.is_empty() {
            return;
        }
        if self.images.parents().iter().any(|(_, pp)| *pp == p.id) {
            return;
        }
        if !self.users_of(&p.id).is_empty() {
            return;
        }
        if let Err(e) = self.delete_image(&p, out) {
            tracing::warn!(id = %p.id, "deleting a parent image: {e}");
        }
    }

    /// `DELETE /images/{name}`: docker's untag-or-delete rules.
    pub fn image_remove(&self, name: &str, force: bool) -> Result<Vec<Value>> {
        let img = self
            .images
            .get(name)
            .map_err(|_| match Reference::parse(name) {
                Ok(_) => crate::container_create::no_such_image(name),
                Err(e) => Error::from(e),
            })?;
        let by_ref = Reference::parse(name).ok().filter(|r| {
            img.repo_tags.contains(&r.familiar()) || img.repo_digests.contains(&r.familiar())
        });
        let users = self.users_of(&img.id);
        let mut out = Vec::new();
        if let Some(r) = by_ref {
            // A name: untag; delete too when it was the last tag and nothing uses the image
            // (its digest references go with it, as with docker).
            let tags_left = img.repo_tags.iter().filter(|t| **t != r.familiar()).count();
            let last = tags_left == 0 && (r.digest.is_none() || img.repo_digests.len() <= 1);
            if last && !users.is_empty() && !force {
                return Err(Error::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &users[0].0[..12], short(&img.id)
                )));
            }
            self.images.untag(&r)?;
            out.push(json!({"Untagged": r.familiar()}));
            self.emit_image("untag", img.id.as_str(), &r.familiar());
            if last && users.is_empty() {
                for dref in img.repo_digests.iter().filter(|d| **d != r.familiar()) {
                    if let Ok(dr) = Reference::parse(dref) {
                        let _ = self.images.untag(&dr);
                        out.push(json!({"Untagged": dref}));
                    }
                }
                self.delete_image(&img, &mut out)?;
            }
            return Ok(out);
        }
        // An ID.
        if let Some((cid, _)) = users.iter().find(|(_, running)| *running) {
            return Err(Error::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                short(&img.id), &cid[..12]
            )));
        }
        if !force {
            if img.repo_tags.len() > 1 {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    short(&img.id)
                )));
            }
            if let Some((cid, _)) = users.first() {
                return Err(Error::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                    short(&img.id), &cid[..12]
                )));
            }
        }
        for t in img.repo_tags.iter().chain(&img.repo_digests) {
            if let Ok(r) = Reference::parse(t) {
                self.images.untag(&r)?;
                out.push(json!({"Untagged": t}));
                self.emit_image("untag", img.id.as_str(), t);
            }
        }
        if users.is_empty() {
            self.delete_image(&img, &mut out)?;
        }
        Ok(out)
    }

    /// `GET /images/{name}/history`, newest first.
    pub fn image_history(&self, name: &str) -> Result<Value> {
        let img = self
            .images
            .get(name)
            .map_err(|_| crate::container_create::no_such_image(name))?;
        let chains = Self::chain_ids(&img);
        let mut layer = 0;
        let mut rows = Vec::new();
        for h in &img.config.history {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = chains
                    .get(layer)
                    .and_then(|c| self.snaps.layer_info(c).ok())
                    .map(|i| i.size)
                    .unwrap_or(0);
                layer += 1;
                s
            };
            let created = h
                .get("created")
                .and_then(Value::as_str)
                .and_then(crate::timefmt::parse_rfc3339)
                .map(crate::timefmt::unix_secs)
                .unwrap_or(0);
            rows.push(json!({
                "Id": "<missing>",
                "Created": created,
                "CreatedBy": h.get("created_by").and_then(Value::as_str).unwrap_or(""),
                "Tags": null,
                "Size": size,
                "Comment": h.get("comment").and_then(Value::as_str).unwrap_or("")
            }));
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top["Id"] = json!(img.id.as_str());
            top["Tags"] = if img.repo_tags.is_empty() {
                Value::Null
            } else {
                json!(img.repo_tags)
            };
        }
        // built images: each row an intermediate image made is shown with its ID (docker)
        let total = img.config.history.len();
        let mut cur = self.images.parent(&img.id);
        let mut guard = 0;
        while let Some(pid) = cur {
            guard += 1;
            let Ok(p) = self.images.get(pid.as_str()) else {
                break;
            };
            let n = p.config.history.len();
            if n == 0 || n > total || guard > 10_000 {
                break;
            }
            if let Some(row) = rows.get_mut(total - n) {
                row["Id"] = json!(p.id.as_str());
                if !p.repo_tags.is_empty() {
                    row["Tags"] = json!(p.repo_tags);
                }
            }
            cur = self.images.parent(&p.id);
        }
        Ok(Value::Array(rows))
    }

    /// `/images/json` filters: dangling, reference, before, since, label.
    pub fn image_matches(&self, img: &Image, filters: &HashMap<String, Vec<String>>) -> bool {
        let created = |i: &Image| i.config.created.clone().unwrap_or_default();
        filters.iter().all(|(k, vals)| {
            if k == "label" {
                let labels = img.config.config.as_ref().and_then(|c| c.labels.clone());
                return berth_util::filters::labels_match(vals, &labels.unwrap_or_default());
            }
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "dangling" => (v == "true") == img.repo_tags.is_empty(),
                    "reference" => img
                        .repo_tags
                        .iter()
                        .any(|t| berth_util::filters::reference_matches(v, t)),
                    "before" => self
                        .images
                        .get(v)
                        .map(|o| created(img) < created(&o))
                        .unwrap_or(false),
                    "since" => self
                        .images
                        .get(v)
                        .map(|o| created(img) > created(&o))
                        .unwrap_or(false),
                    _ => true,
                })
        })
    }

    /// `image prune`: dangling images (all unused ones with `all`) that no container uses.
    pub fn image_prune(self: &Arc<Self>, all: bool) -> Result<(Vec<Value>, u64)> {
        let mut out = Vec::new();
        let mut space = 0;
        let with_children: HashSet<Digest> =
            self.images.parents().into_iter().map(|(_, p)| p).collect();
        for img in self.images.list()? {
            if (!all && !img.repo_tags.is_empty()) || !self.users_of(&img.id).is_empty() {
                continue;
            }
            // an intermediate image goes with its last child
            if with_children.contains(&img.id) || self.images.get(img.id.as_str()).is_err() {
                continue;
            }
            let size = self.image_size(&img);
            for t in &img.repo_tags {
                if let Ok(r) = Reference::parse(t) {
                    self.images.untag(&r)?;
                    out.push(json!({"Untagged": t}));
                }
            }
            self.delete_image(&img, &mut out)?;
            space += size;
        }
        Ok((out, space))
    }
}
