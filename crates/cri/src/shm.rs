//! A pod's `/dev/shm`: one tmpfs in the pod's run directory that every container of the pod
//! bind-mounts (POSIX shared memory between them, as their shared IPC namespace gives SysV).

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// docker's and kubelet's default size of `/dev/shm`.
const SIZE: &str = "65536k";

/// `<pod dir>/shm`
pub fn path(pod_dir: &Path) -> PathBuf {
    pod_dir.join("shm")
}

/// Mounts the pod's tmpfs (`nosuid,nodev,noexec`, mode 1777).
pub fn mount(pod_dir: &Path) -> Result<()> {
    use nix::mount::MsFlags;
    let p = path(pod_dir);
    std::fs::create_dir_all(&p)?;
    nix::mount::mount(
        Some("shm"),
        &p,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,size={SIZE}").as_str()),
    )
    .map_err(|e| {
        Error::Internal(format!(
            "mounting the pod's /dev/shm at {}: {e}",
            p.display()
        ))
    })
}

/// Unmounts it (lazily: a container that is still going keeps its view); a pod without one
/// is no error.
pub fn unmount(pod_dir: &Path) {
    let p = path(pod_dir);
    match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!("unmounting {}: {e}", p.display()),
    }
}
