//! An etcd v3 client over etcd's JSON gRPC gateway.
//!
//! Every call is one HTTP/1.1 POST on a fresh TCP connection to the first endpoint that
//! answers (a cluster store lists several: `etcd://a:2379,b:2379`). Keys and values travel
//! base64-encoded; 64-bit integers come back as JSON strings and fields equal to zero are left
//! out (protobuf's JSON mapping), so the decoders below treat a missing field as zero.
//! The request builders and response decoders are pure functions, tested without etcd.

use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::time::Duration;

/// One key-value pair as etcd stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(Kv),
    /// the deleted key (its lease expired, or it was deleted)
    Delete(Kv),
}

/// `etcd://host:port[,host:port…]` (also `http://`, or bare `host:port`) → endpoints.
pub fn parse_store(url: &str) -> Result<Vec<String>> {
    let rest = url
        .strip_prefix("etcd://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    if url.contains("://") && !url.starts_with("etcd://") && !url.starts_with("http://") {
        return Err(Error::InvalidParameter(format!(
            "unsupported cluster store {url:?}: only etcd://HOST:PORT is supported"
        )));
    }
    let mut out = Vec::new();
    for ep in rest.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let ep = ep.trim_end_matches('/');
        let (host, port) = ep.rsplit_once(':').unwrap_or((ep, "2379"));
        if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
            return Err(Error::InvalidParameter(format!(
                "invalid cluster store endpoint {ep:?} in {url:?}"
            )));
        }
        out.push(format!("{host}:{port}"));
    }
    if out.is_empty() {
        return Err(Error::InvalidParameter(format!(
            "invalid cluster store {url:?}: no endpoint"
        )));
    }
    Ok(out)
}

pub fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

fn unb64(v: &Value) -> Vec<u8> {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .unwrap_or_default()
}

/// An int64 field: a JSON string or number, missing = 0.
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// The end of the range holding every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // every byte 0xff: to the end of the keyspace
    vec![0]
}

pub fn put_body(key: &str, value: &[u8], lease: i64) -> Value {
    let mut b = json!({"key": b64(key.as_bytes()), "value": b64(value)});
    if lease != 0 {
        b["lease"] = json!(lease.to_string());
    }
    b
}

pub fn range_body(key: &str, prefix: bool) -> Value {
    let mut b = json!({"key": b64(key.as_bytes())});
    if prefix {
        b["range_end"] = json!(b64(&prefix_end(key)));
    }
    b
}

/// A txn that puts `key` only if it does not exist (create_revision == 0).
pub fn create_txn_body(key: &str, value: &[u8], lease: i64) -> Value {
    json!({
        "compare": [{
            "key": b64(key.as_bytes()),
            "result": "EQUAL",
            "target": "CREATE",
            "create_revision": "0",
        }],
        "success": [{"request_put": put_body(key, value, lease)}],
    })
}

/// A txn that deletes `key` only if its mod_revision is still `rev`.
pub fn delete_if_body(key: &str, rev: i64) -> Value {
    json!({
        "compare": [{
            "key": b64(key.as_bytes()),
            "result": "EQUAL",
            "target": "MOD",
            "mod_revision": rev.to_string(),
        }],
        "success": [{"request_delete_range": {"key": b64(key.as_bytes())}}],
    })
}

pub fn watch_body(prefix: &str, start_revision: i64) -> Value {
    let mut c = json!({
        "key": b64(prefix.as_bytes()),
        "range_end": b64(&prefix_end(prefix)),
    });
    if start_revision > 0 {
        c["start_revision"] = json!(start_revision.to_string());
    }
    json!({ "create_request": c })
}

pub fn decode_kv(v: &Value) -> Kv {
    Kv {
        key: String::from_utf8_lossy(&unb64(&v["key"])).into_owned(),
        value: unb64(&v["value"]),
        create_revision: int(&v["create_revision"]),
        mod_revision: int(&v["mod_revision"]),
        lease: int(&v["lease"]),
    }
}

