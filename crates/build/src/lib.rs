//! berth-build: a Dockerfile and a build context become an image, by driving the engine's own
//! create / start / wait / commit (never a copy of them), with docker's classic cache.
//!
//! Modules (each owns one job):
//! - `dockerfile`: the text → [`dockerfile::Dockerfile`] (directives, stages, instructions
//!   with line numbers, heredocs); no variable expansion here.
//! - `expand`: `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR:+x}` … as docker's shell-word rules do it.
//! - `context`: the build context (a tar, gzip or not) unpacked under the exec root; paths
//!   inside it resolved by the kernel (`berth_util::inroot`), never outside.
//! - `copy`: COPY/ADD: sources (wildcards, directories, trailing-slash rules), the layer tar,
//!   and the content hash docker's cache keys on.
//! - `cache`, `executor`, `backend`, `stream`, `options`: the build itself.
//!
//! `.dockerignore` matching lives in `berth_util::dockerignore` (the CLI filters the context
//! with it too).

pub mod backend;
pub mod cache;
pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod executor;
#[cfg(test)]
mod executor_tests;
pub mod expand;
pub mod options;
pub mod stream;
pub mod tarend;

pub use dockerfile::{parse, Dockerfile};
pub use options::BuildOptions;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// A build's failure. `Display` is docker's text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// bad input (a parse error, a missing file, a bad flag): 400 before the stream started
    #[error("{0}")]
    User(String),
    /// a RUN that exited non-zero (`code` goes into `errorDetail`)
    #[error("{message}")]
    Run { message: String, code: i64 },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Internal(String),
    /// the client went away
    #[error("the build was cancelled: the client disconnected")]
    Cancelled,
}

impl From<berth_engine::Error> for Error {
    fn from(e: berth_engine::Error) -> Self {
        use berth_engine::Error as E;
        match e {
            E::NotFound(m) => Error::NotFound(m),
            E::InvalidParameter(m) | E::Conflict(m) | E::Forbidden(m) => Error::User(m),
            E::Unauthorized(m) => Error::Unauthorized(m),
            E::NotModified => Error::Internal("not modified".into()),
            E::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<context::ContextError> for Error {
    fn from(e: context::ContextError) -> Self {
        match e {
            context::ContextError::Invalid(m) => Error::User(m),
            context::ContextError::Io(e) => Error::Internal(e.to_string()),
        }
    }
}

/// The daemon's build cache (one per data root, opened on first use).
pub fn cache_for(data_root: &Path) -> Arc<cache::Cache> {
    static CACHES: OnceLock<Mutex<std::collections::HashMap<PathBuf, Arc<cache::Cache>>>> =
        OnceLock::new();
    let mut m = CACHES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.entry(data_root.to_path_buf())
        .or_insert_with(|| {
            let path = data_root.join("build").join("cache");
            Arc::new(cache::Cache::open(&path).unwrap_or_else(|e| {
                tracing::warn!("build cache {}: {e}; using an empty one", path.display());
                cache::Cache::in_memory()
            }))
        })
        .clone()
}

/// One `POST /build`: unpacks the context (`body`) under `scratch_dir`, reads and parses the
/// Dockerfile, builds, tags. Messages go to `out` as they happen (only the ID line with
/// `quiet`); the error is returned for the caller to write (as a status, or as the stream's
/// last line once something was sent). Returns the image ID.
pub fn build(
    backend: &dyn backend::Backend,
    cache: &cache::Cache,
    opts: &BuildOptions,
    body: impl std::io::Read,
    scratch_dir: &Path,
    out: &mut dyn stream::Output,
) -> Result<String, Error> {
    // tags are checked before anything is built
    for t in &opts.tags {
        let r = berth_image::Reference::parse(t)
            .map_err(|_| Error::User(format!("invalid reference format: {t}")))?;
        if r.digest.is_some() {
            return Err(Error::User(format!("invalid reference format: {t}")));
        }
    }
    // gzip is undone here so that the tar's end can be made whole (tarend.rs); the context
    // then sees a plain tar (or a bare Dockerfile)
    let mut body = body;
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match body.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::User(format!("reading the build context: {e}"))),
        }
    }
    let raw = std::io::Cursor::new(head[..got].to_vec()).chain(&mut body);
    let plain: Box<dyn std::io::Read + '_> = if got == 2 && head == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let t0 = std::time::Instant::now();
    let ctx = context::Context::unpack(tarend::TolerantEnd::new(plain), scratch_dir)?;
    // the request is read to its end before the first line is sent: a client (the docker CLI)
    // prints its "Sending build context" line once its upload is done, and expects it to come
    // before `Step 1`; what follows the tar's end (padding, a gzip trailer) is dropped
    std::io::copy(&mut body, &mut std::io::sink())
        .map_err(|e| Error::User(format!("reading the build context: {e}")))?;
    tracing::debug!(
        ms = t0.elapsed().as_millis() as u64,
        "build context unpacked"
    );
    let text = ctx.dockerfile(opts.dockerfile.as_deref())?;
    let df = parse(&text)
        .map_err(|e| Error::User(e.message(opts.dockerfile.as_deref().unwrap_or("Dockerfile"))))?;
    let mut quiet_buf = stream::Collect::default();
    let sink: &mut dyn stream::Output = if opts.quiet { &mut quiet_buf } else { out };
    let mut ex = executor::Executor::new(
        backend,
        opts,
        cache,
        Some(executor::ContextSource {
            root: ctx.root(),
            ignore: Some(ctx.ignore()),
        }),
        sink,
    );
    let res = ex.run(&df);
    let wrote_final = matches!(&res, Ok(id) if ex.wrote(id));
    drop(ex);
    // the context goes while the client reads the end of the stream
    let _ = std::thread::Builder::new()
        .name("build-ctx-rm".into())
        .spawn(move || drop(ctx));
    let id = match res {
        Ok(id) => id,
        Err(e) => {
            if opts.quiet {
                for l in quiet_buf.0 {
                    out.send(l);
                }
            }
            return Err(e);
        }
    };
    // intermediate images are not synced; the one the tags will name is (when this build
    // wrote it: a cached one was synced by the build that did)
    if wrote_final {
        backend.persist(&id)?;
    }
    if opts.quiet {
        out.send(stream::stream(&format!("{id}\n")));
    } else {
        out.send(stream::aux_id(&id));
        out.send(stream::stream(&format!(
            "Successfully built {}\n",
            stream::short(&id)
        )));
    }
    for t in &opts.tags {
        let familiar = backend.tag(&id, t)?;
        if !opts.quiet {
            out.send(stream::stream(&format!("Successfully tagged {familiar}\n")));
        }
    }
    Ok(id)
}
