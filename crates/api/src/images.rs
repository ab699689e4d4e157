//! `/images/...` routes. Image names come unescaped in the path (`/images/localhost:5000/a/b:c/json`).

use crate::body::Body;
use crate::query::Query;
use crate::{error_response, json_response, message, not_found};
use berth_engine::{Engine, Error};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A blocking `Read` over the request body's chunks (the engine's reader of async chunks).
pub(crate) type ChannelReader = berth_engine::BytesReader;

/// The request body as a blocking reader (for the archive parsers, run in blocking tasks).
pub(crate) fn body_reader(req: Request<Incoming>) -> ChannelReader {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let mut body = req.into_body();
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(std::io::Error::other(e.to_string())),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    ChannelReader::new(rx)
}

fn save(engine: &Arc<Engine>, names: &[String]) -> Result<Response<Body>, Error> {
    if names.is_empty() {
        return Err(Error::InvalidParameter("no images given".into()));
    }
    engine.save(names).map(|rx| {
        let mut r = Response::new(Body::Stream(rx));
        r.headers_mut()
            .insert("Content-Type", "application/x-tar".parse().expect("static"));
        crate::with_headers(r)
    })
}

fn json_lines(lines: &[serde_json::Value]) -> Response<Body> {
    let mut data = Vec::new();
    for l in lines {
        data.extend_from_slice(&crate::body::json_line(l));
    }
    let mut r = Response::new(crate::body::full(data));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    crate::with_headers(r)
}

/// The `X-Registry-Auth` header, if any.
fn registry_auth(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get("X-Registry-Auth")
        .and_then(|h| h.to_str().ok())
}

/// Runs a pull or push and answers docker's JSON progress stream. An error before the first
/// message is an HTTP error status (as dockerd answers a missing manifest with 404); a later
/// one ends the stream with `{"errorDetail":{"message":…},"error":…}`. The operation goes on
/// when the client goes away.
///
/// The work runs in this request's task until it first waits with a message out; the body
/// then drives it on ([`crate::body::JsonLines`]). Work that never waits (a re-pull of an
/// image that is up to date, after the registry's answer) is answered in one buffer.
async fn progress_response<F, Fut>(f: F) -> Response<Body>
where
    F: FnOnce(berth_engine::Progress) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>> + Send + 'static,
{
    let (vtx, mut vrx) = mpsc::channel::<serde_json::Value>(64);
    let mut work = Box::pin(f(berth_engine::Progress::new(vtx)));
    let mut result = None;
    let first = loop {
        tokio::select! {
            biased;
            r = &mut work, if result.is_none() => result = Some(r),
            m = vrx.recv() => break m,
        }
    };
    let Some(first) = first else {
        // finished without a message
        return match result {
            Some(Ok(())) | None => json_lines(&[]),
            Some(Err(e)) => error_response(e),
        };
    };
    let error_line = |r: Result<(), Error>| {
        r.err().map(|e| {
            tracing::warn!(error = %e, "registry operation failed");
            let m = e.to_string();
            json!({"errorDetail": {"message": m}, "error": m})
        })
    };
    let mut head = std::collections::VecDeque::from([first]);
    let body = match result {
        Some(r) => {
            loop {
                match vrx.try_recv() {
                    Ok(m) => head.push_back(m),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        head.extend(error_line(r));
                        return json_lines(head.make_contiguous());
                    }
                }
            }
            // a task of the work still holds a sender
            crate::body::JsonLines::new(head, None, vrx, error_line(r))
        }
        None => {
            let work: crate::body::LinesWork = Box::pin(async move { error_line(work.await) });
            crate::body::JsonLines::new(head, Some(work), vrx, None)
        }
    };
    let mut r = Response::new(Body::Lines(body));
    r.headers_mut()
        .insert("Content-Type", "application/json".parse().expect("static"));
    crate::with_headers(r)
}

pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    path: &str,
    q: &Query,
) -> Response<Body> {
    let rest = path.trim_start_matches("/images/");
    let r: Result<Response<Body>, Error> = match (method.as_str(), rest) {
        ("GET", "json") => (|| {
            let filters = match q.get("filters").filter(|f| !f.is_empty()) {
                Some(f) => berth_engine::ListOptions::parse_filters(f)?,
                None => Default::default(),
            };
            crate::query::known_filters(&filters, crate::query::IMAGE_FILTERS)?;
            engine
                .image_list(&filters, q.flag("all"))
                .map(|v| json_response(StatusCode::OK, &v))
        })(),
        ("POST", "prune") => (|| {
            let filters = match q.get("filters").filter(|f| !f.is_empty()) {
                Some(f) => berth_engine::ListOptions::parse_filters(f)?,
                None => Default::default(),
            };
            let all = filters
                .get("dangling")
                .map(|v| v.iter().any(|x| x == "false" || x == "0"))
                .unwrap_or(false);
            engine.image_prune(all).map(|(deleted, space)| {
                json_response(
                    StatusCode::OK,
                    &json!({"ImagesDeleted": if deleted.is_empty() { serde_json::Value::Null } else { json!(deleted) }, "SpaceReclaimed": space}),
                )
            })
        })(),
        ("POST", name) if name.ends_with("/tag") => {
            let name = &name[..name.len() - "/tag".len()];
            engine
                .image_tag(name, q.get("repo").unwrap_or(""), q.get("tag"))
                .map(|_| crate::empty(StatusCode::CREATED))
        }
        ("GET", name) if name.ends_with("/history") => {
            let name = &name[..name.len() - "/history".len()];
            engine
                .image_history(name)
                .map(|v| json_response(StatusCode::OK, &v))
        }
        ("DELETE", name) if !name.is_empty() => engine
            .image_remove(name, q.flag("force"))
            .map(|v| json_response(StatusCode::OK, &serde_json::Value::Array(v))),
        ("POST", "load") => {
            let reader = body_reader(req);
            let eng = engine.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let r = eng.load_image(&mut reader);
                // Drain what the client still sends so it sees our answer, not a reset.
                let mut sink = [0u8; 65536];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                r
            })
            .await
            .unwrap_or_else(|e| Err(Error::Internal(e.to_string())))
            .map(|lines| {
                let v: Vec<_> = lines
                    .iter()
                    .map(|l| json!({"stream": format!("{l}\n")}))
                    .collect();
                json_lines(&v)
            })
            // dockerd answers 200 and reports a bad archive in the stream
            .or_else(|e| {
                let m = match e {
                    Error::InvalidParameter(m)
                    | Error::Internal(m)
                    | Error::NotFound(m)
                    | Error::Conflict(m) => m,
                    other => return Err(other),
                };
                Ok(json_lines(&[
                    json!({"errorDetail": {"message": m}, "error": m}),
                ]))
            })
        }
        ("POST", "create") if q.get("fromSrc").is_some() => {
            let src = q.get("fromSrc").unwrap_or("").to_string();
            if src != "-" {
                return message(StatusCode::BAD_REQUEST, &format!("importing from {src} is not supported: send the tar in the request body (fromSrc=-)"));
            }
            let reference = match (
                q.get("repo").filter(|r| !r.is_empty()),
                q.get("tag").filter(|t| !t.is_empty()),
            ) {
                (Some(r), Some(t)) => Some(format!("{r}:{t}")),
                (Some(r), None) => Some(r.to_string()),
                _ => None,
            };
            let msg = q.get("message").unwrap_or("").to_string();
            let changes = q.all("changes");
            let reader = body_reader(req);
            let eng = engine.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let r = eng.import(&mut reader, reference.as_deref(), &msg, &changes);
                let mut sink = [0u8; 65536];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                r
            })
            .await
            .unwrap_or_else(|e| Err(Error::Internal(e.to_string())))
            .map(|id| json_lines(&[json!({"status": id})]))
        }
        ("POST", "create") => {
            let creds = match Engine::registry_credentials(registry_auth(&req)) {
                Ok(c) => c,
                Err(e) => return error_response(e),
            };
            let pr = berth_engine::PullRequest {
                image: q.get("fromImage").unwrap_or("").to_string(),
                tag: q.get("tag").unwrap_or("").to_string(),
                platform: q.get("platform").map(String::from),
                creds,
            };
            if pr.image.is_empty() {
                return message(StatusCode::BAD_REQUEST, "invalid reference format");
            }
            let eng = engine.clone();
            return progress_response(move |p| async move { eng.image_pull(pr, &p).await }).await;
        }
        ("POST", name) if name.ends_with("/push") => {
            let creds = match Engine::registry_credentials(registry_auth(&req)) {
                Ok(c) => c,
                Err(e) => return error_response(e),
            };
            let pr = berth_engine::PushRequest {
                name: name[..name.len() - "/push".len()].to_string(),
                tag: q.get("tag").unwrap_or("").to_string(),
                creds,
            };
            let eng = engine.clone();
            return progress_response(move |p| async move { eng.image_push(pr, &p).await }).await;
        }
        ("GET", "search") => {
            let creds = match Engine::registry_credentials(registry_auth(&req)) {
                Ok(c) => c,
                Err(e) => return error_response(e),
            };
            let filters = match q.get("filters").filter(|f| !f.is_empty()) {
                Some(f) => match berth_engine::ListOptions::parse_filters(f) {
                    Ok(f) => f,
                    Err(e) => return error_response(e),
                },
                None => Default::default(),
            };
            engine
                .image_search(
                    q.get("term").unwrap_or(""),
                    q.get("limit"),
                    &filters,
                    &creds,
                )
                .await
                .map(|v| json_response(StatusCode::OK, &json!(v)))
        }
        ("GET", "get") => save(&engine, &q.all("names")),
        ("GET", name) if name.ends_with("/get") => {
            save(&engine, &[name[..name.len() - "/get".len()].to_string()])
        }
        ("GET", name) if name.ends_with("/json") => {
            let name = &name[..name.len() - "/json".len()];
            engine
                .image_inspect(name)
                .map(|v| json_response(StatusCode::OK, &v))
        }
        _ => return not_found(),
    };
    r.unwrap_or_else(error_response)
}
