//! The streaming server's other transport: WebSocket (RFC 6455, by `tokio-tungstenite`), as
//! kubelet serves it to clients that do not speak SPDY. The subprotocol
//! (`Sec-WebSocket-Protocol`) is kubelet's channel protocol: every message's first byte is
//! its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize), or in the `base64.` variants
//! a text message starting with the channel's digit followed by base64. The channels are
//! handed to the same handlers as SPDY streams (`Incoming` / `Outgoing`). Port forwarding
//! over WebSocket is not served (kubelet's one-connection-per-port scheme): SPDY only.

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
/// The channels, by number.
const CHANNELS: &[&str] = &["stdin", "stdout", "stderr", "error", "resize"];

impl Cri {
    pub(crate) async fn stream_ws(
        self: Arc<Self>,
        req: Request,
        mut s: TcpStream,
        key: String,
        offered: Vec<String>,
        rest: Vec<u8>,
    ) -> std::io::Result<()> {
        if matches!(req, Request::PortForward(_)) {
            return reply(&mut s, 501, "port forwarding is served over SPDY only").await;
        }
        if key.is_empty() || !rest.is_empty() {
            return reply(&mut s, 400, "bad WebSocket handshake").await;
        }
        let chosen = if offered.is_empty() {
            Some(("", false))
        } else {
            offered
                .iter()
                .find_map(|o| PROTOCOLS.iter().find(|(p, _)| p == o).copied())
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
        // every channel as a stream the client opened; what comes on a channel goes to it
        let (tx, rx) = mpsc::channel(CHANNELS.len());
        let mut senders = Vec::new();
        for (id, kind) in CHANNELS.iter().enumerate() {
            let (dtx, drx) = mpsc::channel(64);
            senders.push(dtx);
            let _ = tx
                .send(Incoming {
                    id: id as u32,
                    headers: vec![("streamtype".into(), kind.to_string())],
                    data: drx,
                })
                .await;
        }
        let reader = tokio::spawn(async move {
            let _keep = tx;
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
                if let Some(tx) = senders.get(ch as usize) {
                    if !data.is_empty() {
                        let _ = tx.send(data).await;
                    }
                }
            }
        });
        let conn = Conn {
            w: Wire::Ws(Arc::new(Mutex::new(sink)), base64),
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
