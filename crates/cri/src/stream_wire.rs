//! What the streaming handlers write through, whichever transport the client chose: a SPDY
//! stream (DATA frames, FIN to half-close) or a WebSocket channel (a message whose first byte
//! — or, in the base64 protocols, first character — names the channel).

use crate::spdy;
use std::io;
use std::sync::Arc;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

pub(crate) type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    tokio_tungstenite::tungstenite::Message,
>;

/// A connection's writing side.
#[derive(Clone)]
pub(crate) enum Wire {
    Spdy(spdy::SharedWriter<OwnedWriteHalf>),
    /// the sink, and whether the protocol is a base64 one (text messages)
    Ws(Arc<Mutex<WsSink>>, bool),
}

impl Wire {
    /// `data` on stream/channel `id`; `fin` half-closes a SPDY stream (a WebSocket channel
    /// has no half-close: it ends with the connection).
    pub async fn data(&self, id: u32, data: &[u8], fin: bool) -> io::Result<()> {
        match self {
            Wire::Spdy(w) => w.lock().await.data(id, data, fin).await,
            Wire::Ws(w, base64) => {
                if fin && data.is_empty() {
                    return Ok(());
                }
                self.ws_message(w, id, data, *base64).await
            }
        }
    }

    /// A message even when `data` is empty (WebSocket: kubelet's "the connection is up").
    pub async fn announce(&self, id: u32) -> io::Result<()> {
        match self {
            Wire::Spdy(_) => Ok(()),
            Wire::Ws(w, base64) => self.ws_message(w, id, &[], *base64).await,
        }
    }

    async fn ws_message(
        &self,
        w: &Mutex<WsSink>,
        id: u32,
        data: &[u8],
        base64: bool,
    ) -> io::Result<()> {
        use base64::Engine;
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let msg = if base64 {
            let mut t = String::with_capacity(1 + data.len() * 4 / 3 + 4);
            t.push(char::from(b'0' + (id as u8 % 10)));
            t.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            Message::Text(t.into())
        } else {
            let mut b = Vec::with_capacity(1 + data.len());
            b.push(id as u8);
            b.extend_from_slice(data);
            Message::Binary(b.into())
        };
        w.lock().await.send(msg).await.map_err(io::Error::other)
    }

    /// Ends the connection: GOAWAY and shutdown, or a WebSocket close.
    pub async fn finish(&self) {
        match self {
            Wire::Spdy(w) => {
                let mut w = w.lock().await;
                let _ = w.goaway(0).await;
                let _ = w.shutdown().await;
            }
            Wire::Ws(w, _) => {
                use futures_util::SinkExt;
                let mut w = w.lock().await;
                let _ = w
                    .send(tokio_tungstenite::tungstenite::Message::Close(None))
                    .await;
                let _ = w.close().await;
            }
        }
    }
}

/// A stream (or channel) we write to.
pub(crate) struct Outgoing {
    pub id: u32,
    w: Wire,
    closed: bool,
}

impl Outgoing {
    pub fn new(id: u32, w: Wire) -> Self {
        Outgoing {
            id,
            w,
            closed: false,
        }
    }
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed || data.is_empty() {
            return Ok(());
        }
        self.w.data(self.id, data, false).await
    }
    /// Half-closes the stream; once only.
    pub async fn close(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.w.data(self.id, &[], true).await
    }
}
