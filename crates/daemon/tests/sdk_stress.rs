//! Streams under load (issue 12, point 6): several clients at once run hundreds of short execs,
//! `run`s (attach + start) and attaches, through raw HTTP hijacks as the SDKs and the docker CLI
//! do them and through the docker CLI itself; the output and exit code of every one is checked.
//! Sizes: `BERTH_STRESS_THREADS` clients (default 3) × `BERTH_STRESS_N` execs each (default 150;
//! runs, attaches and CLI calls use a fraction of it).

mod common;
use common::{eventually, Daemon};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn threads() -> usize {
    env_num("BERTH_STRESS_THREADS", 3).max(1)
}

fn per_thread() -> usize {
    env_num("BERTH_STRESS_N", 150).max(1)
}

/// A request on a fresh connection; (status, body) read until the server closes.
fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, Vec<u8>), String> {
    let (st, _, b) = d.http(method, path, body);
    Ok((st, b))
}

/// Sends a request that asks for `Upgrade: tcp` (as the docker CLI and the SDKs do) and returns
/// the connection after the 101 head, with any stream bytes that came with the head.
fn hijack(d: &Daemon, path: &str, body: &str) -> Result<(UnixStream, Vec<u8>), String> {
    let mut s = UnixStream::connect(&d.sock).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("read head: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed before the head: {}",
                String::from_utf8_lossy(&head)
            ));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = head.split_off(p + 4);
            let text = String::from_utf8_lossy(&head);
            if !text.starts_with("HTTP/1.1 101") {
                return Err(format!(
                    "no upgrade: {text}{}",
                    String::from_utf8_lossy(&rest)
                ));
            }
            return Ok((s, rest));
        }
    }
}

/// Reads the hijacked stream to its end.
fn read_all(mut s: UnixStream, mut got: Vec<u8>) -> Result<Vec<u8>, String> {
    s.read_to_end(&mut got)
        .map_err(|e| format!("read stream: {e} (after {} bytes)", got.len()))?;
    Ok(got)
}

/// Splits docker's multiplexed stream into (stdout, stderr).
fn demux(mut b: &[u8]) -> Result<(String, String), String> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while !b.is_empty() {
        if b.len() < 8 {
            return Err(format!("truncated frame header {b:?}"));
        }
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b.len() < 8 + n {
            return Err(format!("truncated frame {b:?}"));
        }
        match b[0] {
            1 => out.extend_from_slice(&b[8..8 + n]),
            2 => err.extend_from_slice(&b[8..8 + n]),
            k => return Err(format!("bad stream kind {k}")),
        }
        b = &b[8 + n..];
    }
    Ok((
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    ))
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_default()
}

/// One exec as the SDKs do it: create, start with a hijack, read to the end, inspect.
fn exec_once(d: &Daemon, cid: &str, tag: &str, code: i32) -> Result<(), String> {
    let cmd = format!("echo out-{tag}; echo err-{tag} >&2; exit {code}");
    let body = serde_json::json!({
        "AttachStdout": true, "AttachStderr": true, "Cmd": ["sh", "-c", cmd]
    });
    let (st, b) = call(
        d,
        "POST",
        &format!("/containers/{cid}/exec"),
        Some(&body.to_string()),
    )?;
    if st != 201 {
        return Err(format!("exec create: {st} {}", String::from_utf8_lossy(&b)));
    }
    let id = json(&b)["Id"].as_str().unwrap_or_default().to_string();
    let (s, rest) = hijack(
        d,
        &format!("/exec/{id}/start"),
        r#"{"Detach":false,"Tty":false}"#,
    )?;
    let raw = read_all(s, rest)?;
    let (out, err) = demux(&raw)?;
    if out != format!("out-{tag}\n") || err != format!("err-{tag}\n") {
        return Err(format!("exec {tag}: stdout {out:?} stderr {err:?}"));
    }
    let (st, b) = call(d, "GET", &format!("/exec/{id}/json"), None)?;
    let v = json(&b);
    if st != 200 || v["ExitCode"] != code || v["Running"] != false {
        return Err(format!("exec {tag}: inspect {st} {v}"));
    }
    Ok(())
}

