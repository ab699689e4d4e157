//! Archive reading (`docker save` docker-archive incl. docker 25+'s OCI form, plain OCI
//! image-layout tars; gzip or not). Hostile entries (`..`, absolute paths, links escaping the
//! staging dir) are rejected.
//!
//! Symlinks in the archive are never created on disk: they are kept in a table and resolved
//! lexically inside the staging dir when the manifest names a file, so nothing written can
//! point outside `staging`.

use crate::digest::{Digest, Hasher};
use crate::{Error, ImageConfig, Reference, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArchive(msg.into())
}

pub use berth_util::io::maybe_gunzip;

/// Splits a tar path into its components: strips `./` and empty components, rejects
/// absolute paths and `..`.
fn clean_components(raw: &str) -> Result<Vec<String>> {
    if raw.starts_with('/') {
        return Err(bad(format!("absolute path in archive: {raw}")));
    }
    let mut out = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad(format!("path with '..' in archive: {raw}"))),
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// What was extracted: regular files (with their sha256) and symlinks (normalised targets).
#[derive(Default)]
struct Staged {
    files: HashMap<String, Digest>,
    dirs: std::collections::HashSet<String>,
    symlinks: HashMap<String, String>,
}

impl Staged {
    /// Rejects a path one of whose parents is a symlink or a regular file.
    fn check_parents(&self, comps: &[String], raw: &str) -> Result<()> {
        for i in 1..comps.len() {
            let prefix = comps[..i].join("/");
            if self.symlinks.contains_key(&prefix) {
                return Err(bad(format!("entry {raw} is below a symlink")));
            }
            if self.files.contains_key(&prefix) {
                return Err(bad(format!("entry {raw} is below a regular file")));
            }
        }
        Ok(())
    }

    /// Resolves `raw` (relative to the staging root) through symlinks; the result is a
    /// cleaned relative path that stays inside staging.
    fn resolve(&self, raw: &str) -> Result<String> {
        let mut comps: Vec<String> = clean_components(raw)?;
        let mut hops = 0;
        'again: loop {
            for i in 1..=comps.len() {
                let prefix = comps[..i].join("/");
                if let Some(target) = self.symlinks.get(&prefix) {
                    hops += 1;
                    if hops > 40 {
                        return Err(bad(format!("too many levels of symlinks resolving {raw}")));
                    }
                    let mut next: Vec<String> = if target.is_empty() {
                        Vec::new()
                    } else {
                        target.split('/').map(str::to_string).collect()
                    };
                    next.extend_from_slice(&comps[i..]);
                    comps = next;
                    continue 'again;
                }
            }
            return Ok(comps.join("/"));
        }
    }
}

/// Normalises a symlink target lexically against the link's directory; errors if it
/// leaves the staging root or is absolute.
fn symlink_target(link: &[String], target: &str, raw: &str) -> Result<String> {
    if target.starts_with('/') {
        return Err(bad(format!("symlink {raw} -> {target} is absolute")));
    }
    let mut out: Vec<&str> = link[..link.len() - 1].iter().map(String::as_str).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(bad(format!(
                        "symlink {raw} -> {target} escapes the archive"
                    )));
                }
            }
            c => out.push(c),
        }
    }
    Ok(out.join("/"))
}

/// Is offered each regular file of an archive as it streams by, so that layer tars can be
/// unpacked in the same pass instead of being written to staging and read back.
pub trait FileSink {
    /// `head` holds the file's first bytes (up to 512): true to take the file.
    fn wants(&mut self, path: &str, size: u64, head: &[u8]) -> bool;
    /// Reads the whole of `content` (the raw bytes of the file at `path`, `head` included)
    /// and returns their sha256. The archive keeps no copy of a file taken. `None` when the
    /// sink failed: the archive is then refused, and the sink keeps the reason.
    fn take(&mut self, path: &str, content: &mut dyn Read) -> Option<Digest>;
}

/// A sink that takes nothing.
struct NoSink;

impl FileSink for NoSink {
    fn wants(&mut self, _: &str, _: u64, _: &[u8]) -> bool {
        false
    }
    fn take(&mut self, _: &str, _: &mut dyn Read) -> Option<Digest> {
        None
    }
}

