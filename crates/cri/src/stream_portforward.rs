//! `PortForward` (`crictl port-forward`): the URL of the streaming server, and the
//! forwarding it does once the client has connected. Per forwarded connection the client
//! opens two streams with the same `requestid` and `port` headers: `error` (where a failure
//! is written) and `data`, which we join to a TCP connection to that port on the pod's
//! loopback, made inside the pod's network namespace. (Over WebSocket the pairs are the
//! request's ports, made up front by `stream_ws`.)

use crate::spdy::{header, Incoming};
use crate::stream_server::Conn;
use crate::stream_wire::{Outgoing, Wire};
use crate::{pb, Cri, Error, Result};
use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

impl Cri {
    pub(crate) async fn port_forward(
        &self,
        r: pb::PortForwardRequest,
    ) -> Result<pb::PortForwardResponse> {
        let pod = self.pods.get(&r.pod_sandbox_id)?;
        if pod.state() != pb::PodSandboxState::SandboxReady {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let url = self.stream_url(crate::stream_server::Request::PortForward(r))?;
        Ok(pb::PortForwardResponse { url })
    }

    pub(crate) async fn stream_port_forward(
        self: Arc<Self>,
        r: pb::PortForwardRequest,
        mut conn: Conn,
    ) {
        let pod = match self.pods.get(&r.pod_sandbox_id) {
            Ok(p) => p,
            Err(_) => {
                conn.close().await;
                return;
            }
        };
        // the pod's namespace, held by its pause process (none: the node's own)
        let netns =
            (!pod.host_network()).then(|| PathBuf::from(format!("/proc/{}/ns/net", pod.pid)));
        let mut errors: HashMap<String, Outgoing> = HashMap::new();
        let mut tasks = Vec::new();
        let mut streams = std::mem::replace(&mut conn.streams, tokio::sync::mpsc::channel(1).1);
        let mut client_left = false;
        loop {
            let s: Incoming = tokio::select! {
                s = streams.recv() => match s {
                    Some(s) => s,
                    None => break,
                },
                _ = conn.client_gone() => {
                    client_left = true;
                    break;
                }
            };
            let request = header(&s.headers, "requestid").unwrap_or("").to_string();
            match s.kind() {
                "error" => {
                    errors.insert(request, Outgoing::new(s.id, conn.w.clone()));
                }
                "data" => {
                    let port = header(&s.headers, "port").and_then(|p| p.parse::<u16>().ok());
                    let err = errors.remove(&request);
                    let out = Outgoing::new(s.id, conn.w.clone());
                    let (netns, pod_id) = (netns.clone(), pod.id.clone());
                    tasks.push(tokio::spawn(forward(s, out, err, port, netns, pod_id)));
                }
                other => tracing::debug!(kind = other, "port-forward: unknown stream type"),
            }
        }
        // a WebSocket's forwards are fixed at its start: it ends once they all have, as
        // kubelet's (a SPDY client's streams end only when the client goes)
        if !client_left && matches!(conn.w, Wire::Ws(..)) {
            let all = async {
                for t in tasks.iter_mut() {
                    let _ = t.await;
                }
            };
            tokio::select! {
                _ = all => {}
                _ = conn.client_gone() => {}
            }
        }
        for t in tasks {
            t.abort();
        }
        conn.close().await;
    }
}

/// One forwarded connection: dial, then copy both ways until the pod's side has ended (the
/// client's end only half-closes the connection: a WebSocket client never ends its side).
async fn forward(
    mut data: Incoming,
    mut out: Outgoing,
    mut err: Option<Outgoing>,
    port: Option<u16>,
    netns: Option<PathBuf>,
    pod: String,
) {
    let dialed = match port {
        None => Err(std::io::Error::other(
            "the port header is missing or invalid",
        )),
        Some(port) => tokio::task::spawn_blocking(move || dial(netns, port))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
    };
    let sock = match dialed.and_then(|s| {
        s.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!(
                "error forwarding port {} to pod {pod}: {e}",
                port.unwrap_or(0)
            );
            tracing::debug!("{msg}");
            if let Some(err) = err.as_mut() {
                let _ = err.write(msg.as_bytes()).await;
                let _ = err.close().await;
            }
            let _ = out.close().await;
            return;
        }
    };
    let (mut rd, mut wr) = sock.into_split();
    let inbound = async {
        while let Some(d) = data.data.recv().await {
            if wr.write_all(&d).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        std::future::pending::<()>().await
    };
    let outbound = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = out.close().await;
    };
    tokio::select! {
        _ = inbound => {}
        _ = outbound => {}
    }
    if let Some(err) = err.as_mut() {
        let _ = err.close().await;
    }
}

/// A connection to `port` on the loopback of the namespace (IPv4, then IPv6).
fn dial(netns: Option<PathBuf>, port: u16) -> std::io::Result<TcpStream> {
    let go = move || {
        let t = Duration::from_secs(10);
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), t).or_else(|e| {
            TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), t)
                .map_err(|_| e)
        })
    };
    match netns {
        Some(ns) => berth_util::netns::in_netns(&ns, go),
        None => go(),
    }
}
