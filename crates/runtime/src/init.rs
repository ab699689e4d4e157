//! What runs in the cloned child: set-up inside the new namespaces, then exec on start.

use crate::caps::CapSets;
use crate::seccomp::Filters;
use crate::sync::{Msg, SyncSock};
use crate::sys::{self, check, cstr, last_err};
use crate::{exec, mounts, userns, Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType, Process, Spec};
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

/// The init's user namespace.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum UserNs {
    /// the caller's
    Host,
    /// cloned into a new one: wait for the maps, then become its root
    New,
    /// another container's, entered (as its root) before the clone: wait for the go-ahead
    Joined,
}

pub(crate) struct Ctx<'a> {
    pub spec: &'a Spec,
    pub root: &'a Path,
    pub sync: &'a SyncSock,
    pub stdio: [RawFd; 3],
    pub terminal: bool,
    /// (fd, CLONE_NEW* flag) of namespaces to join
    pub join: &'a [(RawFd, libc::c_int)],
    /// `linux.seccomp`, compiled before the clone
    pub seccomp: Option<&'a Filters>,
    pub new_mount_ns: bool,
    pub new_uts_ns: bool,
    pub new_net_ns: bool,
    /// the namespaces that are not the host's (new, or joined from another container)
    pub own_ns: mounts::OwnNs,
    pub new_cgroup_ns: bool,
    pub user_ns: UserNs,
    /// annotation `io.berth.init=true`: stay as a minimal PID 1 above the user's process
    pub init: bool,
    /// the host's cgroup hierarchies (read before the clone, for the container's view)
    pub hierarchies: &'a [crate::cgroups::Hierarchy],
    /// the container's cgroup below each hierarchy (`linux.cgroupsPath`)
    pub cgroups_path: &'a str,
}

/// Never returns: execs the user's process or exits.
pub(crate) fn run(ctx: &Ctx) -> ! {
    let code = match setup(ctx) {
        Ok(prepared) => {
            let _ = match prepared.console {
                Some(fd) => ctx.sync.send_fd(b'R', fd),
                None => ctx.sync.send(&Msg::Ready),
            };
            if let Some(fd) = prepared.console {
                // SAFETY: our copy of the master, now owned by the parent.
                unsafe { libc::close(fd) };
            }
            match ctx.sync.recv() {
                Ok(Msg::Start) if ctx.init => run_init(ctx, &prepared),
                Ok(Msg::Start) => {
                    let (err, code) = prepared.exec();
                    let _ = ctx.sync.send(&Msg::Error(err));
                    code
                }
                _ => 1,
            }
        }
        Err(e) => {
            let _ = ctx.sync.send(&Msg::Error(e));
            1
        }
    };
    // SAFETY: plain process exit, no destructors needed in the forked child.
    unsafe { libc::_exit(code) }
}

/// Signals the minimal init passes on to the user's process.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// docker's `--init`: fork the user's process (pid 2), then stay as PID 1: forward signals,
/// reap every zombie, exit with the user's process's status. Returns the exit code.
fn run_init(ctx: &Ctx, prepared: &Prepared) -> i32 {
    // SAFETY: signal mask and fork in a single-threaded process; the child only execs.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let child = libc::fork();
        if child == -1 {
            let _ = ctx.sync.send(&Msg::Error(last_err("fork")));
            return 1;
        }
        if child == 0 {
            // own process group (and the terminal's foreground), so ^C reaches it once
            libc::setpgid(0, 0);
            if ctx.terminal {
                libc::signal(libc::SIGTTOU, libc::SIG_IGN);
                libc::tcsetpgrp(0, libc::getpid());
                libc::signal(libc::SIGTTOU, libc::SIG_DFL);
            }
            reset_signals();
            let (err, code) = prepared.exec();
            let _ = ctx.sync.send(&Msg::Error(err));
            libc::_exit(code);
        }
        // the child's exec (or its error report) is what the parent waits for
        libc::close(ctx.sync.0.as_raw_fd());
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigwaitinfo(&set, &mut info);
            if sig == -1 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(child, sig);
                continue;
            }
            loop {
                let mut st = 0;
                let pid = libc::waitpid(-1, &mut st, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    return if libc::WIFEXITED(st) {
                        libc::WEXITSTATUS(st)
                    } else {
                        128 + libc::WTERMSIG(st)
                    };
                }
            }
        }
    }
}

