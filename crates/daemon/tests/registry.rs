//! Registries: pull, push, login and search against a real registry server (Debian's
//! `docker-registry`, distribution 2.8) on loopback, through the docker CLI, docker-py and
//! raw API calls, side by side with a private dockerd for image IDs.

mod common;

use common::registry::Registry;
use common::{stderr, stdout, Daemon};

/// The JSON lines of a progress stream.
fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn statuses(v: &[serde_json::Value]) -> Vec<String> {
    v.iter()
        .filter_map(|m| m.get("status").and_then(|s| s.as_str()).map(String::from))
        .collect()
}

/// `POST path` (a pull or a push through the API): it must answer 200; the messages of
/// its progress stream.
fn stream_ok(d: &Daemon, path: &str) -> Vec<serde_json::Value> {
    let (st, _, body) = d.http("POST", path, None);
    assert_eq!(st, 200, "{path}: {}", String::from_utf8_lossy(&body));
    lines(&body)
}

fn image_id(d: &Daemon, name: &str) -> String {
    let (st, _, body) = d.http("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200, "{name}: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["Id"].as_str().expect("Id").to_string()
}

#[test]
fn push_then_pull_through_the_docker_cli() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("test/busybox:1");
    d.ok(&["tag", "busybox", &name]);
    let id = image_id(&d, "busybox");

    // push through the raw API: docker's messages
    let msgs = stream_ok(
        &d,
        &format!("/images/{}/push?tag=1", reg.image("test/busybox")),
    );
    let s = statuses(&msgs);
    assert_eq!(
        s[0],
        format!(
            "The push refers to repository [{}]",
            reg.image("test/busybox")
        )
    );
    assert!(s.iter().any(|x| x == "Preparing"), "{s:?}");
    assert!(s.iter().any(|x| x == "Pushed"), "{s:?}");
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let last = s
        .iter()
        .rfind(|x| x.starts_with("1: digest: sha256:"))
        .expect("digest line");
    let digest = last.split_whitespace().nth(2).expect("digest").to_string();
    let aux = msgs.iter().find_map(|m| m.get("aux")).expect("aux");
    assert_eq!(aux["Tag"], "1");
    assert_eq!(aux["Digest"], digest.as_str());

    // a second push: every layer already exists, same manifest digest
    let o = d.docker(&["push", &name]);
    if let Some(o) = o {
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("Layer already exists"), "{out}");
        assert!(out.contains(&format!("1: digest: {digest}")), "{out}");
    }

    // a fresh daemon pulls it with the docker CLI
    let d2 = Daemon::start();
    if let Some(o) = d2.docker(&["pull", &name]) {
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("Pull complete"), "{out}");
        assert!(out.contains(&format!("Digest: {digest}")), "{out}");
        assert!(
            out.contains(&format!("Status: Downloaded newer image for {name}")),
            "{out}"
        );
    } else {
        let (st, _, body) = d2.http(
            "POST",
            &format!(
                "/images/create?fromImage={}&tag=1",
                reg.image("test/busybox")
            ),
            None,
        );
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        image_id(&d2, &name),
        id,
        "the image ID survives the round trip"
    );
    let (st, _, body) = d2.http("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["RepoDigests"],
        serde_json::json!([format!("{}@{digest}", reg.image("test/busybox"))])
    );
    // it runs
    let out = d2.ok(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(out.trim(), "pulled");

    // run of an image that is not here pulls it (the CLI's create → 404 → pull → create)
    let d3 = Daemon::start();
    if let Some(o) = d3.docker(&["run", "--rm", &name, "echo", "auto"]) {
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert_eq!(stdout(&o).trim(), "auto");
        assert!(
            stderr(&o).contains(&format!("Unable to find image '{name}' locally")),
            "{}",
            stderr(&o)
        );
    }
    // docker-py pushes too (a new tag): the aux message carries the digest
    d3.ok(&["tag", &name, &reg.image("test/busybox:py")]);
    let o = docker_py(
        &d3,
        &format!(
            "aux = [l['aux'] for l in c.images.push('{}', tag='py', stream=True, decode=True) if 'aux' in l]\nprint(aux[0]['Tag'], aux[0]['Digest'])",
            reg.image("test/busybox")
        ),
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("py {digest}"));

    // a re-pull is up to date and fetches nothing
    let s = statuses(&stream_ok(
        &d2,
        &format!(
            "/images/create?fromImage={}&tag=1",
            reg.image("test/busybox")
        ),
    ));
    assert_eq!(
        s.last().map(String::as_str),
        Some(format!("Status: Image is up to date for {name}").as_str()),
        "{s:?}"
    );
    assert!(!s.iter().any(|x| x == "Downloading"), "{s:?}");

    // rmi of the last tag takes the digest reference with it, as docker does
    if let Some(o) = d2.docker(&["rmi", &name]) {
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(&format!("Untagged: {name}")), "{out}");
        assert!(
            out.contains(&format!("Untagged: {}@{digest}", reg.image("test/busybox"))),
            "{out}"
        );
        assert!(out.contains("Deleted: sha256:"), "{out}");
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// A one-layer image made here: (config, layer tar, gzipped layer).
fn tiny_image(marker: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let data = format!("{marker}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "marker", data.as_bytes())
        .expect("tar");
    let tar = b.into_inner().expect("tar");
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut e = flate2_gz(&mut gz);
        e.write_all(&tar).expect("gz");
    }
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","config":{{"Cmd":["cat","/marker"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        sha256(&tar)
    );
    (config.into_bytes(), tar, gz)
}

/// gzip through the `gzip` binary (no compression crate among the test's dependencies).
fn flate2_gz(out: &mut Vec<u8>) -> GzipCmd<'_> {
    GzipCmd {
        out,
        input: Vec::new(),
    }
}

struct GzipCmd<'a> {
    out: &'a mut Vec<u8>,
    input: Vec<u8>,
}

impl std::io::Write for GzipCmd<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.input.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GzipCmd<'_> {
    fn drop(&mut self) {
        use std::io::Write;
        let mut c = std::process::Command::new("gzip")
            .arg("-cn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(&self.input)
            .expect("write gzip");
        let o = c.wait_with_output().expect("gzip");
        *self.out = o.stdout;
    }
}

