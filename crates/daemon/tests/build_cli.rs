//! Building images through each client people use, against a real berthd: `berth build`,
//! the docker CLI 28 (`DOCKER_BUILDKIT=0` and its default fallback to the legacy builder),
//! `docker-compose build` and docker-py (`images.build`, the low-level `api.build` stream).
//! The bad-input cases are checked from the client's side: exit codes and texts as docker's.

mod common;
use common::{stderr, stdout, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const COMPOSE: &str = "/usr/bin/docker-compose";

/// A context directory with `files` (path, text), below the daemon's root (removed with it).
fn context(daemon: &Daemon, files: &[(&str, &str)]) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = daemon.root.join(format!("ctx{n}"));
    common::build::write_files(&d, files);
    d
}

/// `berth build args…` run in `dir`, with `input` on stdin.
fn berth_in(d: &Daemon, dir: &Path, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = Command::new(common::bin_dir().join("berth"));
    c.arg("-H")
        .arg(d.host())
        .arg("build")
        .args(args)
        .current_dir(dir)
        .env("BERTH_CONFIG", d.root.join("berth-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().expect("run berth build");
    if let Some(i) = input {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        // the CLI may refuse before it reads
        let _ = s.write_all(i);
    }
    child.wait_with_output().expect("berth build")
}

/// The docker CLI's `build` in `dir`; `buildkit` is DOCKER_BUILDKIT's value (None: unset).
fn docker_in(
    d: &Daemon,
    dir: &Path,
    buildkit: Option<&str>,
    args: &[&str],
    input: Option<&[u8]>,
) -> Option<Output> {
    common::build::docker_build_in(d, dir, buildkit, args, input)
}

fn ok(o: Output, what: &str, d: &Daemon) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n--- stdout\n{}\n--- stderr\n{}\n--- berthd log tail\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o),
        tail(&d.log(), 30)
    );
    stdout(&o)
}

