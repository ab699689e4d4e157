//! Mounts inside the container's rootfs, device nodes, masked and read-only paths.

use crate::cgroups::Hierarchy;
use crate::sys::{self, check, cstr};
use crate::{Error, Result};
use berth_util::inroot;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Resolves `path` as if `root` were `/`: symlinks (absolute or relative) and `..` never
/// leave `root`. Missing trailing components are kept as they are.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut parts: VecDeque<OsString> = VecDeque::new();
    push_components(&mut parts, path, false);
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(p) = parts.pop_front() {
        if p == ".." {
            cur.pop();
            continue;
        }
        let full = root.join(&cur).join(&p);
        match fs::symlink_metadata(&full) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(Error::Sys(format!(
                        "resolve {}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = fs::read_link(&full)
                    .map_err(|e| Error::Sys(format!("readlink {}: {e}", full.display())))?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                push_components(&mut parts, &target, true);
            }
            _ => cur.push(p),
        }
    }
    Ok(root.join(cur))
}

fn push_components(parts: &mut VecDeque<OsString>, p: &Path, front: bool) {
    let comps: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    if front {
        for c in comps.into_iter().rev() {
            parts.push_front(c);
        }
    } else {
        parts.extend(comps);
    }
}

#[derive(Debug, Default, PartialEq)]
pub(crate) struct MountOpts {
    pub flags: libc::c_ulong,
    pub propagation: libc::c_ulong,
    pub data: String,
}

