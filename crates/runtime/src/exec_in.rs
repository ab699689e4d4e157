//! EXEC: a new process inside a running container. The caller (the single-threaded shim)
//! forks an intermediate child that joins the init's namespaces; it forks once more so the
//! process is inside the pid namespace, reports that pid and exits (the process is then
//! re-parented to the shim, a subreaper). The process sets up stdio/user/caps like the
//! init and `execve`s at once.

use crate::init::{open_console, prepare_process, reset_signals, take_stdio};
use crate::seccomp::Filters;
use crate::sync::{self, Msg, SyncSock};
use crate::sys::{self, last_err};
use crate::{cgroups, Error, Result, Stdio};
use oci_spec::runtime::Process;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A process started in a container by `exec`.
pub struct ExecProcess {
    pid: i32,
    console: Option<OwnedFd>,
}

impl ExecProcess {
    /// Host pid of the exec'd process (a child of the caller once the call returns).
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// With a terminal and a devpts in the container: the master of the pty allocated inside
    /// (the `Stdio` fds were then not used).
    pub fn take_console(&mut self) -> Option<OwnedFd> {
        self.console.take()
    }
}

/// Namespaces joined, in this order (user first: the others may be owned by it; mnt last:
/// after it, `/proc` is the container's).
const NAMESPACES: &[(&str, libc::c_int)] = &[
    ("user", libc::CLONE_NEWUSER),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

fn open_namespaces(init_pid: i32) -> Result<Vec<(OwnedFd, libc::c_int)>> {
    let mut out = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{init_pid}/ns/{name}");
        let (Ok(a), Ok(b)) = (
            std::fs::metadata(&theirs),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) else {
            if Path::new(&format!("/proc/{init_pid}")).exists() {
                continue; // a namespace type this kernel does not have
            }
            return Err(Error::Sys("container is not running".into()));
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue; // shared with the host
        }
        let c = sys::cstr(&theirs)?;
        // SAFETY: valid C string.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        let fd = sys::check(fd, || format!("open {theirs}"))?;
        // SAFETY: just opened, ours.
        out.push((unsafe { OwnedFd::from_raw_fd(fd) }, *flag));
    }
    Ok(out)
}

/// Starts `process` in the container whose init is `init_pid` and whose cgroups are at
/// `cgroups_path`. Returns once the process has `execve`d, or with the exec error (docker's
/// texts). `seccomp` is the container's filter (compile it once with [`crate::seccomp::compile`]).
/// Must be called from a single-threaded process.
pub fn exec(
    init_pid: i32,
    cgroups_path: &str,
    process: &Process,
    seccomp: Option<&Filters>,
    stdio: Stdio,
) -> Result<ExecProcess> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Spec("process.args is empty".into()));
    }
    let ns = open_namespaces(init_pid)?;
    let (parent_sock, child_sock) = sync::pair()?;
    // SAFETY: the caller is single-threaded (documented), so the child may allocate.
    let a = unsafe { libc::fork() };
    if a == -1 {
        return Err(last_err("fork"));
    }
    if a == 0 {
        // SAFETY: our copy of the parent's end.
        unsafe { libc::close(parent_sock.0.as_raw_fd()) };
        let raw: Vec<(RawFd, libc::c_int)> = ns.iter().map(|(f, n)| (f.as_raw_fd(), *n)).collect();
        let fds = [
            stdio.stdin.as_raw_fd(),
            stdio.stdout.as_raw_fd(),
            stdio.stderr.as_raw_fd(),
        ];
        intermediate(&child_sock, &raw, process, seccomp, fds, stdio.terminal);
    }
    drop(child_sock);
    drop(stdio);
    drop(ns);
    let res = talk(&parent_sock, a, cgroups_path);
    // the intermediate child exits as soon as it has reported
    // SAFETY: our own child.
    unsafe { libc::waitpid(a, std::ptr::null_mut(), 0) };
    res
}