/// `berth build ARGS` run in `dir`, which must succeed (`what` names it in the failure);
/// its stdout.
fn build_ok(d: &Daemon, dir: &Path, args: &[&str], what: &str) -> String {
    ok(berth_in(d, dir, args, None), what, d)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `berth run --rm image args…`'s stdout.
fn run(d: &Daemon, image: &str, args: &[&str]) -> String {
    let mut a = vec!["run", "--rm", image];
    a.extend_from_slice(args);
    d.ok(&a)
}

fn image_id(d: &Daemon, image: &str) -> String {
    d.ok(&["image", "inspect", "-f", "{{.Id}}", image])
        .trim()
        .to_string()
}

/// The steps docker's classic builder prints, with the IDs left out.
fn steps(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("Step "))
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- berth build

#[test]
fn berth_build_output_tags_cache_and_dockerignore() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&d, &[
        (
            "Dockerfile",
            "FROM busybox\nENV GREETING=hello\nWORKDIR /app\nCOPY . .\nRUN echo \"$GREETING from RUN\" > /app/made.txt\nCMD [\"sh\", \"-c\", \"cat /app/made.txt; ls -A /app | sort | tr '\\\\n' ' '\"]\n",
        ),
        ("keep.txt", "kept\n"),
        ("secret.env", "PASSWORD=x\n"),
        ("node_modules/dep/index.js", "x\n"),
        ("logs/a.log", "a\n"),
        ("logs/keep.log", "k\n"),
        (".dockerignore", "*.env\nnode_modules\nlogs\n!logs/keep.log\nDockerfile\n"),
    ]);
    let o = berth_in(&d, &ctx, &["-t", "bb-app:1", "-t", "bb-app:two", "."], None);
    let out = ok(o, "berth build", &d);
    // the upload line as the legacy CLI prints it, then the daemon's stream as-is
    let first = out.lines().next().unwrap_or("");
    assert!(
        first.starts_with("Sending build context to Docker daemon ")
            && first.len() == "Sending build context to Docker daemon ".len() + 9
            && first.ends_with("kB\r"),
        "{out:?}"
    );
    assert_eq!(
        steps(&out),
        [
            "Step 1/6 : FROM busybox",
            "Step 2/6 : ENV GREETING=hello",
            "Step 3/6 : WORKDIR /app",
            "Step 4/6 : COPY . .",
            "Step 5/6 : RUN echo \"$GREETING from RUN\" > /app/made.txt",
            "Step 6/6 : CMD [\"sh\", \"-c\", \"cat /app/made.txt; ls -A /app | sort | tr '\\\\n' ' '\"]",
        ]
    );
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Removing intermediate container "), "{out}");
    let id = image_id(&d, "bb-app:1");
    assert!(
        out.contains(&format!("Successfully built {}\n", &id[7..19])),
        "{out}"
    );
    assert!(
        out.contains("Successfully tagged bb-app:1\nSuccessfully tagged bb-app:two\n"),
        "{out}"
    );
    assert_eq!(image_id(&d, "bb-app:two"), id);
    // what the image does: .dockerignore applied client-side (the Dockerfile and
    // .dockerignore are sent, so COPY . . leaves them out only because they are ignored)
    assert_eq!(
        run(&d, "bb-app:1", &[]),
        "hello from RUN\n.dockerignore keep.txt logs made.txt "
    );
    assert_eq!(run(&d, "bb-app:1", &["ls", "/app/logs"]), "keep.log\n");

    // again: every step from the cache, the same image
    let out2 = build_ok(&d, &ctx, &["-t", "bb-app:1", "."], "rebuild");
    assert_eq!(out2.matches(" ---> Using cache").count(), 5, "{out2}");
    assert_eq!(image_id(&d, "bb-app:1"), id);
    // an ignored file changes: still all cached (it is never sent)
    std::fs::write(ctx.join("secret.env"), "PASSWORD=changed\n").expect("write");
    let out3 = build_ok(&d, &ctx, &["-q", "-t", "bb-app:1", "."], "rebuild -q");
    assert_eq!(out3, format!("{id}\n"), "-q prints the ID alone");
    // a sent file changes: COPY and what follows are built again
    std::fs::write(ctx.join("keep.txt"), "changed\n").expect("write");
    let out4 = build_ok(&d, &ctx, &["-t", "bb-app:1", "."], "rebuild");
    assert_eq!(out4.matches(" ---> Using cache").count(), 2, "{out4}");
    assert_ne!(image_id(&d, "bb-app:1"), id);
    assert_eq!(image_id(&d, "bb-app:two"), id, "the other tag stays");
}

#[test]
fn berth_build_flags_reach_the_image() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&d, &[
        (
            "Dockerfile",
            "ARG BASE=busybox\nFROM $BASE AS base\nARG A=default\nARG B\nARG FROMENV\nRUN echo \"A=$A B=$B E=$FROMENV\" > /args\nRUN grep -q 'myhost' /etc/hosts && echo host-ok > /hosts || echo no-host > /hosts\n\nFROM base AS final\nRUN echo final > /stage\nCMD cat /args /hosts /stage\n\nFROM base AS other\nRUN echo other > /stage\n",
        ),
    ]);
    let iid = ctx.join("iid");
    let o = berth_in(
        &d,
        &ctx,
        &[
            "--build-arg",
            "A=zz",
            "--build-arg",
            "FROMENV",
            "--label",
            "k=v",
            "--label",
            "empty",
            "--add-host",
            "myhost:10.1.2.3",
            "--target",
            "final",
            "--iidfile",
            iid.to_str().unwrap(),
            "--network",
            "none",
            "-t",
            "flags:1",
            ".",
        ],
        None,
    );
    // FROMENV comes from the environment of the CLI (set below for a second run)
    let out = ok(o, "berth build with flags", &d);
    assert!(
        !out.contains("other"),
        "the stage --target does not need was built: {out}"
    );
    let id = image_id(&d, "flags:1");
    assert_eq!(std::fs::read_to_string(&iid).expect("iidfile"), id);
    assert_eq!(run(&d, "flags:1", &[]), "A=zz B= E=\nhost-ok\nfinal\n");
    let labels = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        "flags:1",
    ]);
    assert_eq!(labels.trim(), r#"{"empty":"","k":"v"}"#);

    // --build-arg NAME takes the CLI's environment; -f names a Dockerfile inside the context
    std::fs::create_dir_all(ctx.join("sub")).expect("mkdir");
    std::fs::write(
        ctx.join("sub/Dockerfile.env"),
        "FROM busybox\nARG FROMENV\nRUN echo \"E=$FROMENV\" > /e\nCMD cat /e\n",
    )
    .expect("write");
    let o = Command::new(common::bin_dir().join("berth"))
        .args([
            "-H",
            &d.host(),
            "build",
            "-q",
            "--build-arg",
            "FROMENV",
            "-f",
        ])
        .arg(ctx.join("sub/Dockerfile.env"))
        .args(["-t", "flags:env"])
        .arg(&ctx)
        .env("FROMENV", "from the env")
        .output()
        .expect("berth build");
    ok(o, "berth build -f sub/Dockerfile.env", &d);
    assert_eq!(run(&d, "flags:env", &[]), "E=from the env\n");
}

