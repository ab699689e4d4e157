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

pub mod context;
pub mod copy;
pub mod dockerfile;
pub mod expand;

pub use dockerfile::{parse, Dockerfile};
