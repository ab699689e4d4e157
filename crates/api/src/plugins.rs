//! The plugin API as a dockerd with no plugins installed answers it: an empty list, no
//! privileges, `plugin "x" not found` (404) for every name, after the same checks of query and
//! body dockerd makes first. berth runs no managed plugins: pull and create are refused (500,
//! as dockerd's failures there are).

use crate::body::Body;
use crate::containers::decode_json;
use crate::query::{filters, Query};
use crate::{error_response, json_response, message, not_found};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

const EOF: &str = "got EOF while reading request body";

fn plugin_not_found(name: &str) -> Response<Body> {
    message(
        StatusCode::NOT_FOUND,
        &format!("plugin \"{name}\" not found"),
    )
}

/// A plugin reference as dockerd names it in `upgrade`'s error: with `:latest` when untagged.
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The privileges body of pull/upgrade: `Some(500)` when it is not one (dockerd's status).
fn bad_privileges(data: &Bytes) -> Option<Response<Body>> {
    let msg = if data.iter().all(u8::is_ascii_whitespace) {
        "EOF".to_string()
    } else {
        match decode_json::<Value>(data, EOF) {
            Ok(Some(Value::Array(_))) | Ok(None) => return None,
            Ok(Some(_)) => {
                "json: cannot unmarshal object into Go value of type types.PluginPrivileges".into()
            }
            Err(m) => m,
        }
    };
    Some(message(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("failed to parse privileges: {msg}"),
    ))
}

pub async fn route(
    req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    // names may hold slashes (`vieux/sshfs:latest`): the verb is the last segment
    let name_before_verb = segs
        .get(1..segs.len().saturating_sub(1))
        .map(|s| s.join("/"))
        .unwrap_or_default();
    let no_remote = || {
        q.get("remote").unwrap_or("").is_empty().then(|| {
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "invalid reference format",
            )
        })
    };
    match (method.as_str(), segs) {
        ("GET", ["plugins"]) => match filters(q) {
            Ok(_) => json_response(StatusCode::OK, &json!([])),
            Err(e) => error_response(e),
        },
        ("GET", ["plugins", "privileges"]) => {
            no_remote().unwrap_or_else(|| json_response(StatusCode::OK, &json!([])))
        }
        ("POST", ["plugins", "pull"]) => {
            let data = match crate::read_small_body(req).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            if let Some(r) = bad_privileges(&data) {
                return r;
            }
            if let Some(r) = no_remote() {
                return r;
            }
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "berth does not run managed plugins",
            )
        }
        ("POST", ["plugins", "create"]) => {
            let data = match crate::read_small_body(req).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            let msg = if data.is_empty() {
                "no rootfs found: EOF"
            } else {
                "berth does not run managed plugins"
            };
            message(StatusCode::INTERNAL_SERVER_ERROR, msg)
        }
        ("GET", ["plugins", .., "json"]) if segs.len() > 2 => plugin_not_found(&name_before_verb),
        ("POST", ["plugins", .., "enable"]) if segs.len() > 2 => {
            let t = q.get("timeout").unwrap_or("");
            if t.parse::<i32>().is_err() {
                return message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("strconv.Atoi: parsing \"{t}\": invalid syntax"),
                );
            }
            plugin_not_found(&name_before_verb)
        }
        ("POST", ["plugins", .., "disable" | "push"]) if segs.len() > 2 => {
            plugin_not_found(&name_before_verb)
        }
        ("POST", ["plugins", .., "set"]) if segs.len() > 2 => {
            let data = match crate::read_small_body(req).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            match decode_json::<Value>(&data, EOF) {
                Ok(Some(Value::Array(_))) | Ok(None) => plugin_not_found(&name_before_verb),
                Ok(Some(_)) => message(
                    StatusCode::BAD_REQUEST,
                    "json: cannot unmarshal object into Go value of type []string",
                ),
                Err(m) => message(StatusCode::BAD_REQUEST, &m),
            }
        }
        ("POST", ["plugins", .., "upgrade"]) if segs.len() > 2 => {
            let data = match crate::read_small_body(req).await {
                Ok(d) => d,
                Err(r) => return r,
            };
            if let Some(r) = bad_privileges(&data) {
                return r;
            }
            plugin_not_found(&with_tag(&name_before_verb))
        }
        ("DELETE", ["plugins", ..]) if segs.len() > 1 => plugin_not_found(&segs[1..].join("/")),
        _ => not_found(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn upgrade_names_get_a_tag() {
        assert_eq!(super::with_tag("x"), "x:latest");
        assert_eq!(super::with_tag("vieux/sshfs"), "vieux/sshfs:latest");
        assert_eq!(super::with_tag("vieux/sshfs:1"), "vieux/sshfs:1");
        assert_eq!(
            super::with_tag("localhost:5000/p"),
            "localhost:5000/p:latest"
        );
    }
}
