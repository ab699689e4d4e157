//! Response bodies: a full buffer, a stream fed from a channel, or JSON lines from work that
//! the body drives itself (the last two chunked on the wire).

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
    Lines(JsonLines),
}

/// Work whose output is a last message (its error) or none.
pub type LinesWork = Pin<Box<dyn Future<Output = Option<Value>> + Send>>;

/// JSON lines (`{…}\r\n`) that `work` sends through a channel. The work runs as the body is
/// polled, in the connection's own task: no task and no thread between the work and the
/// socket. A body dropped early (the client went away) leaves its work to finish in a task
/// of its own, its messages dropped.
pub struct JsonLines {
    head: VecDeque<Value>,
    work: Option<LinesWork>,
    rx: mpsc::Receiver<Value>,
    tail: Option<Value>,
}

impl JsonLines {
    /// `head`: messages already taken from `rx`; `tail`: the work's last message when it
    /// has already finished (`work` is then `None`).
    pub fn new(
        head: VecDeque<Value>,
        work: Option<LinesWork>,
        rx: mpsc::Receiver<Value>,
        tail: Option<Value>,
    ) -> JsonLines {
        JsonLines {
            head,
            work,
            rx,
            tail,
        }
    }

    fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<Value>> {
        if let Some(v) = self.head.pop_front() {
            return Poll::Ready(Some(v));
        }
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(v)) => return Poll::Ready(Some(v)),
                Poll::Ready(None) if self.work.is_none() => return Poll::Ready(self.tail.take()),
                // every sender is gone, or none has a message: the work goes on
                _ => {}
            }
            let Some(work) = self.work.as_mut() else {
                return Poll::Pending;
            };
            match work.as_mut().poll(cx) {
                Poll::Ready(t) => {
                    self.work = None;
                    self.tail = t;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut rx = std::mem::replace(&mut self.rx, mpsc::channel(1).1);
        rt.spawn(async move {
            let drain = async { while rx.recv().await.is_some() {} };
            tokio::join!(work, drain);
        });
    }
}

/// One JSON line as it goes on the wire.
pub fn json_line(v: &Value) -> Bytes {
    let mut d = serde_json::to_vec(v).unwrap_or_default();
    d.extend_from_slice(b"\r\n");
    Bytes::from(d)
}

pub fn full(data: impl Into<Bytes>) -> Body {
    Body::Full(Some(data.into()))
}

/// A streaming body and the sender that feeds it; dropping the sender ends the body.
pub fn channel() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel(16);
    (tx, Body::Stream(rx))
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(data) => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|d| Ok(Frame::data(d)))),
            Body::Lines(l) => l
                .poll_line(cx)
                .map(|o| o.map(|v| Ok(Frame::data(json_line(&v))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(d) if d.as_ref().map(|d| d.is_empty()).unwrap_or(true))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) | Body::Lines(_) => SizeHint::default(),
        }
    }
}