/// A registry that misbehaves on purpose, on 127.0.0.1: `/v2/<mode>/…` serves one tiny image
/// whose layer blob is answered per mode: `ok`, `e500` (500), `trunc` (half, then the
/// connection closes), `stall` (headers, a few bytes, then nothing), `bad` (other bytes of
/// the right length).
struct BadRegistry {
    addr: String,
    layer_requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BadRegistry {
    fn start() -> BadRegistry {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        // one image per mode (the layer differs), so no pull finds its layer present
        let mut images = std::collections::HashMap::new();
        for mode in ["ok", "e500", "trunc", "stall", "bad"] {
            let (config, _tar, gz) = tiny_image(mode);
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
                config.len(),
                sha256(&config),
                gz.len(),
                sha256(&gz)
            );
            images.insert(mode.to_string(), (manifest, config, gz));
        }
        let images = std::sync::Arc::new(images);
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let layer_requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (lr, st) = (layer_requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let (images, lr, st) = (images.clone(), lr.clone(), st.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().expect("clone"));
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let head = line.starts_with("HEAD");
                        let mode = path.split('/').nth(2).unwrap_or("").to_string();
                        let Some((manifest, config, gz)) = images.get(&mode).cloned() else {
                            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{{}}");
                            continue;
                        };
                        let (cd, ld) = (sha256(&config), sha256(&gz));
                        let send = |s: &mut std::net::TcpStream,
                                    status: &str,
                                    ctype: &str,
                                    body: &[u8]| {
                            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nDocker-Distribution-Api-Version: registry/2.0\r\n\r\n", body.len());
                            if !head {
                                let _ = s.write_all(body);
                            }
                        };
                        if path == "/v2/" {
                            send(&mut s, "200 OK", "application/json", b"{}");
                        } else if path.contains("/manifests/") {
                            send(
                                &mut s,
                                "200 OK",
                                "application/vnd.docker.distribution.manifest.v2+json",
                                manifest.as_bytes(),
                            );
                        } else if path.ends_with(&cd) {
                            send(&mut s, "200 OK", "application/octet-stream", &config);
                        } else if path.ends_with(&ld) {
                            lr.fetch_add(1, Ordering::SeqCst);
                            match mode.as_str() {
                                "e500" => send(
                                    &mut s,
                                    "500 Internal Server Error",
                                    "application/json",
                                    br#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#,
                                ),
                                "trunc" => {
                                    let _ = write!(
                                        s,
                                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                        gz.len()
                                    );
                                    let _ = s.write_all(&gz[..gz.len() / 2]);
                                    return;
                                }
                                "stall" => {
                                    let _ = write!(
                                        s,
                                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                                        gz.len()
                                    );
                                    let _ = s.write_all(&gz[..10]);
                                    let _ = s.flush();
                                    while !st.load(Ordering::SeqCst) {
                                        std::thread::sleep(std::time::Duration::from_millis(100));
                                    }
                                    return;
                                }
                                "bad" => {
                                    let mut other = gz.clone();
                                    let n = other.len();
                                    other[n / 2] ^= 0xff;
                                    send(&mut s, "200 OK", "application/octet-stream", &other);
                                }
                                _ => send(&mut s, "200 OK", "application/octet-stream", &gz),
                            }
                        } else {
                            send(&mut s, "404 Not Found", "application/json", br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#);
                        }
                    }
                });
            }
        });
        BadRegistry {
            addr,
            layer_requests,
            stop,
        }
    }
}

impl Drop for BadRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // wake the accept loop
        let _ = std::net::TcpStream::connect(&self.addr);
    }
}

/// What must stay empty after a failed pull: staging files and temp layers.
fn leftovers(d: &Daemon) -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["data/image/tmp", "data/tmp"] {
        if let Ok(rd) = std::fs::read_dir(d.root.join(dir)) {
            out.extend(rd.flatten().map(|e| e.path().display().to_string()));
        }
    }
    if let Ok(rd) = std::fs::read_dir(d.root.join("data/overlay2")) {
        out.extend(
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("tmp-"))
                .map(|e| e.path().display().to_string()),
        );
    }
    out
}

