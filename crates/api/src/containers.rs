//! `/containers/...` routes.

use crate::body::{channel, Body};
use crate::query::Query;
use crate::{empty, error_response, json_response, message, not_found, with_headers};
use berth_engine::{AttachOptions, Engine, Error, ListOptions, LogsOptions, WaitCondition};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `1795343435` or `1795343435.123456789` → time.
/// Standard base64 (with padding), for the path-stat header.
fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn parse_unix_time(s: &str) -> Option<SystemTime> {
    if s.is_empty() || s == "0" {
        return None;
    }
    let (secs, nanos) = match s.split_once('.') {
        Some((a, b)) => (
            a.parse::<u64>().ok()?,
            format!("{b:0<9}")[..9].parse::<u32>().ok()?,
        ),
        None => (s.parse::<u64>().ok()?, 0),
    };
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// A JSON body decoded as dockerd decodes it (`berth_types::go_json`: `null` is "not set"),
/// before any lookup: an empty body is 400 `got EOF while reading request body`, malformed
/// JSON 400, a body of `null` the zero value.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    read_json_or(req, "got EOF while reading request body")
        .await
        .map(Option::unwrap_or_default)
}

/// As `read_json`, with `empty` as the message for an empty body; `None` for `null`.
pub(crate) async fn read_json_or<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
    empty: &str,
) -> Result<Option<T>, Response<Body>> {
    let data = crate::read_small_body(req).await?;
    decode_json(&data, empty).map_err(|m| message(StatusCode::BAD_REQUEST, &m))
}

/// The decoding half of `read_json_or`, for routes that read the body themselves; the error
/// is the message of a 400.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    data: &[u8],
    empty: &str,
) -> Result<Option<T>, String> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Err(empty.to_string());
    }
    berth_types::go_json::from_slice(data).map_err(|e| format!("invalid JSON: {e}"))
}

/// `h` and `w` of a resize, checked as dockerd does before any lookup (Go's `strconv.Atoi`
/// texts); negative sizes count as 0.
pub(crate) fn tty_size(q: &Query) -> Result<(u32, u32), String> {
    let mut out = [0u32; 2];
    for (i, k) in ["h", "w"].into_iter().enumerate() {
        let v = q.get(k).unwrap_or("");
        let n: i64 = v
            .parse()
            .map_err(|_| format!("strconv.Atoi: parsing \"{v}\": invalid syntax"))?;
        out[i] = n.clamp(0, u32::MAX as i64) as u32;
    }
    Ok((out[0], out[1]))
}

/// Go's `strconv.Atoi` error for a query value that is no integer (a 400 here; dockerd 20.10
/// answers some of these with 500).
fn atoi_error(v: &str) -> Error {
    Error::InvalidParameter(format!("strconv.Atoi: parsing \"{v}\": invalid syntax"))
}