#[test]
fn berth_build_dockerfile_outside_and_on_stdin() {
    let d = Daemon::start();
    d.load_busybox();
    let top = context(
        &d,
        &[
            (
                "Dockerfile.outside",
                "FROM busybox\nCOPY . /ctx/\nCMD ls -a /ctx\n",
            ),
            ("ctx/a.txt", "a\n"),
        ],
    );
    let ctx = top.join("ctx");
    // -f outside the context: the CLI sends it under a random name that COPY never sees
    let out = ok(
        berth_in(
            &d,
            &top,
            &["-f", "Dockerfile.outside", "-t", "outside:1", "ctx"],
            None,
        ),
        "berth build -f outside",
        &d,
    );
    assert!(out.contains("Step 2/3 : COPY . /ctx/"), "{out}");
    assert_eq!(run(&d, "outside:1", &[]), ".\n..\na.txt\n");

    // -f -: the Dockerfile on stdin, the context from PATH
    let df = b"FROM busybox\nCOPY a.txt /\nCMD cat /a.txt\n";
    ok(
        berth_in(&d, &top, &["-f", "-", "-t", "stdin:df", "ctx"], Some(df)),
        "-f -",
        &d,
    );
    assert_eq!(run(&d, "stdin:df", &[]), "a\n");

    // -: a Dockerfile alone on stdin
    let out = ok(
        berth_in(
            &d,
            &top,
            &["-t", "stdin:bare", "-"],
            Some(b"FROM busybox\nCMD echo bare\n"),
        ),
        "build -",
        &d,
    );
    assert!(
        out.starts_with("Sending build context to Docker daemon  2.048kB\r\r\n"),
        "{out:?}"
    );
    assert_eq!(run(&d, "stdin:bare", &[]), "bare\n");

    // -: a tar context on stdin, gzipped, with -f naming the Dockerfile inside it
    let tgz = top.join("c.tgz");
    std::fs::write(ctx.join("D2"), "FROM busybox\nCOPY a.txt /x\nCMD cat /x\n").expect("write");
    let st = Command::new("tar")
        .args([
            "-czf",
            tgz.to_str().unwrap(),
            "-C",
            ctx.to_str().unwrap(),
            ".",
        ])
        .status()
        .expect("tar");
    assert!(st.success());
    let bytes = std::fs::read(&tgz).expect("read tgz");
    ok(
        berth_in(
            &d,
            &top,
            &["-f", "D2", "-t", "stdin:tar", "-"],
            Some(&bytes),
        ),
        "tar on stdin",
        &d,
    );
    assert_eq!(run(&d, "stdin:tar", &[]), "a\n");

    // --compress: the same context gzipped by the CLI
    ok(
        berth_in(
            &d,
            &top,
            &["--compress", "-f", "ctx/D2", "-t", "gz:1", "ctx"],
            None,
        ),
        "--compress",
        &d,
    );
    assert_eq!(run(&d, "gz:1", &[]), "a\n");
}

