//! The daemon's descriptor limit: raised for itself, the original given back to children.

use std::sync::OnceLock;

static ORIGINAL_NOFILE: OnceLock<libc::rlimit> = OnceLock::new();

/// Sets the soft `RLIMIT_NOFILE` to the hard one; remembers the original for
/// `restore_nofile`. Returns (old soft, new soft).
pub fn raise_nofile() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _ = ORIGINAL_NOFILE.set(lim);
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// In a forked child before `exec` (async-signal-safe: one setrlimit): the soft limit the
/// daemon was started with, so shims and containers see what they would have without the
/// raise. Does nothing if `raise_nofile` was not called.
pub fn restore_nofile() {
    if let Some(lim) = ORIGINAL_NOFILE.get() {
        // SAFETY: valid rlimit struct; setrlimit is async-signal-safe.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) };
    }
}