fn layer_count(d: &Daemon) -> usize {
    std::fs::read_dir(d.root.join("data/overlay2"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("diff_id").exists())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn bad_registries_lose_nothing() {
    let bad = BadRegistry::start();
    let d = Daemon::start_args(&["--registry-timeout", "2"]);
    // the good path first: the server's image pulls and runs
    let msgs = stream_ok(
        &d,
        &format!("/images/create?fromImage={}/ok/img&tag=1", bad.addr),
    );
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let s = statuses(&msgs);
    for want in [
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    ] {
        assert!(s.iter().any(|x| x == want), "{want} missing in {s:?}");
    }
    let dl = msgs
        .iter()
        .find(|m| m["status"] == "Downloading")
        .expect("downloading");
    assert!(
        dl["progressDetail"]["total"].as_u64().unwrap_or(0) > 0,
        "{dl}"
    );
    assert!(
        dl["progress"].as_str().unwrap_or("").starts_with('['),
        "{dl}"
    );
    let old_id = image_id(&d, &format!("{}/ok/img:1", bad.addr));
    let layers_before = layer_count(&d);

    // each bad answer: an error message in the stream, nothing new registered, the old
    // image under the same name untouched
    for (mode, want) in [
        ("e500", "boom"),
        ("trunc", "end of file"),
        ("stall", "timeout"),
        ("bad", "filesystem layer verification failed"),
    ] {
        let name = format!("{}/{mode}/img", bad.addr);
        d.ok(&[
            "tag",
            &format!("{}/ok/img:1", bad.addr),
            &format!("{name}:1"),
        ]);
        // another marker: a different layer to fetch
        let t0 = std::time::Instant::now();
        let (st, _, body) = d.http(
            "POST",
            &format!("/images/create?fromImage={name}&tag=2"),
            None,
        );
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "{mode} took {:?}",
            t0.elapsed()
        );
        let text = String::from_utf8_lossy(&body).to_string();
        if st == 200 {
            let msgs = lines(&body);
            let err = msgs
                .iter()
                .rev()
                .find_map(|m| m.get("error"))
                .unwrap_or_else(|| panic!("{mode}: no error in {text}"));
            let detail = msgs
                .iter()
                .rev()
                .find_map(|m| m.get("errorDetail"))
                .expect("errorDetail");
            assert_eq!(detail["message"], *err);
            assert!(err.as_str().unwrap_or("").contains(want), "{mode}: {err}");
        } else {
            assert!(text.contains(want), "{mode}: {st} {text}");
        }
        let (st, _, _) = d.http("GET", &format!("/images/{name}:2/json"), None);
        assert_eq!(st, 404, "{mode}: a failed pull registered an image");
        assert_eq!(image_id(&d, &format!("{name}:1")), old_id, "{mode}");
        assert_eq!(leftovers(&d), Vec::<String>::new(), "{mode}");
    }
    // the same layer (all modes serve one image): no layer was added by the failures
    assert_eq!(layer_count(&d), layers_before);
}

#[test]
fn berthd_killed_mid_pull_registers_nothing() {
    let bad = BadRegistry::start();
    let mut d = Daemon::start_args(&["--registry-timeout", "60"]);
    let layers_before = layer_count(&d);
    let sock = d.sock.clone();
    let name = format!("{}/stall/img", bad.addr);
    let path = format!("/images/create?fromImage={name}&tag=1");
    let puller = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        let _ = write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    });
    assert!(
        common::eventually(20, || bad
            .layer_requests
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0),
        "the pull never asked for the layer"
    );
    // the layer is half-way: staging file and temp layer exist now
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.kill9();
    let _ = puller.join();
    let d = d.restarted(&[]);
    let (st, _, _) = d.http("GET", &format!("/images/{name}:1/json"), None);
    assert_eq!(st, 404, "a killed pull registered its image");
    assert_eq!(leftovers(&d), Vec::<String>::new());
    assert_eq!(layer_count(&d), layers_before);
    // and the same pull works once the registry behaves (the ok image of the same server)
    let (st, _, body) = d.http(
        "POST",
        &format!("/images/create?fromImage={}/ok/img&tag=1", bad.addr),
        None,
    );
    assert_eq!(st, 200);
    assert!(lines(&body).iter().all(|m| m.get("error").is_none()));
    image_id(&d, &format!("{}/ok/img:1", bad.addr));
    assert_eq!(layer_count(&d), layers_before + 1);
}

#[test]
fn errors_before_the_stream_are_http_statuses_like_dockerd() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    // a missing manifest: 404 with dockerd's text
    let (st, _, body) = d.http(
        "POST",
        &format!(
            "/images/create?fromImage={}&tag=latest",
            reg.image("nosuch")
        ),
        None,
    );
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["message"],
        format!(
            "manifest for {}:latest not found: manifest unknown: manifest unknown",
            reg.image("nosuch")
        )
    );
    if let Some(o) = d.docker(&["pull", &reg.image("nosuch:tag")]) {
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!("Error response from daemon: manifest for {}:tag not found: manifest unknown: manifest unknown", reg.image("nosuch"))),
            "{}",
            stderr(&o)
        );
    }
    // invalid references
    let (st, _, body) = d.http("POST", "/images/create?fromImage=a%40sha256%3Aabc", None);
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("invalid reference format"));
    // docker.io is not reachable from here: an error within seconds, never a hang
    let t0 = std::time::Instant::now();
    let (st, _, body) = d.http(
        "POST",
        "/images/create?fromImage=berth-no-such-image&tag=latest",
        None,
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(25),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(st, 500, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("registry-1.docker.io"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // create of a missing image is a 404 (so the CLI pulls)
    let (st, _, body) = d.http(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"berth-missing-image"}"#),
    );
    assert_eq!(st, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("No such image: berth-missing-image:latest"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // push of an image that is not here
    if let Some(o) = d.docker(&["push", &reg.image("nosuch")]) {
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!(
                "An image does not exist locally with the tag: {}",
                reg.image("nosuch")
            )),
            "{}",
            stderr(&o)
        );
    }
}

fn docker_py(d: &Daemon, code: &str) -> std::process::Output {
    std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import docker, json, sys\nc = docker.DockerClient(base_url='{}')\n{code}",
            d.host()
        ))
        .output()
        .expect("python3")
}

#[test]
fn htpasswd_registry_login_push_pull() {
    let Some(reg) = Registry::start_htpasswd("berthuser", "s3cret") else {
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("private/bb:1");
    d.ok(&["tag", "busybox", &name]);
    let Some(o) = d.docker(&["login", "-u", "berthuser", "-p", "wrong", &reg.addr]) else {
        return;
    };
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            reg.addr
        )),
        "{}",
        stderr(&o)
    );
    // without credentials: dockerd's error
    let o = d.docker(&["push", &name]).expect("docker");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no basic auth credentials"),
        "{}",
        stderr(&o)
    );
    let o = d
        .docker(&["login", "-u", "berthuser", "-p", "s3cret", &reg.addr])
        .expect("docker");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Login Succeeded"), "{}", stdout(&o));
    // the CLI now sends X-Registry-Auth
    let o = d.docker(&["push", &name]).expect("docker");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1: digest: sha256:"), "{}", stdout(&o));
    // docker-py: login, pull with the credentials, and a wrong password
    let d2 = Daemon::start();
    let o = docker_py(
        &d2,
        &format!(
            "try:\n    c.login(username='berthuser', password='nope', registry='{a}')\n    print('no error')\nexcept docker.errors.APIError as e:\n    print('denied', e.status_code)\nr = c.login(username='berthuser', password='s3cret', registry='{a}')\nprint(r['Status'])\nimg = c.images.pull('{n}', auth_config={{'username': 'berthuser', 'password': 's3cret'}})\nprint(img.id)\ntry:\n    c.images.pull('{a}/private/bb', tag='1', auth_config={{'username': 'berthuser', 'password': 'bad'}})\nexcept docker.errors.APIError as e:\n    print('pull denied')",
            a = reg.addr,
            n = name
        ),
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(out.contains("denied 401"), "{out}");
    assert!(out.contains("Login Succeeded"), "{out}");
    assert!(out.contains(&image_id(&d, "busybox")), "{out}");
    assert!(out.contains("pull denied"), "{out}");
}

