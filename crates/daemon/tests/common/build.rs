//! Helpers the build tests share (`tests/build.rs`, `tests/build_cli.rs`): the docker CLI's
//! `build` against a daemon, and context directories written from (path, text) pairs.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::Daemon;

pub const DOCKER: &str = "/usr/local/bin/docker";

/// The docker CLI's `build args…` run in `dir` against `d`, with `input` on stdin;
/// `buildkit` is DOCKER_BUILDKIT's value (None: unset, the CLI's default fallback).
/// None when the docker CLI is not installed.
pub fn docker_build_in(
    d: &Daemon,
    dir: &Path,
    buildkit: Option<&str>,
    args: &[&str],
    input: Option<&[u8]>,
) -> Option<Output> {
    if !Path::new(DOCKER).exists() {
        eprintln!("skipping: no docker CLI");
        return None;
    }
    let mut c = Command::new(DOCKER);
    c.env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_BUILDKIT")
        .current_dir(dir)
        .arg("build")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    if let Some(b) = buildkit {
        c.env("DOCKER_BUILDKIT", b);
    }
    let mut child = c.spawn().expect("run docker build");
    if let Some(i) = input {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(i).expect("write stdin");
    }
    Some(child.wait_with_output().expect("docker build"))
}

/// Writes `files` (path relative to `dir`, text) into `dir`, making parent directories.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(dir).expect("mkdir context");
    for (name, content) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write");
    }
}
