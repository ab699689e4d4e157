//! Opening a path of a container's root filesystem from the host, the way the container would
//! resolve it: `openat2` with `RESOLVE_IN_ROOT` (an absolute symlink or `..` never leaves
//! `root`) and `RESOLVE_NO_MAGICLINKS` (no `/proc/*/fd` style jump out of it).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` (relative or absolute, taken as inside `root`) with `flags` (`O_CLOEXEC` is
/// always added). Fails with `ENOSYS` on kernels without `openat2` (before 5.6).
pub fn open_in_root(root: &Path, path: &Path, flags: libc::c_int) -> io::Result<File> {
    let dir = File::open(root)?;
    let rel = path.as_os_str().as_bytes();
    let rel = std::ffi::CString::new(if rel.is_empty() { b"." } else { rel })
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain data; zeroed is a valid value (also for fields added later).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: valid descriptor, C string and open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just gave us this descriptor.
            return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a concurrent rename in the tree made the kernel give up; try again
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

/// The content of the regular file at `path` inside `root`, at most `max` bytes.
/// `Ok(None)`: it is absent or not a regular file. A FIFO, a device or a socket is never
/// opened for reading (no blocking, no device side effect): the path is opened `O_PATH`
/// first, and only a regular file is then reopened, through that very descriptor.
/// `ErrorKind::FileTooLarge` when it is larger than `max`.
pub fn read_regular(root: &Path, path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let p = match open_in_root(root, path, libc::O_PATH) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !p.metadata()?.is_file() {
        return Ok(None);
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", p.as_raw_fd()))?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Ok(None);
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("{} is larger than {max} bytes", path.display()),
        )
    };
    if md.len() > max {
        return Err(too_large());
    }
    let mut data = Vec::with_capacity(md.len() as usize);
    f.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(too_large());
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(what: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-inroot-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("root/etc")).unwrap();
        d
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let d = tmp("links");
        let root = d.join("root");
        std::fs::write(d.join("outside"), "host\n").unwrap();
        std::fs::write(root.join("etc/real"), "inside\n").unwrap();
        // absolute and climbing links both land inside the root
        symlink("/etc/real", root.join("etc/abs")).unwrap();
        symlink("../../../../etc/real", root.join("etc/up")).unwrap();
        symlink(d.join("outside"), root.join("etc/host")).unwrap();
        for name in ["etc/abs", "etc/up", "/etc/abs"] {
            let got = read_regular(&root, Path::new(name), 100).unwrap().unwrap();
            assert_eq!(got, b"inside\n", "{name}");
        }
        // the host path named by the link does not exist inside the root
        assert_eq!(
            read_regular(&root, Path::new("etc/host"), 100).unwrap(),
            None
        );
        // no jumping out through /proc/self/fd
        symlink("/proc/self/fd/0", root.join("etc/magic")).unwrap();
        std::fs::create_dir_all(root.join("proc")).unwrap();
        assert!(read_regular(&root, Path::new("etc/magic"), 100)
            .map(|o| o.is_none())
            .unwrap_or(true));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn only_small_regular_files_are_read() {
        let d = tmp("kinds");
        let root = d.join("root");
        std::fs::write(root.join("etc/big"), vec![b'x'; 101]).unwrap();
        let e = read_regular(&root, Path::new("etc/big"), 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        let fifo = std::ffi::CString::new(root.join("etc/fifo").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // a FIFO nobody writes to: neither blocks nor counts as a file
        assert_eq!(
            read_regular(&root, Path::new("etc/fifo"), 100).unwrap(),
            None
        );
        assert_eq!(read_regular(&root, Path::new("etc"), 100).unwrap(), None);
        assert_eq!(
            read_regular(&root, Path::new("etc/none"), 100).unwrap(),
            None
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
