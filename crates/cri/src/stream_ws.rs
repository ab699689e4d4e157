//! The streaming server's other transport: WebSocket (RFC 6455, by `tokio-tungstenite`), as
//! kubelet serves it to clients that do not speak SPDY. The subprotocol
//! (`Sec-WebSocket-Protocol`) is kubelet's channel protocol: every message's first byte is
//! its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize), or in the `base64.` variants
//! a text message starting with the channel's digit followed by base64. The channels are
//! handed to the same handlers as SPDY streams (`Incoming` / `Outgoing`).
//!
//! Port forwarding over WebSocket is kubelet's fixed scheme: the ports are the CRI request's,
//! two channels per port (2i data, 2i+1 error), each opened by a message carrying the port as
//! a little-endian u16; every port gets one connection, and the WebSocket ends with the last
//! of them. The channels become the same `data`/`error` stream pairs a SPDY client opens.

use crate::spdy::Incoming;
use crate::stream_server::{reply, Conn, Request};
use crate::stream_wire::Wire;
use crate::Cri;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio_tungstenite::tungstenite::{protocol::Role, Message};

/// remotecommand over WebSocket: (subprotocol, base64), the newest first; "" is a client that
/// names none (kubelet takes it as `channel.k8s.io`).
const PROTOCOLS: &[(&str, bool)] = &[
    ("v4.channel.k8s.io", false),
    ("v4.base64.channel.k8s.io", true),
    ("channel.k8s.io", false),
    ("base64.channel.k8s.io", true),
];
/// port forwarding over WebSocket: the same, without the version-less ones but "" (binary)
const PORTFORWARD_PROTOCOLS: &[(&str, bool)] = &[
    ("v4.channel.k8s.io", false),
    ("v4.base64.channel.k8s.io", true),
];
/// The channels of remotecommand, by number.
const CHANNELS: &[&str] = &["stdin", "stdout", "stderr", "error", "resize"];

/// A channel as the stream a SPDY client would have opened: (channel, headers).
fn channel_streams(req: &Request) -> std::result::Result<Vec<(u32, crate::spdy::Headers)>, String> {
    let hdr = |k: &str, v: &str| (k.to_string(), v.to_string());
    let Request::PortForward(r) = req else {
        return Ok(CHANNELS
            .iter()
            .enumerate()
            .map(|(id, kind)| (id as u32, vec![hdr("streamtype", kind)]))
            .collect());
    };
    if r.port.is_empty() {
        return Err(
            "port forwarding over WebSocket needs the ports in the PortForward request".into(),
        );
    }
    let mut out = Vec::new();
    for (i, port) in r.port.iter().enumerate() {
        if !(1..=65535).contains(port) {
            return Err(format!("invalid port {port}"));
        }
        let (request, port) = (i.to_string(), port.to_string());
        // the error stream first: the data stream's handler takes its pair
        for (ch, kind) in [(1, "error"), (0, "data")] {
            let headers = vec![
                hdr("streamtype", kind),
                hdr("requestid", &request),
                hdr("port", &port),
            ];
            out.push((i as u32 * 2 + ch, headers));
        }
    }
    Ok(out)
}

impl Cri {
    pub(crate) async fn stream_ws(
        self: Arc<Self>,
        req: Request,
        mut s: TcpStream,
        key: String,
        offered: Vec<String>,
        rest: Vec<u8>,
    ) -> std::io::Result<()> {
        if key.is_empty() || !rest.is_empty() {
            return reply(&mut s, 400, "bad WebSocket handshake").await;
        }
        let channels = match channel_streams(&req) {
            Ok(c) => c,
            Err(msg) => return reply(&mut s, 400, &msg).await,
        };
        let ours = match req {
            Request::PortForward(_) => PORTFORWARD_PROTOCOLS,
            _ => PROTOCOLS,
        };
        let chosen = if offered.is_empty() {
            Some(("", false))
        } else {
            offered
                .iter()
                .find_map(|o| ours.iter().find(|(p, _)| p == o).copied())
        };
        let Some((protocol, base64)) = chosen else {
            let msg = format!(
                "unable to upgrade: none of the requested protocols {offered:?} is supported"
            );
            return reply(&mut s, 400, &msg).await;
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let mut head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
        );
        if !protocol.is_empty() {
            head.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await?;
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(s, Role::Server, None).await;
        use futures_util::StreamExt;
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(Mutex::new(sink));
        let wire = Wire::Ws(sink, base64);
        let forwarding = matches!(req, Request::PortForward(_));
        if forwarding {
            // the streams are up; then each channel names its port
            let _ = wire.announce(0).await;
            for (id, headers) in &channels {
                if let Some(p) =
                    crate::spdy::header(headers, "port").and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = wire.data(*id, &p.to_le_bytes(), false).await;
                }
            }
        }
        // every channel as a stream the client opened; what comes on a channel goes to it
        let (tx, rx) = mpsc::channel(channels.len());
        let mut senders = std::collections::HashMap::new();
        for (id, headers) in channels {
            let (dtx, drx) = mpsc::channel(64);
            senders.insert(id, dtx);
            let _ = tx
                .send(Incoming {
                    id,
                    headers,
                    data: drx,
                })
                .await;
        }
        // port forwarding's streams are all there is: their end is the connection's
        let keep = (!forwarding).then_some(tx);
        let reader = tokio::spawn(async move {
            let _keep = keep;
            while let Some(Ok(m)) = stream.next().await {
                let (ch, data) = match m {
                    Message::Binary(b) if !b.is_empty() => (b[0], b[1..].to_vec()),
                    Message::Text(t) if !t.is_empty() => {
                        use base64::Engine;
                        let t = t.as_bytes();
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(&t[1..])
                            .unwrap_or_default();
                        (t[0].wrapping_sub(b'0'), data)
                    }
                    Message::Close(_) => break,
                    _ => continue,
                };
                if let Some(tx) = senders.get(&u32::from(ch)) {
                    if !data.is_empty() {
                        let _ = tx.send(data).await;
                    }
                }
            }
        });
        let conn = Conn {
            w: wire,
            streams: rx,
            reader: Some(reader),
            protocol: if protocol.is_empty() {
                "channel.k8s.io"
            } else {
                protocol
            },
        };
        self.run_stream(req, conn).await;
        Ok(())
    }
}
