//! `/exec/{id}/...` routes.

use crate::body::Body;
use crate::query::Query;
use crate::{empty, error_response, json_response, not_found};
use berth_engine::{Engine, Error};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    /// frames or not for the client (the process's own tty is the create's)
    tty: bool,
}

pub async fn route(
    engine: Arc<Engine>,
    mut req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    let r: Result<Response<Body>, Error> = match (method.as_str(), segs) {
        ("GET", ["exec", id, "json"]) => engine
            .exec_inspect(id)
            .map(|v| json_response(StatusCode::OK, &v)),
        ("POST", ["exec", id, "resize"]) => {
            let (h, w) = match crate::containers::tty_size(q) {
                Ok(hw) => hw,
                Err(m) => return crate::message(StatusCode::BAD_REQUEST, &m),
            };
            engine.exec_resize(id, h, w).await.map(|_| {
                let mut r = empty(StatusCode::OK);
                r.headers_mut()
                    .insert("Content-Length", "0".parse().expect("static"));
                r
            })
        }
        ("POST", ["exec", id, "start"]) => {
            let upgrade = req.headers().get("upgrade").is_some();
            let on_upgrade = hyper::upgrade::on(&mut req);
            let body: StartBody = match crate::read_small_body(req).await {
                Ok(b) => {
                    match crate::containers::decode_json(&b, "got EOF while reading request body") {
                        Ok(b) => b.unwrap_or_default(),
                        Err(m) => return crate::message(StatusCode::BAD_REQUEST, &m),
                    }
                }
                Err(r) => return r,
            };
            let id = id.to_string();
            if let Err(e) = engine.exec_check(&id) {
                return error_response(e);
            }
            if body.detach || !upgrade {
                if body.detach {
                    engine.exec_start(&id, None, body.tty).await.map(|_| {
                        let mut r = empty(StatusCode::OK);
                        r.headers_mut()
                            .insert("Content-Length", "0".parse().expect("static"));
                        r
                    })
                } else {
                    Err(Error::InvalidParameter(
                        "exec start without a detach needs a connection upgrade".into(),
                    ))
                }
            } else {
                let engine = engine.clone();
                let tty = body.tty;
                Ok(crate::hijack(on_upgrade, true, move |io| async move {
                    if let Err(e) = engine.exec_start(&id, Some(io), tty).await {
                        tracing::warn!("exec {id}: {e}");
                    }
                }))
            }
        }
        _ => return not_found(),
    };
    r.unwrap_or_else(error_response)
}
