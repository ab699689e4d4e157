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
    use std::io::Read;
    let (mut s, mut got) = hijack(api, path, "");
    s.read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("{}: {path}: the stream did not close: {e}", api.name));
    got
}

/// Opens a hijacked stream (`body`: JSON, may be empty); returns it with the stream bytes
/// read along with the response head.
fn hijack(
    api: &common::sdk::Api,
    path: &str,
    body: &str,
) -> (std::os::unix::net::UnixStream, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&api.sock).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let at = loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = s.read(&mut buf).expect("response head");
        assert!(n > 0, "{}: {path}: closed before a response", api.name);
        got.extend_from_slice(&buf[..n]);
    };
    assert!(
        got.starts_with(b"HTTP/1.1 101") || got.starts_with(b"HTTP/1.1 200"),
        "{}: {}",
        api.name,
        String::from_utf8_lossy(&got[..at])
    );
    let rest = got.split_off(at + 4);
    (s, rest)
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

/// Creates and starts `name` running `cmd` (JSON body extras merged in).
fn run_bg(api: &common::sdk::Api, name: &str, body: serde_json::Value) {
    let a = api.call_json("POST", &format!("/containers/create?name={name}"), &body);
    assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
    let a = api.call("POST", &format!("/containers/{name}/start"), None);
    assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
}

fn exec_create(api: &common::sdk::Api, name: &str, body: serde_json::Value) -> String {
    let a = api.call_json("POST", &format!("/containers/{name}/exec"), &body);
    assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
    a.body["Id"].as_str().expect("exec id").to_string()
}

