//! Raw Engine API calls for the SDK-compatibility tests (`tests/sdk_*.rs`): the same request
//! to berthd and, when installed, to a private dockerd, so status and message are compared.

use super::dockerd::Dockerd;
use super::Daemon;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// One engine's API socket.
#[derive(Clone)]
pub struct Api {
    pub name: &'static str,
    pub sock: PathBuf,
}

/// An answer: status and body (JSON when it parses, else a string of the bytes).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub raw: Vec<u8>,
}

impl Answer {
    /// `message` of an error body ("" when there is none).
    pub fn message(&self) -> String {
        self.body["message"].as_str().unwrap_or("").to_string()
    }
}

impl Api {
    pub fn berth(d: &Daemon) -> Api {
        Api {
            name: "berthd",
            sock: d.sock.clone(),
        }
    }

    pub fn docker(dk: &Dockerd) -> Api {
        Api {
            name: "dockerd",
            sock: dk.root.join("d.sock"),
        }
    }

    /// `method path` with a JSON body (`None`: no body at all).
    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.call_bytes(method, path, body.map(str::as_bytes), "application/json")
    }

    pub fn call_json(&self, method: &str, path: &str, body: &Value) -> Answer {
        self.call(method, path, Some(&body.to_string()))
    }

    pub fn call_bytes(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Answer {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: api\r\n");
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        let (status, _, raw) = super::raw_http(
            &self.sock,
            &head,
            body.unwrap_or_default(),
            Duration::from_secs(60),
        );
        let body = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into_owned()));
        Answer { status, body, raw }
    }
}

/// berthd, and dockerd when one runs: the engines a request is sent to.
pub fn engines(d: &Daemon, dk: Option<&Dockerd>) -> Vec<Api> {
    let mut v = vec![Api::berth(d)];
    if let Some(dk) = dk {
        v.push(Api::docker(dk));
    }
    v
}

/// A private dockerd with busybox loaded (None when dockerd is not installed).
pub fn dockerd_with_busybox(d: &Daemon) -> Option<Dockerd> {
    let dk = Dockerd::start(&d.root)?;
    let o = dk.docker(&["load", "-i", super::busybox_tar().to_str().expect("utf8")]);
    assert!(o.status.success(), "docker load: {}", super::stderr(&o));
    Some(dk)
}

/// Sends the same request to every engine and checks that each answers `status` with a
/// message containing `msg`; returns berthd's answer.
pub fn expect_all(
    apis: &[Api],
    method: &str,
    path: &str,
    body: Option<&str>,
    status: u16,
    msg: &str,
) -> Answer {
    let mut first = None;
    for api in apis {
        let a = api.call(method, path, body);
        assert_eq!(
            a.status, status,
            "{}: {method} {path} {body:?}: {:?}",
            api.name, a.body
        );
        assert!(
            a.message().contains(msg),
            "{}: {method} {path}: message {:?} lacks {msg:?}",
            api.name,
            a.message()
        );
        first.get_or_insert(a);
    }
    first.expect("at least berthd")
}

/// Whether docker-py (the `docker` Python package) is installed; says so when it is not.
pub fn docker_py_available() -> bool {
    let have = std::process::Command::new("python3")
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!("skipping: the docker Python package is not installed");
    }
    have
}

/// Runs a docker-py `script` with `args` (`sys.argv[1..]`); its stdout, or a panic with its
/// stderr when it failed.
pub fn run_docker_py(script: &str, args: &[&str]) -> String {
    let o = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "docker-py {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}