/// A range response → its pairs and the store's revision.
pub fn decode_range(v: &Value) -> (Vec<Kv>, i64) {
    let kvs = v["kvs"]
        .as_array()
        .map(|a| a.iter().map(decode_kv).collect())
        .unwrap_or_default();
    (kvs, int(&v["header"]["revision"]))
}

/// One message of a watch stream → its events (none for the creation notice), or the error
/// the stream ended with. A watch cancelled by etcd (compacted revision) is an error.
pub fn decode_watch(v: &Value) -> Result<Vec<Event>> {
    if let Some(e) = v.get("error") {
        return Err(Error::Etcd(error_text(e)));
    }
    let r = &v["result"];
    if r["canceled"].as_bool() == Some(true) {
        return Err(Error::Etcd(format!(
            "watch cancelled: {}",
            r["cancel_reason"].as_str().unwrap_or("compacted")
        )));
    }
    Ok(r["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let kv = decode_kv(&e["kv"]);
                    if e["type"].as_str() == Some("DELETE") {
                        Event::Delete(kv)
                    } else {
                        Event::Put(kv)
                    }
                })
                .collect()
        })
        .unwrap_or_default())
}

fn error_text(e: &Value) -> String {
    e["message"]
        .as_str()
        .or_else(|| e["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

/// Splits complete JSON documents off the front of `buf` (a stream of them, with or without
/// newlines between), leaving an incomplete tail in place.
pub fn take_docs(buf: &mut Vec<u8>) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let mut used = 0;
    loop {
        match it.next() {
            Some(Ok(v)) => {
                used = it.byte_offset();
                out.push(v);
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => return Err(Error::Etcd(format!("bad stream from etcd: {e}"))),
            None => break,
        }
    }
    buf.drain(..used);
    Ok(out)
}

/// A client for one cluster store.
#[derive(Debug, Clone)]
pub struct Client {
    endpoints: Vec<String>,
    timeout: Duration,
}

type Body = hyper::body::Incoming;

impl Client {
    pub fn new(store: &str) -> Result<Client> {
        Ok(Client {
            endpoints: parse_store(store)?,
            timeout: Duration::from_secs(3),
        })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Sends one POST to the first endpoint that takes the connection; answers the status and
    /// the body still to be read.
    async fn post(&self, path: &str, body: &Value) -> Result<hyper::Response<Body>> {
        let data = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let mut last = String::new();
        for ep in &self.endpoints {
            let attempt = async {
                let tcp = tokio::net::TcpStream::connect(ep.as_str())
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?;
                let _ = tcp.set_nodelay(true);
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| format!("{ep}: {e}"))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let req = hyper::Request::post(path)
                    .header("host", ep.as_str())
                    .header("content-type", "application/json")
                    .body(Full::new(data.clone()))
                    .map_err(|e| e.to_string())?;
                send.send_request(req)
                    .await
                    .map_err(|e| format!("{ep}: {e}"))
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(resp)) => return Ok(resp),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("{ep}: timed out after {:?}", self.timeout),
            }
        }
        Err(Error::Unavailable(last))
    }

    /// A unary call: the whole JSON answer, or etcd's error.
    async fn call(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self.post(path, body).await?;
        let status = resp.status();
        let bytes = tokio::time::timeout(self.timeout, resp.into_body().collect())
            .await
            .map_err(|_| Error::Unavailable(format!("{path}: timed out reading the answer")))?
            .map_err(|e| Error::Unavailable(format!("{path}: {e}")))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Etcd(format!(
                "{path}: {status}: bad answer ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        if !status.is_success() || v.get("error").is_some() {
            return Err(Error::Etcd(format!("{path}: {}", error_text(&v))));
        }
        Ok(v)
    }

    pub async fn put(&self, key: &str, value: &[u8], lease: i64) -> Result<()> {
        self.call("/v3/kv/put", &put_body(key, value, lease))
            .await
            .map(|_| ())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Kv>> {
        let v = self.call("/v3/kv/range", &range_body(key, false)).await?;
        Ok(decode_range(&v).0.into_iter().next())
    }

    /// Every pair under `prefix`, and the revision to watch from (+1).
    pub async fn get_prefix(&self, prefix: &str) -> Result<(Vec<Kv>, i64)> {
        let v = self.call("/v3/kv/range", &range_body(prefix, true)).await?;
        Ok(decode_range(&v))
    }

    /// Deletes `key`; answers how many keys went.
    pub async fn delete(&self, key: &str) -> Result<i64> {
        let v = self
            .call("/v3/kv/deleterange", &range_body(key, false))
            .await?;
        Ok(int(&v["deleted"]))
    }

    /// Puts `key` only if it does not exist yet; answers whether it did.
    pub async fn create(&self, key: &str, value: &[u8], lease: i64) -> Result<bool> {
        let v = self
            .call("/v3/kv/txn", &create_txn_body(key, value, lease))
            .await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Deletes `key` only if nobody changed it since `rev`.
    pub async fn delete_if(&self, key: &str, rev: i64) -> Result<bool> {
        let v = self.call("/v3/kv/txn", &delete_if_body(key, rev)).await?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// A new lease of `ttl` seconds; answers its id.
    pub async fn grant(&self, ttl: i64) -> Result<i64> {
        let v = self
            .call("/v3/lease/grant", &json!({"TTL": ttl.to_string()}))
            .await?;
        let id = int(&v["ID"]);
        if id == 0 {
            return Err(Error::Etcd(format!("lease grant: no id in {v}")));
        }
        Ok(id)
    }

    /// Renews lease `id` once; answers its new TTL (0: the lease is gone).
    pub async fn keepalive(&self, id: i64) -> Result<i64> {
        // a streaming call: one request, read the first answer, drop the connection
        let resp = self
            .post("/v3/lease/keepalive", &json!({"ID": id.to_string()}))
            .await?;
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        let read = async {
            loop {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Ok(d) = f.into_data() {
                            buf.extend_from_slice(&d);
                        }
                        if let Some(v) = take_docs(&mut buf)?.into_iter().next() {
                            if let Some(e) = v.get("error") {
                                return Err(Error::Etcd(error_text(e)));
                            }
                            return Ok(int(&v["result"]["TTL"]));
                        }
                    }
                    Some(Err(e)) => return Err(Error::Unavailable(e.to_string())),
                    None => return Err(Error::Etcd("keepalive: no answer".into())),
                }
            }
        };
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| Error::Unavailable("keepalive: timed out".into()))?
    }

    pub async fn revoke(&self, id: i64) -> Result<()> {
        self.call("/v3/lease/revoke", &json!({"ID": id.to_string()}))
            .await
            .map(|_| ())
    }

    /// Watches every key under `prefix` from `start_revision` (0: from now).
    pub async fn watch(&self, prefix: &str, start_revision: i64) -> Result<Watch> {
        let resp = self
            .post("/v3/watch", &watch_body(prefix, start_revision))
            .await?;
        if !resp.status().is_success() {
            return Err(Error::Etcd(format!("watch: {}", resp.status())));
        }
        Ok(Watch {
            body: resp.into_body(),
            buf: Vec::new(),
            pending: Vec::new(),
        })
    }
}

/// A running watch: a stream of JSON messages on one HTTP response.
pub struct Watch {
    body: Body,
    buf: Vec<u8>,
    pending: Vec<Value>,
}

impl Watch {
    /// The next batch of events (waits for it). An error ends the watch: start a new one
    /// after re-reading the state.
    pub async fn next(&mut self) -> Result<Vec<Event>> {
        loop {
            while !self.pending.is_empty() {
                let v = self.pending.remove(0);
                let evs = decode_watch(&v)?;
                if !evs.is_empty() {
                    return Ok(evs);
                }
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                        self.pending = take_docs(&mut self.buf)?;
                    }
                }
                Some(Err(e)) => return Err(Error::Unavailable(format!("watch: {e}"))),
                None => return Err(Error::Unavailable("watch: stream ended".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_parse() {
        assert_eq!(
            parse_store("etcd://10.0.0.1:2379,10.0.0.2:2379").unwrap(),
            vec!["10.0.0.1:2379", "10.0.0.2:2379"]
        );
        assert_eq!(parse_store("etcd://h").unwrap(), vec!["h:2379"]);
        assert_eq!(parse_store("http://h:1/").unwrap(), vec!["h:1"]);
        assert!(parse_store("consul://h:8500").is_err());
        assert!(parse_store("etcd://").is_err());
        assert!(parse_store("etcd://h:notaport").is_err());
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn request_bodies() {
        let b = put_body("/k", b"v", 0);
        assert_eq!(b, json!({"key": "L2s=", "value": "dg=="}));
        let b = put_body("/k", b"v", 7587);
        assert_eq!(b["lease"], "7587");
        let t = create_txn_body("/k", b"v", 5);
        assert_eq!(t["compare"][0]["target"], "CREATE");
        assert_eq!(t["compare"][0]["create_revision"], "0");
        assert_eq!(t["success"][0]["request_put"]["lease"], "5");
        let w = watch_body("/a/", 12);
        assert_eq!(w["create_request"]["range_end"], b64(b"/a0"));
        assert_eq!(w["create_request"]["start_revision"], "12");
        assert!(watch_body("/a/", 0)["create_request"]
            .get("start_revision")
            .is_none());
    }

    #[test]
    fn range_answers_decode_with_missing_zero_fields() {
        let v = json!({
            "header": {"cluster_id": "1", "revision": "42"},
            "kvs": [
                {"key": b64(b"/a/1"), "value": b64(b"x"), "create_revision": "3",
                 "mod_revision": "4", "version": "2", "lease": "99"},
                {"key": b64(b"/a/2"), "create_revision": "5", "mod_revision": "5"}
            ],
            "count": "2"
        });
        let (kvs, rev) = decode_range(&v);
        assert_eq!(rev, 42);
        assert_eq!(kvs.len(), 2);
        assert_eq!(kvs[0].key, "/a/1");
        assert_eq!(kvs[0].value, b"x");
        assert_eq!(kvs[0].lease, 99);
        assert_eq!(kvs[1].value, b"");
        assert_eq!(kvs[1].lease, 0);
        assert_eq!(decode_range(&json!({"header": {}})), (vec![], 0));
    }

    #[test]
    fn watch_messages_decode() {
        let created = json!({"result": {"header": {"revision": "5"}, "created": true}});
        assert!(decode_watch(&created).unwrap().is_empty());
        let evs = json!({"result": {"events": [
            {"kv": {"key": b64(b"/s/a"), "value": b64(b"1"), "mod_revision": "6"}},
            {"type": "DELETE", "kv": {"key": b64(b"/s/b"), "mod_revision": "7"}}
        ]}});
        let e = decode_watch(&evs).unwrap();
        assert!(matches!(&e[0], Event::Put(kv) if kv.key == "/s/a" && kv.value == b"1"));
        assert!(matches!(&e[1], Event::Delete(kv) if kv.key == "/s/b"));
        let cancelled = json!({"result": {"canceled": true, "compact_revision": "3"}});
        assert!(decode_watch(&cancelled).is_err());
        assert!(decode_watch(&json!({"error": {"message": "boom"}})).is_err());
    }

    #[test]
    fn streams_split_into_documents() {
        let mut buf = br#"{"a":1}
{"b":2}{"c":"#
            .to_vec();
        let docs = take_docs(&mut buf).unwrap();
        assert_eq!(docs, vec![json!({"a":1}), json!({"b":2})]);
        assert_eq!(buf, br#"{"c":"#.to_vec());
        buf.extend_from_slice(b"3}\n");
        assert_eq!(take_docs(&mut buf).unwrap(), vec![json!({"c":3})]);
        let mut bad = b"}{".to_vec();
        assert!(take_docs(&mut bad).is_err());
    }
}
