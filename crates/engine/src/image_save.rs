//! `save` (docker-archive out), `commit` (a container's RW layer → a new image on top of its
//! own), `import` (a tar → a one-layer image), and the `--change` Dockerfile instructions.

use crate::layers::tar_out::{append_path, BodySink, ChunkSink, TarOut};
use crate::layers::Hashing;
use crate::timefmt::format_rfc3339_nanos;
use crate::{Engine, Error, Result};
use berth_image::{ContainerConfig, ImageConfig, Reference};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;

/// `["a","b"]` or a shell form (`/bin/sh -c …`), as Dockerfile instructions take them.
fn exec_or_shell(arg: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<String>>(arg) {
        Ok(v) => v,
        Err(_) => vec!["/bin/sh".into(), "-c".into(), arg.to_string()],
    }
}

/// `k=v k2="v 2"` or the legacy `k v` form.
fn key_values(arg: &str) -> Vec<(String, String)> {
    if !arg.contains('=') {
        return match arg.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![],
        };
    }
    let mut out = Vec::new();
    let mut rest = arg.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let (v, next) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(e) => (stripped[..e].to_string(), &stripped[e + 1..]),
                None => (stripped.to_string(), ""),
            }
        } else {
            match after.find(char::is_whitespace) {
                Some(e) => (after[..e].to_string(), &after[e..]),
                None => (after.to_string(), ""),
            }
        };
        out.push((k.trim().to_string(), v));
        rest = next.trim_start();
    }
    out
}

/// `$NAME` and `${NAME}` in `s` replaced by their value in `env` (`KEY=value` entries;
/// empty when unset); `\$` keeps a literal `$`.
fn expand_env(s: &str, env: &[String]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if s[i + 1..].starts_with('$') => {
                out.push('$');
                chars.next();
            }
            '$' if s[i + 1..].starts_with('{') => match s[i + 2..].find('}') {
                Some(end) => {
                    out.push_str(&lookup(&s[i + 2..i + 2 + end]));
                    while chars.next_if(|&(j, _)| j <= i + 2 + end).is_some() {}
                }
                None => out.push(c),
            },
            '$' if s[i + 1..].starts_with(is_name) => {
                let len = s[i + 1..]
                    .find(|c: char| !is_name(c))
                    .unwrap_or(s.len() - i - 1);
                out.push_str(&lookup(&s[i + 1..i + 1 + len]));
                while chars.next_if(|&(j, _)| j <= i + len).is_some() {}
            }
            c => out.push(c),
        }
    }
    out
}

