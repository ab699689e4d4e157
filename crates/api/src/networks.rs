//! `/networks/...` routes.

use crate::body::Body;
use crate::containers::read_json;
use crate::query::{filters, Query};
use crate::{empty, error_response, json_response, not_found};
use berth_engine::{Engine, Error};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<Value>,
    force: bool,
}

pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    let r: Result<Response<Body>, Error> = match (method.as_str(), segs) {
        // dockerd's router has `/networks/` as a second spelling of the list
        ("GET", ["networks"]) | ("GET", ["networks", ""]) => filters(q)
            .and_then(|f| engine.network_list(&f))
            .map(|v| json_response(StatusCode::OK, &v)),
        ("POST", ["networks", "create"]) => {
            let b: berth_engine::NetworkCreate = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            engine
                .network_create_any(b)
                .await
                .map(|v| json_response(StatusCode::CREATED, &v))
        }
        ("POST", ["networks", "prune"]) => filters(q)
            .and_then(|f| engine.network_prune(&f))
            .map(|names| {
                json_response(
                    StatusCode::OK,
                    &json!({"NetworksDeleted": if names.is_empty() { Value::Null } else { json!(names) }}),
                )
            }),
        ("GET", ["networks", id]) => engine
            .network_inspect(id)
            .map(|v| json_response(StatusCode::OK, &v)),
        ("DELETE", ["networks", id]) => engine
            .network_remove_any(id)
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["networks", id, action @ ("connect" | "disconnect")]) => {
            let b: ConnectBody = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            if *action == "connect" {
                engine
                    .network_connect(id, &b.container, &b.endpoint_config.unwrap_or(Value::Null))
                    .await
            } else {
                engine.network_disconnect(id, &b.container, b.force).await
            }
            .map(|_| empty(StatusCode::OK))
        }
        // `/networks/{id:.*}`: a name with a slash (or a trailing one) is looked up as such
        ("GET", ["networks", rest @ ..]) if rest.len() > 1 => Err(Error::NotFound(format!(
            "network {} not found",
            rest.join("/")
        ))),
        _ => return not_found(),
    };
    r.unwrap_or_else(error_response)
}
