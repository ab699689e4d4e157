//! A TCP proxy for ports published on the host's IPv6 loopback (`-p [::1]:8080:80`, and the
//! `::1` side of `[::]:8080`): the kernel drops packets whose source is `::1` once they
//! leave `lo`, so no DNAT can carry them to a container (IPv6 has no `route_localnet`);
//! docker uses its userland proxy there, and so does berth.

use crate::{Error, Result};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::{Arc, RwLock};

/// A running proxy; dropping it stops accepting and closes the listening socket.
pub struct ProxyHandle {
    task: tokio::task::JoinHandle<()>,
    target: Arc<RwLock<SocketAddr>>,
}
impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProxyHandle {
    /// New connections go to `ip` from now on (same port; the container's published ports
    /// moved to another of its addresses). Connections already made stay where they are.
    pub fn retarget(&self, ip: IpAddr) {
        let mut t = self.target.write().unwrap_or_else(|p| p.into_inner());
        t.set_ip(ip);
    }
}

/// Binds `[::1]:port` now (a taken port is docker's `port is already allocated`) and
/// forwards each connection to `target`, on the current tokio runtime.
pub fn tcp_loopback6(port: u16, target: SocketAddr) -> Result<ProxyHandle> {
    let addr = SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            Error::Conflict(format!(
                "Bind for [::1]:{port} failed: port is already allocated"
            ))
        } else {
            Error::Io(e)
        }
    })?;
    l.set_nonblocking(true).map_err(Error::Io)?;
    let rt = tokio::runtime::Handle::try_current().map_err(|e| {
        Error::Io(std::io::Error::other(format!(
            "no runtime for the proxy: {e}"
        )))
    })?;
    let _guard = rt.enter();
    let listener = tokio::net::TcpListener::from_std(l).map_err(Error::Io)?;
    let shared = Arc::new(RwLock::new(target));
    let current = shared.clone();
    let task = rt.spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let target = *current.read().unwrap_or_else(|p| p.into_inner());
            tokio::spawn(async move {
                match tokio::net::TcpStream::connect(target).await {
                    Ok(mut out) => {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                    Err(e) => tracing::debug!(%target, "proxy connect: {e}"),
                }
            });
        }
    });
    Ok(ProxyHandle {
        task,
        target: shared,
    })
}
