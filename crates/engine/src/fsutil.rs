//! Atomic metadata writes: temp file, fsync, rename (shared with the other layers), and the
//! modes of the daemon's roots.

pub use berth_util::fs::write_atomic;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The modes of the roots and their top directories (docker's, or stricter): other host
/// users may traverse the data root and the exec root (to reach the API socket, which has its
/// own mode) but list or enter nothing below, so no container's config (its env), log,
/// rootfs (set-uid binaries) or volume is within their reach.
pub(crate) const DATA_MODES: &[(&str, u32)] = &[
    ("", 0o711),
    ("containers", 0o710),
    ("overlay2", 0o710),
    ("image", 0o700),
    ("volumes", 0o701),
    ("network", 0o700),
    ("tmp", 0o700),
];
pub(crate) const EXEC_MODES: &[(&str, u32)] = &[("", 0o711), ("containers", 0o700)];

/// Creates the roots' top directories and sets their modes, fixing up the roots an older
/// berthd left open.
pub(crate) fn secure_roots(data_root: &Path, exec_root: &Path) -> std::io::Result<()> {
    for (root, modes) in [(data_root, DATA_MODES), (exec_root, EXEC_MODES)] {
        for (sub, mode) in modes {
            let p = root.join(sub);
            std::fs::create_dir_all(&p)?;
            let md = std::fs::symlink_metadata(&p)?;
            if md.permissions().mode() & 0o7777 != *mode {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
                tracing::debug!(path = %p.display(), mode = format!("{mode:o}"), "root mode set");
            }
        }
    }
    Ok(())
}