/// Reads up to `buf.len()` bytes (fewer only at the end of the stream).
fn read_head(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn extract(reader: impl Read, staging: &Path, sink: &mut dyn FileSink) -> Result<Staged> {
    let mut st = Staged::default();
    // header records are size-capped (the tar crate buffers them whole), content streams
    berth_util::io::for_each_tar_entry(
        maybe_gunzip(reader)?,
        |e| bad(format!("reading tar: {e}")),
        |entry| extract_entry(entry, staging, sink, &mut st),
    )?;
    Ok(st)
}

fn extract_entry(
    entry: &mut tar::Entry<'_, impl Read>,
    staging: &Path,
    sink: &mut dyn FileSink,
    st: &mut Staged,
) -> Result<()> {
    let raw = String::from_utf8(entry.path_bytes().into_owned())
        .map_err(|_| bad("non-UTF-8 path in archive"))?;
    let kind = entry.header().entry_type();
    if kind.is_pax_global_extensions()
        || kind.is_pax_local_extensions()
        || kind.is_gnu_longname()
        || kind.is_gnu_longlink()
    {
        return Ok(());
    }
    let comps = clean_components(&raw)?;
    if comps.is_empty() {
        if kind.is_dir() {
            return Ok(());
        }
        return Err(bad(format!("invalid entry name {raw:?}")));
    }
    st.check_parents(&comps, &raw)?;
    let key = comps.join("/");
    let dst = staging.join(&key);
    if kind.is_dir() {
        if st.files.contains_key(&key) || st.symlinks.contains_key(&key) {
            return Err(bad(format!("directory {raw} replaces another entry")));
        }
        fs::create_dir_all(&dst)?;
        for i in 1..=comps.len() {
            st.dirs.insert(comps[..i].join("/"));
        }
    } else if kind.is_file() || kind.is_contiguous() {
        if st.dirs.contains(&key) {
            return Err(bad(format!("file {raw} replaces a directory")));
        }
        st.symlinks.remove(&key);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent)?;
        }
        for i in 1..comps.len() {
            st.dirs.insert(comps[..i].join("/"));
        }
        let _ = fs::remove_file(&dst);
        let mut head = [0u8; 512];
        let hn = read_head(entry, &mut head).map_err(|e| bad(format!("reading {raw}: {e}")))?;
        let size = entry.header().size().unwrap_or(0);
        if sink.wants(&key, size, &head[..hn]) {
            let mut content = io::Cursor::new(&head[..hn]).chain(&mut *entry);
            let digest = sink
                .take(&key, &mut content)
                .ok_or_else(|| bad(format!("layer {raw} refused")))?;
            st.files.insert(key, digest);
            return Ok(());
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&dst)?;
        let mut h = Hasher::new();
        h.update(&head[..hn]);
        f.write_all(&head[..hn])?;
        let mut buf = vec![0u8; 128 * 1024];
        loop {
            let k = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(bad(format!("reading {raw}: {e}"))),
            };
            h.update(&buf[..k]);
            f.write_all(&buf[..k])?;
        }
        st.files.insert(key, h.finish());
    } else if kind.is_symlink() {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| bad(format!("symlink {raw} without target")))?;
        let target = String::from_utf8(target.into_owned())
            .map_err(|_| bad("non-UTF-8 symlink target in archive"))?;
        if st.dirs.contains(&key) {
            return Err(bad(format!("symlink {raw} replaces a directory")));
        }
        let norm = symlink_target(&comps, &target, &raw)?;
        if st.files.remove(&key).is_some() {
            let _ = fs::remove_file(&dst);
        }
        st.symlinks.insert(key, norm);
    } else {
        return Err(bad(format!(
            "unsupported entry type {:?} for {raw} (hardlinks and devices are not allowed)",
            kind
        )));
    }
    Ok(())
}

struct Ctx<'a> {
    staging: &'a Path,
    st: Staged,
}

