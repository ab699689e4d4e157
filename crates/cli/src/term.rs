//! Terminal raw mode, window size, and signal handling via a sigwait thread.

use std::mem::MaybeUninit;

pub fn isatty(fd: i32) -> bool {
    unsafe { libc::isatty(fd) == 1 }
}

/// (rows, cols) of the terminal on `fd`, or None.
pub fn winsize(fd: i32) -> Option<(u16, u16)> {
    let mut ws = MaybeUninit::<libc::winsize>::zeroed();
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    let ws = unsafe { ws.assume_init() };
    if ws.ws_row == 0 && ws.ws_col == 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Puts `fd` into raw mode; the saved state is restored by `restore`.
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    pub fn enter(fd: i32) -> Option<RawMode> {
        let mut t = MaybeUninit::<libc::termios>::zeroed();
        if unsafe { libc::tcgetattr(fd, t.as_mut_ptr()) } != 0 {
            return None;
        }
        let saved = unsafe { t.assume_init() };
        let mut raw = saved;
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
    pub fn restore(&self) {
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Blocks `sigs` in this thread (and so in threads spawned after) and
/// starts a thread that calls `f(signum)` for each one received.
pub fn handle_signals<F: FnMut(i32) + Send + 'static>(sigs: &[i32], mut f: F) {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for s in sigs {
            libc::sigaddset(set.as_mut_ptr(), *s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
    let set = unsafe { set.assume_init() };
    std::thread::spawn(move || loop {
        let mut sig: libc::c_int = 0;
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            f(sig);
        }
    });
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "INT",
        libc::SIGTERM => "TERM",
        libc::SIGHUP => "HUP",
        libc::SIGQUIT => "QUIT",
        libc::SIGUSR1 => "USR1",
        libc::SIGUSR2 => "USR2",
        _ => "KILL",
    }
}
