//! Paths inside a container's root, resolved by the kernel as if the root were `/`.
//!
//! Every lookup goes through `openat2(2)` with `RESOLVE_IN_ROOT`: absolute symlinks and `..`
//! are scoped to the root directory descriptor at every step, and magic links
//! (`/proc/<pid>/fd/N`, `/proc/self/root`) are refused. A process in the container that swaps
//! a directory for a symlink to `/` while the daemon works can only make a lookup land on
//! another path *inside* the same root, never on the host. The descriptor returned is what the
//! caller then works on (`*at` calls, `/proc/self/fd/N` as a mount target), so nothing is
//! resolved twice.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `path` relative to the root: components only (`.`/`/` dropped, `..` kept for the kernel
/// to clamp); `.` for the root itself.
fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => out.push(".."),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Opens a directory (the container's root) to resolve paths in; symlinks in `root` itself
/// are the daemon's own (`/proc/<pid>/root`, the overlay's `merged`) and followed.
pub fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let c = cstr(root.as_os_str())?;
    // SAFETY: valid C string; the fd is owned right away.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn openat2(
    dir: BorrowedFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: open_how is plain data; zeroed then filled.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = resolve;
    loop {
        // SAFETY: valid fd, C string and struct with its size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: a fresh descriptor nobody else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as i32) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a rename elsewhere raced with a `..` lookup; the kernel asks to retry
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
    }
}

/// Opens `path` (absolute or not: both mean "from the root") inside `root`, following
/// symlinks only within it. `flags` are `open(2)` flags (`O_CLOEXEC` is always added); with
/// `O_NOFOLLOW` the last component is not followed (an `O_PATH` fd to a symlink).
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    openat2(
        root,
        &relative(path),
        flags,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// The directory holding `path` inside `root` (opened `O_PATH`, followed within the root) and
/// the last component, not followed. `None` as name for the root itself (`/`, `/..`).
pub fn open_parent_in_root(
    root: BorrowedFd,
    path: &Path,
) -> io::Result<(OwnedFd, Option<OsString>)> {
    let rel = relative(path);
    let mut comps: Vec<&OsStr> = rel.iter().collect();
    match comps.last() {
        Some(last) if *last != ".." && *last != "." => {
            let name = last.to_os_string();
            comps.pop();
            let parent: PathBuf = comps.iter().collect();
            let fd = open_in_root(root, &parent, libc::O_PATH | libc::O_DIRECTORY)?;
            Ok((fd, Some(name)))
        }
        _ => Ok((
            open_in_root(root, &rel, libc::O_PATH | libc::O_DIRECTORY)?,
            None,
        )),
    }
}

/// Creates the directory `path` inside `root` with its missing parents (`mode`, before the
/// umask) and returns it opened `O_PATH`. Existing components may be symlinks: they are
/// followed inside the root, as a lookup would; a dangling one has its target made (inside the
/// root), as runc does for a mount point.
pub fn mkdir_all_in_root(root: BorrowedFd, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    mkdir_all_depth(root, &relative(path), mode, 0)
}

fn mkdir_all_depth(root: BorrowedFd, rel: &Path, mode: u32, depth: u32) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    match open_in_root(root, rel, dir) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let comps: Vec<&OsStr> = rel.iter().collect();
    let mut cur = open_in_root(root, Path::new("."), dir)?;
    let mut done = PathBuf::new();
    for (i, c) in comps.iter().enumerate() {
        done.push(c);
        if *c != ".." && *c != "." {
            let name = cstr(c)?;
            // SAFETY: valid fd and C string.
            let r = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), mode) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        // the name just made (or found) is looked up again from the root: a symlink there is
        // followed inside the root, a swap in between lands inside the root too
        match open_in_root(root, &done, dir) {
            Ok(fd) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // a dangling link: make its target (where it leads inside the root) instead
                let link = open_in_root(root, &done, libc::O_PATH | libc::O_NOFOLLOW)?;
                let name = cstr(OsStr::new(""))?;
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                // SAFETY: valid fd, empty C string, buffer with its length.
                let n = unsafe {
                    libc::readlinkat(
                        link.as_raw_fd(),
                        name.as_ptr(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                    )
                };
                if n < 0 {
                    return Err(e);
                }
                buf.truncate(n as usize);
                let target = PathBuf::from(OsStr::from_bytes(&buf));
                let mut next = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    path_in_root(root, &cur)?
                };
                next.push(relative(&target));
                for rest in &comps[i + 1..] {
                    next.push(rest);
                }
                return mkdir_all_depth(root, &relative(&next), mode, depth + 1);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(cur)
}

/// Where the directory `fd` is, as a path inside `root` (relative, `.` for the root).
fn path_in_root(root: BorrowedFd, fd: &OwnedFd) -> io::Result<PathBuf> {
    let r = std::fs::read_link(fd_path(&root))?;
    let p = std::fs::read_link(fd_path(fd))?;
    p.strip_prefix(&r)
        .map(|x| x.to_path_buf())
        .map_err(|_| io::Error::from_raw_os_error(libc::EXDEV))
}

/// Opens the file `path` inside `root` (followed within the root), creating it empty (`mode`)
/// with its missing parents when it does not exist. Returns an `O_PATH` descriptor.
pub fn create_file_in_root(root: BorrowedFd, path: &Path, mode: u32) -> io::Result<OwnedFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let rel = relative(path);
    let name = rel
        .file_name()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?
        .to_os_string();
    let parent = mkdir_all_in_root(root, rel.parent().unwrap_or(Path::new(".")), 0o755)?;
    match openat2(
        parent.as_fd(),
        Path::new(&name),
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
        mode,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    ) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(e),
    }
    open_in_root(root, path, libc::O_PATH)
}

