//! Descriptors and the process's own visibility while it crosses into a container.
//!
//! Whatever the shim (or the daemon before it) holds open must not reach the container: a
//! directory descriptor inherited into the container is a way out of its root
//! (`/proc/self/fd/N/../..`), a log or pipe descriptor leaks host data. Every process that
//! enters a container therefore keeps only the descriptors it needs (`close_except`) before
//! it joins any namespace, marks the rest close-on-exec just before `execve`
//! (`cloexec_all`), and is not dumpable (`not_dumpable`) from before it enters until
//! `execve`, so that no process already in the container can open its `/proc/<pid>/exe`
//! (the host's berth-shim binary), `fd/`, `cwd` or `root`.

use crate::sys::last_err;
use crate::Result;
use std::os::fd::RawFd;

/// `close_range(first, last, flags)`; the kernel (5.9+, CLOEXEC 5.11+) does it in one call.
fn close_range(first: u32, last: u32, flags: libc::c_uint) -> std::io::Result<()> {
    // SAFETY: plain syscall on integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    if r == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The descriptors ≥ 3 open in this process, from `/proc/self/fd` (fallback for old kernels).
fn open_fds() -> Vec<RawFd> {
    std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .filter(|&fd: &RawFd| fd > 2)
                .collect()
        })
        .unwrap_or_default()
}

/// The ranges of descriptors ≥ 3 not in `keep`: [(first, last)], `last` inclusive.
pub(crate) fn gaps(keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut k: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    k.sort_unstable();
    k.dedup();
    let mut out = Vec::new();
    let mut next = 3u32;
    for fd in k {
        if fd > next {
            out.push((next, fd - 1));
        }
        next = fd + 1;
    }
    out.push((next, u32::MAX));
    out
}

/// Closes every descriptor ≥ 3 but those in `keep`.
pub(crate) fn close_except(keep: &[RawFd]) -> Result<()> {
    for (a, b) in gaps(keep) {
        if let Err(e) = close_range(a, b, 0) {
            if e.raw_os_error() != Some(libc::ENOSYS) {
                return Err(crate::Error::Sys(format!("close_range: {e}")));
            }
            for fd in open_fds() {
                if !keep.contains(&fd) {
                    // SAFETY: closing a descriptor this process holds and does not keep.
                    unsafe { libc::close(fd) };
                }
            }
            return Ok(());
        }
    }
    Ok(())
}

/// Marks every descriptor ≥ 3 close-on-exec (the last step before `execve`: only the
/// process's stdio crosses it).
pub(crate) fn cloexec_all() -> Result<()> {
    if let Err(e) = close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) {
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EINVAL) | Some(libc::EPERM)
        ) {
            return Err(crate::Error::Sys(format!("close_range: {e}")));
        }
        for fd in open_fds() {
            // SAFETY: fcntl on a descriptor of this process.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    Ok(())
}

/// `PR_SET_DUMPABLE 0`: `/proc/<pid>/{exe,fd,cwd,root,mem,environ}` of this process are
/// then closed to everyone without `CAP_SYS_PTRACE` on the host, and ptrace is refused.
/// `execve` of the container's program makes it dumpable again (as any new program).
pub(crate) fn not_dumpable() -> Result<()> {
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } == -1 {
        return Err(last_err("prctl PR_SET_DUMPABLE"));
    }
    Ok(())
}

/// After `chdir` into the process's cwd: refuses a cwd outside the (pivoted) root, such as
/// one reached through an inherited descriptor (`/proc/self/fd/N`). The kernel's getcwd
/// answers a path that does not start with `/` (`(unreachable)/…`) in that case.
pub(crate) fn check_cwd_in_root(cwd: &std::path::Path) -> Result<()> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: buffer and its length; the raw syscall (glibc's wrapper hides the prefix).
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    let outside = if r < 0 {
        true
    } else {
        buf.first() != Some(&b'/')
    };
    if outside {
        return Err(crate::Error::Sys(format!(
            "chdir to cwd ({:?}) set in config.json failed: current working directory is \
             outside of the container's root",
            cwd.display().to_string()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn gaps_skip_kept_descriptors() {
        assert_eq!(gaps(&[]), vec![(3, u32::MAX)]);
        assert_eq!(gaps(&[0, 1, 2]), vec![(3, u32::MAX)]);
        assert_eq!(gaps(&[5, 3, 9, 5]), vec![(4, 4), (6, 8), (10, u32::MAX)]);
        assert_eq!(gaps(&[3, 4]), vec![(5, u32::MAX)]);
    }

    /// A cwd reached through a descriptor of a directory outside the root (what an inherited
    /// fd gives `-w /proc/self/fd/N`) is refused; one inside is accepted. Needs root (chroot).
    #[test]
    fn cwd_outside_the_root_is_refused() {
        // SAFETY: plain syscall.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("berth-cwd-{}", std::process::id()));
        std::fs::create_dir_all(base.join("root/inside")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        let root = std::ffi::CString::new(base.join("root").to_str().unwrap()).unwrap();
        let out = std::ffi::CString::new(base.join("outside").to_str().unwrap()).unwrap();
        // SAFETY: the child only makes syscalls and exits; the parent waits for it.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = unsafe {
                let fd = libc::open(out.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
                if fd < 0
                    || libc::chroot(root.as_ptr()) != 0
                    || libc::chdir(c"/inside".as_ptr()) != 0
                {
                    3
                } else if check_cwd_in_root(Path::new("/inside")).is_err() {
                    4
                } else if libc::fchdir(fd) != 0 {
                    5
                } else if check_cwd_in_root(Path::new("/proc/self/fd/3")).is_ok() {
                    6
                } else {
                    0
                }
            };
            unsafe { libc::_exit(code) };
        }
        let mut st = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let _ = std::fs::remove_dir_all(&base);
        assert!(libc::WIFEXITED(st));
        assert_eq!(libc::WEXITSTATUS(st), 0, "see the codes in the child");
    }
}
