//! The swarm family (`/swarm`, `/services`, `/tasks`, `/nodes`, `/secrets`, `/configs`) as a
//! dockerd outside a swarm answers it: 503 `This node is not a swarm manager…` (`/swarm/leave`:
//! `This node is not part of a swarm`), after the same checks of body, version and filters
//! dockerd makes first (400s). SDK clients probe these at start and go on after a 503; a 404
//! breaks them. berth has no swarm mode: `init`/`join` with a valid body are 503 too.

use crate::body::Body;
use crate::containers::read_json;
use crate::query::{filters, Query};
use crate::{error_response, message, not_found};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

pub(crate) const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
pub(crate) const NOT_IN_SWARM: &str = "This node is not part of a swarm";

fn unavailable(msg: &str) -> Response<Body> {
    message(StatusCode::SERVICE_UNAVAILABLE, msg)
}

/// dockerd's check of the `version` query of an update (`kind`: swarm, service, node…).
fn version_error(kind: &str, q: &Query) -> Option<Response<Body>> {
    let v = q.get("version").unwrap_or("");
    if v.parse::<u64>().is_ok() {
        return None;
    }
    let msg = match kind {
        // secrets and configs say less
        "secret" | "config" => format!("invalid {kind} version"),
        _ => format!(
            "invalid {kind} version '{v}': strconv.ParseUint: parsing \"{v}\": invalid syntax"
        ),
    };
    Some(message(StatusCode::BAD_REQUEST, &msg))
}

pub async fn route(
    req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    let kind = match segs[0] {
        "services" => "service",
        "nodes" => "node",
        "secrets" => "secret",
        "configs" => "config",
        "tasks" => "task",
        _ => "swarm",
    };
    match (method.as_str(), segs) {
        ("GET", ["swarm"]) | ("GET", ["swarm", "unlockkey"]) => unavailable(NOT_MANAGER),
        ("POST", ["swarm", "leave"]) => unavailable(NOT_IN_SWARM),
        ("POST", ["swarm", verb @ ("init" | "join")]) => {
            let b: serde_json::Map<String, Value> = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let addr = b.get("ListenAddr").and_then(Value::as_str).unwrap_or("");
            if addr.is_empty() {
                return message(
                    StatusCode::BAD_REQUEST,
                    "invalid ListenAddr \"\": invalid empty address",
                );
            }
            let remotes = b.get("RemoteAddrs").and_then(Value::as_array);
            if *verb == "join" && remotes.is_none_or(|r| r.is_empty()) {
                return message(
                    StatusCode::BAD_REQUEST,
                    "at least 1 RemoteAddr is required to join",
                );
            }
            unavailable(&format!("{NOT_IN_SWARM}: berth does not run swarm mode"))
        }
        ("POST", ["swarm", "unlock"])
        | ("POST", ["services" | "secrets" | "configs", "create"]) => {
            match read_json::<serde_json::Map<String, Value>>(req).await {
                Ok(_) => unavailable(NOT_MANAGER),
                Err(r) => r,
            }
        }
        ("POST", ["swarm", "update"])
        | ("POST", ["services" | "nodes" | "secrets" | "configs", _, "update"]) => {
            if let Err(r) = read_json::<serde_json::Map<String, Value>>(req).await {
                return r;
            }
            version_error(kind, q).unwrap_or_else(|| unavailable(NOT_MANAGER))
        }
        ("GET", ["services" | "tasks", _, "logs"]) => {
            if !q.flag("stdout") && !q.flag("stderr") {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Bad parameters: you must choose at least one stream",
                );
            }
            unavailable(NOT_MANAGER)
        }
        ("GET", [_]) => match filters(q) {
            Ok(_) => unavailable(NOT_MANAGER),
            Err(e) => error_response(e),
        },
        ("GET", ["services" | "tasks" | "nodes" | "secrets" | "configs", id])
        | ("DELETE", ["services" | "nodes" | "secrets" | "configs", id])
            if !id.is_empty() =>
        {
            unavailable(NOT_MANAGER)
        }
        _ => not_found(),
    }
}