pub(crate) fn reset_signals() {
    // SAFETY: setting default dispositions and an empty mask is always valid.
    unsafe {
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

pub(crate) struct Prepared {
    /// pty master allocated inside the container, for the parent
    pub console: Option<RawFd>,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Prepared {
    pub fn exec(&self) -> (Error, i32) {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // only stdio crosses into the program (the sync socket's close tells the parent)
        if let Err(e) = crate::fds::cloexec_all() {
            return (e, 126);
        }
        // SAFETY: NULL-terminated arrays of valid C strings that outlive the call.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let e = std::io::Error::last_os_error();
        let arg0 = self
            .argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        let code = if e.raw_os_error() == Some(libc::ENOENT) {
            127
        } else {
            126
        };
        let msg = match e.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => format!("exec: {arg0:?}: permission denied"),
            Some(libc::ENOENT) => format!("exec: {arg0:?}: no such file or directory"),
            _ => format!("exec: {arg0:?}: {e}"),
        };
        (Error::Exec(msg), code)
    }
}

fn setup(ctx: &Ctx) -> Result<Prepared> {
    reset_signals();
    // nothing the shim holds reaches the container; no /proc/<pid>/{exe,fd} for it to open
    crate::fds::not_dumpable()?;
    let mut keep: Vec<RawFd> = vec![ctx.sync.0.as_raw_fd()];
    keep.extend(ctx.stdio);
    keep.extend(ctx.join.iter().map(|&(fd, _)| fd));
    crate::fds::close_except(&keep)?;
    let spec = ctx.spec;
    if ctx.user_ns != UserNs::Host {
        match ctx.sync.recv()? {
            Msg::Mapped if ctx.user_ns == UserNs::New => userns::become_root()?,
            Msg::Mapped => {}
            _ => return Err(Error::Sys("unexpected message from parent".into())),
        }
    }
    let in_userns = ctx.user_ns != UserNs::Host;
    for &(fd, flag) in ctx.join {
        // SAFETY: fd is an open namespace file.
        check(unsafe { libc::setns(fd, flag) }, || {
            format!("setns {flag:#x}")
        })?;
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Spec("no process".into()))?;
    let linux = spec.linux().as_ref();
    // SAFETY: umask never fails.
    unsafe { libc::umask(0) };

    let mut cgroup_mount: Option<(std::path::PathBuf, bool)> = None;
    if ctx.new_mount_ns {
        // `rootfsPropagation: shared` (a bind with shared propagation in the spec): the
        // namespace's copies stay peers of the host's mounts, so such a bind joins its
        // source's peer group and mounts the container makes in it reach the host. Everything
        // else of the container is kept from propagating (see mounts::share_root).
        let shared_root = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .is_some_and(|p| matches!(p, "shared" | "rshared"));
        let root_prop = if shared_root {
            libc::MS_SHARED
        } else {
            libc::MS_SLAVE
        };
        sys::mount(None, Path::new("/"), None, root_prop | libc::MS_REC, None)?;
        if shared_root {
            mounts::isolate_rootfs(ctx.root)?;
        }
        sys::mount(
            Some(ctx.root),
            ctx.root,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?;
        // the host sees the rootfs `nosuid` (snapshot mounts it so: a set-uid binary the
        // container made is no way up for a host user); the container's own view honours
        // set-uid as docker's does. Best effort: a user namespace may hold the flag locked.
        if let Err(e) = sys::mount(None, ctx.root, None, libc::MS_BIND | libc::MS_REMOUNT, None) {
            tracing::debug!("rootfs suid remount: {e}");
        }
        let mut dev_tmpfs = false;
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            mounts::mount_one(ctx.root, m, in_userns)?;
            if m.destination() == Path::new("/dev") {
                dev_tmpfs = true;
            }
            if matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")) {
                let rw = !m
                    .options()
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .any(|o| o == "ro");
                cgroup_mount = Some((m.destination().clone(), rw));
            }
        }
        if dev_tmpfs {
            let extra = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
            mounts::create_devices(ctx.root, extra, in_userns)?;
        }
        if let Err(e) = mounts::make_cwd(ctx.root, process.cwd()) {
            // chdir after pivot_root reports the missing directory as docker does
            tracing::debug!("working directory: {e}");
        }
        mounts::pivot_root(ctx.root)?;
        // before /proc/sys turns read-only; through the container's /proc only
        if let Some(sysctl) = linux.and_then(|l| l.sysctl().as_ref()) {
            mounts::write_sysctls(sysctl.iter(), ctx.own_ns)?;
        }
        if spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false)
        {
            let keep = if in_userns {
                userns::locked_flags(Path::new("/"))?
            } else {
                0
            };
            sys::mount(
                None,
                Path::new("/"),
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep,
                None,
            )?;
        }
        for p in linux
            .and_then(|l| l.masked_paths().as_deref())
            .unwrap_or(&[])
        {
            mounts::mask_path(p)?;
        }
        for p in linux
            .and_then(|l| l.readonly_paths().as_deref())
            .unwrap_or(&[])
        {
            mounts::readonly_path(p)?;
        }
    } else {
        let c = cstr(ctx.root)?;
        // SAFETY: valid C strings.
        unsafe {
            check(libc::chroot(c.as_ptr()), || "chroot".to_string())?;
            check(libc::chdir(c"/".as_ptr()), || "chdir /".to_string())?;
        }
    }

    let domainname = spec.domainname().as_deref().unwrap_or("");
    if !ctx.new_uts_ns && !domainname.is_empty() {
        // the host's UTS namespace (`--uts host`): setting it would rename the host (runc's
        // refusal, which dockerd passes on)
        return Err(Error::Spec(
            "sysctl \"kernel.domainname\" is not in a separate kernel namespace".into(),
        ));
    }
    if ctx.new_uts_ns {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            // SAFETY: pointer and length of a valid buffer.
            let r = unsafe { libc::sethostname(h.as_ptr() as *const libc::c_char, h.len()) };
            check(r, || format!("sethostname {h:?}"))?;
        }
        if let Some(h) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
            // dockerd sets it through /proc/sys/kernel/domainname, which keeps the first 64
            // bytes of a longer name (the UTS field's size) instead of failing
            let len = h.len().min(64);
            // SAFETY: pointer and length within a valid buffer.
            let r = unsafe { libc::setdomainname(h.as_ptr() as *const libc::c_char, len) };
            check(r, || format!("setdomainname {h:?}"))?;
        }
    }
    if ctx.new_net_ns {
        loopback_up()?;
    }

    // cgroups are in place once the parent says go
    match ctx.sync.recv()? {
        Msg::Go => {}
        _ => return Err(Error::Sys("unexpected message from parent".into())),
    }
    if ctx.new_cgroup_ns {
        // SAFETY: plain syscall.
        check(unsafe { libc::unshare(libc::CLONE_NEWCGROUP) }, || {
            "unshare cgroup namespace".to_string()
        })?;
    }
    if let Some((dest, rw)) = cgroup_mount {
        let dest = mounts::resolve_in_root(Path::new("/"), &dest)?;
        let own_subtree = (!ctx.new_cgroup_ns).then_some(ctx.cgroups_path);
        mounts::mount_cgroups(&dest, ctx.hierarchies, rw, own_subtree)?;
    }
    let current = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    if let Some(adj) = process.oom_score_adj().filter(|a| Some(*a) != current) {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| Error::Sys(format!("write /proc/self/oom_score_adj {adj}: {e}")))?;
    }

    let user = process.user();
    // With a terminal and the container's own devpts, the pty comes from inside (so that
    // `tty` names /dev/pts/0); the master goes back to the parent with the ready message.
    let console = if ctx.terminal && ctx.new_mount_ns && Path::new("/dev/pts/ptmx").exists() {
        Some(open_console(user.uid())?)
    } else {
        None
    };
    let stdio = match console {
        Some((_, slave)) => [slave; 3],
        None => ctx.stdio,
    };
    let console = console.map(|(m, _)| m);
    take_stdio(stdio, ctx.terminal)?;
    let p = prepare_process(process, ctx.seccomp)?;
    Ok(Prepared { console, ..p })
}