/// `/proc/self/fd/N`: the path the kernel resolves to exactly the file behind `fd` (a mount
/// target, a re-open with other flags).
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Re-opens an `O_PATH` descriptor with real access `flags` (the same inode, no lookup).
pub fn reopen(fd: &impl AsRawFd, flags: i32) -> io::Result<OwnedFd> {
    let c = cstr(fd_path(fd).as_os_str())?;
    // SAFETY: valid C string; the fd is owned right away.
    let r = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// Walks the directory tree at `root` (followed: the daemon's own path) by descriptor, depth
/// first. `visit(dir, rel)` gets each directory as `/proc/self/fd/N` (so `dir.join(name)` is
/// exactly a child of *that* directory, whatever was renamed meanwhile) and its path below the
/// root, and returns the names of the subdirectories to descend into, in order. A subdirectory
/// is opened from its parent's descriptor with `O_NOFOLLOW`: one swapped for a symlink (or
/// removed) while the walk runs is skipped, never followed — a running container cannot make
/// an export, a diff or a commit read the host.
pub fn walk_dirs<F>(root: &Path, mut visit: F) -> io::Result<()>
where
    F: FnMut(&Path, &Path) -> io::Result<Vec<OsString>>,
{
    type Stack = Vec<(std::rc::Rc<OwnedFd>, PathBuf)>;
    fn one<F>(visit: &mut F, fd: OwnedFd, rel: PathBuf, stack: &mut Stack) -> io::Result<()>
    where
        F: FnMut(&Path, &Path) -> io::Result<Vec<OsString>>,
    {
        let fd = std::rc::Rc::new(fd);
        let kids = visit(&fd_path(&*fd), &rel)?;
        for k in kids.into_iter().rev() {
            stack.push((fd.clone(), rel.join(k)));
        }
        Ok(())
    }
    let c = cstr(root.as_os_str())?;
    // SAFETY: valid C string; the fd is owned right away.
    let top = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if top < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let top = unsafe { OwnedFd::from_raw_fd(top) };
    let mut stack: Stack = Vec::new();
    one(&mut visit, top, PathBuf::new(), &mut stack)?;
    while let Some((parent, rel)) = stack.pop() {
        let Some(name) = rel.file_name() else {
            continue;
        };
        let name = cstr(name)?;
        // SAFETY: valid fd and C string; the fd is owned right away.
        let fd = unsafe {
            libc::openat(
                parent.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::ENOENT) => continue,
                _ => return Err(e),
            }
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        one(&mut visit, fd, rel, &mut stack)?;
    }
    Ok(())
}

/// The content of the regular file at `path` inside `root`, at most `max` bytes.
/// `Ok(None)`: it is absent or not a regular file. A FIFO, a device or a socket is never
/// opened for reading (no blocking, no device side effect): the path is opened `O_PATH`
/// first, and only a regular file is then reopened, through that very descriptor.
/// `ErrorKind::FileTooLarge` when it is larger than `max`.
pub fn read_regular(root: &Path, path: &Path, max: u64) -> io::Result<Option<Vec<u8>>> {
    let dir = open_root(root)?;
    let p = match open_in_root(dir.as_fd(), path, libc::O_PATH) {
        Ok(f) => std::fs::File::from(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !p.metadata()?.is_file() {
        return Ok(None);
    }
    use std::os::unix::fs::OpenOptionsExt;
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
    std::io::Read::read_to_end(&mut std::io::Read::take(f, max + 1), &mut data)?;
    if data.len() as u64 > max {
        return Err(too_large());
    }
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd)).unwrap()
    }

    #[test]
    fn links_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        symlink("/etc", root.join("a/abs")).unwrap();
        symlink("../../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let r = open_root(&root).unwrap();
        let dir = libc::O_PATH | libc::O_DIRECTORY;
        assert_eq!(
            real(&open_in_root(r.as_fd(), Path::new("/a/abs"), dir).unwrap()),
            root.join("etc")
        );
        assert_eq!(
            real(&open_in_root(r.as_fd(), Path::new("/a/up/etc"), dir).unwrap()),
            root.join("etc")
        );
        assert_eq!(
            real(&open_in_root(r.as_fd(), Path::new("../../a/rel"), dir).unwrap()),
            root.join("a/b")
        );
        assert_eq!(
            real(&open_in_root(r.as_fd(), Path::new("/"), dir).unwrap()),
            root
        );
        let e = open_in_root(r.as_fd(), Path::new("/loop/x"), dir).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
        // O_NOFOLLOW: the link itself
        let l = open_in_root(
            r.as_fd(),
            Path::new("/a/abs"),
            libc::O_PATH | libc::O_NOFOLLOW,
        )
        .unwrap();
        let st = std::fs::metadata(fd_path(&l)).ok();
        assert!(st.is_none() || real(&l) == root.join("a/abs"));
        let (p, n) = open_parent_in_root(r.as_fd(), Path::new("/a/abs/x")).unwrap();
        assert_eq!(real(&p), root.join("etc"));
        assert_eq!(n.as_deref(), Some(OsStr::new("x")));
        let (p, n) = open_parent_in_root(r.as_fd(), Path::new("/")).unwrap();
        assert_eq!(real(&p), root);
        assert!(n.is_none());
    }

    #[test]
    fn mkdir_and_create_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap().join("root");
        std::fs::create_dir_all(&root).unwrap();
        let outside = d.path().canonicalize().unwrap().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("esc")).unwrap();
        let r = open_root(&root).unwrap();
        // dangling inside the root: its target is made inside the root, nothing on the host
        let fd = mkdir_all_in_root(r.as_fd(), Path::new("/esc/x/y"), 0o755).unwrap();
        assert_eq!(
            real(&fd),
            root.join(outside.strip_prefix("/").unwrap()).join("x/y")
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        symlink("../rel/target", root.join("relink")).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        symlink("../../../../nowhere", root.join("sub/up")).unwrap();
        let fd = mkdir_all_in_root(r.as_fd(), Path::new("/relink/z"), 0o755).unwrap();
        assert_eq!(real(&fd), root.join("rel/target/z"));
        let fd = mkdir_all_in_root(r.as_fd(), Path::new("/sub/up/q"), 0o755).unwrap();
        assert_eq!(real(&fd), root.join("nowhere/q"));
        let fd = mkdir_all_in_root(r.as_fd(), Path::new("/esc/x/y"), 0o755).unwrap();
        assert!(real(&fd).starts_with(&root), "{:?}", real(&fd));
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        assert!(!outside.join("x").exists());
        let f = create_file_in_root(r.as_fd(), Path::new("/esc/f"), 0o644).unwrap();
        assert!(real(&f).starts_with(&root));
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn walk_skips_links_and_lists_by_descriptor() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("r");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/f"), "x").unwrap();
        symlink("/etc", root.join("a/etc")).unwrap();
        let mut seen = Vec::new();
        walk_dirs(&root, |dir, rel| {
            let mut kids = Vec::new();
            let mut names: Vec<_> = std::fs::read_dir(dir)?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                seen.push(rel.join(&n).display().to_string());
                // the link is offered as a "directory" on purpose: the walk must not enter it
                kids.push(n);
            }
            Ok(kids)
        })
        .unwrap();
        assert_eq!(seen, vec!["a", "a/b", "a/etc", "a/b/f"]);
    }
}

#[cfg(test)]
mod read_tests {
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