/// `platform` of a create: `os[/arch[/variant]]` → (os, arch), dockerd's 400 when it does
/// not parse.
fn parse_platform(p: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts.iter().all(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !ok {
        return Err(format!(
            "\"{p}\": cannot parse platform specifier: invalid argument"
        ));
    }
    let host = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let arch = match parts.get(1).map(|a| a.to_ascii_lowercase()) {
        None => host.to_string(),
        Some(a) if a == "x86_64" || a == "x86-64" => "amd64".into(),
        Some(a) if a == "aarch64" => "arm64".into(),
        Some(a) => a,
    };
    Ok((parts[0].to_ascii_lowercase(), arch))
}

pub async fn route(
    engine: Arc<Engine>,
    mut req: Request<Incoming>,
    method: &Method,
    segs: &[&str],
    q: &Query,
) -> Response<Body> {
    let r: Result<Response<Body>, Error> = match (method.as_str(), segs) {
        ("POST", ["containers", "create"]) => {
            const EMPTY: &str = "Config cannot be empty in order to create a container";
            let data = match crate::read_small_body(req).await {
                Ok(d) => d,
                Err(resp) => return resp,
            };
            let mut body: berth_types::CreateRequest = match decode_json(&data, EMPTY) {
                Ok(Some(b)) => b,
                Ok(None) => return message(StatusCode::BAD_REQUEST, EMPTY),
                Err(m) => return message(StatusCode::BAD_REQUEST, &m),
            };
            crate::compat::create_request(&mut body, &data);
            if let Some(p) = q.get("platform").filter(|p| !p.is_empty()) {
                let (os, arch) = match parse_platform(p) {
                    Ok(x) => x,
                    Err(m) => return message(StatusCode::BAD_REQUEST, &m),
                };
                let image = &body.config.image;
                // a missing image is create's own error
                if let Ok(i) = engine.image_inspect(image) {
                    let (ios, iarch) = (
                        i["Os"].as_str().unwrap_or(""),
                        i["Architecture"].as_str().unwrap_or(""),
                    );
                    if ios != os || iarch != arch {
                        return message(
                            StatusCode::NOT_FOUND,
                            &format!("image with reference {image} was found but does not match the specified platform: wanted {os}/{arch}, actual: {ios}/{iarch}"),
                        );
                    }
                }
            }
            engine
                .create(q.get("name"), body)
                .await
                .map(|(id, warnings)| {
                    json_response(
                        StatusCode::CREATED,
                        &json!({"Id": id, "Warnings": warnings}),
                    )
                })
        }
        ("GET", ["containers", "json"]) => (|| {
            let mut opts = ListOptions {
                all: q.flag("all"),
                size: q.flag("size"),
                ..Default::default()
            };
            if let Some(n) = q.get("limit").and_then(|l| l.parse::<i64>().ok()) {
                if n > 0 {
                    opts.limit = Some(n as usize);
                }
            }
            if let Some(f) = q.get("filters").filter(|f| !f.is_empty()) {
                opts.filters = ListOptions::parse_filters(f)?;
                crate::query::known_filters(&opts.filters, crate::query::CONTAINER_FILTERS)?;
            }
            if let Some(l) = q.get("limit").filter(|l| l.parse::<i64>().is_err()) {
                return Err(atoi_error(l));
            }
            engine
                .list(&opts)
                .map(|v| json_response(StatusCode::OK, &v))
        })(),
        ("GET", ["containers", id, "json"]) => engine
            .inspect(id, q.flag("size"))
            .map(|v| json_response(StatusCode::OK, &crate::compat::container_inspect(v))),
        ("POST", ["containers", id, "start"]) => engine
            .start(id)
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["containers", id, "kill"]) => match engine.kill(id, q.get("signal")).await {
            // below 1.20, killing a container that is not running succeeds (dockerd's rule)
            Err(Error::Conflict(m))
                if crate::version_below("1.20") && m.contains("is not running") =>
            {
                Ok(empty(StatusCode::NO_CONTENT))
            }
            r => r.map(|_| empty(StatusCode::NO_CONTENT)),
        },
        ("POST", ["containers", _, "stop"])
            if q.get("t").is_some_and(|t| t.parse::<i64>().is_err()) =>
        {
            Err(atoi_error(q.get("t").unwrap_or("")))
        }
        ("POST", ["containers", id, "stop"]) => {
            let t = q.get("t").and_then(|t| t.parse::<i64>().ok());
            engine
                .stop(id, t)
                .await
                .map(|_| empty(StatusCode::NO_CONTENT))
        }
        ("POST", ["containers", _, "restart"])
            if q.get("t").is_some_and(|t| t.parse::<i64>().is_err()) =>
        {
            Err(atoi_error(q.get("t").unwrap_or("")))
        }
        ("POST", ["containers", id, "restart"]) => {
            let t = q.get("t").and_then(|t| t.parse::<i64>().ok());
            engine
                .restart(id, t)
                .await
                .map(|_| empty(StatusCode::NO_CONTENT))
        }
        // `rm --link`: the link's name is `parent/alias`
        ("DELETE", ["containers", _]) if q.flag("link") => Err(Error::Internal(
            "Conflict, cannot remove the default link name of the container".into(),
        )),
        ("DELETE", ["containers", parent, alias]) if !parent.is_empty() && !alias.is_empty() => {
            if q.flag("link") {
                engine
                    .remove_link(parent, alias)
                    .map(|_| empty(StatusCode::NO_CONTENT))
            } else {
                Err(Error::NotFound(format!(
                    "No such container: {parent}/{alias}"
                )))
            }
        }
        ("DELETE", ["containers", id]) => engine
            .remove_with_volumes(id, q.flag("force"), q.flag("v"))
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["containers", id, "wait"]) => (|| {
            let cond = WaitCondition::parse(q.get("condition"))?;
            let fut = engine.wait(id, cond)?;
            let (tx, body) = channel();
            tokio::spawn(async move {
                let code = fut.await;
                let mut b = serde_json::to_vec(&json!({"Error": null, "StatusCode": code}))
                    .unwrap_or_default();
                b.push(b'\n');
                let _ = tx.send(Bytes::from(b)).await;
            });
            let mut r = Response::new(body);
            r.headers_mut()
                .insert("Content-Type", "application/json".parse().expect("static"));
            Ok(with_headers(r))
        })(),
        ("GET", ["containers", id, "logs"]) => (|| {
            for k in ["since", "until"] {
                if let Some(v) = q.get(k).filter(|v| !v.is_empty() && *v != "0") {
                    if parse_unix_time(v).is_none() {
                        return Err(Error::InvalidParameter(format!(
                            "strconv.ParseInt: parsing \"{v}\": invalid syntax"
                        )));
                    }
                }
            }
            let mut opts = LogsOptions {
                stdout: q.flag("stdout"),
                stderr: q.flag("stderr"),
                follow: q.flag("follow"),
                timestamps: q.flag("timestamps"),
                tail: q.get("tail").and_then(|t| t.parse().ok()),
                since: q.get("since").and_then(parse_unix_time),
                until: q.get("until").and_then(parse_unix_time),
            };
            if !opts.stdout && !opts.stderr {
                return Err(Error::InvalidParameter(
                    "Bad parameters: you must choose at least one stream".into(),
                ));
            }
            if q.get("tail") == Some("all") {
                opts.tail = None;
            }
            let mut rx = engine.logs(id, opts)?;
            let (tx, body) = channel();
            tokio::spawn(async move {
                while let Some(b) = rx.recv().await {
                    if tx.send(b).await.is_err() {
                        break;
                    }
                }
            });
            Ok(with_headers(Response::new(body)))
        })(),
        ("POST", ["containers", id, "resize"]) => {
            let (h, w) = match tty_size(q) {
                Ok(hw) => hw,
                Err(m) => return message(StatusCode::BAD_REQUEST, &m),
            };
            engine.resize(id, h, w).await.map(|_| {
                let mut r = empty(StatusCode::OK);
                r.headers_mut()
                    .insert("Content-Length", "0".parse().expect("static"));
                r
            })
        }
        ("POST", ["containers", id, "pause"]) => engine
            .pause(id)
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["containers", id, "unpause"]) => engine
            .unpause(id)
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["containers", id, "rename"]) => engine
            .rename(id, q.get("name").unwrap_or(""))
            .await
            .map(|_| empty(StatusCode::NO_CONTENT)),
        ("POST", ["containers", id, "update"]) => {
            let mut body: serde_json::Map<String, serde_json::Value> = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            // PidsLimit came with API 1.40: older clients' values are ignored, as dockerd does
            if crate::version_below("1.40") {
                body.remove("PidsLimit");
            }
            engine.update(id, body).await.map(|w| {
                // dockerd: `null` when there is nothing to warn about
                let w = if w.is_empty() {
                    serde_json::Value::Null
                } else {
                    json!(w)
                };
                json_response(StatusCode::OK, &json!({"Warnings": w}))
            })
        }
        ("POST", ["containers", "prune"]) => {
            let filters = match q
                .get("filters")
                .filter(|f| !f.is_empty())
                .map(ListOptions::parse_filters)
            {
                Some(Err(e)) => return error_response(e),
                Some(Ok(f)) => f,
                None => Default::default(),
            };
            engine.prune(&filters).await.map(|(ids, space)| {
                json_response(
                    StatusCode::OK,
                    &json!({"ContainersDeleted": if ids.is_empty() { serde_json::Value::Null } else { json!(ids) }, "SpaceReclaimed": space}),
                )
            })
        }
        ("GET", ["containers", id, "top"]) => engine
            .top(id, q.get("ps_args"))
            .await
            .map(|v| json_response(StatusCode::OK, &v)),
        ("GET", ["containers", id, "stats"]) => {
            let stream = q.get("stream").map(|_| q.flag("stream")).unwrap_or(true);
            engine.stats(id, stream, q.flag("one-shot")).map(|rx| {
                let mut r = Response::new(crate::body::Body::Stream(rx));
                r.headers_mut()
                    .insert("Content-Type", "application/json".parse().expect("static"));
                with_headers(r)
            })
        }
        ("GET", ["containers", id, "changes"]) => engine
            .changes(id)
            .map(|v| json_response(StatusCode::OK, &v)),
        ("GET", ["containers", id, "export"]) => engine.export(id).map(|rx| {
            let mut r = Response::new(crate::body::Body::Stream(rx));
            r.headers_mut().insert(
                "Content-Type",
                "application/octet-stream".parse().expect("static"),
            );
            with_headers(r)
        }),
        ("POST", ["containers", id, "exec"]) => {
            let body: berth_engine::ExecConfig = match read_json(req).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            engine
                .exec_create(id, body)
                .map(|eid| json_response(StatusCode::CREATED, &json!({"Id": eid})))
        }
        ("HEAD", ["containers", id, "archive"]) => {
            let path = q.get("path").unwrap_or("").to_string();
            engine.archive_stat(id, &path).map(|stat| {
                let mut r = empty(StatusCode::OK);
                r.headers_mut()
                    .insert("Content-Type", "application/x-tar".parse().expect("static"));
                if let Ok(h) = base64(&serde_json::to_vec(&stat).unwrap_or_default()).parse() {
                    r.headers_mut().insert("X-Docker-Container-Path-Stat", h);
                }
                r
            })
        }
        ("GET", ["containers", id, "archive"]) => {
            let path = q.get("path").unwrap_or("").to_string();
            engine.archive_get(id, &path).map(|(stat, rx)| {
                let mut r = Response::new(crate::body::Body::Stream(rx));
                r.headers_mut()
                    .insert("Content-Type", "application/x-tar".parse().expect("static"));
                if let Ok(h) = base64(&serde_json::to_vec(&stat).unwrap_or_default()).parse() {
                    r.headers_mut().insert("X-Docker-Container-Path-Stat", h);
                }
                with_headers(r)
            })
        }
        ("PUT", ["containers", id, "archive"]) => {
            let path = q.get("path").unwrap_or("").to_string();
            let id = id.to_string();
            let reader = crate::images::body_reader(req);
            let eng = engine.clone();
            tokio::task::spawn_blocking(move || {
                let mut reader = reader;
                let r = eng.archive_put_reader(&id, &path, &mut reader);
                let mut sink = [0u8; 65536];
                while matches!(std::io::Read::read(&mut reader, &mut sink), Ok(n) if n > 0) {}
                r
            })
            .await
            .unwrap_or_else(|e| Err(Error::Internal(e.to_string())))
            .map(|_| {
                let mut r = empty(StatusCode::OK);
                r.headers_mut()
                    .insert("Content-Length", "0".parse().expect("static"));
                r
            })
        }
        ("POST", ["containers", id, "attach"]) => {
            let keys = q.get("detachKeys").unwrap_or("");
            let detach_keys = match keys {
                "" => None,
                k => match berth_types::detach::parse_detach_keys(k) {
                    Ok(b) => Some(b),
                    Err(_) => {
                        return crate::hijack_error(Error::InvalidParameter(format!(
                            "Invalid detach keys ({k}) provided"
                        )))
                    }
                },
            };
            let opts = AttachOptions {
                stdin: q.flag("stdin"),
                stdout: q.flag("stdout"),
                stderr: q.flag("stderr"),
                logs: q.flag("logs"),
                stream: q.flag("stream"),
                detach_keys,
            };
            match engine.attach_prepare(id, opts) {
                Ok(ticket) => {
                    let engine = engine.clone();
                    Ok(crate::hijack(
                        hyper::upgrade::on(&mut req),
                        false,
                        move |io| async move {
                            let id = ticket.id.clone();
                            if let Err(e) = engine.attach(ticket, io).await {
                                tracing::warn!("attach {id}: {e}");
                            }
                        },
                    ))
                }
                Err(e) => return crate::hijack_error(e),
            }
        }
        _ => return not_found(),
    };
    r.unwrap_or_else(error_response)
}

#[cfg(test)]
mod tests {
    use super::parse_unix_time;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn unix_times() {
        assert_eq!(
            parse_unix_time("10"),
            Some(UNIX_EPOCH + Duration::from_secs(10))
        );
        assert_eq!(
            parse_unix_time("10.5"),
            Some(UNIX_EPOCH + Duration::new(10, 500_000_000))
        );
        assert_eq!(parse_unix_time("0"), None);
        assert_eq!(parse_unix_time("x"), None);
    }
}
