//! Server-side stream rules SDK clients rely on (issue 12, point 5): each behaviour is sent
//! to berthd and to a private dockerd (when installed) and both must act alike.

mod common;
use common::sdk::{dockerd_with_busybox, engines};
use common::Daemon;
use serde_json::json;

/// A kill with SIGKILL (the default signal) answers once the container has exited: an
/// inspect sent right after the answer shows it stopped, every time.
#[test]
fn sigkill_answers_after_the_exit() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        for (i, signal) in ["", "?signal=KILL", "?signal=9", ""].iter().enumerate() {
            let name = format!("killwait{i}");
            let body = json!({"Image":"busybox","Cmd":["sleep","300"]});
            let a = api.call_json("POST", &format!("/containers/create?name={name}"), &body);
            assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
            let a = api.call("POST", &format!("/containers/{name}/start"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
            let a = api.call("POST", &format!("/containers/{name}/kill{signal}"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
            let s = api
                .call("GET", &format!("/containers/{name}/json"), None)
                .body["State"]
                .clone();
            assert_eq!(s["Running"], json!(false), "{} {signal}: {s}", api.name);
            assert_eq!(s["ExitCode"], json!(137), "{} {signal}: {s}", api.name);
            let a = api.call("DELETE", &format!("/containers/{name}"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        }
    }
}

/// Sends a hijacking POST on `api`'s socket and reads everything until the server closes.
fn hijack_to_end(api: &common::sdk::Api, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&api.sock).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("write");
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("{}: {path}: the stream did not close: {e}", api.name));
    let at = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    assert!(
        got.starts_with(b"HTTP/1.1 101") || got.starts_with(b"HTTP/1.1 200"),
        "{}: {}",
        api.name,
        String::from_utf8_lossy(&got[..at])
    );
    got.split_off(at + 4)
}

/// The payloads of docker's multiplexed frames, as (stream, text).
fn frames(mut b: &[u8]) -> Vec<(u8, String)> {
    let mut v = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        v.push((b[0], String::from_utf8_lossy(&b[8..8 + n]).into_owned()));
        b = &b[8 + n..];
    }
    assert!(b.is_empty(), "a cut frame: {b:?}");
    v
}

/// `attach?logs=1&stream=0` on an exited container sends its log, framed per stream, and
/// closes; `stream=0` without logs closes at once, also on a running container.
#[test]
fn attach_logs_without_stream_closes_after_the_log() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        let body = json!({"Image":"busybox","Cmd":["sh","-c","echo out1; echo err1 >&2; sleep 0.1; echo out2"]});
        let a = api.call_json("POST", "/containers/create?name=alog", &body);
        assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
        assert_eq!(api.call("POST", "/containers/alog/start", None).status, 204);
        assert_eq!(api.call("POST", "/containers/alog/wait", None).status, 200);
        let all = frames(&hijack_to_end(
            &api,
            "/v1.41/containers/alog/attach?logs=1&stream=0&stdout=1&stderr=1",
        ));
        let (mut out, mut err) = (String::new(), String::new());
        for (s, t) in &all {
            match s {
                1 => out.push_str(t),
                2 => err.push_str(t),
                _ => panic!("{}: stream {s}", api.name),
            }
        }
        assert_eq!(
            (out.as_str(), err.as_str()),
            ("out1\nout2\n", "err1\n"),
            "{}",
            api.name
        );
        let only_err = frames(&hijack_to_end(
            &api,
            "/v1.41/containers/alog/attach?logs=1&stream=0&stderr=1",
        ));
        assert_eq!(only_err, vec![(2, "err1\n".to_string())], "{}", api.name);
        let body = json!({"Image":"busybox","Cmd":["sleep","300"]});
        assert_eq!(
            api.call_json("POST", "/containers/create?name=alive", &body)
                .status,
            201
        );
        assert_eq!(
            api.call("POST", "/containers/alive/start", None).status,
            204
        );
        let none = hijack_to_end(&api, "/v1.41/containers/alive/attach?stream=0&stdout=1");
        assert!(none.is_empty(), "{}: {none:?}", api.name);
        for n in ["alog", "alive"] {
            api.call("DELETE", &format!("/containers/{n}?force=1"), None);
        }
    }
}