fn talk(sock: &SyncSock, a: i32, cgroups_path: &str) -> Result<ExecProcess> {
    if let Err(e) = cgroups::join(cgroups_path, a) {
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(a, libc::SIGKILL) };
        return Err(e);
    }
    sock.send(&Msg::Go)?;
    // the pid (from the intermediate child) and the ready message (from the process) may
    // arrive in either order
    let (mut pid, mut ready, mut console) = (None, false, None);
    while pid.is_none() || !ready {
        match sock.recv_with_fd()? {
            (Msg::Pid(p), _) => pid = Some(p),
            (Msg::Ready, c) => {
                ready = true;
                console = c;
            }
            (Msg::Error(e), _) => return Err(e),
            _ => return Err(Error::Sys("exec: process died during set-up".into())),
        }
    }
    let pid = pid.unwrap_or(0);
    match sock.recv()? {
        Msg::Eof => Ok(ExecProcess { pid, console }),
        Msg::Error(e) => Err(e),
        _ => Err(Error::Sys("exec: unexpected message".into())),
    }
}

fn intermediate(
    sock: &SyncSock,
    ns: &[(RawFd, libc::c_int)],
    process: &Process,
    seccomp: Option<&Filters>,
    stdio: [RawFd; 3],
    terminal: bool,
) -> ! {
    let res = (|| -> Result<i32> {
        // before entering: not dumpable (a process in the container cannot open our
        // /proc/<pid>/exe, the host's shim binary, nor fd/, cwd, root) and holding only the
        // namespace files, the sync socket and the new process's stdio
        crate::fds::not_dumpable()?;
        let mut keep: Vec<RawFd> = vec![sock.0.as_raw_fd()];
        keep.extend(stdio);
        keep.extend(ns.iter().map(|&(fd, _)| fd));
        crate::fds::close_except(&keep)?;
        match sock.recv()? {
            Msg::Go => {}
            _ => return Err(Error::Sys("exec: parent went away".into())),
        }
        for &(fd, flag) in ns {
            // SAFETY: fd is an open namespace file.
            sys::check(unsafe { libc::setns(fd, flag) }, || {
                format!("setns {flag:#x}")
            })?;
        }
        if ns.iter().any(|&(_, f)| f == libc::CLONE_NEWUSER) {
            // still the host's (unmapped) root: take the namespace's root before anything
            // is created (the pty), as the init did
            crate::userns::become_root()?;
        }
        // SAFETY: single-threaded child.
        let b = unsafe { libc::fork() };
        if b == -1 {
            return Err(last_err("fork"));
        }
        if b == 0 {
            for &(fd, _) in ns {
                // SAFETY: namespace fds are not needed any more.
                unsafe { libc::close(fd) };
            }
            exec_child(sock, process, seccomp, stdio, terminal);
        }
        Ok(b)
    })();
    let code = match res {
        Ok(pid) => {
            let _ = sock.send(&Msg::Pid(pid));
            0
        }
        Err(e) => {
            let _ = sock.send(&Msg::Error(e));
            1
        }
    };
    // SAFETY: plain exit of a forked child.
    unsafe { libc::_exit(code) }
}

fn exec_child(
    sock: &SyncSock,
    process: &Process,
    seccomp: Option<&Filters>,
    stdio: [RawFd; 3],
    terminal: bool,
) -> ! {
    reset_signals();
    let res = (|| -> Result<_> {
        let console = if terminal && Path::new("/dev/pts/ptmx").exists() {
            Some(open_console(process.user().uid())?)
        } else {
            None
        };
        let fds = match console {
            Some((_, slave)) => [slave; 3],
            None => stdio,
        };
        take_stdio(fds, terminal)?;
        let mut p = prepare_process(process, seccomp)?;
        p.console = console.map(|(m, _)| m);
        Ok(p)
    })();
    let code = match res {
        Ok(p) => {
            let sent = match p.console {
                Some(fd) => sock.send_fd(b'R', fd),
                None => sock.send(&Msg::Ready),
            };
            if let Some(fd) = p.console {
                // SAFETY: our copy, now the parent's.
                unsafe { libc::close(fd) };
            }
            if sent.is_ok() {
                let (err, code) = p.exec();
                let _ = sock.send(&Msg::Error(err));
                code
            } else {
                1
            }
        }
        Err(e) => {
            let code = if matches!(e, Error::Exec(_)) { 127 } else { 1 };
            let _ = sock.send(&Msg::Error(e));
            code
        }
    };
    // SAFETY: plain exit of a forked child.
    unsafe { libc::_exit(code) }
}