pub(crate) fn parse_options(opts: &[String]) -> MountOpts {
    let mut m = MountOpts::default();
    for o in opts {
        let (set, clear): (libc::c_ulong, libc::c_ulong) = match o.as_str() {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "remount" => (libc::MS_REMOUNT, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "bind" => (libc::MS_BIND, 0),
            "rbind" => (libc::MS_BIND | libc::MS_REC, 0),
            "private" => {
                m.propagation |= libc::MS_PRIVATE;
                continue;
            }
            "rprivate" => {
                m.propagation |= libc::MS_PRIVATE | libc::MS_REC;
                continue;
            }
            "shared" => {
                m.propagation |= libc::MS_SHARED;
                continue;
            }
            "rshared" => {
                m.propagation |= libc::MS_SHARED | libc::MS_REC;
                continue;
            }
            "slave" => {
                m.propagation |= libc::MS_SLAVE;
                continue;
            }
            "rslave" => {
                m.propagation |= libc::MS_SLAVE | libc::MS_REC;
                continue;
            }
            "unbindable" => {
                m.propagation |= libc::MS_UNBINDABLE;
                continue;
            }
            "runbindable" => {
                m.propagation |= libc::MS_UNBINDABLE | libc::MS_REC;
                continue;
            }
            _ => {
                if !m.data.is_empty() {
                    m.data.push(',');
                }
                m.data.push_str(o);
                continue;
            }
        };
        m.flags = (m.flags | set) & !clear;
    }
    m
}

fn mkdir_all(p: &Path) -> Result<()> {
    fs::create_dir_all(p).map_err(|e| Error::Sys(format!("mkdir {}: {e}", p.display())))
}

fn in_root_err(what: &str, dest: &Path, e: std::io::Error) -> Error {
    Error::Sys(format!("{what} {} in the rootfs: {e}", dest.display()))
}

/// The mount point `dest` inside `root`, created if missing (directories 0755 as docker's,
/// files 0755 as runc's) and opened with every step resolved inside the root
/// (`RESOLVE_IN_ROOT`): a link in the rootfs or in a volume shared with another container,
/// swapped while we work, cannot make the mount land on the host (CVE-2021-30465 class).
pub(crate) fn open_mount_point(root: BorrowedFd, dest: &Path, dir: bool) -> Result<OwnedFd> {
    let r = if dir {
        inroot::mkdir_all_in_root(root, dest, 0o755)
    } else {
        inroot::create_file_in_root(root, dest, 0o755)
    };
    r.map_err(|e| in_root_err("mount point", dest, e))
}

/// Reopens the mount point after mounting on it: the new descriptor is the mount's root
/// (the old one still names the directory underneath).
fn reopen_mounted(root: BorrowedFd, dest: &Path) -> Result<OwnedFd> {
    inroot::open_in_root(root, dest, libc::O_PATH).map_err(|e| in_root_err("open", dest, e))
}

/// Performs one spec mount inside `root` (before pivot_root). The target is reached through
/// `/proc/self/fd/N` of a descriptor opened inside the root, never through a path walk.
/// In a user namespace (`userns`), bind remounts keep the flags the kernel has locked.
pub(crate) fn mount_one(root: &Path, m: &Mount, userns: bool) -> Result<()> {
    let root_fd = inroot::open_root(root).map_err(|e| in_root_err("open", root, e))?;
    let root_fd = root_fd.as_fd();
    let dest_in = m.destination();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let typ = m.typ().as_deref().unwrap_or("");
    let is_bind = typ == "bind" || opts.flags & libc::MS_BIND != 0;
    if is_bind {
        let src = m.source().as_deref().ok_or_else(|| {
            Error::Spec(format!(
                "bind mount {} without source",
                m.destination().display()
            ))
        })?;
        let md = fs::metadata(src)
            .map_err(|e| Error::Sys(format!("bind mount source {}: {e}", src.display())))?;
        let target = open_mount_point(root_fd, dest_in, md.is_dir())?;
        sys::mount(
            Some(src),
            &inroot::fd_path(&target),
            None,
            libc::MS_BIND | (opts.flags & libc::MS_REC),
            None,
        )?;
        let extra = opts.flags & !(libc::MS_BIND | libc::MS_REC | libc::MS_REMOUNT);
        if extra != 0 {
            let mounted = reopen_mounted(root_fd, dest_in)?;
            let at = inroot::fd_path(&mounted);
            let extra = if userns {
                extra | crate::userns::locked_flags(&at)?
            } else {
                extra
            };
            sys::mount(
                None,
                &at,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | extra,
                None,
            )?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        // only the mount point now: the hierarchies are mounted by `mount_cgroups` once the
        // container is in its cgroup and cgroup namespace
        open_mount_point(root_fd, dest_in, true)?;
        return Ok(());
    } else {
        let target = open_mount_point(root_fd, dest_in, true)?;
        let at = inroot::fd_path(&target);
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        let r = sys::mount(
            Some(&src),
            &at,
            Some(typ).filter(|t| !t.is_empty()),
            opts.flags,
            Some(&opts.data),
        );
        match r {
            // in a user namespace that does not own the network namespace (one joined from
            // another container), sysfs cannot be mounted: bind the host's, read-only
            Err(e) if userns && typ == "sysfs" && e.to_string().ends_with("(os error 1)") => {
                sys::mount(
                    Some(Path::new("/sys")),
                    &at,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                let mounted = reopen_mounted(root_fd, dest_in)?;
                let at = inroot::fd_path(&mounted);
                let keep = crate::userns::locked_flags(&at)?;
                sys::mount(
                    None,
                    &at,
                    None,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | keep | opts.flags,
                    None,
                )?;
            }
            r => r?,
        }
    }
    if opts.propagation != 0 {
        let mounted = reopen_mounted(root_fd, dest_in)?;
        sys::mount(
            None,
            &inroot::fd_path(&mounted),
            None,
            opts.propagation,
            None,
        )?;
    }
    Ok(())
}

/// The working directory inside `root`, created (0755) when missing, resolved in the root.
pub(crate) fn make_cwd(root: &Path, cwd: &Path) -> Result<()> {
    let root_fd = inroot::open_root(root).map_err(|e| in_root_err("open", root, e))?;
    inroot::mkdir_all_in_root(root_fd.as_fd(), cwd, 0o755)
        .map(|_| ())
        .map_err(|e| in_root_err("working directory", cwd, e))
}

fn mknod(path: &Path, kind: libc::mode_t, mode: u32, major: u64, minor: u64) -> Result<()> {
    let c = cstr(path)?;
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: valid C string.
    let r = unsafe { libc::mknod(c.as_ptr(), kind | (mode & 0o7777) as libc::mode_t, dev) };
    if r == -1 && sys::errno() == libc::EEXIST {
        return Ok(());
    }
    check(r, || format!("mknod {}", path.display())).map(|_| ())
}

/// An empty file at `p` (a device node's stand-in in the container's fresh `/dev` tmpfs).
fn touch(p: &Path) -> Result<()> {
    if let Some(parent) = p.parent() {
        mkdir_all(parent)?;
    }
    match fs::OpenOptions::new().create(true).append(true).open(p) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::IsADirectory => Ok(()),
        Err(e) => Err(Error::Sys(format!("create {}: {e}", p.display()))),
    }
}

/// In a user namespace device nodes cannot be made: the host's node at the same path is
/// bound over an empty file instead (the device cgroup still decides what may be opened).
fn bind_device(host: &Path, dest: &Path) -> Result<()> {
    touch(dest)?;
    sys::mount(Some(host), dest, None, libc::MS_BIND, None)
}

/// The devices every container gets (when /dev is a fresh tmpfs), plus the spec's.
pub(crate) fn create_devices(root: &Path, extra: &[LinuxDevice], userns: bool) -> Result<()> {
    let dev = root.join("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        if userns {
            bind_device(&Path::new("/dev").join(name), &dev.join(name))?;
        } else {
            mknod(&dev.join(name), libc::S_IFCHR, 0o666, major, minor)?;
        }
    }
    for d in extra {
        let p = resolve_in_root(root, d.path())?;
        if let Some(parent) = p.parent() {
            mkdir_all(parent)?;
        }
        if userns {
            bind_device(d.path(), &p)?;
            continue;
        }
        let kind = match d.typ() {
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        mknod(
            &p,
            kind,
            d.file_mode().unwrap_or(0o666),
            d.major() as u64,
            d.minor() as u64,
        )?;
        let c = cstr(&p)?;
        // SAFETY: valid C string.
        let r = unsafe { libc::chown(c.as_ptr(), d.uid().unwrap_or(0), d.gid().unwrap_or(0)) };
        check(r, || format!("chown {}", p.display()))?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        match std::os::unix::fs::symlink(target, dev.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::Sys(format!("symlink /dev/{name}: {e}"))),
        }
    }
    Ok(())
}

/// After pivot_root, inside the container's cgroup namespace: the cgroup hierarchies at
/// `dest` as docker shows them (v1: a writable tmpfs with one mount per hierarchy; v2:
/// cgroup2), the hierarchies read-only unless `rw`. In a cgroup namespace of its own each hierarchy's root is the
/// container's cgroup; without one (`--cgroupns host`), `own_subtree` (the container's cgroup
/// path) is bound instead of the whole hierarchy, so the host's other cgroups stay unseen.
pub(crate) fn mount_cgroups(
    dest: &Path,
    hierarchies: &[Hierarchy],
    rw: bool,
    own_subtree: Option<&str>,
) -> Result<()> {
    let base = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let remount_ro = |p: &Path| {
        if rw {
            return Ok(());
        }
        sys::mount(
            None,
            p,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | base | libc::MS_RDONLY,
            None,
        )
    };
    if hierarchies.iter().any(|h| h.controllers.is_empty()) && hierarchies.len() == 1 {
        sys::mount(
            Some(Path::new("cgroup")),
            dest,
            Some("cgroup2"),
            base | libc::MS_RELATIME,
            None,
        )?;
        if let Some(rel) = own_subtree {
            // the host's tree stays below, covered by the container's own subtree
            let sub = dest.join(rel.trim_start_matches('/'));
            sys::mount(Some(&sub), dest, None, libc::MS_BIND, None)?;
        }
        return remount_ro(dest);
    }
    sys::mount(
        Some(Path::new("tmpfs")),
        dest,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )?;
    for h in hierarchies.iter().filter(|h| !h.controllers.is_empty()) {
        let Some(name) = h.mountpoint.file_name() else {
            continue;
        };
        let at = dest.join(name);
        mkdir_all(&at)?;
        let data = h.controllers.join(",");
        match own_subtree {
            None => sys::mount(
                Some(Path::new("cgroup")),
                &at,
                Some("cgroup"),
                base | libc::MS_RELATIME,
                Some(&data),
            )?,
            Some(rel) => {
                // the whole hierarchy at a scratch point, its subtree bound, the rest dropped
                let tmp = dest.join(".berth-cgroup");
                mkdir_all(&tmp)?;
                sys::mount(
                    Some(Path::new("cgroup")),
                    &tmp,
                    Some("cgroup"),
                    base | libc::MS_RELATIME,
                    Some(&data),
                )?;
                let sub = tmp.join(rel.trim_start_matches('/'));
                let bound = sys::mount(Some(&sub), &at, None, libc::MS_BIND, None);
                let c = cstr(&tmp)?;
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
                let _ = fs::remove_dir(&tmp);
                bound?;
            }
        }
        remount_ro(&at)?;
    }
    // the tmpfs itself stays writable, as runc leaves it under docker: only the hierarchies
    // in it are read-only
    Ok(())
}

/// Which namespaces the container has of its own (sysctls are only written into those).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OwnNs {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// Whether sysctl `k` belongs to a namespace the container owns (runc's rule): anything else
/// would change the host.
pub(crate) fn sysctl_allowed(k: &str, own: OwnNs) -> bool {
    let ipc = matches!(
        k,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || k.starts_with("fs.mqueue.");
    let well_formed = !k.is_empty() && !k.contains('/') && k.split('.').all(|p| !p.is_empty());
    well_formed
        && if ipc {
            own.ipc
        } else if k.starts_with("net.") {
            own.net
        } else {
            k == "kernel.domainname" && own.uts
        }
}

/// After pivot_root: the spec's sysctls, through the container's own /proc (the namespaced
/// files there belong to the writer's namespaces).
pub(crate) fn write_sysctls<'a>(
    sysctls: impl Iterator<Item = (&'a String, &'a String)>,
    own: OwnNs,
) -> Result<()> {
    for (k, v) in sysctls {
        if !sysctl_allowed(k, own) {
            return Err(Error::Spec(format!(
                "sysctl {k:?} is not in a separate kernel namespace"
            )));
        }
        let p = Path::new("/proc/sys").join(k.replace('.', "/"));
        fs::write(&p, v.as_bytes()).map_err(|e| {
            Error::Sys(format!(
                "open {}: {}",
                p.display(),
                match e.raw_os_error() {
                    Some(libc::ENOENT) => "no such file or directory".to_string(),
                    _ => e.to_string(),
                }
            ))
        })?;
    }
    Ok(())
}

/// After pivot_root: hide `path` (/dev/null over a file, an empty ro tmpfs over a dir).
pub(crate) fn mask_path(path: &str) -> Result<()> {
    let p = Path::new(path);
    match fs::metadata(p) {
        Err(_) => Ok(()), // missing: nothing to hide
        Ok(md) if md.is_dir() => sys::mount(
            Some(Path::new("tmpfs")),
            p,
            Some("tmpfs"),
            libc::MS_RDONLY,
            None,
        ),
        Ok(_) => sys::mount(Some(Path::new("/dev/null")), p, None, libc::MS_BIND, None),
    }
}

/// After pivot_root: make `path` read-only.
pub(crate) fn readonly_path(path: &str) -> Result<()> {
    let p = Path::new(path);
    if fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    sys::mount(Some(p), p, None, libc::MS_BIND | libc::MS_REC, None)?;
    sys::mount(
        None,
        p,
        None,
        libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | libc::MS_NOEXEC,
        None,
    )
    .or_else(|_| {
        sys::mount(
            None,
            p,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
    })
}

/// `pivot_root(".", ".")` then detach the old root stacked on top.
/// With a shared root (see init): the rootfs's own mount becomes a slave in this namespace,
/// so that the mounts made inside it (the rootfs bind, /proc, /dev, the volumes' mount points)
/// never show on the host, and the mount that holds the rootfs's directory becomes private,
/// which pivot_root requires of the new root's parent and of the old root.
pub(crate) fn isolate_rootfs(root: &Path) -> Result<()> {
    let points = berth_util::mountinfo::mount_points()
        .map_err(|e| Error::Sys(format!("read mountinfo: {e}")))?;
    // the rootfs is normally a mount of its own (the overlay); a plain directory is not
    if points.iter().any(|p| p == root) {
        sys::mount(None, root, None, libc::MS_SLAVE, None)?;
    }
    let parent = root.parent().unwrap_or(Path::new("/"));
    let holder = points
        .iter()
        .filter(|p| parent.starts_with(p))
        .max_by_key(|p| p.as_os_str().len())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"));
    sys::mount(None, &holder, None, libc::MS_PRIVATE, None)
}

pub(crate) fn pivot_root(root: &Path) -> Result<()> {
    let c = cstr(root)?;
    let dot = cstr(".")?;
    // SAFETY: valid C strings; descriptors opened here and closed below.
    unsafe {
        let old = libc::open(
            c"/".as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        );
        check(old, || "open the old root".to_string())?;
        let old = OwnedFd::from_raw_fd(old);
        check(libc::chdir(c.as_ptr()), || {
            format!("chdir {}", root.display())
        })?;
        check(
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int,
            || "pivot_root".to_string(),
        )?;
        // "." is the new root's directory; the old root is stacked on it now. From inside the
        // old root, make it a slave (its unmount must not reach the host: with a shared root
        // its mounts are the host's peers), then detach it.
        check(libc::fchdir(old.as_raw_fd()), || {
            "fchdir old root".to_string()
        })?;
        check(
            libc::mount(
                std::ptr::null(),
                dot.as_ptr(),
                std::ptr::null(),
                libc::MS_SLAVE | libc::MS_REC,
                std::ptr::null(),
            ),
            || "make the old root a slave".to_string(),
        )?;
        check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH), || {
            "umount old root".to_string()
        })?;
        check(libc::chdir(c"/".as_ptr()), || "chdir /".to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let o: Vec<String> = ["rbind", "ro", "rprivate", "mode=755", "size=65536k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let m = parse_options(&o);
        assert_eq!(m.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(m.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(m.data, "mode=755,size=65536k");
    }

    #[test]
    fn only_sysctls_of_own_namespaces() {
        let all = OwnNs {
            net: true,
            ipc: true,
            uts: true,
        };
        assert!(sysctl_allowed("net.ipv4.ip_forward", all));
        assert!(sysctl_allowed("kernel.shmmax", all));
        assert!(sysctl_allowed("fs.mqueue.msg_max", all));
        assert!(sysctl_allowed("kernel.domainname", all));
        for k in [
            "kernel.core_pattern",
            "vm.swappiness",
            "kernel.hostname",
            "net/../kernel",
            "",
        ] {
            assert!(!sysctl_allowed(k, all), "{k}");
        }
        let none = OwnNs::default();
        assert!(!sysctl_allowed("net.ipv4.ip_forward", none));
        assert!(!sysctl_allowed("kernel.shmmax", none));
        assert!(!sysctl_allowed("kernel.domainname", none));
    }

    #[test]
    fn resolve_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("b", root.join("a/rel")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/a/abs/x")).unwrap(),
            root.join("etc/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/up/etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/../../x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/a/rel/c")).unwrap(),
            root.join("a/b/c")
        );
        assert!(resolve_in_root(root, Path::new("/loop/x")).is_err());
    }
}