/// A token server for the registry's `auth: token:` scheme: checks Basic credentials and
/// answers a JWT (RS256, signed with `openssl`, its certificate in the `x5c` header and in the
/// registry's root bundle) granting the scopes asked for. Records the scopes, counts the
/// tokens it gave, says they last `expires_in` seconds, and signs with one of two keys
/// (`cert.pem`, `cert2.pem`): a registry restarted to trust only the other one refuses the
/// tokens given before, as if they were revoked.
struct TokenServer {
    realm: String,
    dir: std::path::PathBuf,
    scopes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    expires_in: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// 0: key.pem, 1: key2.pem
    key: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl TokenServer {
    fn start(user: &str, pass: &str) -> TokenServer {
        use base64::Engine as _;
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let dir = common::tmpdir("tok");
        let mut x5c = Vec::new();
        for (key, cert) in [("key.pem", "cert.pem"), ("key2.pem", "cert2.pem")] {
            let st = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    "/CN=berth-token",
                ])
                .arg("-keyout")
                .arg(dir.join(key))
                .arg("-out")
                .arg(dir.join(cert))
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl");
            assert!(st.success());
            let der = std::process::Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(dir.join(cert))
                .output()
                .expect("openssl x509")
                .stdout;
            x5c.push(base64::engine::general_purpose::STANDARD.encode(der));
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let realm = format!("http://{}/token", l.local_addr().expect("addr"));
        let scopes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let expires_in = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(600));
        let key_idx = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (sc, is, ex, ki) = (
            scopes.clone(),
            issued.clone(),
            expires_in.clone(),
            key_idx.clone(),
        );
        let keys = [dir.join("key.pem"), dir.join("key2.pem")];
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        );
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    continue;
                }
                let mut authz = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some(v) = h
                        .strip_prefix("Authorization: ")
                        .or_else(|| h.strip_prefix("authorization: "))
                    {
                        authz = v.trim().to_string();
                    }
                }
                if authz != want {
                    let _ = write!(s, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 55\r\nConnection: close\r\n\r\n{{\"errors\":[{{\"code\":\"UNAUTHORIZED\",\"message\":\"bad\"}}]}}");
                    continue;
                }
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let query = target.split_once('?').map(|x| x.1).unwrap_or("");
                let mut access = Vec::new();
                for kv in query.split('&') {
                    if let Some(v) = kv.strip_prefix("scope=") {
                        let v = v
                            .replace("%3A", ":")
                            .replace("%2C", ",")
                            .replace("%2F", "/");
                        sc.lock().expect("lock").push(v.clone());
                        let parts: Vec<&str> = v.split(':').collect();
                        if parts.len() == 3 {
                            access.push(serde_json::json!({"type": parts[0], "name": parts[1], "actions": parts[2].split(',').collect::<Vec<_>>()}));
                        }
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("time")
                    .as_secs();
                let k = ki.load(Ordering::SeqCst).min(1);
                let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c[k]]});
                let n = is.fetch_add(1, Ordering::SeqCst);
                let claims = serde_json::json!({"iss": "berth-issuer", "sub": "berthuser", "aud": "berth-registry", "exp": now + 600, "nbf": now - 10, "iat": now, "jti": format!("{now}-{n}"), "access": access});
                let signing_input = format!(
                    "{}.{}",
                    b64url(header.to_string().as_bytes()),
                    b64url(claims.to_string().as_bytes())
                );
                let mut c = std::process::Command::new("openssl")
                    .args(["dgst", "-sha256", "-sign"])
                    .arg(&keys[k])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("openssl dgst");
                c.stdin
                    .take()
                    .expect("stdin")
                    .write_all(signing_input.as_bytes())
                    .expect("sign input");
                let sig = c.wait_with_output().expect("sign").stdout;
                let token = format!("{signing_input}.{}", b64url(&sig));
                let body =
                    serde_json::json!({"token": token, "expires_in": ex.load(Ordering::SeqCst)})
                        .to_string();
                let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        TokenServer {
            realm,
            dir,
            scopes,
            issued,
            expires_in,
            key: key_idx,
        }
    }

    fn issued(&self) -> usize {
        self.issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The registry's `auth:` section trusting the key `cert` (`cert.pem` or `cert2.pem`).
    fn registry_auth(&self, cert: &str) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: berth-registry\n    issuer: berth-issuer\n    rootcertbundle: {}\n",
            self.realm,
            self.dir.join(cert).display()
        )
    }
}