#[test]
fn berth_build_bad_input_as_docker() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one > /v\nCMD cat /v\n",
        )],
    );
    build_ok(&d, &ctx, &["-t", "keep:1", "."], "first build");
    let old = image_id(&d, "keep:1");

    // a RUN that fails: docker's text on stderr, its exit code, the old tag kept
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo two > /v\nRUN exit 3\n",
    )
    .expect("write");
    let o = berth_in(&d, &ctx, &["-t", "keep:1", "."], None);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"
    );
    assert!(
        stdout(&o).contains("Step 3/3 : RUN exit 3"),
        "{}",
        stdout(&o)
    );
    assert_eq!(image_id(&d, "keep:1"), old, "the old image keeps its tag");
    assert_eq!(run(&d, "keep:1", &[]), "one\n");
    // with -q the whole output goes to stderr
    let o = berth_in(&d, &ctx, &["-q", "-t", "keep:1", "."], None);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains("Step 3/3 : RUN exit 3"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).ends_with("The command '/bin/sh -c exit 3' returned a non-zero code: 3\n"));

    // a syntax error, with its line number
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\n\nNOPE x\n").expect("write");
    let o = berth_in(&d, &ctx, &["-t", "keep:1", "."], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("dockerfile parse error line 3: unknown instruction: NOPE"),
        "{}",
        stderr(&o)
    );
    // COPY ../x
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY ../x /x\n").expect("write");
    let o = berth_in(&d, &ctx, &["-t", "keep:1", "."], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("COPY failed: forbidden path outside the build context: ../x ()"),
        "{}",
        stderr(&o)
    );
    // a missing stage
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox AS a\nRUN true\n").expect("write");
    let o = berth_in(&d, &ctx, &["--target", "nosuch", "-t", "keep:1", "."], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("target stage nosuch could not be found")
            || stderr(&o).contains("failed to reach build target nosuch in Dockerfile"),
        "{}",
        stderr(&o)
    );
    assert_eq!(image_id(&d, "keep:1"), old, "nothing half-tagged");

    // the CLI's own checks
    let o = berth_in(&d, &ctx, &[], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("berth: 'berth build' requires 1 argument\n"),
        "{}",
        stderr(&o)
    );
    let o = berth_in(&d, &ctx, &["nosuchdir"], None);
    assert_eq!(
        stderr(&o),
        "unable to prepare context: path \"nosuchdir\" not found\n"
    );
    let o = berth_in(&d, &ctx, &["-f", "nofile", "."], None);
    assert_eq!(
        stderr(&o),
        format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/nofile: no such file or directory\n",
            ctx.display()
        )
    );
    let o = berth_in(&d, &ctx, &["-t", "Bad:x", "."], None);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).starts_with("invalid argument \"Bad:x\" for \"-t, --tag\" flag: invalid reference format: repository name (library/Bad) must be lowercase\n"));
    let o = berth_in(&d, &ctx, &["-f", "-", "-"], Some(b"FROM busybox\n"));
    assert_eq!(
        stderr(&o),
        "invalid argument: can't use stdin for both build context and dockerfile\n"
    );
    let o = berth_in(&d, &ctx, &["--squash", "."], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "\"--squash\" is only supported on a Docker daemon with experimental features enabled\n"
    );
    let o = berth_in(&d, &ctx, &["--isolation", "hyperv", "."], None);
    assert_eq!(
        stderr(&o),
        "Error response from daemon: Unsupported isolation: \"hyperv\"\n"
    );
    // an empty Dockerfile on stdin: the daemon's refusal, the upload line on stderr with -q
    let o = berth_in(&d, &ctx, &["-q", "-"], Some(b""));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "Sending build context to Docker daemon  1.536kB\r\r\nError response from daemon: "
        ),
        "{:?}",
        stderr(&o)
    );
}

#[test]
fn berth_build_sends_5000_files_quickly() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        &[(
            "Dockerfile",
            "FROM busybox\nCOPY files /files\nCMD ls -R /files\n",
        )],
    );
    for i in 0..5000 {
        let p = ctx.join(format!("files/d{}/f{i}.txt", i % 50));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{i}\n")).unwrap();
    }
    let t0 = Instant::now();
    build_ok(&d, &ctx, &["-q", "-t", "many:1", "."], "5000 files");
    let cold = t0.elapsed();
    let n = run(&d, "many:1", &["sh", "-c", "find /files -type f | wc -l"]);
    assert_eq!(n.trim(), "5000");
    let t0 = Instant::now();
    build_ok(&d, &ctx, &["-q", "-t", "many:1", "."], "5000 files cached");
    let warm = t0.elapsed();
    eprintln!("5000 files: build {cold:?}, cached {warm:?}");
    assert!(
        warm < Duration::from_secs(10),
        "a cached build of 5000 files took {warm:?}"
    );
}

