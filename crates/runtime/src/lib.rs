//! berth-runtime: an OCI runtime spec → a process in new namespaces and cgroups.
//!
//! Synchronous code only; must be called from a single-threaded process (the shim), never
//! from the daemon: the container's init is `clone`d from the caller.
//!
//! Sequence: `clone` the init with the new namespaces; the parent creates the cgroups and
//! moves the init in while the child mounts the rootfs, pivots, sets hostname and `lo`; the
//! child then joins a new cgroup namespace, takes its stdio, drops to the user, resolves
//! `args[0]` and reports ready. `Created::start` lets it `execve`.

mod caps;
mod cgroups;
mod exec;
mod exec_in;
mod fds;
mod init;
pub mod mounts;
pub mod seccomp;
pub mod stats;
mod sync;
mod sys;
mod userns;

use oci_spec::runtime::{LinuxNamespaceType, LinuxResources, Spec};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use sync::{Msg, SyncSock};

pub use cgroups::prime_cgroup_move;
pub use exec::lookup;
pub use exec_in::{exec, ExecProcess};

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
    pid: i32,
    sync: Option<SyncSock>,
    console: Option<OwnedFd>,
}

impl Created {
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// With `Stdio::terminal` and a devpts mounted in the container: the master of the pty
    /// allocated inside the container (its slave is the init's stdio, so `tty` prints
    /// `/dev/pts/0`). The fds passed in `Stdio` were then not used. `None` otherwise.
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }

    /// Lets the process `execve`; returns once exec succeeded or with the exec error.
    /// After an error the init exits (126/127); the caller reaps it.
    pub fn start(&mut self) -> Result<()> {
        let sync = self
            .sync
            .take()
            .ok_or_else(|| Error::Sys("container already started".into()))?;
        sync.send(&Msg::Start)?;
        match sync.recv()? {
            Msg::Eof => Ok(()),
            Msg::Error(e) => Err(e),
            _ => Err(Error::Sys("unexpected message from container init".into())),
        }
    }
}

/// The cgroup path used for a container: `linux.cgroupsPath`, or `/berth/<id>`.
pub fn cgroups_path(id: &str, spec: &Spec) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("/berth/{id}"))
}

