//! The build context: the request body (a tar, gzip or not; or, for `docker build - <
//! Dockerfile`, a bare Dockerfile) unpacked into a private directory that is removed when the
//! [`Context`] is dropped. Hostile entries (`..`, absolute paths, links out of the root,
//! devices) are refused with an error; paths inside are always resolved by the kernel inside
//! the root (`berth_util::inroot`).

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_util::dockerignore::Matcher;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// bad or hostile input (400)
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An unpacked build context.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    ignore: Matcher,
}

impl Context {
    /// Unpacks `body` into a new directory under `parent` (the daemon's exec root: tmpfs).
    /// A body that is not a tar is taken as the Dockerfile itself (named `Dockerfile`).
    pub fn unpack(body: impl Read, parent: &Path) -> Result<Context, ContextError> {
        let _ = (body, parent);
        Err(ContextError::Invalid("not implemented".into()))
    }

    /// The context's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` of the context (empty when there is none).
    pub fn ignore(&self) -> &Matcher {
        &self.ignore
    }

    /// Reads the Dockerfile named `name` (relative to the root; default `Dockerfile`, with
    /// docker's fallback to `dockerfile`). Errors as docker's: `Cannot locate specified
    /// Dockerfile: <name>`.
    pub fn dockerfile(&self, name: Option<&str>) -> Result<String, ContextError> {
        let _ = name;
        Err(ContextError::Invalid("not implemented".into()))
    }
}