// ---------------------------------------------------------------- docker build

#[test]
fn docker_cli_builds_legacy_and_default_fallback() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY x.txt /x.txt\nRUN echo built >> /x.txt\nCMD cat /x.txt\n",
            ),
            ("x.txt", "from the context\n"),
            ("ignored.bin", "never sent\n"),
            (".dockerignore", "*.bin\n"),
        ],
    );
    // DOCKER_BUILDKIT=0
    let Some(o) = docker_in(&d, &ctx, Some("0"), &["-t", "dk:legacy", "."], None) else {
        return;
    };
    let out = ok(o, "DOCKER_BUILDKIT=0 docker build", &d);
    // the CLI prints this line when its upload ends; berthd reads the whole body before its
    // first line, so the line comes before `Step 1` as with dockerd
    let sending = out.find("Sending build context to Docker daemon  ");
    let step1 = out.find("Step 1/4 : FROM busybox");
    assert!(
        sending.is_some() && step1.is_some() && sending < step1,
        "{out}"
    );
    assert!(
        out.contains("Step 3/4 : RUN echo built >> /x.txt\n ---> Running in "),
        "{out}"
    );
    assert!(
        out.contains("Successfully tagged dk:legacy:latest\n")
            || out.contains("Successfully tagged dk:legacy\n"),
        "{out}"
    );
    assert_eq!(run(&d, "dk:legacy", &[]), "from the context\nbuilt\n");
    // DOCKER_BUILDKIT unset: the CLI warns and falls back to the same request; all cached
    let o = docker_in(&d, &ctx, None, &["-t", "dk:default", "."], None).expect("docker");
    let err = stderr(&o);
    let out = ok(o, "docker build (default)", &d);
    assert!(
        err.contains("DEPRECATED: The legacy builder is deprecated"),
        "{err}"
    );
    assert_eq!(out.matches(" ---> Using cache").count(), 3, "{out}");
    assert_eq!(image_id(&d, "dk:default"), image_id(&d, "dk:legacy"));
    // -q, -f -, a failing step's exit code
    let o = docker_in(
        &d,
        &ctx,
        Some("0"),
        &["-q", "-f", "-", "-t", "dk:stdin", "."],
        Some(b"FROM busybox\nCOPY x.txt /\nCMD cat /x.txt\n"),
    )
    .expect("docker");
    let out = ok(o, "docker build -q -f -", &d);
    assert_eq!(out.trim(), image_id(&d, "dk:stdin"));
    assert_eq!(run(&d, "dk:stdin", &[]), "from the context\n");
    let o = docker_in(
        &d,
        &ctx,
        Some("0"),
        &["-"],
        Some(b"FROM busybox\nRUN exit 7\n"),
    )
    .expect("docker");
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("The command '/bin/sh -c exit 7' returned a non-zero code: 7"),
        "{}",
        stderr(&o)
    );
    // the same things through berth build give the same image (same cache)
    let out = build_ok(&d, &ctx, &["-q", "-t", "dk:berth", "."], "berth build");
    assert_eq!(
        out.trim(),
        image_id(&d, "dk:legacy"),
        "berth and docker share the cache"
    );
}

// ---------------------------------------------------------------- docker-compose build