/// Creates the container described by `spec` (cgroups at `linux.cgroupsPath` under every
/// mounted hierarchy, v1 and v2).
pub fn create(id: &str, spec: &Spec, stdio: Stdio) -> Result<Created> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| Error::Spec("no root".into()))?;
    if !root.is_absolute() {
        return Err(Error::Spec(format!(
            "root.path {} is not absolute",
            root.display()
        )));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Spec("no process".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Spec("process.args is empty".into()));
    }
    let linux = spec.linux().as_ref();
    // compiled here, before the clone: the child only installs it
    let seccomp = linux
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()?;
    let mut flags = 0;
    let mut join_owned: Vec<(OwnedFd, libc::c_int)> = Vec::new();
    // a pid namespace is entered by the parent before the clone (setns only moves children)
    let mut join_pid: Option<OwnedFd> = None;
    let mut join_user: Option<OwnedFd> = None;
    for ns in linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]) {
        let f = init::ns_flag(ns.typ());
        match ns.path() {
            Some(p) => {
                let c = sys::cstr(p)?;
                // SAFETY: valid C string.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                let fd = sys::check(fd, || format!("open namespace {}", p.display()))?;
                // SAFETY: fd was just opened and is ours.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                match ns.typ() {
                    LinuxNamespaceType::Pid => join_pid = Some(fd),
                    // our own user namespace: nothing to join
                    LinuxNamespaceType::User if !userns::is_own(&fd)? => join_user = Some(fd),
                    LinuxNamespaceType::User => {}
                    _ => join_owned.push((fd, f)),
                }
            }
            None => flags |= f,
        }
    }
    let new_user_ns = flags & libc::CLONE_NEWUSER != 0;
    if new_user_ns && join_user.is_some() {
        return Err(Error::Spec(
            "a new user namespace and an existing one in one spec".into(),
        ));
    }
    let user_ns = if new_user_ns {
        init::UserNs::New
    } else if join_user.is_some() {
        init::UserNs::Joined
    } else {
        init::UserNs::Host
    };
    let maps = if new_user_ns {
        let l = linux.ok_or_else(|| Error::Spec("no linux section".into()))?;
        let uid = userns::map_text(l.uid_mappings().as_deref().unwrap_or(&[]))?;
        let gid = userns::map_text(l.gid_mappings().as_deref().unwrap_or(&[]))?;
        Some((uid, gid))
    } else {
        None
    };
    // In a new user namespace the child could not enter namespaces owned by another one
    // (a network namespace made elsewhere): the parent, still privileged, enters them just
    // for the clone (the child inherits them) and goes back, as for the pid namespace.
    let mut parent_join: Vec<(OwnedFd, libc::c_int)> = Vec::new();
    if new_user_ns {
        let (mine, keep): (Vec<_>, Vec<_>) = join_owned.into_iter().partition(|(_, f)| {
            matches!(
                *f,
                libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS
            )
        });
        if !keep.is_empty() {
            return Err(Error::Spec(
                "with a new user namespace only network, ipc and uts namespaces can be joined"
                    .into(),
            ));
        }
        parent_join = mine;
        join_owned = Vec::new();
    }
    let new_cgroup_ns = flags & libc::CLONE_NEWCGROUP != 0;
    let clone_flags = flags & !libc::CLONE_NEWCGROUP;
    let cg_path = cgroups_path(id, spec);
    let hierarchies = cgroups::hierarchies()?;
    let (parent_sock, child_sock) = sync::pair()?;
    let join: Vec<(i32, libc::c_int)> = join_owned
        .iter()
        .map(|(f, n)| (f.as_raw_fd(), *n))
        .collect();
    let ctx = init::Ctx {
        spec,
        root: &root,
        sync: &child_sock,
        stdio: [
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stdio.stderr.as_raw_fd(),
        ],
        terminal: stdio.terminal,
        join: &[],
        seccomp: seccomp.as_ref(),
        new_mount_ns: flags & libc::CLONE_NEWNS != 0,
        new_uts_ns: flags & libc::CLONE_NEWUTS != 0,
        new_net_ns: flags & libc::CLONE_NEWNET != 0,
        own_ns: {
            let own = |f: libc::c_int| flags & f != 0 || join.iter().any(|(_, j)| *j == f);
            mounts::OwnNs {
                net: own(libc::CLONE_NEWNET),
                ipc: own(libc::CLONE_NEWIPC),
                uts: own(libc::CLONE_NEWUTS),
            }
        },
        new_cgroup_ns,
        user_ns,
        hierarchies: &hierarchies,
        cgroups_path: &cg_path,
        init: spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get("io.berth.init"))
            .is_some_and(|v| v == "true"),
    };

    let pid = if let Some(user_fd) = &join_user {
        // Another container's user namespace (to share its network, ipc or pid namespace):
        // an intermediate child enters it and the namespaces to share, then clones the init,
        // whose new namespaces are thereby owned by that user namespace; the init is then
        // re-parented to the caller (a subreaper, as for exec).
        let mut all = join.clone();
        if let Some(p) = &join_pid {
            all.push((p.as_raw_fd(), libc::CLONE_NEWPID));
        }
        // SAFETY: the caller is single-threaded (documented), so the child may allocate.
        let a = unsafe { libc::fork() };
        if a == -1 {
            return Err(sys::last_err("fork"));
        }
        if a == 0 {
            // SAFETY: our copy of the parent's end.
            unsafe { libc::close(parent_sock.0.as_raw_fd()) };
            let res = (|| -> Result<i64> {
                // SAFETY: setns on namespace fds we hold open, user first.
                sys::check(
                    unsafe { libc::setns(user_fd.as_raw_fd(), libc::CLONE_NEWUSER) },
                    || "setns user".into(),
                )?;
                userns::become_root()?;
                for &(fd, f) in &all {
                    // SAFETY: as above.
                    sys::check(unsafe { libc::setns(fd, f) }, || format!("setns {f:#x}"))?;
                }
                // SAFETY: raw clone without a new stack behaves like fork (single-threaded).
                let pid = unsafe {
                    libc::syscall(
                        libc::SYS_clone,
                        (clone_flags | libc::SIGCHLD) as libc::c_ulong,
                        0usize,
                        0usize,
                        0usize,
                        0usize,
                    )
                };
                if pid == -1 {
                    return Err(sys::last_err("clone"));
                }
                if pid == 0 {
                    init::run(&ctx);
                }
                Ok(pid)
            })();
            let _ = match res {
                Ok(pid) => child_sock.send(&Msg::Pid(pid as i32)),
                Err(e) => child_sock.send(&Msg::Error(e)),
            };
            // SAFETY: plain exit of a forked child.
            unsafe { libc::_exit(0) };
        }
        let got = parent_sock.recv();
        // SAFETY: our own child; it exits right after reporting.
        unsafe { libc::waitpid(a, std::ptr::null_mut(), 0) };
        match got? {
            Msg::Pid(p) => p as libc::c_long,
            Msg::Error(e) => return Err(e),
            _ => return Err(Error::Sys("container set-up child died".into())),
        }
    } else {
        let own_pid_ns = match &join_pid {
            Some(target) => Some(enter_pid_ns_for_children(target)?),
            None => None,
        };
        let mut own_other_ns: Vec<(OwnedFd, libc::c_int)> = Vec::new();
        for (fd, flag) in &parent_join {
            match enter_ns(fd, *flag) {
                Ok(own) => own_other_ns.push((own, *flag)),
                Err(e) => {
                    leave_ns(&own_other_ns);
                    if let Some(own) = &own_pid_ns {
                        // SAFETY: setns on a namespace fd we hold open.
                        unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID) };
                    }
                    return Err(e);
                }
            }
        }
        // SAFETY: raw clone without a new stack behaves like fork; the caller is
        // single-threaded (documented requirement), so the child may allocate.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (clone_flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        let clone_err = (pid == -1).then(|| sys::last_err("clone"));
        if pid != 0 {
            leave_ns(&own_other_ns);
            if let Some(own) = &own_pid_ns {
                // back to our own namespace for later children (execs join by themselves)
                // SAFETY: setns on a namespace fd we hold open.
                let r = unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWPID) };
                if r != 0 {
                    tracing::warn!(
                        "restoring the pid namespace: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
        if let Some(e) = clone_err {
            return Err(e);
        }
        if pid == 0 {
            // SAFETY: closing our copy of the parent's end so its death reads as EOF.
            unsafe { libc::close(parent_sock.0.as_raw_fd()) };
            init::run(&init::Ctx { join: &join, ..ctx });
        }
        pid
    };
    let pid = pid as i32;
    drop(child_sock);
    drop(stdio);
    drop(join_owned);

    let resources = linux.and_then(|l| l.resources().as_ref());
    let mapped = match (&maps, user_ns) {
        (Some((uid, gid)), _) => {
            userns::write_maps(pid, uid, gid).and_then(|()| parent_sock.send(&Msg::Mapped))
        }
        // the init waits for this before anything (as in a new user namespace)
        (None, init::UserNs::Joined) => parent_sock.send(&Msg::Mapped),
        (None, _) => Ok(()),
    };
    let res = mapped
        .and_then(|()| cgroups::setup(&hierarchies, &cg_path, resources, pid))
        .and_then(|()| parent_sock.send(&Msg::Go))
        .and_then(|()| match parent_sock.recv_with_fd()? {
            (Msg::Ready, console) => Ok(console),
            (Msg::Error(e), _) => Err(e),
            _ => Err(Error::Sys("container init exited during set-up".into())),
        });
    match res {
        Ok(console) => Ok(Created {
            pid,
            sync: Some(parent_sock),
            console,
        }),
        Err(e) => {
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            // prefer the child's own report (e.g. a mount error) over a follow-on error
            let e = match parent_sock.recv() {
                Ok(Msg::Error(child)) if !matches!(e, Error::Exec(_)) => child,
                _ => e,
            };
            let _ = cgroups::remove(&cg_path);
            Err(e)
        }
    }
}

