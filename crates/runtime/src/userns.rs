//! A new user namespace for the container (`linux.namespaces` type `user` with
//! `linux.uidMappings` / `linux.gidMappings`).
//!
//! The init is cloned with `CLONE_NEWUSER` together with its other new namespaces, so the
//! kernel makes those owned by the new user namespace (sysfs, proc, mqueue and devpts can then
//! be mounted inside). The child waits; the parent (still root on the host) writes
//! `/proc/<pid>/uid_map` and `gid_map` and says `Mapped`; the child then takes uid/gid 0 of the
//! namespace (a plain uid on the host) before it touches anything, so every file and mount it
//! makes belongs to the container's root. `setgroups` is left allowed: the maps are written by
//! a privileged parent, and the container's root may set its groups within the mapped range.

use crate::sys::{check, last_err};
use crate::{Error, Result};
use oci_spec::runtime::LinuxIdMapping;

/// The text of a uid_map/gid_map file: one `container host size` line per mapping.
pub(crate) fn map_text(maps: &[LinuxIdMapping]) -> Result<String> {
    if maps.is_empty() {
        return Err(Error::Spec(
            "a user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    let mut s = String::new();
    for m in maps {
        if m.size() == 0 {
            return Err(Error::Spec("an id mapping of size 0".into()));
        }
        s.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    Ok(s)
}

/// Parent side: writes the child's maps (gid first: the order does not matter to the kernel
/// for a privileged writer, but a failure on either leaves the child unmapped and killed).
pub(crate) fn write_maps(pid: i32, uid: &str, gid: &str) -> Result<()> {
    for (file, text) in [("gid_map", gid), ("uid_map", uid)] {
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, text.as_bytes())
            .map_err(|e| Error::Sys(format!("writing {p} ({}): {e}", text.trim_end())))?;
    }
    Ok(())
}

/// Child side, once mapped: become uid 0 / gid 0 of the namespace (all capabilities in it).
pub(crate) fn become_root() -> Result<()> {
    // SAFETY: plain id syscalls.
    unsafe {
        check(libc::setresgid(0, 0, 0), || {
            "setresgid 0 in the user namespace".into()
        })?;
        check(libc::setresuid(0, 0, 0), || {
            "setresuid 0 in the user namespace".into()
        })?;
    }
    Ok(())
}

/// Whether `fd` (an opened `/proc/…/ns/user`) is the caller's own user namespace.
pub(crate) fn is_own(fd: &std::os::fd::OwnedFd) -> Result<bool> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/user")
        .map_err(|e| Error::Sys(format!("stat /proc/self/ns/user: {e}")))?;
    // SAFETY: fstat into a zeroed struct on an fd we hold.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } == -1 {
        return Err(last_err("fstat user namespace"));
    }
    Ok(st.st_ino == own.ino() && st.st_dev == own.dev())
}

/// `statvfs` flags of the mount at `p` that a bind remount inside a user namespace must keep
/// (the kernel refuses to clear locked nosuid/nodev/noexec/ro/atime flags there).
pub(crate) fn locked_flags(p: &std::path::Path) -> Result<libc::c_ulong> {
    let c = crate::sys::cstr(p)?;
    // SAFETY: valid C string and a zeroed out-struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } == -1 {
        return Err(last_err(format!("statvfs {}", p.display())));
    }
    let mut f = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms_flag;
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n}))
            .unwrap()
    }

    #[test]
    fn map_lines() {
        assert_eq!(
            map_text(&[m(0, 100000, 65536)]).unwrap(),
            "0 100000 65536\n"
        );
        assert_eq!(
            map_text(&[m(0, 100000, 10), m(10, 200000, 5)]).unwrap(),
            "0 100000 10\n10 200000 5\n"
        );
        assert!(map_text(&[]).is_err());
        assert!(map_text(&[m(0, 1, 0)]).is_err());
    }
}