#[test]
fn compose_build_with_context_dockerfile_args_target() {
    if !Path::new(COMPOSE).exists() {
        eprintln!("skipping: no docker-compose");
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let dir = d.root.join("cb");
    let files: &[(&str, &str)] = &[
        (
            "docker-compose.yml",
            "version: \"3.8\"\nservices:\n  app:\n    build:\n      context: ./app\n      dockerfile: build/Dockerfile.app\n      args:\n        GREETING: hi-from-compose\n      target: runtime\n      labels:\n        com.example.built-by: compose\n    image: cb-app:1\n    network_mode: none\n",
        ),
        (
            "app/build/Dockerfile.app",
            "FROM busybox AS base\nARG GREETING=unset\nRUN echo \"$GREETING\" > /greeting\n\nFROM base AS runtime\nCOPY msg.txt /msg.txt\nCMD cat /greeting /msg.txt\n\nFROM base AS unused\nRUN exit 1\n",
        ),
        ("app/msg.txt", "msg\n"),
    ];
    for (p, t) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, t).expect("write");
    }
    let o = Command::new(COMPOSE)
        .current_dir(&dir)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("docker-config"))
        .env_remove("DOCKER_API_VERSION")
        .env_remove("COMPOSE_DOCKER_CLI_BUILD")
        .env_remove("DOCKER_BUILDKIT")
        .args(["-p", "cb", "build"])
        .stdin(Stdio::null())
        .output()
        .expect("docker-compose build");
    let out = ok(o, "docker-compose build", &d);
    assert!(out.contains("Successfully tagged cb-app:1"), "{out}");
    assert_eq!(run(&d, "cb-app:1", &[]), "hi-from-compose\nmsg\n");
    let l = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.example.built-by\"}}",
        "cb-app:1",
    ]);
    assert_eq!(l.trim(), "compose");
}

// ---------------------------------------------------------------- docker-py

fn python(d: &Daemon, code: &str) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import docker, json, sys\nc = docker.DockerClient(base_url='{}')\napi = c.api\n{code}",
            d.host()
        ))
        .output()
        .expect("python3")
}

#[test]
fn docker_py_images_build_and_low_level_stream() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&d, &[
        ("Dockerfile", "FROM busybox\nARG V=1\nCOPY f.txt /f.txt\nRUN echo \"v$V\" >> /f.txt\nCMD cat /f.txt\n"),
        ("f.txt", "py\n"),
    ]);
    let code = format!(
        "img, logs = c.images.build(path={:?}, tag='py:1', buildargs={{'V': '2'}})\nlines = [l.get('stream', '') for l in logs]\nprint(img.id)\nprint(img.tags)\nprint(''.join(lines).count('Step '))\n",
        ctx.to_str().unwrap()
    );
    let o = python(&d, &code);
    let out = ok(o, "docker-py images.build", &d);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], image_id(&d, "py:1"), "{out}");
    assert_eq!(lines[1], "['py:1']");
    assert_eq!(lines[2], "5");
    assert_eq!(run(&d, "py:1", &[]), "py\nv2\n");

    // the low-level stream, decoded, and a failure as an error line
    let code = format!(
        "out = []\nfor m in api.build(path={:?}, tag='py:2', decode=True, nocache=True, rm=True):\n    out.append(m)\nprint(json.dumps(out))\nerrs = [m for m in api.build(fileobj=__import__('io').BytesIO(b'FROM busybox\\nRUN exit 4\\n'), decode=True)]\nprint(json.dumps(errs[-1]))\n",
        ctx.to_str().unwrap()
    );
    let o = python(&d, &code);
    let out = ok(o, "docker-py api.build", &d);
    let mut lines = out.lines();
    let msgs: Vec<serde_json::Value> =
        serde_json::from_str(lines.next().expect("stream")).expect("json");
    let text: String = msgs
        .iter()
        .filter_map(|m| m.get("stream").and_then(|s| s.as_str()))
        .collect();
    assert!(
        text.contains("Step 4/5 : RUN echo \"v$V\" >> /f.txt"),
        "{text}"
    );
    assert!(!text.contains("Using cache"), "nocache: {text}");
    assert!(text.contains("Successfully tagged py:2\n"), "{text}");
    let aux = msgs
        .iter()
        .find_map(|m| m.pointer("/aux/ID").and_then(|s| s.as_str()))
        .expect("aux ID");
    assert_eq!(aux, image_id(&d, "py:2"));
    let err: serde_json::Value = serde_json::from_str(lines.next().expect("err")).expect("json");
    assert_eq!(
        err["errorDetail"]["message"],
        "The command '/bin/sh -c exit 4' returned a non-zero code: 4"
    );
    assert_eq!(err["errorDetail"]["code"], 4);
}