/// `POST /exec/{id}/start` frames by the start body's `Tty`: an exec made without a tty but
/// started with `Tty: true` streams raw; one made with a tty but started without gets its
/// output in stdout frames.
#[test]
fn exec_start_frames_by_the_start_body_tty() {
    use std::io::Read;
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        run_bg(&api, "xf", json!({"Image":"busybox","Cmd":["sleep","300"]}));
        let id = exec_create(
            &api,
            "xf",
            json!({"AttachStdout":true,"AttachStderr":true,"Tty":false,
                   "Cmd":["sh","-c","echo out; sleep 0.1; echo err >&2"]}),
        );
        let (mut s, mut got) = hijack(&api, &format!("/exec/{id}/start"), r#"{"Tty":true}"#);
        s.read_to_end(&mut got).expect("exec stream");
        assert_eq!(
            String::from_utf8_lossy(&got),
            "out\n",
            "{}: a tty start of a non-tty exec is raw, without its stderr",
            api.name
        );
        let id = exec_create(
            &api,
            "xf",
            json!({"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["echo","hi"]}),
        );
        let (mut s, mut got) = hijack(&api, &format!("/exec/{id}/start"), r#"{"Tty":false}"#);
        s.read_to_end(&mut got).expect("exec stream");
        let text: String = frames(&got)
            .into_iter()
            .map(|(n, t)| {
                assert_eq!(n, 1, "{}: tty output is stdout", api.name);
                t
            })
            .collect();
        assert_eq!(text, "hi\r\n", "{}", api.name);
        api.call("DELETE", "/containers/xf?force=1", None);
    }
}

/// Reads from `s` until `want` shows up (or the timeout).
fn read_until(s: &mut std::os::unix::net::UnixStream, got: &mut Vec<u8>, want: &str) -> bool {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    let t0 = std::time::Instant::now();
    while !String::from_utf8_lossy(got).contains(want) {
        if t0.elapsed() > std::time::Duration::from_secs(15) {
            return false;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// The server detaches an API attach or exec hijack of a tty when the client types the
/// detach keys (`detachKeys`, else ctrl-p,ctrl-q): the stream closes, the process runs on.
/// Bad keys are refused before the upgrade.
#[test]
fn detach_keys_close_the_stream_and_the_process_runs_on() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let apis = engines(&d, dk.as_ref());
    for api in &apis {
        let tty = json!({"Image":"busybox","Cmd":["sh"],"Tty":true,"OpenStdin":true,
                         "AttachStdin":true,"AttachStdout":true});
        run_bg(api, "dk1", tty);
        for (keys, seq) in [("&detachKeys=ctrl-x", &b"\x18"[..]), ("", &b"\x10\x11"[..])] {
            let path = format!("/containers/dk1/attach?stream=1&stdin=1&stdout=1{keys}");
            let (mut s, mut got) = hijack(api, &path, "");
            s.write_all(b"echo at$((40+2))\n").expect("type");
            assert!(
                read_until(&mut s, &mut got, "at42"),
                "{}: {keys}: {:?}",
                api.name,
                String::from_utf8_lossy(&got)
            );
            s.write_all(seq).expect("detach keys");
            let mut rest = Vec::new();
            s.read_to_end(&mut rest)
                .unwrap_or_else(|e| panic!("{}: {keys}: attach did not end: {e}", api.name));
            let st = api.call("GET", "/containers/dk1/json", None).body["State"].clone();
            assert_eq!(st["Running"], json!(true), "{}: {keys}: {st}", api.name);
        }
        let id = exec_create(
            api,
            "dk1",
            json!({"AttachStdin":true,"AttachStdout":true,"Tty":true,"DetachKeys":"ctrl-a,b",
                   "Cmd":["sh"]}),
        );
        let (mut s, mut got) = hijack(api, &format!("/exec/{id}/start"), r#"{"Tty":true}"#);
        s.write_all(b"echo ex$((1+2))\n").expect("type");
        assert!(read_until(&mut s, &mut got, "ex3"), "{}", api.name);
        s.write_all(b"\x01b").expect("detach keys");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .unwrap_or_else(|e| panic!("{}: exec did not detach: {e}", api.name));
        // dockerd 20.10 records such an exec as ended (126); the issue asks that it runs on
        if api.name == "berthd" {
            let e = api.call("GET", &format!("/exec/{id}/json"), None).body;
            assert_eq!(e["Running"], json!(true), "{}: {e}", api.name);
        }
        api.call("DELETE", "/containers/dk1?force=1", None);
    }
    // before any upgrade: docker's 400 and text
    let bad = "/containers/dk0/attach?stream=1&stdin=1&detachKeys=ctrl-foo";
    for api in &apis {
        run_bg(
            api,
            "dk0",
            json!({"Image":"busybox","Cmd":["sleep","60"],"Tty":true,"OpenStdin":true}),
        );
    }
    // (dockerd answers on the connection it took over: the bare text as a raw stream; the
    // same for a container that does not exist)
    for (path, status, text) in [
        (bad, 400, "Invalid detach keys (ctrl-foo) provided\r\n"),
        (
            "/containers/nosuch/attach?stream=1&stdout=1",
            404,
            "No such container: nosuch\r\n",
        ),
    ] {
        for api in &apis {
            let a = api.call("POST", path, None);
            assert_eq!(
                (a.status, String::from_utf8_lossy(&a.raw).into_owned()),
                (status, text.to_string()),
                "{}: {path}",
                api.name
            );
        }
    }
    for api in &apis {
        api.call("DELETE", "/containers/dk0?force=1", None);
    }
}

/// A stopped container's archive endpoints see its volumes and binds (docker mounts them for
/// the copy): a file its volume holds is read, a file put lands in the volume, a `:ro` bind
/// refuses a put; and no mount of the copy is left on the host.
#[test]
fn archive_of_a_stopped_container_sees_its_volumes() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let host = common::tmpdir("cpvol");
    std::fs::write(host.join("onhost"), "from host\n").expect("write");
    for api in engines(&d, dk.as_ref()) {
        let vol = format!("cpv{}", api.name);
        let body = json!({"Image":"busybox","Cmd":["sh","-c","echo in volume > /data/f"],
            "HostConfig":{"Binds":[format!("{vol}:/data"), format!("{}:/ro:ro", host.display())]}});
        run_bg(&api, "cpstop", body);
        assert_eq!(
            api.call("POST", "/containers/cpstop/wait", None).status,
            200
        );
        let a = api.call("GET", "/containers/cpstop/archive?path=/data/f", None);
        assert_eq!(a.status, 200, "{}: {:?}", api.name, a.body);
        let mut ar = tar::Archive::new(&a.raw[..]);
        let mut found = String::new();
        for e in ar.entries().expect("tar") {
            let mut e = e.expect("entry");
            std::io::Read::read_to_string(&mut e, &mut found).expect("read");
        }
        assert_eq!(found, "in volume\n", "{}", api.name);
        let a = api.call("HEAD", "/containers/cpstop/archive?path=/ro/onhost", None);
        assert_eq!(a.status, 200, "{}: bind of a stopped container", api.name);
        // put a file into the volume, read it from a new container on the same volume
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        t.append_data(&mut h, "put", &b"put\n"[..]).expect("tar");
        let data = t.into_inner().expect("tar");
        let a = api.call_bytes(
            "PUT",
            "/containers/cpstop/archive?path=/data",
            Some(&data),
            "application/x-tar",
        );
        assert_eq!(a.status, 200, "{}: {:?}", api.name, a.body);
        let a = api.call_bytes(
            "PUT",
            "/containers/cpstop/archive?path=/ro",
            Some(&data),
            "application/x-tar",
        );
        assert!(
            a.status == 403 || a.status == 500,
            "{}: a put into a :ro bind: {} {:?}",
            api.name,
            a.status,
            a.body
        );
        assert!(
            !host.join("put").exists(),
            "{}: wrote through :ro",
            api.name
        );
        let body = json!({"Image":"busybox","Cmd":["cat","/data/put"],
            "HostConfig":{"Binds":[format!("{vol}:/data")]}});
        run_bg(&api, "cpread", body);
        assert_eq!(
            api.call("POST", "/containers/cpread/wait", None).status,
            200
        );
        let logs = api.call("GET", "/containers/cpread/logs?stdout=1", None);
        assert!(
            String::from_utf8_lossy(&logs.raw).contains("put\n"),
            "{}: the put file is not in the volume: {:?}",
            api.name,
            logs.body
        );
        for n in ["cpstop", "cpread"] {
            api.call("DELETE", &format!("/containers/{n}?force=1"), None);
        }
        api.call("DELETE", &format!("/volumes/{vol}"), None);
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = d.root.to_string_lossy().into_owned();
    let left: Vec<&str> = mi
        .lines()
        .filter(|l| {
            let point = l.split(' ').nth(4).unwrap_or("");
            point.starts_with(&root)
                && (point.ends_with("/merged/data") || point.ends_with("/merged/ro"))
        })
        .collect();
    assert!(left.is_empty(), "mounts left after the copies: {left:?}");
    let _ = std::fs::remove_dir_all(&host);
}
