//! The container's stdio as the shim holds it: a pty, or pipes.

use crate::args::Args;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub struct ShimSide {
    /// container stdout (or the pty master)
    pub out: OwnedFd,
    /// container stderr (no tty only)
    pub err: Option<OwnedFd>,
    /// where attach stdin goes: pipe write end or a dup of the pty master
    pub stdin: Option<OwnedFd>,
    /// the pty master, for RESIZE
    pub master: Option<OwnedFd>,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn set_nonblock(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = cvt(libc::fcntl(fd, libc::F_GETFL))?;
        cvt(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK))?;
    }
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: valid buffer; fds are fresh.
    unsafe {
        cvt(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC))?;
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    fd.try_clone()
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid winsize struct.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

pub fn setup(a: &Args) -> io::Result<(ShimSide, berth_runtime::Stdio)> {
    setup_with(a.tty, a.stdin, a.rows, a.cols)
}

/// Stdio for a container or exec process: a pty (`tty`), else pipes; a stdin pipe only
/// with `stdin` (else /dev/null).
pub fn setup_with(
    tty: bool,
    stdin: bool,
    rows: u16,
    cols: u16,
) -> io::Result<(ShimSide, berth_runtime::Stdio)> {
    if tty {
        // SAFETY: standard pty allocation; the slave is opened O_NOCTTY so the shim (a
        // session leader) never acquires it as its controlling terminal.
        let (master, slave) = unsafe {
            let m = cvt(libc::posix_openpt(
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ))?;
            let master = OwnedFd::from_raw_fd(m);
            cvt(libc::grantpt(m))?;
            cvt(libc::unlockpt(m))?;
            let mut name = [0 as libc::c_char; 128];
            let r = libc::ptsname_r(m, name.as_mut_ptr(), name.len());
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            let s = cvt(libc::open(
                name.as_ptr(),
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            ))?;
            (master, OwnedFd::from_raw_fd(s))
        };
        if rows > 0 || cols > 0 {
            set_winsize(master.as_raw_fd(), rows, cols)?;
        }
        set_nonblock(master.as_raw_fd())?;
        let stdin = if stdin { Some(dup(&master)?) } else { None };
        let side = ShimSide {
            out: dup(&master)?,
            err: None,
            stdin,
            master: Some(master),
        };
        let stdio = berth_runtime::Stdio {
            stdin: dup(&slave)?,
            stdout: dup(&slave)?,
            stderr: slave,
            terminal: true,
        };
        return Ok((side, stdio));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblock(out_r.as_raw_fd())?;
    set_nonblock(err_r.as_raw_fd())?;
    let (stdin_c, stdin_s) = if stdin {
        let (r, w) = pipe()?;
        set_nonblock(w.as_raw_fd())?;
        (r, Some(w))
    } else {
        let f = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
        (OwnedFd::from(f), None)
    };
    Ok((
        ShimSide {
            out: out_r,
            err: Some(err_r),
            stdin: stdin_s,
            master: None,
        },
        berth_runtime::Stdio {
            stdin: stdin_c,
            stdout: out_w,
            stderr: err_w,
            terminal: false,
        },
    ))
}
