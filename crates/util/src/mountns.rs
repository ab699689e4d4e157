//! Mounts that only one piece of work sees: a thread that leaves the daemon's mount namespace
//! for a private copy of it, so the binds it makes vanish with it (even if it fails half-way)
//! and never show on the host.

use crate::inroot;
use std::ffi::CString;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn mount(source: Option<&Path>, target: &Path, flags: libc::c_ulong) -> io::Result<()> {
    let cs = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let src = source.map(cs).transpose()?;
    let dst = cs(target)?;
    // SAFETY: valid C strings (or null for no source); no filesystem type or data.
    check(unsafe {
        libc::mount(
            src.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            dst.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    })
}

/// Runs `f` on a thread of its own in a private copy of the mount namespace (changes on the
/// host still reach it; its own mounts go nowhere) and waits for it. The copy, with every
/// mount `f` made, is gone when the thread ends.
pub fn in_private_mount_ns<T: Send>(f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<T> {
            // SAFETY: affects only this thread (its fs context is unshared with it).
            check(unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_FS) })?;
            mount(None, Path::new("/"), libc::MS_REC | libc::MS_SLAVE)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount namespace worker panicked")))
    })
}

/// Binds `source` (a host path) at `dest` inside `root` (resolved in the root; the mount point
/// is made when missing, a directory or an empty file as `source` is), read-only unless `rw`.
pub fn bind_in_root(root: BorrowedFd, source: &Path, dest: &Path, rw: bool) -> io::Result<()> {
    let target = if std::fs::metadata(source)?.is_dir() {
        inroot::mkdir_all_in_root(root, dest, 0o755)?
    } else {
        inroot::create_file_in_root(root, dest, 0o644)?
    };
    mount(
        Some(source),
        &inroot::fd_path(&target),
        libc::MS_BIND | libc::MS_REC,
    )?;
    if !rw {
        // the new mount is what a lookup finds now
        let top = inroot::open_in_root(root, dest, libc::O_PATH)?;
        mount(
            None,
            &inroot::fd_path(&top),
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        )?;
    }
    Ok(())
}