impl Ctx<'_> {
    /// Resolves a file named by the archive's metadata to a regular file in staging.
    fn file(&self, name: &str, what: &str) -> Result<(String, PathBuf)> {
        let rel = self.st.resolve(name)?;
        if !self.st.files.contains_key(&rel) {
            return Err(bad(format!("{what} references missing file {name}")));
        }
        Ok((rel.clone(), self.staging.join(rel)))
    }

    fn check_digest(&self, rel: &str, name: &str, expected: &Digest) -> Result<()> {
        match self.st.files.get(rel) {
            Some(actual) if actual == expected => Ok(()),
            Some(actual) => Err(bad(format!(
                "digest mismatch for {name}: expected {expected}, got {actual}"
            ))),
            None => Err(bad(format!("missing file {name}"))),
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.st
            .resolve(name)
            .map(|r| self.st.files.contains_key(&r))
            .unwrap_or(false)
    }
}

/// A digest carried by a file name: `<hex>.json`, `<hex>` or `blobs/sha256/<hex>`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let last = name.rsplit('/').next()?;
    let hex = last.strip_suffix(".json").unwrap_or(last);
    Digest::from_hex(hex).ok()
}

fn parse_tags(tags: &[String]) -> Result<Vec<Reference>> {
    tags.iter()
        .map(|t| Reference::parse(t).map_err(|e| bad(format!("bad RepoTag {t:?}: {e}"))))
        .collect()
}

fn check_config(config: &[u8], layers: usize, name: &str) -> Result<()> {
    let c: ImageConfig =
        serde_json::from_slice(config).map_err(|e| bad(format!("config {name}: {e}")))?;
    if c.rootfs.diff_ids.len() != layers {
        return Err(bad(format!(
            "config {name} lists {} layers but the manifest has {layers}",
            c.rootfs.diff_ids.len()
        )));
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn docker_archive(cx: &Ctx) -> Result<Vec<ArchiveImage>> {
    let (_, path) = cx.file("manifest.json", "archive")?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&fs::read(path)?).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let (_, path) = cx.file(&e.config, "manifest.json")?;
        let config = fs::read(path)?;
        if let Some(d) = digest_in_name(&e.config) {
            let actual = Digest::sha256_of(&config);
            if actual != d {
                return Err(bad(format!(
                    "digest mismatch for config {}: got {actual}",
                    e.config
                )));
            }
        }
        let mut layers = Vec::new();
        for l in &e.layers {
            let (rel, path) = cx.file(l, "manifest.json")?;
            if l.starts_with("blobs/") {
                if let Some(d) = digest_in_name(l) {
                    cx.check_digest(&rel, l, &d)?;
                }
            }
            layers.push(path);
        }
        check_config(&config, layers.len(), &e.config)?;
        out.push(ArchiveImage {
            config,
            layers,
            repo_tags: parse_tags(e.repo_tags.as_deref().unwrap_or(&[]))?,
        });
    }
    Ok(out)
}

#[derive(serde::Deserialize, Clone, Debug)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Clone, Debug)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(serde::Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(serde::Deserialize)]
struct OciManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

impl Ctx<'_> {
    /// Reads a blob named by a descriptor after checking its sha256.
    fn blob(&self, d: &Descriptor) -> Result<(Digest, PathBuf)> {
        let digest = Digest::parse(&d.digest)
            .map_err(|_| bad(format!("unsupported or invalid digest {:?}", d.digest)))?;
        let name = format!("blobs/sha256/{}", digest.hex());
        let (rel, path) = self.file(&name, "index")?;
        self.check_digest(&rel, &name, &digest)?;
        Ok((digest, path))
    }

    fn json_blob(&self, d: &Descriptor) -> Result<(Digest, serde_json::Value)> {
        let (digest, path) = self.blob(d)?;
        let v = serde_json::from_slice(&fs::read(path)?)
            .map_err(|e| bad(format!("blob {digest}: {e}")))?;
        Ok((digest, v))
    }

    /// Follows a descriptor down to an image manifest (choosing a platform in indexes).
    fn to_manifest(&self, d: &Descriptor, depth: u32) -> Result<(Digest, OciManifest)> {
        if depth > 8 {
            return Err(bad("indexes nested too deeply"));
        }
        let (digest, v) = self.json_blob(d)?;
        if v.get("manifests").is_some() {
            let idx: OciIndex =
                serde_json::from_value(v).map_err(|e| bad(format!("index {digest}: {e}")))?;
            let candidates: Vec<&Descriptor> = idx
                .manifests
                .iter()
                .filter(|m| {
                    m.annotations
                        .get("vnd.docker.reference.type")
                        .map(String::as_str)
                        != Some("attestation-manifest")
                        && m.platform.as_ref().map(|p| p.os.as_str()) != Some("unknown")
                })
                .collect();
            let chosen = candidates
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
                })
                .or(if candidates.len() == 1 {
                    candidates.first()
                } else {
                    None
                })
                .ok_or_else(|| {
                    bad(format!(
                        "index {digest} has no manifest for linux/{}",
                        host_arch()
                    ))
                })?;
            return self.to_manifest(chosen, depth + 1);
        }
        if v.get("config").is_some() {
            let m: OciManifest =
                serde_json::from_value(v).map_err(|e| bad(format!("manifest {digest}: {e}")))?;
            return Ok((digest, m));
        }
        Err(bad(format!(
            "blob {digest} ({}) is neither an index nor a manifest",
            d.media_type
        )))
    }
}