#[test]
fn token_auth_registry() {
    let tok = TokenServer::start("berthuser", "t0ken");
    let cfg = format!(
        "auth:\n  token:\n    realm: {}\n    service: berth-registry\n    issuer: berth-issuer\n    rootcertbundle: {}\n",
        tok.realm,
        tok.dir.join("cert.pem").display()
    );
    let Some(mut reg) = Registry::start_with(&cfg) else {
        return;
    };
    reg.extra.push(tok.dir.clone());
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("tok/bb:1");
    d.ok(&["tag", "busybox", &name]);
    let Some(o) = d.docker(&["login", "-u", "berthuser", "-p", "nope", &reg.addr]) else {
        return;
    };
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = d
        .docker(&["login", "-u", "berthuser", "-p", "t0ken", &reg.addr])
        .expect("docker");
    assert!(o.status.success(), "{}{}", stderr(&o), reg.log());
    let o = d.docker(&["push", &name]).expect("docker");
    assert!(
        o.status.success(),
        "{}{}{}",
        stdout(&o),
        stderr(&o),
        reg.log()
    );
    assert!(stdout(&o).contains("Pushed"), "{}", stdout(&o));
    // pull into a fresh daemon with the same credentials
    let d2 = Daemon::start();
    let o = d2
        .docker(&["login", "-u", "berthuser", "-p", "t0ken", &reg.addr])
        .expect("docker");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d2.docker(&["pull", &name]).expect("docker");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(image_id(&d2, &name), image_id(&d, "busybox"));
    let scopes = tok.scopes.lock().expect("lock").clone();
    assert!(
        scopes.contains(&"repository:tok/bb:pull,push".to_string()),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"repository:tok/bb:pull".to_string()),
        "{scopes:?}"
    );
    // anonymous: the token server refuses, the pull fails with its text
    let d3 = Daemon::start();
    let (st, _, body) = d3.http(
        "POST",
        &format!("/images/create?fromImage={}&tag=1", reg.image("tok/bb")),
        None,
    );
    assert_eq!(st, 500, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// The requests in the registry's access log from line `from` on: `GET /v2/a/b/manifests/1`.
fn access_log(reg: &Registry, from: usize) -> Vec<String> {
    reg.log()
        .lines()
        .filter(|l| l.starts_with("127.0.0.1 - "))
        .skip(from)
        .filter_map(|l| {
            let req = l.split('"').nth(1)?;
            let mut w = req.split_whitespace();
            Some(format!("{} {}", w.next()?, w.next()?))
        })
        .collect()
}

/// Tags busybox as `name`, logs the docker CLI into `reg` as `user` and pushes `name`;
/// false when no docker CLI is installed.
fn login_and_push(d: &Daemon, reg: &Registry, name: &str, user: &str, password: &str) -> bool {
    d.ok(&["tag", "busybox", name]);
    let Some(o) = d.docker(&["login", "-u", user, "-p", password, &reg.addr]) else {
        return false;
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let o = d.docker(&["push", name]).expect("docker");
    assert!(o.status.success(), "{}{}", stderr(&o), reg.log());
    true
}

/// `POST /images/create` of `image:1` without credentials: status and body.
fn anonymous_pull(d: &Daemon, image: &str) -> (u16, String) {
    let (st, _, body) = d.http(
        "POST",
        &format!("/images/create?fromImage={image}&tag=1"),
        None,
    );
    (st, String::from_utf8_lossy(&body).into_owned())
}

fn count(reqs: &[String], what: &str) -> usize {
    reqs.iter().filter(|r| r.contains(what)).count()
}

/// A re-pull of an image that is here costs one manifest request: the registry's `/v2/`
/// challenge and the Bearer token are cached per registry, scope and credentials; the token's
/// `expires_in` is honoured (a new one after it); a token the registry no longer accepts
/// (restarted to trust another key: revoked) is dropped and the challenge redone once; and
/// another client's pull without credentials does not get the cached token.
#[test]
fn repull_is_one_manifest_request_with_cached_challenge_and_token() {
    use std::sync::atomic::Ordering;
    let tok = TokenServer::start("berthuser", "t0ken");
    tok.expires_in.store(6, Ordering::SeqCst);
    let Some(mut reg) = Registry::start_logged(&tok.registry_auth("cert.pem")) else {
        return;
    };
    reg.extra.push(tok.dir.clone());
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("tok/rp:1");
    if !login_and_push(&d, &reg, &name, "berthuser", "t0ken") {
        return;
    }
    let pull = |what: &str| {
        let o = d.docker(&["pull", &name]).expect("docker");
        assert!(o.status.success(), "{what}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(&format!("Status: Image is up to date for {name}")),
            "{what}: {}",
            stdout(&o)
        );
    };
    // the first pull: the push's challenge is reused, a token for the pull scope is fetched
    let (mark, issued) = (access_log(&reg, 0).len(), tok.issued());
    pull("first pull");
    let reqs = access_log(&reg, mark);
    assert_eq!(count(&reqs, "GET /v2/ "), 0, "{reqs:?}");
    assert_eq!(tok.issued(), issued + 1);
    // the re-pull: exactly one request, the manifest, and no token
    let (mark, issued) = (access_log(&reg, 0).len(), tok.issued());
    pull("re-pull");
    let reqs = access_log(&reg, mark);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(reqs[0].ends_with("/v2/tok/rp/manifests/1"), "{reqs:?}");
    assert_eq!(tok.issued(), issued, "the cached token was not used");
    // the token said it lasts 6 s: after that a new one, still one registry request
    std::thread::sleep(std::time::Duration::from_secs(6));
    let (mark, issued) = (access_log(&reg, 0).len(), tok.issued());
    pull("re-pull after expires_in");
    let reqs = access_log(&reg, mark);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(tok.issued(), issued + 1, "an expired token was reused");
    // revoked: the registry now trusts only the second key; the cached token (first key)
    // gets a 401, is dropped, and the challenge is redone once
    tok.key.store(1, Ordering::SeqCst);
    reg.restart_with(&tok.registry_auth("cert2.pem"), true);
    let (mark, issued) = (access_log(&reg, 0).len(), tok.issued());
    pull("re-pull with a revoked token");
    let reqs = access_log(&reg, mark);
    assert_eq!(tok.issued(), issued + 1, "{reqs:?}");
    assert_eq!(count(&reqs, "/manifests/1"), 2, "{reqs:?}");
    assert_eq!(count(&reqs, "/blobs/"), 0, "{reqs:?}");
    // and the new token is cached in turn
    let (mark, issued) = (access_log(&reg, 0).len(), tok.issued());
    pull("re-pull with the new token");
    assert_eq!(access_log(&reg, mark).len(), 1);
    assert_eq!(tok.issued(), issued);
    // no credentials: the token cached for berthuser is not used, the token server refuses
    let (st, body) = anonymous_pull(&d, &reg.image("tok/rp"));
    assert_eq!(st, 500, "{body}");
    assert!(body.contains("unauthorized"), "{body}");
}

/// The same against an htpasswd registry (Basic): the challenge is remembered, so a re-pull
/// is the manifest request alone; wrong credentials still fail as docker's do.
#[test]
fn repull_against_a_basic_auth_registry_is_one_request() {
    let dir = common::tmpdir("reg-htp");
    let out = std::process::Command::new("htpasswd")
        .args(["-Bbn", "bob", "pw"])
        .output()
        .expect("htpasswd (apache2-utils)");
    std::fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");
    let Some(mut reg) = Registry::start_logged(&format!(
        "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
        dir.join("htpasswd").display()
    )) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    reg.extra.push(dir);
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("basic/rp:1");
    if !login_and_push(&d, &reg, &name, "bob", "pw") {
        return;
    }
    for _ in 0..2 {
        let mark = access_log(&reg, 0).len();
        let o = d.docker(&["pull", &name]).expect("docker");
        assert!(o.status.success(), "{}", stderr(&o));
        let reqs = access_log(&reg, mark);
        assert_eq!(reqs, vec!["GET /v2/basic/rp/manifests/1".to_string()]);
    }
    // anonymous (no X-Registry-Auth): docker's text, the challenge being cached or not
    let (st, body) = anonymous_pull(&d, &reg.image("basic/rp"));
    assert_ne!(st, 200, "{body}");
    assert!(body.contains("no basic auth credentials"), "{body}");
}

/// An image behind an OCI index: the first pull fetches the index, the platform's manifest
/// and the blobs; a re-pull fetches the index alone (the platform's manifest is the one the
/// store kept, checked against the index's digest).
#[test]
fn repull_of_an_index_asks_for_the_index_alone() {
    use std::io::{Read, Write};
    let Some(reg) = Registry::start_logged("") else {
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&["tag", "busybox", &reg.image("idx/bb:single")]);
    let (st, _, body) = d.http(
        "POST",
        &format!("/images/{}/push?tag=single", reg.image("idx/bb")),
        None,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let (digest, size) = statuses(&lines(&body))
        .iter()
        .find_map(|x| {
            let r = x.strip_prefix("single: digest: ")?;
            let mut w = r.split_whitespace();
            let digest = w.next()?.to_string();
            let size = w.nth(1)?.to_string();
            Some((digest, size))
        })
        .expect("the push's digest line");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}]}}"#
    );
    let mut c = std::net::TcpStream::connect(&reg.addr).expect("connect");
    write!(
        c,
        "PUT /v2/idx/bb/manifests/multi HTTP/1.1\r\nHost: {}\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{index}",
        reg.addr,
        index.len()
    )
    .expect("put index");
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let d2 = Daemon::start();
    let pull = || {
        let (st, _, body) = d2.http(
            "POST",
            &format!("/images/create?fromImage={}&tag=multi", reg.image("idx/bb")),
            None,
        );
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
        assert!(
            !String::from_utf8_lossy(&body).contains("error"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    };
    let mark = access_log(&reg, 0).len();
    pull();
    let reqs = access_log(&reg, mark);
    assert!(
        reqs.contains(&format!("GET /v2/idx/bb/manifests/{digest}")),
        "{reqs:?}"
    );
    assert!(count(&reqs, "/blobs/") >= 2, "{reqs:?}");
    assert_eq!(
        image_id(&d2, &reg.image("idx/bb:multi")),
        image_id(&d, "busybox")
    );
    let mark = access_log(&reg, 0).len();
    pull();
    assert_eq!(
        access_log(&reg, mark),
        vec!["GET /v2/idx/bb/manifests/multi".to_string()]
    );
}

#[test]
fn dockerd_round_trip_keeps_image_ids_and_mounts_across_repositories() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    let Some(dk) = common::dockerd::Dockerd::start(&d.root) else {
        return;
    };
    d.load_busybox();
    let id = image_id(&d, "busybox");
    let a = reg.image("a/bb:1");
    d.ok(&["tag", "busybox", &a]);
    let o = d.docker(&["push", &a]).expect("docker");
    assert!(o.status.success(), "{}", stderr(&o));
    let digest = stdout(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("1: digest: ")
                .and_then(|r| r.split_whitespace().next())
                .map(String::from)
        })
        .expect("digest line");
    // berth → dockerd
    let o = dk.docker(&["pull", &a]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = dk.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}} {{json .RepoDigests}}",
        &a,
    ]);
    let out = stdout(&o);
    assert!(
        out.starts_with(&id),
        "dockerd sees {out}, berth pushed {id}"
    );
    assert!(out.contains(&digest), "{out}");
    // dockerd → berth: an image dockerd made (import) and pushed
    let src = common::tmpdir("imp");
    std::fs::write(src.join("hello"), "from dockerd\n").expect("write");
    let tarball = src.join("x.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tarball)
        .arg("hello")
        .status()
        .expect("tar");
    assert!(st.success());
    let b = reg.image("b/fromdocker:2");
    let o = dk.docker(&["import", tarball.to_str().expect("utf8"), &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = dk.docker(&["push", &b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dk_id = stdout(&dk.docker(&["image", "inspect", "-f", "{{.Id}}", &b]))
        .trim()
        .to_string();
    let o = d.docker(&["pull", &b]).expect("docker");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(image_id(&d, &b), dk_id);
    let _ = std::fs::remove_dir_all(&src);
    // berth pushes its pulled image to another repository: the layer is mounted, and the
    // manifest is the one it was pulled as (same digest)
    let c = reg.image("c/again:2");
    d.ok(&["tag", &b, &c]);
    let o = d.docker(&["push", &c]).expect("docker");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Mounted from b/fromdocker"),
        "{}",
        stdout(&o)
    );
    let pushed = stdout(&dk.docker(&["image", "inspect", "-f", "{{json .RepoDigests}}", &b]))
        .trim()
        .to_string();
    let again = stdout(&o)
        .lines()
        .find_map(|l| {
            l.strip_prefix("2: digest: ")
                .and_then(|r| r.split_whitespace().next())
                .map(String::from)
        })
        .expect("digest line");
    assert!(
        pushed.contains(&again),
        "re-push changed the manifest: {pushed} vs {again}"
    );
    // images --digests shows it
    let o = d
        .docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}} {{.Digest}}",
        ])
        .expect("docker");
    assert!(
        stdout(&o).contains(&format!("{} {again}", reg.image("c/again"))),
        "{}",
        stdout(&o)
    );
}

