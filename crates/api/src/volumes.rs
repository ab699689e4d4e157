//! `/volumes/...` routes.

use crate::body::Body;
use crate::containers::read_json;
use crate::query::{filters, Query};
use crate::{empty, error_response, json_response, not_found};
use berth_engine::{Engine, Error};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    let r: Result<Response<Body>, Error> = match (method.as_str(), segs) {
        ("POST", ["volumes", "create"]) => {
            let b: CreateBody = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let name = (!b.name.is_empty()).then_some(b.name.as_str());
            engine
                .volume_create(name, Some(&b.driver), b.labels.unwrap_or_default(), b.driver_opts.unwrap_or_default())
                .map(|v| json_response(StatusCode::CREATED, &v))
        }
        ("GET", ["volumes"]) => filters(q)
            .and_then(|f| {
                crate::query::known_filters(&f, crate::query::VOLUME_FILTERS)?;
                engine.volume_list(&f, false)
            })
            .map(|list| json_response(StatusCode::OK, &json!({"Volumes": list, "Warnings": null}))),
        ("POST", ["volumes", "prune"]) => filters(q).and_then(|f| engine.volume_prune(&f)).map(|(names, space)| {
            json_response(
                StatusCode::OK,
                &json!({"VolumesDeleted": if names.is_empty() { serde_json::Value::Null } else { json!(names) }, "SpaceReclaimed": space}),
            )
        }),
        ("GET", ["volumes", ""]) => Err(Error::NotFound("get: no such volume".into())),
        ("GET", ["volumes", name]) => engine.volume_inspect(name).map(|v| json_response(StatusCode::OK, &v)),
        ("DELETE", ["volumes", name]) => engine.volume_remove(name, q.flag("force")).map(|_| empty(StatusCode::NO_CONTENT)),
        ("GET", ["volumes", rest @ ..]) if rest.len() > 1 => Err(Error::NotFound(format!(
            "get {}: no such volume",
            rest.join("/")
        ))),
        _ => return not_found(),
    };
    r.unwrap_or_else(error_response)
}