/// One `run` as the docker CLI does it: create, attach (hijack), start, read to the end, wait,
/// remove.
fn run_once(d: &Daemon, tag: &str, code: i32) -> Result<(), String> {
    let cmd = format!("echo out-{tag}; echo err-{tag} >&2; exit {code}");
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["sh", "-c", cmd],
        "AttachStdout": true, "AttachStderr": true
    });
    let (st, b) = call(d, "POST", "/containers/create", Some(&body.to_string()))?;
    if st != 201 {
        return Err(format!("create: {st} {}", String::from_utf8_lossy(&b)));
    }
    let id = json(&b)["Id"].as_str().unwrap_or_default().to_string();
    let (s, rest) = hijack(
        d,
        &format!("/containers/{id}/attach?stream=1&stdout=1&stderr=1"),
        "",
    )?;
    let (st, b) = call(d, "POST", &format!("/containers/{id}/start"), None)?;
    if st != 204 {
        return Err(format!("start: {st} {}", String::from_utf8_lossy(&b)));
    }
    let raw = read_all(s, rest)?;
    let (out, err) = demux(&raw)?;
    let (st, b) = call(d, "POST", &format!("/containers/{id}/wait"), None)?;
    let _ = call(d, "DELETE", &format!("/containers/{id}?force=1"), None);
    if out != format!("out-{tag}\n") || err != format!("err-{tag}\n") {
        return Err(format!("run {tag}: stdout {out:?} stderr {err:?}"));
    }
    if st != 200 || json(&b)["StatusCode"] != code {
        return Err(format!(
            "run {tag}: wait {st} {}",
            String::from_utf8_lossy(&b)
        ));
    }
    Ok(())
}

/// Attach to a running container that waits for a line and answers it.
fn attach_once(d: &Daemon, tag: &str) -> Result<(), String> {
    let body = serde_json::json!({
        "Image": "busybox", "Cmd": ["sh", "-c", "read l; echo got-$l; echo err-$l >&2"],
        "OpenStdin": true, "AttachStdin": true, "AttachStdout": true, "AttachStderr": true
    });
    let (st, b) = call(d, "POST", "/containers/create", Some(&body.to_string()))?;
    if st != 201 {
        return Err(format!("create: {st} {}", String::from_utf8_lossy(&b)));
    }
    let id = json(&b)["Id"].as_str().unwrap_or_default().to_string();
    let (st, b) = call(d, "POST", &format!("/containers/{id}/start"), None)?;
    if st != 204 {
        return Err(format!("start: {st} {}", String::from_utf8_lossy(&b)));
    }
    let (mut s, rest) = hijack(
        d,
        &format!("/containers/{id}/attach?stream=1&stdin=1&stdout=1&stderr=1"),
        "",
    )?;
    s.write_all(format!("{tag}\n").as_bytes())
        .map_err(|e| format!("write stdin: {e}"))?;
    let raw = read_all(s, rest)?;
    let (out, err) = demux(&raw)?;
    let (st, b) = call(d, "POST", &format!("/containers/{id}/wait"), None)?;
    let _ = call(d, "DELETE", &format!("/containers/{id}?force=1"), None);
    if out != format!("got-{tag}\n") || err != format!("err-{tag}\n") {
        return Err(format!("attach {tag}: stdout {out:?} stderr {err:?}"));
    }
    if st != 200 || json(&b)["StatusCode"] != 0 {
        return Err(format!(
            "attach {tag}: wait {st} {}",
            String::from_utf8_lossy(&b)
        ));
    }
    Ok(())
}

/// Runs `f(thread, i)` for `n` items on each of `threads()` threads; returns the failures.
fn hammer(n: usize, f: impl Fn(usize, usize) -> Result<(), String> + Sync) -> Vec<String> {
    let fails = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads() {
            let (f, fails) = (&f, &fails);
            s.spawn(move || {
                for i in 0..n {
                    if let Err(e) = f(t, i) {
                        fails.lock().expect("fails").push(e);
                    }
                }
            });
        }
    });
    fails.into_inner().expect("fails")
}

fn report(what: &str, total: usize, fails: &[String]) {
    eprintln!("{what}: {} of {total} failed", fails.len());
    assert!(
        fails.is_empty(),
        "{what}: {} of {total} lost or wrong; first: {:#?}",
        fails.len(),
        &fails[..fails.len().min(8)]
    );
}

fn sleeper(d: &Daemon, name: &str) -> String {
    d.ok(&["run", "-d", "--name", name, "busybox", "sleep", "100000"])
        .trim()
        .to_string()
}

#[test]
fn exec_over_raw_hijacks_loses_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let cid = sleeper(&d, "sleeper");
    let n = per_thread();
    let fails = hammer(n, |t, i| {
        exec_once(&d, &cid, &format!("{t}-{i}"), (i % 4) as i32)
    });
    report("raw exec", n * threads(), &fails);
    // nothing is left running or half-recorded
    assert!(eventually(10, || {
        d.inspect("sleeper")["ExecIDs"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    }));
}