#[test]
fn all_tags_and_digest_pulls() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    for t in ["1", "2"] {
        d.ok(&["tag", "busybox", &reg.image(&format!("multi/bb:{t}"))]);
    }
    // push without a tag: every tag of the repository
    let s = statuses(&stream_ok(
        &d,
        &format!("/images/{}/push", reg.image("multi/bb")),
    ));
    let digest = s
        .iter()
        .find_map(|x| {
            x.strip_prefix("1: digest: ")
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        })
        .expect("tag 1");
    assert!(s.iter().any(|x| x.starts_with("2: digest: ")), "{s:?}");
    let d2 = Daemon::start();
    let o = d2.docker(&["pull", "-a", &reg.image("multi/bb")]);
    if let Some(o) = o {
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    } else {
        let (st, _, _) = d2.http(
            "POST",
            &format!("/images/create?fromImage={}", reg.image("multi/bb")),
            None,
        );
        assert_eq!(st, 200);
    }
    for t in ["1", "2"] {
        image_id(&d2, &reg.image(&format!("multi/bb:{t}")));
    }
    // by digest, in a third daemon
    let d3 = Daemon::start();
    let by_digest = format!("{}@{digest}", reg.image("multi/bb"));
    let s = statuses(&stream_ok(
        &d3,
        &format!(
            "/images/create?fromImage={}&tag={digest}",
            reg.image("multi/bb")
        ),
    ));
    assert_eq!(
        s.last().map(String::as_str),
        Some(format!("Status: Downloaded newer image for {by_digest}").as_str()),
        "{s:?}"
    );
    assert_eq!(image_id(&d3, &by_digest), image_id(&d, "busybox"));
    // a wrong digest is refused
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (st, _, _) = d3.http(
        "POST",
        &format!(
            "/images/create?fromImage={}&tag={wrong}",
            reg.image("multi/bb")
        ),
        None,
    );
    assert_eq!(st, 404);
}