// ---------------------------------------------------------------- the notes' images

/// The seed notes (shared/seeds) build images by hand (`docker run -it ubuntu`, install a
/// service, `docker commit`; `docker run -d -p 8002:80 nginx`; data in volumes) and name
/// `docker build` as the way to do it from a Dockerfile, without a Dockerfile of their own.
/// These are those images as Dockerfiles with busybox as the base (package installs become
/// busybox's own tools), built with `berth build` and run.
#[test]
fn the_notes_images_as_dockerfiles() {
    let d = Daemon::start();
    d.load_busybox();
    // 004: an image with a service "installed", instead of run + install + commit
    let ctx = context(&d, &[
        (
            "Dockerfile",
            "FROM busybox\nLABEL maintainer=\"notes\" description=\"web server image\"\nENV WWW=/var/www PORT=80\nRUN mkdir -p $WWW && echo '<h1>hello from the notes</h1>' > $WWW/index.html\nWORKDIR $WWW\nCOPY conf/ /etc/web/\nADD site.tar /var/www/\nEXPOSE 80\nVOLUME /var/log/web\nCMD [\"sh\", \"-c\", \"httpd -f -p $PORT -h $WWW\"]\n",
        ),
        ("conf/web.conf", "port=80\n"),
    ]);
    // a tar for ADD (extracted into the image)
    let site = ctx.join("site");
    std::fs::create_dir_all(&site).expect("mkdir");
    std::fs::write(site.join("about.html"), "about\n").expect("write");
    let st = Command::new("tar")
        .args([
            "-cf",
            ctx.join("site.tar").to_str().unwrap(),
            "-C",
            site.to_str().unwrap(),
            "about.html",
        ])
        .status()
        .expect("tar");
    assert!(st.success());
    build_ok(&d, &ctx, &["-t", "notes/web:1", "."], "web image");
    let cfg = d.ok(&[
        "image", "inspect", "-f",
        "{{json .Config.ExposedPorts}} {{json .Config.Volumes}} {{.Config.WorkingDir}} {{index .Config.Labels \"maintainer\"}}",
        "notes/web:1",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"{"80/tcp":{}} {"/var/log/web":{}} /var/www notes"#
    );
    assert_eq!(
        run(
            &d,
            "notes/web:1",
            &[
                "sh",
                "-c",
                "cat /etc/web/web.conf /var/www/about.html; ls /var/www"
            ]
        ),
        "port=80\nabout\nabout.html\nindex.html\n"
    );
    // the server runs and serves the page (inside the container: no published port needed)
    let id = d.ok(&["run", "-d", "notes/web:1"]);
    let id = id.trim();
    let mut page = String::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        let o = d.berth(&["exec", id, "wget", "-q", "-O", "-", "http://127.0.0.1:80/"]);
        if o.status.success() {
            page = stdout(&o);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(page, "<h1>hello from the notes</h1>\n");
    d.ok(&["rm", "-f", id]);

    // 001: a container kept in the foreground (`tail -f` instead of a shell), with ENTRYPOINT
    let ctx = context(&d, &[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir -p /var/log/nginx && echo started > /var/log/nginx/error.log\nENTRYPOINT [\"tail\"]\nCMD [\"-n\", \"1\", \"/var/log/nginx/error.log\"]\n",
    )]);
    build_ok(&d, &ctx, &["-t", "notes/fg:1", "."], "foreground image");
    assert_eq!(run(&d, "notes/fg:1", &[]), "started\n");
    assert_eq!(
        run(&d, "notes/fg:1", &["-c", "3", "/var/log/nginx/error.log"]),
        "ed\n"
    );

    // 002/003: layers and history: one history entry per instruction, empty layers marked
    let h = d.ok(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        "--no-trunc",
        "notes/fg:1",
    ]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(
        lines[0]
            .starts_with("/bin/sh -c #(nop)  CMD [\"-n\" \"1\" \"/var/log/nginx/error.log\"]|0B"),
        "{h}"
    );
    assert!(
        lines[1].starts_with("/bin/sh -c #(nop)  ENTRYPOINT [\"tail\"]|0B"),
        "{h}"
    );
    assert!(
        lines[2].starts_with("/bin/sh -c mkdir -p /var/log/nginx"),
        "{h}"
    );
}

// ---------------------------------------------------------------- private bases

/// A base image in a registry that wants a login: `berth login` stores the credentials,
/// `berth build` sends them all in X-Registry-Config, the daemon pulls the base with them
/// (and `--pull` pulls it again even though it is present).
#[test]
fn berth_build_pulls_a_private_base_with_the_stored_login() {
    let Some(reg) = common::registry::Registry::start_htpasswd("builder", "pw-4-build") else {
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    let base = reg.image("private/base:1");
    d.ok(&["tag", "busybox", &base]);
    let cfg = d.root.join("berth-config");
    let berth = |args: &[&str]| {
        Command::new(common::bin_dir().join("berth"))
            .arg("-H")
            .arg(d.host())
            .args(args)
            .env("BERTH_CONFIG", &cfg)
            .stdin(Stdio::null())
            .output()
            .expect("berth")
    };
    ok(
        berth(&["login", "-u", "builder", "-p", "pw-4-build", &reg.addr]),
        "login",
        &d,
    );
    ok(berth(&["push", &base]), "push", &d);
    d.ok(&["rmi", &base]);
    let ctx = context(
        &d,
        &[(
            "Dockerfile",
            &format!("FROM {base}\nRUN echo on-private > /p\nCMD cat /p\n"),
        )],
    );
    let out = build_ok(
        &d,
        &ctx,
        &["-t", "frompriv:1", "."],
        "build from a private base",
    );
    assert!(out.contains(&format!("Step 1/3 : FROM {base}")), "{out}");
    assert_eq!(run(&d, "frompriv:1", &[]), "on-private\n");
    let out = build_ok(
        &d,
        &ctx,
        &["--pull", "-q", "-t", "frompriv:1", "."],
        "--pull",
    );
    assert_eq!(
        out.trim(),
        image_id(&d, "frompriv:1"),
        "same base, all cached"
    );
    // without the login the daemon is refused
    ok(berth(&["logout", &reg.addr]), "logout", &d);
    d.ok(&["rmi", "frompriv:1", &base]);
    let o = berth_in(&d, &ctx, &["-t", "frompriv:2", "."], None);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("no basic auth credentials")
            || stderr(&o).contains("unauthorized")
            || stderr(&o).contains("authentication required"),
        "{}",
        stderr(&o)
    );
}

/// Ctrl-C on `berth build` during a RUN: the connection goes, the daemon kills and removes
/// the RUN's container, and nothing is tagged.
#[test]
fn berth_build_interrupted_mid_run_leaves_nothing() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(
        &d,
        &[("Dockerfile", "FROM busybox\nRUN echo started; sleep 60\n")],
    );
    let mut cmd = Command::new(common::bin_dir().join("berth"));
    cmd.args(["-H", &d.host(), "build", "-t", "gone:1", "."])
        .current_dir(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // as at a terminal: a suite started in the background (`cmd &`) has SIGINT ignored, and
    // children inherit that
    // SAFETY: only signal(2) between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("berth build");
    // wait for the RUN to be running
    let mut out = child.stdout.take().expect("stdout");
    let mut seen = String::new();
    let t0 = Instant::now();
    while !seen.contains("started\n") && t0.elapsed() < Duration::from_secs(30) {
        use std::io::Read;
        let mut b = [0u8; 256];
        match out.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&b[..n])),
        }
    }
    assert!(seen.contains("started\n"), "{seen}");
    assert_eq!(
        d.ok(&["ps", "-q"]).lines().count(),
        1,
        "the RUN container runs"
    );
    // SAFETY: the berth process this test started, by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    assert!(
        common::eventually(20, || d.ok(&["ps", "-aq"]).trim().is_empty()),
        "the RUN container is left: {}",
        d.ok(&["ps", "-a"])
    );
    let o = d.berth(&["image", "inspect", "gone:1"]);
    assert!(!o.status.success(), "nothing tagged");
}