/// Enters `target` (a net/ipc/uts namespace) ourselves; returns our own, to go back.
fn enter_ns(target: &OwnedFd, flag: libc::c_int) -> Result<OwnedFd> {
    let name = match flag {
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWIPC => "ipc",
        _ => "uts",
    };
    let own = sys::cstr(format!("/proc/self/ns/{name}"))?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(own.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let fd = sys::check(fd, || format!("open /proc/self/ns/{name}"))?;
    // SAFETY: fd was just opened and is ours.
    let own = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setns on a namespace fd we hold open.
    sys::check(unsafe { libc::setns(target.as_raw_fd(), flag) }, || {
        format!("setns {name}")
    })?;
    Ok(own)
}

/// Goes back to the namespaces saved by `enter_ns`.
fn leave_ns(own: &[(OwnedFd, libc::c_int)]) {
    for (fd, flag) in own {
        // SAFETY: setns on a namespace fd we hold open.
        if unsafe { libc::setns(fd.as_raw_fd(), *flag) } != 0 {
            tracing::warn!(
                "restoring namespace {flag:#x}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Makes our next children start in `target`'s pid namespace; returns our own, to go back.
fn enter_pid_ns_for_children(target: &OwnedFd) -> Result<OwnedFd> {
    let own = sys::cstr("/proc/self/ns/pid")?;
    // SAFETY: valid C string.
    let fd = unsafe { libc::open(own.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let fd = sys::check(fd, || "open /proc/self/ns/pid".to_string())?;
    // SAFETY: fd was just opened and is ours.
    let own = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: setns on a namespace fd we hold open; only pid_for_children changes.
    sys::check(
        unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWPID) },
        || "setns pid".to_string(),
    )?;
    Ok(own)
}

/// Applies `linux.resources` to a running container's cgroups (UPDATE).
pub fn update_resources(cgroups_path: &str, resources: &LinuxResources) -> Result<()> {
    cgroups::update(cgroups_path, resources)
}

/// Freezes (`true`) or thaws the container's cgroup; returns once the kernel agrees.
pub fn freeze(cgroups_path: &str, frozen: bool) -> Result<()> {
    cgroups::freeze(cgroups_path, frozen)
}

/// Sends `sig` to every process of the container's cgroup (a container in the host's PID
/// namespace: killing its init does not end the rest). How many were signalled.
pub fn kill_all(cgroups_path: &str, sig: i32) -> Result<usize> {
    cgroups::kill_all(cgroups_path, sig)
}

/// The capability names the runtime knows, by number (`CAP_CHOWN` is 0).
pub fn capability_names() -> &'static [&'static str] {
    caps::names()
}

/// Removes the container's cgroup directories (after its processes are gone).
pub fn remove_cgroups(cgroups_path: &str) -> Result<()> {
    cgroups::remove(cgroups_path)
}