#[test]
fn search_uses_the_catalog() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    for n in ["search/busybox:1", "other/thing:1"] {
        let r = reg.image(n);
        d.ok(&["tag", "busybox", &r]);
        let (st, _, body) = d.http(
            "POST",
            &format!("/images/{}/push?tag=1", &r[..r.len() - 2]),
            None,
        );
        assert_eq!(st, 200);
        assert!(lines(&body).iter().all(|m| m.get("error").is_none()));
    }
    let (st, _, body) = d.http(
        "GET",
        &format!("/images/search?term={}/busy", reg.addr),
        None,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v,
        serde_json::json!([{"star_count": 0, "is_official": false, "name": reg.image("search/busybox"), "is_automated": false, "description": ""}])
    );
    if let Some(o) = d.docker(&["search", &format!("{}/", reg.addr), "--format", "{{.Name}}"]) {
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&reg.image("search/busybox")) && out.contains(&reg.image("other/thing")),
            "{out}"
        );
    }
    let o = d
        .docker(&[
            "search",
            "--limit",
            "1",
            &format!("{}/", reg.addr),
            "--format",
            "{{.Name}}",
        ])
        .expect("docker");
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
    let o = d
        .docker(&[
            "search",
            "--filter",
            "stars=3",
            &format!("{}/", reg.addr),
            "--format",
            "{{.Name}}",
        ])
        .expect("docker");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "");
    let (st, _, _) = d.http(
        "GET",
        &format!("/images/search?term={}/x&limit=0", reg.addr),
        None,
    );
    assert_eq!(st, 400);
    let o = docker_py(
        &d,
        &format!("print(json.dumps(c.images.search('{}/thing')))", reg.addr),
    );
    assert!(
        stdout(&o).contains(&reg.image("other/thing")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let o = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn tls_registry_with_ca_and_client_certificate_from_certs_d() {
    // a small CA, a server certificate for 127.0.0.1 and a client certificate
    let pki = common::tmpdir("pki");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=berth-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &pki,
    );
    for (who, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        ),
        (
            "client",
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        ),
    ] {
        std::fs::write(pki.join(format!("{who}.ext")), ext).expect("ext");
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN=berth-{who}"),
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
            ],
            &pki,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &format!("{who}.ext"),
                "-out",
                &format!("{who}.pem"),
            ],
            &pki,
        );
    }
    let cfg = format!(
        "  tls:\n    certificate: {p}/server.pem\n    key: {p}/server.key\n    clientcas:\n      - {p}/ca.pem\n",
        p = pki.display()
    );
    // the harness's config ends inside `http:`; these lines extend it
    let Some(mut reg) = Registry::start_with(&cfg) else {
        return;
    };
    reg.extra.push(pki.clone());
    let certs = common::tmpdir("certsd");
    reg.extra.push(certs.clone());
    let host_dir = certs.join(&reg.addr);
    std::fs::create_dir_all(&host_dir).expect("mkdir");
    std::fs::copy(pki.join("ca.pem"), host_dir.join("ca.crt")).expect("ca");
    let d = Daemon::start_args(&["--registry-certs-dir", certs.to_str().expect("utf8")]);
    d.load_busybox();
    let name = reg.image("tls/bb:1");
    d.ok(&["tag", "busybox", &name]);
    // no client certificate yet: the registry refuses the handshake
    let (st, _, body) = d.http(
        "POST",
        &format!("/images/{}/push?tag=1", reg.image("tls/bb")),
        None,
    );
    assert_eq!(st, 500, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains(&format!("https://{}/v2/", reg.addr)),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // with the client certificate (a new daemon: clients are made once per host)
    std::fs::copy(pki.join("client.pem"), host_dir.join("client.cert")).expect("cert");
    std::fs::copy(pki.join("client.key"), host_dir.join("client.key")).expect("key");
    let d2 = Daemon::start_args(&["--registry-certs-dir", certs.to_str().expect("utf8")]);
    d2.load_busybox();
    d2.ok(&["tag", "busybox", &name]);
    let msgs = stream_ok(&d2, &format!("/images/{}/push?tag=1", reg.image("tls/bb")));
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let d3 = Daemon::start_args(&["--registry-certs-dir", certs.to_str().expect("utf8")]);
    let (st, _, body) = d3.http(
        "POST",
        &format!("/images/create?fromImage={}&tag=1", reg.image("tls/bb")),
        None,
    );
    assert_eq!(st, 200);
    assert!(
        lines(&body).iter().all(|m| m.get("error").is_none()),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(image_id(&d3, &name), image_id(&d2, "busybox"));
}

#[test]
fn docker_io_names_come_from_the_mirror() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    let r = reg.image("library/mirrored:1");
    d.ok(&["tag", "busybox", &r]);
    let (st, _, _) = d.http(
        "POST",
        &format!("/images/{}/push?tag=1", reg.image("library/mirrored")),
        None,
    );
    assert_eq!(st, 200);
    // a dead mirror first: the next one serves
    let dead = format!("http://127.0.0.1:{}", common::registry::free_port());
    let live = format!("http://{}", reg.addr);
    let d2 = Daemon::start_args(&["--registry-mirror", &dead, "--registry-mirror", &live]);
    let o = d2.docker(&["pull", "mirrored:1"]);
    if let Some(o) = o {
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("Status: Downloaded newer image for mirrored:1"),
            "{}",
            stdout(&o)
        );
    } else {
        let (st, _, _) = d2.http("POST", "/images/create?fromImage=mirrored&tag=1", None);
        assert_eq!(st, 200);
    }
    assert_eq!(image_id(&d2, "mirrored:1"), image_id(&d, "busybox"));
    assert_eq!(
        image_id(&d2, "docker.io/library/mirrored:1"),
        image_id(&d, "busybox")
    );
    // a bad flag is refused at start, before anything is written (roots, pid file)
    let scratch = common::tmpdir("badflag");
    let o = std::process::Command::new(common::bin_dir().join("berthd"))
        .arg("--data-root")
        .arg(scratch.join("data"))
        .arg("--exec-root")
        .arg(scratch.join("run"))
        .args(["--registry-mirror", "ftp://x"])
        .output()
        .expect("berthd");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unsupported scheme"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!scratch.join("run").exists() && !scratch.join("data").exists());
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn many_layers_pull_concurrently_and_in_order() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    let mut img = "busybox".to_string();
    for i in 0..5 {
        let c = format!("layer{i}");
        d.ok(&[
            "run",
            "--name",
            &c,
            &img,
            "sh",
            "-c",
            // each step changes the filesystem (an unchanged container commits no layer)
            &match i {
                0 => "echo 0 > /f0".to_string(),
                _ => format!("echo {i} > /f{i}; rm -f /f{}", i - 1),
            },
        ]);
        img = format!("layered:{i}");
        d.ok(&["commit", &c, &img]);
        d.ok(&["rm", &c]);
    }
    let name = reg.image("many/layers:1");
    d.ok(&["tag", &img, &name]);
    let msgs = stream_ok(
        &d,
        &format!("/images/{}/push?tag=1", reg.image("many/layers")),
    );
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let d2 = Daemon::start_args(&["--max-concurrent-downloads", "2"]);
    let msgs = stream_ok(
        &d2,
        &format!(
            "/images/create?fromImage={}&tag=1",
            reg.image("many/layers")
        ),
    );
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let s = statuses(&msgs);
    assert_eq!(
        s.iter().filter(|x| *x == "Pull complete").count(),
        6,
        "{s:?}"
    );
    assert_eq!(s.iter().filter(|x| *x == "Waiting").count(), 4, "{s:?}");
    assert_eq!(image_id(&d2, &name), image_id(&d, &img));
    // whiteouts and order came through: /f3 was removed by the top layer, /f4 is there
    let out = d2.ok(&[
        "run",
        "--rm",
        &name,
        "sh",
        "-c",
        "cat /f4; ls /f3 2>&1 || true",
    ]);
    assert!(out.starts_with("4\n"), "{out}");
    assert!(out.contains("No such file"), "{out}");
    // layers below the top are shared: an image with one more layer fetches only that one
    let c = "layer5";
    d.ok(&["run", "--name", c, &name, "sh", "-c", "echo 5 > /f5"]);
    let top = reg.image("many/layers:2");
    d.ok(&["commit", c, &top]);
    let s = statuses(&stream_ok(
        &d,
        &format!("/images/{}/push?tag=2", reg.image("many/layers")),
    ));
    assert_eq!(
        s.iter().filter(|x| *x == "Layer already exists").count(),
        6,
        "{s:?}"
    );
    let s = statuses(&stream_ok(
        &d2,
        &format!(
            "/images/create?fromImage={}&tag=2",
            reg.image("many/layers")
        ),
    ));
    assert_eq!(
        s.iter().filter(|x| *x == "Already exists").count(),
        6,
        "{s:?}"
    );
    assert_eq!(
        s.iter().filter(|x| *x == "Pull complete").count(),
        1,
        "{s:?}"
    );
}

/// A client that hangs up once the pull's answer has begun does not stop the pull (as
/// dockerd): the image is there afterwards, whole. The pull's work runs in the response's
/// body, so this is the body dropped mid-stream.
#[test]
fn a_pull_goes_on_when_its_client_hangs_up() {
    use std::io::{Read, Write};
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("gone/busybox:1");
    d.ok(&["tag", "busybox", &name]);
    let id = image_id(&d, "busybox");
    stream_ok(
        &d,
        &format!("/images/{}/push?tag=1", reg.image("gone/busybox")),
    );
    let d2 = Daemon::start();
    let mut s = std::os::unix::net::UnixStream::connect(&d2.sock).expect("connect");
    write!(
        s,
        "POST /images/create?fromImage={}&tag=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        reg.image("gone/busybox")
    )
    .expect("request");
    // the status line and the first bytes of the stream, then the client is gone
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("answer");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop(s);
    assert!(
        common::eventually(20, || d2
            .http("GET", &format!("/images/{name}/json"), None)
            .0
            == 200),
        "the pull stopped with its client"
    );
    assert_eq!(image_id(&d2, &name), id);
    let out = d2.ok(&["run", "--rm", &name, "echo", "whole"]);
    assert_eq!(out.trim(), "whole");
}
