//! Parent ↔ child messages over a SOCK_SEQPACKET pair (one datagram per message; EOF when
//! the other side is gone — the child's end is CLOEXEC, so EOF after start = exec succeeded).

use crate::sys::{check, last_err};
use crate::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(crate) enum Msg {
    Go,
    Ready,
    Start,
    Error(Error),
    Eof,
}

pub(crate) struct SyncSock(pub OwnedFd);

pub(crate) fn pair() -> Result<(SyncSock, SyncSock)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-int buffer.
    check(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        },
        || "socketpair".into(),
    )?;
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe {
        Ok((
            SyncSock(OwnedFd::from_raw_fd(fds[0])),
            SyncSock(OwnedFd::from_raw_fd(fds[1])),
        ))
    }
}

impl SyncSock {
    pub fn send(&self, m: &Msg) -> Result<()> {
        let buf: Vec<u8> = match m {
            Msg::Go => b"G".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Start => b"S".to_vec(),
            Msg::Eof => return Ok(()),
            Msg::Error(e) => {
                let (k, s) = match e {
                    Error::Exec(s) => (b'X', s),
                    Error::Spec(s) => (b'P', s),
                    Error::Sys(s) => (b'S', s),
                };
                let mut v = vec![b'E', k];
                v.extend_from_slice(&s.as_bytes()[..s.len().min(4000)]);
                v
            }
        };
        loop {
            // SAFETY: valid buffer.
            let r = unsafe {
                libc::send(
                    self.0.as_raw_fd(),
                    buf.as_ptr() as *const libc::c_void,
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if r >= 0 {
                return Ok(());
            }
            if crate::sys::errno() != libc::EINTR {
                return Err(last_err("sync send"));
            }
        }
    }

    pub fn recv(&self) -> Result<Msg> {
        let mut buf = [0u8; 4096];
        let n = loop {
            // SAFETY: valid buffer.
            let r = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    0,
                )
            };
            if r >= 0 {
                break r as usize;
            }
            if crate::sys::errno() != libc::EINTR {
                return Err(last_err("sync recv"));
            }
        };
        let b = &buf[..n];
        Ok(match b {
            [] => Msg::Eof,
            [b'G'] => Msg::Go,
            [b'R'] => Msg::Ready,
            [b'S'] => Msg::Start,
            [b'E', k, rest @ ..] => {
                let s = String::from_utf8_lossy(rest).into_owned();
                Msg::Error(match k {
                    b'X' => Error::Exec(s),
                    b'P' => Error::Spec(s),
                    _ => Error::Sys(s),
                })
            }
            _ => return Err(Error::Sys("bad sync message".into())),
        })
    }
}