fn oci_tags(d: &Descriptor) -> Result<Option<Reference>> {
    let parse = |s: &str| {
        Reference::parse(s).map_err(|e| bad(format!("bad image name annotation {s:?}: {e}")))
    };
    if let Some(n) = d.annotations.get("io.containerd.image.name") {
        return parse(n).map(Some);
    }
    if let Some(n) = d.annotations.get("org.opencontainers.image.ref.name") {
        // a bare tag (`latest`) carries no repository name: nothing to tag
        if n.contains(':') || n.contains('/') {
            return parse(n).map(Some);
        }
    }
    Ok(None)
}

fn oci_layout(cx: &Ctx) -> Result<Vec<ArchiveImage>> {
    let (_, path) = cx.file("index.json", "archive")?;
    let idx: OciIndex =
        serde_json::from_slice(&fs::read(path)?).map_err(|e| bad(format!("index.json: {e}")))?;
    // several top-level entries may name the same manifest (one per tag): merge them
    let mut order: Vec<Digest> = Vec::new();
    let mut by_manifest: HashMap<Digest, ArchiveImage> = HashMap::new();
    for d in &idx.manifests {
        let (mdigest, m) = cx.to_manifest(d, 0)?;
        let tag = oci_tags(d)?;
        if let Some(img) = by_manifest.get_mut(&mdigest) {
            if let Some(t) = tag {
                if !img.repo_tags.contains(&t) {
                    img.repo_tags.push(t);
                }
            }
            continue;
        }
        let (_, cpath) = cx.blob(&m.config)?;
        let config = fs::read(cpath)?;
        let mut layers = Vec::new();
        for l in &m.layers {
            if l.media_type.contains("zstd") {
                return Err(bad(format!(
                    "layer {} uses zstd compression, which is not supported",
                    l.digest
                )));
            }
            layers.push(cx.blob(l)?.1);
        }
        check_config(&config, layers.len(), &m.config.digest)?;
        order.push(mdigest.clone());
        by_manifest.insert(
            mdigest,
            ArchiveImage {
                config,
                layers,
                repo_tags: tag.into_iter().collect(),
            },
        );
    }
    Ok(order
        .into_iter()
        .filter_map(|d| by_manifest.remove(&d))
        .collect())
}

/// Unpacks the archive into `staging` (created empty by the caller) and parses it.
pub fn unpack(reader: impl Read, staging: &Path) -> Result<Vec<ArchiveImage>> {
    unpack_with(reader, staging, &mut NoSink)
}

