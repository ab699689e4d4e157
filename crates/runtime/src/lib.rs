//! berth-runtime: an OCI runtime spec → a process in new namespaces and cgroups.
//!
//! INTERFACE STUB — the shim is written against these signatures. Synchronous code only;
//! must be called from a single-threaded process (the shim), never from the daemon.

use std::os::fd::OwnedFd;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Message as docker prints it, e.g. `exec: "nosuch": executable file not found in $PATH`.
    #[error("{0}")]
    Exec(String),
    #[error("invalid spec: {0}")]
    Spec(String),
    #[error("{0}")]
    Sys(String),
}
pub type Result<T> = std::result::Result<T, Error>;

/// The container's stdio. With a terminal, all three are the pty's slave side.
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// make the stdio fd the controlling terminal (setsid + TIOCSCTTY)
    pub terminal: bool,
}

/// A container whose init is set up in its namespaces and blocked before `execve`.
pub struct Created {
    _pid: i32,
}
impl Created {
    pub fn pid(&self) -> i32 {
        todo!()
    }
    /// Lets the process `execve`; returns once exec succeeded or with the exec error.
    pub fn start(&mut self) -> Result<()> {
        todo!()
    }
}

/// Creates the container described by `spec` (cgroups at `linux.cgroupsPath` under every
/// mounted hierarchy, v1 and v2).
pub fn create(_id: &str, _spec: &oci_spec::runtime::Spec, _stdio: Stdio) -> Result<Created> {
    todo!()
}

/// Removes the container's cgroup directories (after its processes are gone).
pub fn remove_cgroups(_cgroups_path: &str) -> Result<()> {
    todo!()
}