/// New session; `stdio` onto 0/1/2; with a terminal, it becomes the controlling tty.
pub(crate) fn take_stdio(stdio: [RawFd; 3], terminal: bool) -> Result<()> {
    // SAFETY: plain syscalls on fds we own.
    unsafe {
        libc::setsid();
        let mut tmp = [0; 3];
        for (i, fd) in stdio.iter().enumerate() {
            tmp[i] = check(libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 3), || {
                "dup stdio".into()
            })?;
        }
        for (i, fd) in tmp.iter().enumerate() {
            check(libc::dup2(*fd, i as libc::c_int), || "dup2 stdio".into())?;
            libc::close(*fd);
        }
        if terminal {
            check(libc::ioctl(0, libc::TIOCSCTTY, 0), || {
                "set controlling terminal".into()
            })?;
        }
    }
    Ok(())
}

/// Everything after stdio, shared by the container's init and exec: rlimits, bounding set,
/// user and groups, capabilities, no_new_privs, cwd, `args[0]` resolved in PATH, and the
/// seccomp filter.
///
/// The filter goes in as late as the kernel allows. With `noNewPrivileges` it is the very
/// last step (after the user and capabilities changed). Without it the kernel wants
/// `CAP_SYS_ADMIN` to install a filter, so it goes in right before the capabilities and the
/// user are dropped (the profile must then allow `capset`, `setuid`, `prctl`... which docker's
/// does); no_new_privs stays off, so set-uid binaries keep working as with docker.
pub(crate) fn prepare_process(process: &Process, seccomp: Option<&Filters>) -> Result<Prepared> {
    let nnp = process.no_new_privileges().unwrap_or(false);
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: valid rlimit struct.
        let ret = unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) };
        check(ret, || {
            format!(
                "setrlimit {} (soft {}, hard {})",
                rlimit_name(r.typ()),
                r.soft(),
                r.hard()
            )
        })?;
    }
    let caps = process
        .capabilities()
        .as_ref()
        .map(CapSets::from_spec)
        .transpose()?;
    if let Some(f) = seccomp.filter(|_| !nnp) {
        if !crate::caps::has_sys_admin() {
            // not privileged enough to install a filter without it (a rootless caller)
            set_no_new_privs()?;
        }
        f.install()?;
    }
    if let Some(c) = &caps {
        c.drop_bounding()?;
    }
    let user = process.user();
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: valid buffer of gids; plain id syscalls.
    unsafe {
        check(libc::setgroups(groups.len(), groups.as_ptr()), || {
            "setgroups".into()
        })?;
        check(libc::setgid(user.gid()), || {
            format!("setgid {}", user.gid())
        })?;
        check(libc::setuid(user.uid()), || {
            format!("setuid {}", user.uid())
        })?;
    }
    if let Some(c) = &caps {
        c.apply()?;
    }
    if nnp {
        set_no_new_privs()?;
    }
    let cwd = cstr(process.cwd())?;
    // SAFETY: valid C string.
    if unsafe { libc::chdir(cwd.as_ptr()) } == -1 {
        return Err(last_err(format!(
            "chdir to cwd ({:?}) set in config.json failed",
            process.cwd().display().to_string()
        )));
    }
    crate::fds::check_cwd_in_root(process.cwd())?;

    let args = process.args().as_deref().unwrap_or(&[]);
    let arg0 = args
        .first()
        .ok_or_else(|| Error::Spec("process.args is empty".into()))?;
    let env = process.env().as_deref().unwrap_or(&[]);
    let path = exec::lookup(arg0, env)?;
    let argv = args.iter().map(cstr).collect::<Result<Vec<_>>>()?;
    let envp = env.iter().map(cstr).collect::<Result<Vec<_>>>()?;
    // SAFETY: umask never fails.
    unsafe { libc::umask(0o022) };
    if let Some(f) = seccomp.filter(|_| nnp) {
        f.install()?;
    }
    Ok(Prepared {
        console: None,
        path: cstr(path)?,
        argv,
        envp,
    })
}

