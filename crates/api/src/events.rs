//! `GET /events`: recent events from `since`, then live ones until `until` (or forever).

use crate::body::{channel, Body};
use crate::containers::parse_unix_time;
use crate::query::Query;
use crate::{error_response, with_headers};
use berth_engine::{Engine, ListOptions};
use bytes::Bytes;
use hyper::Response;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn route(engine: Arc<Engine>, q: &Query) -> Response<Body> {
    let filters = match q
        .get("filters")
        .filter(|f| !f.is_empty())
        .map(ListOptions::parse_filters)
    {
        Some(Err(e)) => return error_response(e),
        Some(Ok(f)) => f,
        None => Default::default(),
    };
    // `since=0` means "from the start", unlike `logs` where 0 means unset
    let since = q
        .get("since")
        .map(|s| parse_unix_time(s).map(nanos).unwrap_or(0));
    let until = q.get("until").and_then(parse_unix_time).map(nanos);
    let (past, mut rx) = engine.events.subscribe();
    let (tx, body) = channel();
    tokio::spawn(async move {
        let line = |ev: &berth_engine::Event| {
            let mut b = serde_json::to_vec(&ev.to_json()).unwrap_or_default();
            b.push(b'\n');
            Bytes::from(b)
        };
        let in_window = |t: u128| until.map(|u| t <= u).unwrap_or(true);
        if let Some(s) = since {
            for ev in past
                .iter()
                .filter(|e| e.time >= s && in_window(e.time) && e.matches(&filters))
            {
                if tx.send(line(ev)).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let now = nanos(SystemTime::now());
            tokio::time::Instant::now()
                + std::time::Duration::from_nanos(u.saturating_sub(now) as u64)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok(),
                    None => Some(rx.recv().await),
                }
            };
            tokio::select! {
                ev = next => match ev {
                    None => return, // until reached
                    Some(Ok(ev)) => {
                        if in_window(ev.time) && ev.matches(&filters) && tx.send(line(&ev)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Some(Err(_)) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    with_headers(r)
}