#[test]
fn run_and_attach_over_raw_hijacks_lose_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let n = (per_thread() / 5).max(5);
    let fails = hammer(n, |t, i| run_once(&d, &format!("{t}-{i}"), (i % 3) as i32));
    report("raw run", n * threads(), &fails);
    let fails = hammer(n, |t, i| attach_once(&d, &format!("{t}-{i}")));
    report("raw attach", n * threads(), &fails);
}

/// The docker CLI with stdin from `input` (None: /dev/null); (code, stdout, stderr).
fn docker_cli(d: &Daemon, args: &[&str], input: Option<&str>) -> (i32, String, String) {
    let mut c = Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker");
    if let Some(i) = input {
        let _ = c.stdin.take().expect("stdin").write_all(i.as_bytes());
    }
    let o = c.wait_with_output().expect("docker output");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn docker_cli_exec_run_attach_lose_nothing() {
    if !std::path::Path::new("/usr/local/bin/docker").exists() {
        eprintln!("skipping: the docker CLI is not installed");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    sleeper(&d, "sleeper");
    let check = |what: &str, got: (i32, String, String), code: i32, out: String, err: String| {
        if got != (code, out.clone(), err.clone()) {
            Err(format!("{what}: got {got:?}, want {:?}", (code, out, err)))
        } else {
            Ok(())
        }
    };
    let n = (per_thread() / 3).max(5);
    let fails = hammer(n, |t, i| {
        let tag = format!("{t}-{i}");
        let code = (i % 3) as i32;
        let sh = format!("echo out-{tag}; echo err-{tag} >&2; exit {code}");
        let got = docker_cli(&d, &["exec", "sleeper", "sh", "-c", &sh], None);
        check(
            "exec",
            got,
            code,
            format!("out-{tag}\n"),
            format!("err-{tag}\n"),
        )?;
        // with stdin attached
        let got = docker_cli(
            &d,
            &["exec", "-i", "sleeper", "sh", "-c", "read l; echo got-$l"],
            Some(&format!("{tag}\n")),
        );
        check("exec -i", got, 0, format!("got-{tag}\n"), String::new())
    });
    report("docker exec", n * threads(), &fails);
    let n = (per_thread() / 10).max(3);
    let fails = hammer(n, |t, i| {
        let tag = format!("{t}-{i}");
        let code = (i % 3) as i32;
        let sh = format!("echo out-{tag}; echo err-{tag} >&2; exit {code}");
        let got = docker_cli(&d, &["run", "--rm", "busybox", "sh", "-c", &sh], None);
        check(
            "run",
            got,
            code,
            format!("out-{tag}\n"),
            format!("err-{tag}\n"),
        )?;
        // start -a -i on a created container (attach before start, stdin sent early)
        let name = format!("a{tag}");
        let (c, _, e) = docker_cli(
            &d,
            &[
                "create",
                "-i",
                "--name",
                &name,
                "busybox",
                "sh",
                "-c",
                "read l; echo got-$l",
            ],
            None,
        );
        if c != 0 {
            return Err(format!("create {name}: {e}"));
        }
        let got = docker_cli(&d, &["start", "-a", "-i", &name], Some(&format!("{tag}\n")));
        let _ = docker_cli(&d, &["rm", "-f", &name], None);
        check("start -a -i", got, 0, format!("got-{tag}\n"), String::new())
    });
    report("docker run", n * threads(), &fails);
}

/// docker-py's `exec_run` from several threads: it parses the 101 head with a buffered reader and
/// then reads the raw socket, so output that reached the socket before the client read the head
/// was lost (issue 12.6). Skipped when the `docker` Python package is not installed.
#[test]
fn docker_py_exec_run_loses_nothing() {
    if !common::sdk::docker_py_available() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    sleeper(&d, "sleeper");
    let script = r#"
import docker, sys, threading
host, n, th = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lost = []
def work(t):
    c = docker.DockerClient(base_url=host)
    ct = c.containers.get("sleeper")
    for i in range(n):
        tag = f"{t}-{i}"
        r = ct.exec_run(["sh", "-c", f"echo {tag}; exit {i % 3}"])
        if r.output != (tag + "\n").encode() or r.exit_code != i % 3:
            lost.append((tag, r.exit_code, r.output))
ts = [threading.Thread(target=work, args=(t,)) for t in range(th)]
[x.start() for x in ts]
[x.join() for x in ts]
print(len(lost), n * th, lost[:8])
"#;
    let n = per_thread().to_string();
    let th = (threads() * 2).to_string();
    let out = common::sdk::run_docker_py(script, &[&d.host(), &n, &th]);
    eprintln!("docker-py exec_run: lost/total {out}");
    assert!(
        out.starts_with("0 "),
        "docker-py exec_run lost output: {out}"
    );
}