fn set_no_new_privs() -> Result<()> {
    // SAFETY: plain prctl.
    check(
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) },
        || "no_new_privs".into(),
    )?;
    Ok(())
}

/// Opens a pty in the container's devpts: (master, slave), both CLOEXEC.
pub(crate) fn open_console(uid: u32) -> Result<(RawFd, RawFd)> {
    // SAFETY: standard pty allocation on fresh fds.
    unsafe {
        let m = check(
            libc::open(
                c"/dev/ptmx".as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ),
            || "open /dev/ptmx".into(),
        )?;
        check(libc::unlockpt(m), || "unlockpt".into())?;
        let mut name = [0 as libc::c_char; 128];
        let r = libc::ptsname_r(m, name.as_mut_ptr(), name.len());
        if r != 0 {
            return Err(Error::Sys(format!(
                "ptsname: {}",
                std::io::Error::from_raw_os_error(r)
            )));
        }
        let s = check(
            libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ),
            || "open pty slave".into(),
        )?;
        if uid != 0 {
            libc::fchown(s, uid, u32::MAX);
        }
        Ok((m, s))
    }
}

fn loopback_up() -> Result<()> {
    // SAFETY: plain socket/ioctl on a zeroed ifreq naming "lo".
    unsafe {
        let s = check(
            libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0),
            || "socket".into(),
        )?;
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        let r = libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr);
        if r == 0 {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
            if r == -1 {
                let e = last_err("bring lo up");
                libc::close(s);
                return Err(e);
            }
        }
        libc::close(s);
    }
    Ok(())
}

fn rlimit_name(t: PosixRlimitType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{t:?}"))
}

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub(crate) fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}