/// [`unpack`], offering each regular file to `sink` first. A file the sink takes is not
/// written to staging: its path in [`ArchiveImage::layers`] does not exist, and the caller
/// finds it in its sink by that path relative to `staging`.
pub fn unpack_with(
    reader: impl Read,
    staging: &Path,
    sink: &mut dyn FileSink,
) -> Result<Vec<ArchiveImage>> {
    let st = extract(reader, staging, sink)?;
    let cx = Ctx { staging, st };
    let images = if cx.exists("manifest.json") {
        docker_archive(&cx)?
    } else if cx.exists("index.json") {
        oci_layout(&cx)?
    } else {
        return Err(bad("neither manifest.json nor index.json found"));
    };
    tracing::debug!(images = images.len(), "parsed image archive");
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    enum E<'a> {
        F(&'a str, Vec<u8>),
        D(&'a str),
        L(&'a str, &'a str),
        H(&'a str, &'a str),
    }

    fn raw_name(h: &mut tar::Header, name: &str) {
        // bypass the tar crate's own path checks to build hostile archives
        let b = name.as_bytes();
        let old = h.as_old_mut();
        old.name = [0; 100];
        old.name[..b.len()].copy_from_slice(b);
    }

    fn build(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                E::F(n, data) => {
                    raw_name(&mut h, n);
                    h.set_size(data.len() as u64);
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_cksum();
                    b.append(&h, &data[..]).unwrap();
                }
                E::D(n) => {
                    raw_name(&mut h, n);
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_cksum();
                    b.append(&h, io::empty()).unwrap();
                }
                E::L(n, t) | E::H(n, t) => {
                    raw_name(&mut h, n);
                    h.set_size(0);
                    h.set_entry_type(if matches!(e, E::L(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_link_name(t).unwrap();
                    h.set_cksum();
                    b.append(&h, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn config_json(layers: &[&[u8]]) -> Vec<u8> {
        let ids: Vec<String> = layers
            .iter()
            .map(|l| Digest::sha256_of(l).to_string())
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": ids},
        }))
        .unwrap()
    }

    fn layer(name: &str) -> Vec<u8> {
        build(&[E::F(name, b"content".to_vec())])
    }

    fn unpack_bytes(data: &[u8]) -> (tempfile::TempDir, Result<Vec<ArchiveImage>>) {
        let dir = tempfile::tempdir().unwrap();
        let r = unpack(data, dir.path());
        (dir, r)
    }

    fn legacy_archive() -> (Vec<u8>, Vec<u8>, Vec<Vec<u8>>) {
        let l1 = layer("a");
        let l2 = layer("b");
        let cfg = config_json(&[&l1, &l2]);
        let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": cfg_name,
            "RepoTags": ["busybox:latest", "localhost:5000/x:1"],
            "Layers": ["aaa/layer.tar", "bbb/layer.tar", ],
        }]))
        .unwrap();
        let tar = build(&[
            E::D("aaa/"),
            E::F("aaa/layer.tar", l1.clone()),
            E::D("bbb/"),
            E::F("ccc/layer.tar", l2.clone()),
            // docker dedups identical layers with symlinks
            E::L("bbb/layer.tar", "../ccc/layer.tar"),
            E::F(&cfg_name, cfg.clone()),
            E::F("manifest.json", manifest),
            E::F("repositories", b"{}".to_vec()),
        ]);
        (tar, cfg, vec![l1, l2])
    }

    #[test]
    fn docker_archive_with_symlinked_layer() {
        let (tar, cfg, layers) = legacy_archive();
        let (dir, r) = unpack_bytes(&tar);
        let imgs = r.unwrap();
        assert_eq!(imgs.len(), 1);
        let img = &imgs[0];
        assert_eq!(img.config, cfg);
        assert_eq!(img.layers.len(), 2);
        assert_eq!(img.layers[1], dir.path().join("ccc/layer.tar"));
        assert_eq!(fs::read(&img.layers[0]).unwrap(), layers[0]);
        assert_eq!(fs::read(&img.layers[1]).unwrap(), layers[1]);
        let tags: Vec<String> = img.repo_tags.iter().map(|r| r.full()).collect();
        assert_eq!(
            tags,
            vec!["docker.io/library/busybox:latest", "localhost:5000/x:1"]
        );
        // the symlink was not materialised
        assert!(!dir.path().join("bbb/layer.tar").exists());
    }

    #[test]
    fn gzip_docker_archive() {
        let (tar, cfg, _) = legacy_archive();
        let (_dir, r) = unpack_bytes(&gzip(&tar));
        assert_eq!(r.unwrap()[0].config, cfg);
    }

    #[test]
    fn docker_archive_config_digest_mismatch() {
        let l1 = layer("a");
        let cfg = config_json(&[&l1]);
        let wrong = format!("{}.json", Digest::sha256_of(b"other").hex());
        let manifest = serde_json::to_vec(&serde_json::json!([
            {"Config": wrong, "RepoTags": null, "Layers": ["l/layer.tar"]}
        ]))
        .unwrap();
        let tar = build(&[
            E::F("l/layer.tar", l1),
            E::F(&wrong, cfg),
            E::F("manifest.json", manifest),
        ]);
        let (_d, r) = unpack_bytes(&tar);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("digest mismatch"), "{e}");
    }

    #[test]
    fn docker_archive_missing_layer() {
        let l1 = layer("a");
        let cfg = config_json(&[&l1]);
        let manifest = serde_json::to_vec(&serde_json::json!([
            {"Config": "c.json", "Layers": ["nope/layer.tar"]}
        ]))
        .unwrap();
        let tar = build(&[E::F("c.json", cfg), E::F("manifest.json", manifest)]);
        let (_d, r) = unpack_bytes(&tar);
        let e = r.unwrap_err().to_string();
        assert!(
            e.contains("manifest.json references missing file nope/layer.tar"),
            "{e}"
        );
    }

    fn desc(media: &str, data: &[u8]) -> serde_json::Value {
        serde_json::json!({"mediaType": media, "digest": Digest::sha256_of(data).to_string(), "size": data.len()})
    }

    fn blob_entry(data: &[u8]) -> (String, Vec<u8>) {
        (
            format!("blobs/sha256/{}", Digest::sha256_of(data).hex()),
            data.to_vec(),
        )
    }

    /// An OCI layout like docker 25+'s `docker save` (also with manifest.json when `legacy`).
    fn oci_archive(nested: bool, tamper: bool) -> (Vec<u8>, Vec<u8>) {
        let l1 = layer("a");
        let cfg = config_json(&[&l1]);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", &cfg),
            "layers": [desc("application/vnd.oci.image.layer.v1.tar", &l1)],
        }))
        .unwrap();
        let mut blobs = vec![blob_entry(&cfg), blob_entry(&manifest)];
        let l1_blob = blob_entry(&l1);
        blobs.push(if tamper {
            (l1_blob.0, layer("evil"))
        } else {
            l1_blob
        });
        let mut top = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
        if nested {
            let other = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"},"layers":[]}"#;
            let mut mine = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
            mine["platform"] = serde_json::json!({"os":"linux","architecture": host_arch()});
            let mut theirs = desc("application/vnd.oci.image.manifest.v1+json", other);
            theirs["platform"] = serde_json::json!({"os":"linux","architecture":"mips64"});
            let mut att = desc("application/vnd.oci.image.manifest.v1+json", other);
            att["platform"] = serde_json::json!({"os":"unknown","architecture":"unknown"});
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [theirs, att, mine],
            }))
            .unwrap();
            blobs.push(blob_entry(&index));
            top = desc("application/vnd.oci.image.index.v1+json", &index);
        }
        let mut t1 = top.clone();
        t1["annotations"] = serde_json::json!({
            "io.containerd.image.name": "docker.io/library/busybox:latest",
            "org.opencontainers.image.ref.name": "latest"
        });
        let mut t2 = top.clone();
        t2["annotations"] =
            serde_json::json!({"org.opencontainers.image.ref.name": "quay.io/x/y:2"});
        let mut t3 = top;
        t3["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "3"});
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "manifests": [t1, t2, t3]
        }))
        .unwrap();
        let mut entries = vec![
            E::F("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            E::F("index.json", index),
            E::D("blobs/"),
            E::D("blobs/sha256/"),
        ];
        for (n, d) in &blobs {
            entries.push(E::F(n, d.clone()));
        }
        (build(&entries), cfg)
    }

    /// docker 25+: manifest.json naming `blobs/sha256/…` next to an OCI index.json.
    #[test]
    fn docker25_archive_prefers_manifest_json_and_verifies_blobs() {
        let (oci, cfg) = oci_archive(false, false);
        let l1 = layer("a");
        let cfg_blob = format!("blobs/sha256/{}", Digest::sha256_of(&cfg).hex());
        let l1_blob = format!("blobs/sha256/{}", Digest::sha256_of(&l1).hex());
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": cfg_blob, "RepoTags": ["other:tag"], "Layers": [l1_blob]
        }]))
        .unwrap();
        // append manifest.json to the OCI layout tar (drop its end marker first)
        let mut t = oci.clone();
        t.truncate(t.len() - 1024); // tar::Builder ends with two zero blocks
        t.extend_from_slice(&build(&[E::F("manifest.json", manifest.clone())]));
        let (_d, r) = unpack_bytes(&t);
        let imgs = r.unwrap();
        assert_eq!(imgs.len(), 1);
        assert_eq!(imgs[0].repo_tags[0].familiar(), "other:tag");
        assert_eq!(imgs[0].config, cfg);

        // the same with a tampered layer blob
        let (oci_bad, _) = oci_archive(false, true);
        let mut t = oci_bad;
        t.truncate(t.len() - 1024); // tar::Builder ends with two zero blocks
        t.extend_from_slice(&build(&[E::F("manifest.json", manifest)]));
        let (_d, r) = unpack_bytes(&t);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("digest mismatch"), "{e}");
    }

    #[test]
    fn oci_layout_single_manifest() {
        let (tar, cfg) = oci_archive(false, false);
        let (dir, r) = unpack_bytes(&tar);
        let imgs = r.unwrap();
        assert_eq!(imgs.len(), 1, "three tags of one manifest merge");
        assert_eq!(imgs[0].config, cfg);
        assert!(imgs[0].layers[0].starts_with(dir.path()));
        let tags: Vec<String> = imgs[0].repo_tags.iter().map(|r| r.familiar()).collect();
        assert_eq!(tags, vec!["busybox:latest", "quay.io/x/y:2"]);
    }

    #[test]
    fn oci_layout_nested_index_picks_platform() {
        let (tar, cfg) = oci_archive(true, false);
        let (_d, r) = unpack_bytes(&gzip(&tar));
        let imgs = r.unwrap();
        assert_eq!(imgs.len(), 1);
        assert_eq!(imgs[0].config, cfg);
    }

    #[test]
    fn oci_layout_blob_digest_mismatch() {
        let (tar, _) = oci_archive(false, true);
        let (_d, r) = unpack_bytes(&tar);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("digest mismatch"), "{e}");
    }

    fn assert_invalid(entries: &[E], what: &str) {
        let parent = tempfile::tempdir().unwrap();
        let staging = parent.path().join("staging");
        fs::create_dir(&staging).unwrap();
        let r = unpack(&build(entries)[..], &staging);
        assert!(
            matches!(r, Err(Error::InvalidArchive(_))),
            "{what}: {:?}",
            r.map(|v| v.len())
        );
        // nothing escaped next to the staging dir
        let names: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("staging")], "{what}");
    }

    #[test]
    fn hostile_archives() {
        assert_invalid(&[E::F("../x", b"x".to_vec())], "dotdot");
        assert_invalid(&[E::F("a/../../x", b"x".to_vec())], "inner dotdot");
        assert_invalid(&[E::F("/abs", b"x".to_vec())], "absolute");
        assert_invalid(&[E::L("l", "../outside")], "symlink escaping");
        assert_invalid(&[E::L("l", "/etc/passwd")], "absolute symlink");
        assert_invalid(&[E::L("a/b/l", "../../../x")], "deep escaping symlink");
        assert_invalid(
            &[E::L("d", "."), E::F("d/x", b"x".to_vec())],
            "write below symlink",
        );
        assert_invalid(&[E::F("x", b"x".to_vec()), E::H("h", "x")], "hardlink");
        assert_invalid(&[E::F("x", b"x".to_vec())], "no manifest");
    }

    #[test]
    fn symlink_loops_are_rejected() {
        let manifest =
            serde_json::to_vec(&serde_json::json!([{"Config": "a", "Layers": []}])).unwrap();
        assert_invalid(
            &[
                E::L("a", "b"),
                E::L("b", "a"),
                E::F("manifest.json", manifest),
            ],
            "loop",
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let (_d, r) = unpack_bytes(b"this is not a tar archive at all, not even close.....");
        assert!(r.is_err());
        let (_d, r) = unpack_bytes(&gzip(b"garbage"));
        assert!(r.is_err());
    }
}