/// Applies `--change` instructions (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
/// VOLUME, STOPSIGNAL) to an image config.
pub fn apply_changes(c: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for ch in changes {
        let ch = ch.trim();
        if ch.is_empty() {
            continue;
        }
        let (ins, arg) = ch.split_once(char::is_whitespace).unwrap_or((ch, ""));
        let arg = arg.trim();
        match ins.to_ascii_uppercase().as_str() {
            "CMD" => c.cmd = Some(exec_or_shell(arg)),
            "ENTRYPOINT" => c.entrypoint = Some(exec_or_shell(arg)),
            "ENV" => {
                let env = c.env.get_or_insert_with(Vec::new);
                for (k, v) in key_values(arg) {
                    // `ENV PATH=/x:$PATH`: references see the config's environment so far
                    let v = expand_env(&v, env);
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let labels = c.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in key_values(arg) {
                    labels.insert(k, v);
                }
            }
            "EXPOSE" => {
                let ports = c.exposed_ports.get_or_insert_with(Default::default);
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let vols = c.volumes.get_or_insert_with(Default::default);
                let list = serde_json::from_str::<Vec<String>>(arg)
                    .unwrap_or_else(|_| arg.split_whitespace().map(String::from).collect());
                for v in list {
                    vols.insert(v, json!({}));
                }
            }
            "USER" => c.user = Some(arg.to_string()),
            "WORKDIR" => c.working_dir = Some(arg.to_string()),
            "STOPSIGNAL" => c.stop_signal = Some(arg.to_string()),
            other => {
                return Err(Error::InvalidParameter(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    Ok(())
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Whether `rel` may be one of the engine's own paths (so that the lower layers are looked up
/// only for those).
fn maybe_placeholder(rel: &str) -> bool {
    matches!(
        rel,
        "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | ".dockerenv" | "dev" | "proc" | "sys"
    ) || rel.starts_with("dev/")
        || rel.starts_with("proc/")
        || rel.starts_with("sys/")
}

/// The paths the engine adds to every container (mount points), left out of commits.
fn engine_placeholder(rel: &str, md: &std::fs::Metadata, in_lower: bool) -> bool {
    if in_lower {
        return false;
    }
    match rel {
        "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | ".dockerenv" => md.len() == 0,
        "dev" | "proc" | "sys" => md.is_dir(),
        _ => rel.starts_with("dev/") || rel.starts_with("proc/") || rel.starts_with("sys/"),
    }
}

/// Whether the upper directory `p` (`rel`) is the lower's same directory holding nothing but
/// the engine's placeholders.
fn only_placeholders(
    p: &Path,
    rel: &Path,
    md: &std::fs::Metadata,
    lowers: &[std::path::PathBuf],
) -> bool {
    let same_in_lower = lowers.iter().any(|l| {
        l.join(rel).symlink_metadata().is_ok_and(|lm| {
            lm.is_dir() && lm.mode() == md.mode() && lm.uid() == md.uid() && lm.gid() == md.gid()
        })
    });
    let Ok(rd) = std::fs::read_dir(p) else {
        return false;
    };
    same_in_lower
        && rd.into_iter().all(|e| {
            e.ok().is_some_and(|e| {
                let r = rel.join(e.file_name());
                let in_lower = lowers.iter().any(|l| l.join(&r).symlink_metadata().is_ok());
                e.path()
                    .symlink_metadata()
                    .is_ok_and(|m| engine_placeholder(&r.to_string_lossy(), &m, in_lower))
            })
        })
}

impl Engine {
    /// Writes the RW layer at `upper` as a docker layer tar (overlay whiteouts → `.wh.` files,
    /// opaque dirs → `.wh..wh..opq`), each file read once.
    fn write_upper<S: ChunkSink>(
        out: &mut TarOut<S>,
        upper: &Path,
        lowers: &[std::path::PathBuf],
    ) -> Result<()> {
        // by descriptor (a container committed without pause keeps running)
        berth_util::inroot::walk_dirs(upper, |dir, rel| {
            let mut names: Vec<_> = std::fs::read_dir(dir)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()?;
            names.sort();
            let mut subdirs = Vec::new();
            for n in names {
                let r = rel.join(&n);
                let p = dir.join(&n);
                let rs = r.to_string_lossy();
                let md = match p.symlink_metadata() {
                    Ok(md) => md,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                if maybe_placeholder(&rs) {
                    let in_lower = lowers.iter().any(|l| l.join(&r).symlink_metadata().is_ok());
                    if engine_placeholder(&rs, &md, in_lower) {
                        continue;
                    }
                }
                // `/etc` copied up only to hold the engine's mount points: no change of the
                // container's (an unchanged container commits an empty layer, as docker's)
                if rs == "etc"
                    && md.is_dir()
                    && !xattr_opaque(&p)
                    && only_placeholders(&p, &r, &md, lowers)
                {
                    continue;
                }
                if md.file_type().is_char_device() && md.rdev() == 0 {
                    let mut name = rel.as_os_str().as_bytes().to_vec();
                    if !name.is_empty() {
                        name.push(b'/');
                    }
                    name.extend_from_slice(b".wh.");
                    name.extend_from_slice(n.as_bytes());
                    out.data(&mut file_header(0), &name, &[])?;
                    continue;
                }
                match append_path(out, r.as_os_str().as_bytes(), &p, &md) {
                    Ok(()) => {}
                    // removed, or swapped for another kind, while a running container works
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                if md.is_dir() {
                    if xattr_opaque(&p) {
                        let name = r.join(".wh..wh..opq");
                        out.data(&mut file_header(0), name.as_os_str().as_bytes(), &[])?;
                    }
                    subdirs.push(n);
                }
            }
            Ok(subdirs)
        })?;
        Ok(())
    }

    /// The container's RW layer published as a layer on top of `img`'s (its image's);
    /// returns the diff ID. Shared by `commit` and the builder's RUN.
    pub(crate) fn commit_rw_layer(&self, id: &str, img: &berth_image::Image) -> Result<String> {
        let paths = self.snaps.rw_paths(id)?;
        let t0 = std::time::Instant::now();
        let (unpacked, staged) = self.unpack_streamed(Hashing::Unpacker, |pipe| {
            let mut out = TarOut::new(pipe);
            out.ids = self.snaps.id_maps().cloned();
            Self::write_upper(&mut out, &paths.upper, &paths.lowers)?;
            out.finish()?;
            Ok(())
        })?;
        let diff_id = staged.diff_id.clone();
        let parent = Self::chain_ids(img).last().cloned();
        self.publish_layer(parent.as_deref(), unpacked, staged)?;
        tracing::debug!(id = %id, ms = t0.elapsed().as_millis() as u64, "RW layer committed");
        Ok(diff_id)
    }

    /// `POST /commit`: the container's RW layer becomes a new layer on top of its image.
    pub async fn commit(
        self: &Arc<Self>,
        name_or_id: &str,
        reference: Option<String>,
        comment: &str,
        author: &str,
        changes: &[String],
        pause: bool,
    ) -> Result<String> {
        let c = self.get_container(name_or_id)?;
        let rec = c.record();
        let paused_here =
            pause && rec.state.status == crate::Status::Running && self.pause(&c.id).await.is_ok();
        let result = (|| -> Result<String> {
            let img = self.images.get(&rec.image_id)?;
            let diff_id = self.commit_rw_layer(&c.id, &img)?;
            let mut cfg: ImageConfig = img.config.clone();
            let mut cc: ContainerConfig = cfg.config.clone().unwrap_or_default();
            let own = &rec.config;
            cc.cmd = own.cmd.clone();
            cc.entrypoint = own.entrypoint.clone();
            cc.env = own.env.clone();
            cc.working_dir = Some(own.working_dir.clone()).filter(|w| !w.is_empty());
            cc.user = Some(own.user.clone()).filter(|u| !u.is_empty());
            cc.labels = own.labels.clone();
            apply_changes(&mut cc, changes)?;
            cc.extra.insert("Image".into(), json!(own.image));
            let now = format_rfc3339_nanos(Some(SystemTime::now()));
            // the container's own config, as docker records it (`ContainerConfig`)
            cfg.extra
                .insert("container_config".into(), serde_json::to_value(own)?);
            cfg.config = Some(cc);
            cfg.created = Some(now.clone());
            cfg.author = Some(author.to_string()).filter(|a| !a.is_empty());
            // an unchanged container adds no layer, only history (docker's empty_layer)
            let empty = diff_id == crate::EMPTY_LAYER_DIFF_ID;
            if !empty {
                cfg.rootfs.diff_ids.push(diff_id);
            }
            cfg.extra.insert("container".into(), json!(c.id));
            cfg.extra.insert("comment".into(), json!(comment));
            let mut h = serde_json::Map::new();
            h.insert("created".into(), json!(now));
            h.insert(
                "created_by".into(),
                json!(std::iter::once(rec.path.clone())
                    .chain(rec.args.clone())
                    .collect::<Vec<_>>()
                    .join(" ")),
            );
            if !author.is_empty() {
                h.insert("author".into(), json!(author));
            }
            if !comment.is_empty() {
                h.insert("comment".into(), json!(comment));
            }
            if empty {
                h.insert("empty_layer".into(), json!(true));
            }
            cfg.history.push(Value::Object(h));
            let bytes = serde_json::to_vec(&cfg)?;
            // the image committed from is the new one's `Parent`, as docker's
            let image = self
                .images
                .add_image_opts(&bytes, Some(img.id.as_str()), true)?;
            if let Some(r) = &reference {
                let r = Reference::parse(r)?;
                self.images.tag(&image.id, &r)?;
            }
            Ok(image.id.as_str().to_string())
        })();
        if paused_here {
            let _ = self.unpause(&c.id).await;
        }
        let id = result?;
        self.emit(&c, "commit", &[("comment", comment.to_string())]);
        Ok(id)
    }

    /// `POST /images/create?fromSrc=-`: a tar (gzip or not) → a one-layer image.
    pub fn import(
        &self,
        reader: impl Read,
        reference: Option<&str>,
        message: &str,
        changes: &[String],
    ) -> Result<String> {
        let mut cc = ContainerConfig::default();
        apply_changes(&mut cc, changes)?;
        // unpacked as it arrives; the extractor refuses garbage and hostile entries and keeps
        // nothing of a bad layer
        let (unpacked, staged) = self.unpack_streamed(Hashing::Producer, |pipe| {
            let mut plain = berth_util::io::maybe_gunzip(reader)?;
            pipe.copy_from(&mut plain)?;
            Ok(())
        })?;
        if unpacked.tar_len() < 512 {
            return Err(Error::InvalidParameter("invalid tar: too short".into()));
        }
        let diff_id = staged.diff_id.clone();
        self.publish_layer(None, unpacked, staged)?;
        let now = format_rfc3339_nanos(Some(SystemTime::now()));
        let cfg = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": now,
            "comment": message,
            "config": cc,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now, "comment": if message.is_empty() { "Imported from -".to_string() } else { message.to_string() }}]
        });
        let image = self.images.add_image(&serde_json::to_vec(&cfg)?)?;
        if let Some(r) = reference.filter(|r| !r.is_empty()) {
            self.images.tag(&image.id, &Reference::parse(r)?)?;
        }
        Ok(image.id.as_str().to_string())
    }

    /// `GET /images/get?names=…`: a docker-archive of the images, each shared layer once.
    pub fn save(self: &Arc<Self>, names: &[String]) -> Result<mpsc::Receiver<Bytes>> {
        struct Item {
            config_hex: String,
            config: Vec<u8>,
            tags: Vec<String>,
            diffs: Vec<String>,
        }
        let mut items: Vec<Item> = Vec::new();
        for n in names {
            let img = self
                .images
                .get(n)
                .map_err(|_| crate::container_create::no_such_image(n))?;
            let tags = match Reference::parse(n) {
                Ok(r) if img.repo_tags.contains(&r.familiar()) => vec![r.familiar()],
                _ => Vec::new(),
            };
            for d in &img.config.rootfs.diff_ids {
                self.layer_tar(d)?;
            }
            if let Some(i) = items.iter_mut().find(|i| i.config_hex == img.id.hex()) {
                i.tags.extend(tags);
                continue;
            }
            items.push(Item {
                config_hex: img.id.hex().to_string(),
                config: self.images.read_blob(&img.id)?,
                tags,
                diffs: img.config.rootfs.diff_ids.clone(),
            });
        }
        let layer_paths: BTreeMap<String, std::path::PathBuf> = items
            .iter()
            .flat_map(|i| i.diffs.iter())
            .filter_map(|d| self.layer_tar(d).ok().map(|p| (d.clone(), p)))
            .collect();
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let res = (|| -> std::io::Result<()> {
                let mut b = TarOut::new(BodySink(tx));
                let mut written = std::collections::HashSet::new();
                let mut manifest = Vec::new();
                let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                for it in &items {
                    let mut layers = Vec::new();
                    for d in &it.diffs {
                        let hexd = d.trim_start_matches("sha256:").to_string();
                        if written.insert(hexd.clone()) {
                            let mut h = tar::Header::new_gnu();
                            h.set_entry_type(tar::EntryType::Directory);
                            h.set_uid(0);
                            h.set_gid(0);
                            h.set_mode(0o755);
                            h.set_size(0);
                            h.set_mtime(0);
                            b.header(&mut h, format!("{hexd}/").as_bytes(), None)?;
                            b.data(
                                &mut file_header(3),
                                format!("{hexd}/VERSION").as_bytes(),
                                b"1.0",
                            )?;
                            let js = format!("{{\"id\":\"{hexd}\"}}");
                            b.data(
                                &mut file_header(js.len() as u64),
                                format!("{hexd}/json").as_bytes(),
                                js.as_bytes(),
                            )?;
                            let mut f = std::fs::File::open(&layer_paths[d])?;
                            let len = f.metadata()?.len();
                            b.header(
                                &mut file_header(len),
                                format!("{hexd}/layer.tar").as_bytes(),
                                None,
                            )?;
                            b.content(&mut f, len)?;
                        }
                        layers.push(format!("{hexd}/layer.tar"));
                    }
                    let cfg_name = format!("{}.json", it.config_hex);
                    b.data(
                        &mut file_header(it.config.len() as u64),
                        cfg_name.as_bytes(),
                        &it.config,
                    )?;
                    for t in &it.tags {
                        if let Some((repo, tag)) = t.rsplit_once(':') {
                            let top = it
                                .diffs
                                .last()
                                .map(|d| d.trim_start_matches("sha256:").to_string())
                                .unwrap_or_default();
                            repositories
                                .entry(repo.to_string())
                                .or_default()
                                .insert(tag.to_string(), top);
                        }
                    }
                    manifest.push(json!({"Config": cfg_name, "RepoTags": if it.tags.is_empty() { Value::Null } else { json!(it.tags) }, "Layers": layers}));
                }
                let m = serde_json::to_vec(&manifest)?;
                b.data(&mut file_header(m.len() as u64), b"manifest.json", &m)?;
                if !repositories.is_empty() {
                    let r = serde_json::to_vec(&repositories)?;
                    b.data(&mut file_header(r.len() as u64), b"repositories", &r)?;
                }
                b.finish().map(|_| ())
            })();
            if let Err(e) = res {
                tracing::warn!("save: {e}");
            }
        });
        Ok(rx)
    }
}

/// `trusted.overlay.opaque=y` on a directory of the RW layer.
fn xattr_opaque(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let name = c"trusted.overlay.opaque";
    let mut buf = [0u8; 4];
    // SAFETY: lgetxattr into a fixed buffer of the size we pass.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand() {
        let env = vec!["PATH=/bin:/usr/bin".to_string(), "A=1".to_string()];
        assert_eq!(super::expand_env("/x:$PATH", &env), "/x:/bin:/usr/bin");
        assert_eq!(super::expand_env("${A}b$A-$NONE", &env), "1b1-");
        assert_eq!(super::expand_env("\\$A $", &env), "$A $");
    }

    #[test]
    fn changes_apply_like_dockerfile_instructions() {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["cat","/x"]"#.to_string(),
                "ENTRYPOINT echo hi".to_string(),
                "ENV A=1 B=\"two words\"".to_string(),
                "ENV C 3".to_string(),
                "EXPOSE 80 53/udp".to_string(),
                "LABEL k=v".to_string(),
                "USER nobody".to_string(),
                "WORKDIR /srv".to_string(),
                r#"VOLUME ["/data"]"#.to_string(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.unwrap(), ["cat", "/x"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.env.unwrap(), ["A=1", "B=two words", "C=3"]);
        assert!(c.exposed_ports.unwrap().contains_key("53/udp"));
        assert_eq!(c.labels.unwrap()["k"], "v");
        assert_eq!(c.user.unwrap(), "nobody");
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert!(apply_changes(&mut ContainerConfig::default(), &["RUN x".to_string()]).is_err());
    }
}
