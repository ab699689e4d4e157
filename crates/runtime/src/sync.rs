//! Parent ↔ child messages over a SOCK_SEQPACKET pair (one datagram per message; EOF when
//! the other side is gone — the child's end is CLOEXEC, so EOF after start = exec succeeded).

use crate::sys::{check, last_err};
use crate::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub(crate) enum Msg {
    Go,
    /// the parent has written the new user namespace's uid_map and gid_map
    Mapped,
    Ready,
    Start,
    /// the exec'd process's pid, from the intermediate child
    Pid(i32),
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
    /// Sends `fd` (SCM_RIGHTS) along with a one-byte message.
    pub fn send_fd(&self, tag: u8, fd: RawFd) -> Result<()> {
        let mut byte = [tag];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr() as *mut libc::c_void,
            iov_len: 1,
        };
        // SAFETY: cmsg buffer sized with CMSG_SPACE for one fd; all pointers valid.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            let mut cbuf = vec![0u8; space];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
            check(
                libc::sendmsg(self.0.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) as libc::c_int,
                || "sync sendmsg".into(),
            )?;
        }
        Ok(())
    }

    /// Receives one message and the fd passed with it, if any.
    pub fn recv_with_fd(&self) -> Result<(Msg, Option<OwnedFd>)> {
        let mut buf = [0u8; 4096];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: buffers sized for the data and one fd; the received fd is fresh.
        unsafe {
            let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            let mut cbuf = vec![0u8; space];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = space;
            let n = loop {
                let r = libc::recvmsg(self.0.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
                if r >= 0 {
                    break r as usize;
                }
                if crate::sys::errno() != libc::EINTR {
                    return Err(last_err("sync recvmsg"));
                }
            };
            let mut fd = None;
            let c = libc::CMSG_FIRSTHDR(&msg);
            if !c.is_null()
                && (*c).cmsg_level == libc::SOL_SOCKET
                && (*c).cmsg_type == libc::SCM_RIGHTS
            {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            Ok((parse(&buf[..n])?, fd))
        }
    }

    pub fn send(&self, m: &Msg) -> Result<()> {
        let buf: Vec<u8> = match m {
            Msg::Go => b"G".to_vec(),
            Msg::Mapped => b"M".to_vec(),
            Msg::Ready => b"R".to_vec(),
            Msg::Start => b"S".to_vec(),
            Msg::Pid(p) => {
                let mut v = vec![b'I'];
                v.extend_from_slice(&p.to_le_bytes());
                v
            }
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
        parse(&buf[..n])
    }
}

fn parse(b: &[u8]) -> Result<Msg> {
    Ok(match b {
        [] => Msg::Eof,
        [b'G'] => Msg::Go,
        [b'M'] => Msg::Mapped,
        [b'R'] => Msg::Ready,
        [b'S'] => Msg::Start,
        [b'I', a, b, c, d] => Msg::Pid(i32::from_le_bytes([*a, *b, *c, *d])),
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
