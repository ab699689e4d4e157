//! Work inside another network namespace: a thread of its own enters it, does the work and
//! ends, so nothing else ever runs there by accident. Sockets made on that thread stay in
//! that namespace and can be used from any thread afterwards.

use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Runs `f` on a new thread that has first entered the network namespace at `path` (a
/// `/proc/<pid>/ns/net` or a bind-mounted namespace file), and waits for it.
pub fn in_netns<T: Send>(path: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let ns = std::fs::File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<T> {
            // SAFETY: setns(2) on a descriptor we own; it changes only this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                return Err(io::Error::last_os_error());
            }
            drop(ns);
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace worker panicked")))
    })
}
