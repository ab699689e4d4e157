//! The API socket: created fresh (never through a symlink, never over a file that is not a
//! stale socket), mode 0660, owned by root and the `--group` (docker's `-G`, default
//! `berth`: members of that group may use the API, which is root-equivalent).

use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

/// The default of `-G/--group`: when no such group exists the socket stays root:root
/// (with a warning); a group named explicitly must exist.
pub const DEFAULT_GROUP: &str = "berth";

/// `--group` → gid. `None`: the default group is absent (a warning is logged).
pub fn group_id(group: &str) -> Result<Option<u32>> {
    if group.is_empty() {
        return Ok(None);
    }
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(Some(gid));
    }
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => Ok(Some(g.gid.as_raw())),
        Ok(None) | Err(_) if group == DEFAULT_GROUP => {
            tracing::warn!(
                "could not change group of the API socket to {group}: group {group} not found; \
                 the socket stays root:root 0660"
            );
            Ok(None)
        }
        Ok(None) => bail!("group {group} not found (set by -G/--group)"),
        Err(e) => bail!("looking up group {group}: {e}"),
    }
}

/// Removes what is at `path` only if it is a socket (a stale one of ours); anything else, a
/// symlink above all, is refused.
fn clear_stale(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display())),
        Ok(md) => {
            let what = if md.file_type().is_symlink() {
                "a symbolic link"
            } else if md.is_dir() {
                "a directory"
            } else {
                "not a socket"
            };
            bail!(
                "{} exists and is {what}: refusing to replace it (remove it by hand if it is \
                 not needed)",
                path.display()
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// Binds the API socket at `path`: 0660, root:`gid` (root:root without a group).
pub fn bind(path: &Path, gid: Option<u32>) -> Result<std::os::unix::net::UnixListener> {
    clear_stale(path)?;
    // a new socket file is created by bind (EADDRINUSE if something appeared meanwhile)
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    // owner and mode are set on exactly the inode bind made: opened without following links
    // and checked to be a socket, then changed through the descriptor
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).context("socket path")?;
    // SAFETY: valid C string; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("opening {}", path.display()));
    }
    // SAFETY: just opened, ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let md = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    if !md.file_type().is_socket() {
        bail!("{} was replaced while binding", path.display());
    }
    // SAFETY: fchownat on our O_PATH descriptor with AT_EMPTY_PATH.
    let r = unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            0,
            gid.unwrap_or(0),
            libc::AT_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("chown {}", path.display()));
    }
    let via = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    // SAFETY: valid C string naming our descriptor's inode.
    if unsafe { libc::chmod(via.as_ptr(), 0o660) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("chmod {}", path.display()));
    }
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the daemon holds a descriptor per API
/// connection, shim and container log); children get the original soft limit back
/// (`berth_util::limits::restore_nofile`).
pub fn raise_nofile() {
    match berth_util::limits::raise_nofile() {
        Ok((old, new)) if old != new => {
            tracing::debug!("raised the soft limit of open files from {old} to {new}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("raising the limit of open files: {e}"),
    }
}

/// The listening sockets systemd passed (`LISTEN_FDS`, from fd 3; `LISTEN_PID` must name us
/// when set), for `-H fd://` (all of them) or `-H fd://N` (that one). Each must be a unix
/// stream socket that listens. The variables are removed, so no child sees them.
pub fn activated(host: &str) -> Result<Vec<std::os::unix::net::UnixListener>> {
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_none_or(|pid| pid == std::process::id());
    if n <= 0 || !for_us {
        bail!(
            "no sockets found via socket activation: make sure the service was started by systemd"
        );
    }
    let fds: Vec<i32> = match host.strip_prefix("fd://").unwrap_or("") {
        "" => (3..3 + n).collect(),
        one => {
            let fd: i32 = one
                .parse()
                .with_context(|| format!("invalid fd in {host:?}"))?;
            if !(3..3 + n).contains(&fd) {
                bail!("too few sockets passed by systemd for {host:?} (LISTEN_FDS={n})");
            }
            vec![fd]
        }
    };
    let mut out = Vec::new();
    for fd in fds {
        let mut ty: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let mut listening: libc::c_int = 0;
        let mut len2 = len;
        // SAFETY: getsockopt into ints of the right size on a descriptor we only inspect.
        let ok = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut ty as *mut i32).cast(),
                &mut len,
            ) == 0
                && libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ACCEPTCONN,
                    (&mut listening as *mut i32).cast(),
                    &mut len2,
                ) == 0
        };
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut alen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: a sockaddr_storage and its length.
        let named = unsafe {
            libc::getsockname(
                fd,
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut alen,
            )
        } == 0;
        if !ok
            || !named
            || ty != libc::SOCK_STREAM
            || listening == 0
            || addr.ss_family != libc::AF_UNIX as u16
        {
            bail!("fd {fd} passed by systemd is not a listening unix stream socket");
        }
        // SAFETY: the descriptor was passed to us and is taken over exactly once here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        let l = std::os::unix::net::UnixListener::from(fd);
        l.set_nonblocking(true)?;
        out.push(l);
    }
    Ok(out)
}

/// Forgets the activation variables (after `activated`, or when no `fd://` host uses them).
pub fn clear_activation_env() {
    for k in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        std::env::remove_var(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn dir(what: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berthd-sock-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn stale_socket_is_replaced_other_files_are_not() {
        let d = dir("stale");
        let p = d.join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&p).expect("stale"));
        let l = bind(&p, None).expect("over a stale socket");
        let md = std::fs::symlink_metadata(&p).expect("socket");
        assert!(md.file_type().is_socket());
        assert_eq!(md.permissions().mode() & 0o7777, 0o660);
        if nix::unistd::geteuid().is_root() {
            assert_eq!(md.gid(), 0);
        }
        drop(l);
        std::fs::remove_file(&p).expect("rm");
        std::os::unix::fs::symlink(d.join("target"), &p).expect("symlink");
        let e = bind(&p, None).expect_err("a symlink");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!d.join("target").exists(), "the link was followed");
        std::fs::remove_file(&p).expect("rm");
        std::fs::create_dir(&p).expect("dir");
        assert!(bind(&p, None).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn groups_by_name_or_number() {
        assert_eq!(group_id("").expect("empty"), None);
        assert_eq!(group_id("1234").expect("number"), Some(1234));
        assert_eq!(group_id("root").expect("root"), Some(0));
        assert!(group_id("nosuchgroup-berth-test").is_err());
    }
}
