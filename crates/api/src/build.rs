//! `POST /build` (the classic builder's API: a tar context in, docker's JSON stream out) and
//! `POST /build/prune`.
//!
//! The body is read as it arrives (a blocking reader over its chunks) by the build, which runs
//! in a blocking task. Errors before the first message are an HTTP status (400 for bad input);
//! later ones end the stream with docker's `errorDetail` line (status 200, as dockerd). When
//! the client goes away the build is cancelled: the running RUN container is killed and
//! removed.

use crate::body::Body;
use crate::query::Query;
use crate::{error_response, json_response, message};
use berth_build::{backend::EngineBackend, stream, BuildOptions, Error as BuildError};
use berth_engine::{Engine, Error};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Lines from the build thread to the response.
struct ChannelOutput(mpsc::Sender<Vec<u8>>);

impl stream::Output for ChannelOutput {
    fn send(&mut self, line: Vec<u8>) -> bool {
        self.0.blocking_send(line).is_ok()
    }
}

fn build_error_response(e: BuildError) -> Response<Body> {
    match e {
        BuildError::User(m) => message(StatusCode::BAD_REQUEST, &m),
        BuildError::NotFound(m) => message(StatusCode::NOT_FOUND, &m),
        BuildError::Unauthorized(m) => message(StatusCode::UNAUTHORIZED, &m),
        e => message(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn error_line(e: &BuildError) -> Vec<u8> {
    match e {
        BuildError::Run { message, code } => stream::error(message, *code),
        e => stream::error(&e.to_string(), 0),
    }
}

pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    match segs {
        ["build"] => build(engine, req, q).await,
        ["build", "prune"] => prune(engine).await,
        _ => crate::not_found(),
    }
}

async fn build(engine: Arc<Engine>, req: Request<Incoming>, q: &Query) -> Response<Body> {
    let mut opts = match BuildOptions::from_query(q.pairs()) {
        Ok(o) => o,
        Err(e) => return message(StatusCode::BAD_REQUEST, &e.0),
    };
    if let Some(h) = req
        .headers()
        .get("X-Registry-Config")
        .and_then(|h| h.to_str().ok())
    {
        if let Err(e) = opts.set_registry_config(h) {
            return message(StatusCode::BAD_REQUEST, &e.0);
        }
    }
    let reader = crate::images::body_reader(req);
    let (ltx, mut lrx) = mpsc::channel::<Vec<u8>>(64);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let backend = EngineBackend {
        engine: engine.clone(),
        rt: tokio::runtime::Handle::current(),
        cancel: cancel_rx,
    };
    let scratch = match engine.build_scratch_dir() {
        Ok(d) => d,
        Err(e) => return error_response(e),
    };
    let cache = berth_build::cache_for(&engine.config().data_root);
    let task = tokio::task::spawn_blocking(move || {
        let mut out = ChannelOutput(ltx);
        let r = berth_build::build(&backend, &cache, &opts, reader, &scratch, &mut out);
        if let Err(e) = &r {
            tracing::info!(error = %e, "build failed");
        }
        r
    });
    let Some(first) = lrx.recv().await else {
        return match task.await {
            Ok(Ok(_)) => {
                let mut r = Response::new(crate::body::full(Bytes::new()));
                r.headers_mut()
                    .insert("Content-Type", "application/json".parse().expect("static"));
                crate::with_headers(r)
            }
            Ok(Err(e)) => build_error_response(e),
            Err(e) => error_response(Error::Internal(e.to_string())),
        };
    };
    let (btx, body) = crate::body::channel();
    tokio::spawn(async move {
        let mut open = btx.send(Bytes::from(first)).await.is_ok();
        while open {
            tokio::select! {
                l = lrx.recv() => match l {
                    Some(l) => open = btx.send(Bytes::from(l)).await.is_ok(),
                    None => break,
                },
                _ = btx.closed() => open = false,
            }
        }
        if !open {
            // the client went away: stop the build (its RUN container is killed)
            let _ = cancel_tx.send(true);
            drop(lrx);
        }
        let res = task
            .await
            .unwrap_or_else(|e| Err(BuildError::Internal(e.to_string())));
        if let Err(e) = res {
            if open && !matches!(e, BuildError::Cancelled) {
                let _ = btx.send(Bytes::from(error_line(&e))).await;
            }
        }
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    crate::with_headers(r)
}

/// `POST /build/prune`: the images only the build cache holds (untagged, unused by
/// containers) are deleted with their layers, and the cache forgets them.
async fn prune(engine: Arc<Engine>) -> Response<Body> {
    let eng = engine.clone();
    let res = tokio::task::spawn_blocking(move || {
        let cache = berth_build::cache_for(&eng.config().data_root);
        let mut deleted = Vec::new();
        let mut reclaimed: u64 = 0;
        // newest first: children go before their parents
        let mut imgs: Vec<(String, String)> = cache
            .images()
            .into_iter()
            .filter_map(|id| {
                let img = eng.images().get(&id).ok()?;
                img.repo_tags
                    .is_empty()
                    .then(|| (img.config.created.clone().unwrap_or_default(), id))
            })
            .collect();
        imgs.sort();
        imgs.reverse();
        for (_, id) in imgs {
            let size = eng
                .image_inspect(&id)
                .ok()
                .and_then(|v| v.get("Size").and_then(|s| s.as_u64()))
                .unwrap_or(0);
            let parent_size = eng
                .image_parent(&id)
                .and_then(|p| eng.image_inspect(&p).ok())
                .and_then(|v| v.get("Size").and_then(|s| s.as_u64()))
                .unwrap_or(0);
            if eng.image_remove(&id, false).is_ok() {
                reclaimed += size.saturating_sub(parent_size);
                deleted.push(id);
            }
        }
        cache.retain(|id| eng.images().get(id).is_ok());
        (deleted, reclaimed)
    })
    .await;
    match res {
        Ok((deleted, reclaimed)) => json_response(
            StatusCode::OK,
            &serde_json::json!({"CachesDeleted": if deleted.is_empty() { serde_json::Value::Null } else { serde_json::json!(deleted) }, "SpaceReclaimed": reclaimed}),
        ),
        Err(e) => error_response(Error::Internal(e.to_string())),
    }
}
