//! `docker build` (the classic builder's `POST /build`) against berthd: through the real
//! docker CLI with `DOCKER_BUILDKIT=0`, and raw HTTP for the API's details.

mod common;
use common::{stderr, stdout, tmpdir, Daemon};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::build::DOCKER;

/// `docker build` (classic) in `ctx` against the daemon; None without the docker CLI.
fn docker_build(d: &Daemon, ctx: &Path, args: &[&str]) -> Option<Output> {
    docker_build_stdin(d, ctx, args, None)
}

fn docker_build_stdin(
    d: &Daemon,
    ctx: &Path,
    args: &[&str],
    input: Option<&[u8]>,
) -> Option<Output> {
    common::build::docker_build_in(d, ctx, Some("0"), args, input)
}

fn build_ok(d: &Daemon, ctx: &Path, args: &[&str]) -> Option<String> {
    let o = docker_build(d, ctx, args)?;
    assert!(
        o.status.success(),
        "docker build {args:?} failed ({:?}):\n{}\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o),
        d.log()
    );
    Some(stdout(&o))
}

/// A context directory with these files.
fn context(files: &[(&str, &str)]) -> PathBuf {
    let dir = tmpdir("bctx");
    common::build::write_files(&dir, files);
    dir
}

fn docker(d: &Daemon, args: &[&str]) -> String {
    common::docker_ok(d, args).unwrap_or_default()
}

fn history(d: &Daemon, image: &str) -> Vec<String> {
    docker(
        d,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Size}}",
            image,
        ],
    )
    .lines()
    .map(String::from)
    .collect()
}

#[test]
fn build_run_copy_cmd_tag_then_cached_rebuild() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM busybox\nENV GREETING=\"hello there\"\nWORKDIR /app\nCOPY extra.txt .\nRUN echo built > /built && cat extra.txt\nCMD cat /app/extra.txt /built\n",
        ),
        ("extra.txt", "payload\n"),
    ]);
    let Some(out) = build_ok(&d, &ctx, &["-t", "b1:1", "."]) else {
        return;
    };
    // docker's step lines
    for l in [
        "Step 1/6 : FROM busybox",
        "Step 2/6 : ENV GREETING=\"hello there\"",
        "Step 5/6 : RUN echo built > /built && cat extra.txt",
        " ---> Running in ",
        "payload",
        "Removing intermediate container ",
        "Successfully built ",
        "Successfully tagged b1:1",
    ] {
        assert!(out.contains(l), "{l:?} not in:\n{out}");
    }
    let run = docker(&d, &["run", "--rm", "b1:1"]);
    assert_eq!(run, "payload\nbuilt\n");
    let env = docker(
        &d,
        &["run", "--rm", "b1:1", "sh", "-c", "echo $GREETING; pwd"],
    );
    assert_eq!(env, "hello there\n/app\n");
    // history as docker writes it, newest first
    let h = history(&d, "b1:1");
    assert!(
        h[0].starts_with(
            "/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"cat /app/extra.txt /built\"]|0B"
        ),
        "{h:?}"
    );
    assert!(
        h[1].starts_with("/bin/sh -c echo built > /built && cat extra.txt|"),
        "{h:?}"
    );
    assert!(h[2].starts_with("/bin/sh -c #(nop) COPY file:"), "{h:?}");
    assert!(h[2].contains(" in . "), "{h:?}");
    assert!(h[3].starts_with("/bin/sh -c #(nop) WORKDIR /app|"), "{h:?}");
    assert_eq!(h[4], "/bin/sh -c #(nop)  ENV GREETING=hello there|0B");
    let cfg = docker(
        &d,
        &[
            "inspect",
            "-f",
            "{{json .Config.Cmd}} {{.Config.WorkingDir}}",
            "b1:1",
        ],
    );
    assert_eq!(
        cfg.trim(),
        "[\"/bin/sh\",\"-c\",\"cat /app/extra.txt /built\"] /app"
    );
    // a second build: every step from the cache, the same image
    let id1 = docker(&d, &["inspect", "-f", "{{.Id}}", "b1:1"]);
    let out2 = build_ok(&d, &ctx, &["-t", "b1:2", "."]).unwrap();
    assert_eq!(out2.matches(" ---> Using cache").count(), 5, "{out2}");
    assert!(!out2.contains("Running in"), "{out2}");
    assert_eq!(docker(&d, &["inspect", "-f", "{{.Id}}", "b1:2"]), id1);
    // a changed file: the COPY and what follows are rebuilt
    std::fs::write(ctx.join("extra.txt"), "changed\n").unwrap();
    let out3 = build_ok(&d, &ctx, &["-t", "b1:3", "."]).unwrap();
    assert_eq!(out3.matches(" ---> Using cache").count(), 2, "{out3}");
    assert_eq!(docker(&d, &["run", "--rm", "b1:3"]), "changed\nbuilt\n");
    // the cache survives a daemon restart
    let mut d = d;
    d.stop_daemon();
    let d = d.restarted(&[]);
    let out4 = build_ok(&d, &ctx, &["-t", "b1:4", "."]).unwrap();
    assert_eq!(out4.matches(" ---> Using cache").count(), 5, "{out4}");
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn a_failed_step_keeps_the_old_tag_and_the_clis_exit_code() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN echo one > /v\n")]);
    if build_ok(&d, &ctx, &["-t", "keep:1", "."]).is_none() {
        return;
    }
    let before = docker(&d, &["inspect", "-f", "{{.Id}}", "keep:1"]);
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo two > /v\nRUN exit 3\n",
    )
    .unwrap();
    let o = docker_build(&d, &ctx, &["-t", "keep:1", "-t", "keep:new", "."]).unwrap();
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
        "{}",
        stderr(&o)
    );
    // nothing tagged: the old image keeps its tag, the new tag does not exist
    assert_eq!(docker(&d, &["inspect", "-f", "{{.Id}}", "keep:1"]), before);
    assert!(!d.docker(&["inspect", "keep:new"]).unwrap().status.success());
    // docker leaves the failed RUN container without --force-rm
    let ps = docker(&d, &["ps", "-aq"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    docker(&d, &["rm", ps.trim()]);
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN false\n").unwrap();
    let o = docker_build(&d, &ctx, &["--force-rm", "."]).unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("The command '/bin/sh -c false' returned a non-zero code: 1"));
    assert!(docker(&d, &["ps", "-aq"]).trim().is_empty());
    // a syntax error, with its line, before anything is built
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN true\nFOO bar\n").unwrap();
    let o = docker_build(&d, &ctx, &["."]).unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("dockerfile parse error line 3: unknown instruction: FOO"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn quiet_iidfile_labels_build_args_and_intermediate_images() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nARG A=1\nARG B\nRUN echo \"building $A$B\" > /a\nLABEL from=file\nCMD [\"cat\", \"/a\"]\n",
    )]);
    let iid = ctx.join("iid");
    let Some(out) = build_ok(
        &d,
        &ctx,
        &[
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            "--build-arg",
            "A=zz",
            "--label",
            "k=v",
            "-t",
            "q:1",
            ".",
        ],
    ) else {
        return;
    };
    // -q: the ID alone
    assert!(
        out.trim().starts_with("sha256:") && out.trim().len() == 71,
        "{out:?}"
    );
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(id.trim(), out.trim());
    assert_eq!(docker(&d, &["run", "--rm", "q:1"]), "building zz\n");
    let labels = docker(&d, &["inspect", "-f", "{{json .Config.Labels}}", "q:1"]);
    assert_eq!(labels.trim(), r#"{"from":"file","k":"v"}"#);
    // the build arg is in the RUN's history, not in the image's env
    let h = history(&d, "q:1");
    assert!(
        h.iter()
            .any(|l| l.starts_with("|1 A=zz /bin/sh -c echo \"building $A$B\" > /a|")),
        "{h:?}"
    );
    let env = docker(&d, &["inspect", "-f", "{{json .Config.Env}}", "q:1"]);
    assert!(!env.contains("A=zz"), "{env}");
    // intermediate images: in images -a, not in images; docker history names them
    let shown = docker(&d, &["images", "-q"]);
    assert_eq!(shown.lines().count(), 2, "{shown}");
    let all = docker(&d, &["images", "-aq"]);
    // busybox and one per step (2 ARG, RUN, LABEL, CMD, the --label's LABEL)
    assert_eq!(all.lines().count(), 7, "{all}");
    let ids = docker(&d, &["history", "-q", "q:1"]);
    assert!(!ids.lines().any(|l| l == "<missing>"), "{ids}");
    assert!(docker(&d, &["images", "-q", "-f", "dangling=true"])
        .trim()
        .is_empty());
    // removing the image removes its intermediate images, not the base
    let rmi = docker(&d, &["rmi", "q:1"]);
    for i in all.lines().take(6) {
        assert!(rmi.contains(&format!("Deleted: sha256:{i}")), "{i} {rmi}");
    }
    assert_eq!(docker(&d, &["images", "-aq"]).lines().count(), 1);
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn multi_stage_target_copy_from_scratch_and_meta_args() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG BASE=busybox\n\
             FROM ${BASE} AS builder\n\
             RUN mkdir -p /out && echo compiled > /out/bin\n\
             FROM busybox AS unused\n\
             RUN echo never-run > /nope\n\
             FROM builder AS tested\n\
             RUN echo tested >> /out/bin\n\
             FROM scratch AS final\n\
             COPY --from=tested /out/bin /bin.txt\n\
             COPY --from=0 /out /from-index\n\
             COPY --from=busybox /bin/busybox /bin/sh\n\
             CMD [\"/bin/sh\"]\n\
             FROM final AS last\n\
             LABEL last=1\n",
        ),
        ("x", "x"),
    ]);
    let Some(out) = build_ok(&d, &ctx, &["--target", "final", "-t", "ms:final", "."]) else {
        return;
    };
    // the unused stage and the one after the target are not built: 3 stages, 9 steps, and
    // the ARG before the first FROM is a step of its own (as dockerd counts it)
    assert!(!out.contains("never-run"), "{out}");
    assert!(
        out.contains("Step 1/10 : ARG BASE=busybox\nStep 2/10 : FROM ${BASE} AS builder"),
        "{out}"
    );
    assert!(out.contains("Step 10/10 : CMD [\"/bin/sh\"]"), "{out}");
    assert!(!out.contains("LABEL last=1"), "{out}");
    let got = docker(
        &d,
        &[
            "run",
            "--rm",
            "ms:final",
            "/bin/sh",
            "-c",
            "for f in /bin.txt /from-index/bin; do while read l; do echo $l; done < $f; done",
        ],
    );
    assert_eq!(got, "compiled\ntested\ncompiled\n");
    // a stage with no image is an error
    let o = docker_build(&d, &ctx, &["--target", "nope", "."]).unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("failed to reach build target nope in Dockerfile"),
        "{}",
        stderr(&o)
    );
    // the whole file: the last stage builds on the final one
    let out = build_ok(&d, &ctx, &["-t", "ms:last", "."]).unwrap();
    assert!(out.contains("LABEL last=1"), "{out}");
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn dockerignore_dockerfile_elsewhere_and_stdin() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[
        (".dockerignore", "secret*\n**/*.log\n!keep.log\n"),
        ("secret.txt", "s"),
        ("a/b/debug.log", "l"),
        ("keep.log", "k"),
        ("app/main.txt", "main"),
    ]);
    let df_dir = tmpdir("bdf");
    std::fs::write(
        df_dir.join("Build.df"),
        "FROM busybox\nCOPY . /ctx/\nRUN find /ctx -type f | sort\n",
    )
    .unwrap();
    let df = df_dir.join("Build.df");
    let Some(out) = build_ok(&d, &ctx, &["-f", df.to_str().unwrap(), "-t", "ign", "."]) else {
        return;
    };
    let files = docker(&d, &["run", "--rm", "ign", "find", "/ctx", "-type", "f"]);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort();
    assert_eq!(
        files,
        ["/ctx/.dockerignore", "/ctx/app/main.txt", "/ctx/keep.log"],
        "{out}"
    );
    // a Dockerfile on stdin (no context), and a context tar on stdin
    let o = docker_build_stdin(
        &d,
        &ctx,
        &["-t", "stdin1", "-"],
        Some(b"FROM busybox\nRUN echo from-stdin\n"),
    )
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("from-stdin"));
    let tar = std::process::Command::new("tar")
        .args(["-C", ctx.to_str().unwrap(), "-c", "."])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nCOPY app /app\nCMD cat /app/main.txt\n",
    )
    .unwrap();
    let tar2 = std::process::Command::new("tar")
        .args(["-C", ctx.to_str().unwrap(), "-cz", "."])
        .output()
        .unwrap()
        .stdout;
    assert!(!tar.is_empty());
    let o = docker_build_stdin(&d, &ctx, &["-t", "stdin2", "-"], Some(&tar2)).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(docker(&d, &["run", "--rm", "stdin2"]), "main");
    // COPY of something outside the context is refused
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY ../x /x\n").unwrap();
    let o = docker_build(&d, &ctx, &["."]).unwrap();
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&ctx);
    let _ = std::fs::remove_dir_all(&df_dir);
}

/// A tar context of these files.
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn api_stream_quiet_errors_and_prune() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = tar_of(&[("Dockerfile", "FROM busybox\nRUN echo hi > /x\nCMD cat /x\n")]);
    let (st, head, body) = d.http_body("POST", "/v1.41/build?t=api%3A1&version=1", &ctx);
    assert_eq!(st, 200, "{head}");
    let raw = String::from_utf8_lossy(&body).into_owned();
    // Go's escaping and docker's order: aux, Successfully built, Successfully tagged
    assert!(
        raw.contains(r#"{"stream":" ---\u003e Running in "#),
        "{raw}"
    );
    let ls = lines(&body);
    let n = ls.len();
    let id = ls[n - 3]["aux"]["ID"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"));
    assert_eq!(
        ls[n - 2]["stream"],
        format!("Successfully built {}\n", &id[7..19])
    );
    assert_eq!(ls[n - 1]["stream"], "Successfully tagged api:1\n");
    // q=1: the ID line alone
    let (_, _, body) = d.http_body("POST", "/build?q=1", &ctx);
    let ls = lines(&body);
    assert_eq!(ls.len(), 1, "{ls:?}");
    assert_eq!(ls[0]["stream"], format!("{id}\n"));
    // bad input before the build: a status; a failing step: 200 and the error line
    let (st, _, body) = d.http_body(
        "POST",
        "/build",
        &tar_of(&[("Dockerfile", "FROM busybox\nBOGUS x\n")]),
    );
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body)
        .contains("dockerfile parse error line 2: unknown instruction: BOGUS"));
    let (st, _, _) = d.http_body("POST", "/build?t=Bad%20Tag", &ctx);
    assert_eq!(st, 400);
    let (st, _, body) = d.http_body(
        "POST",
        "/build",
        &tar_of(&[("Dockerfile", "FROM busybox\nRUN exit 7\n")]),
    );
    assert_eq!(st, 200);
    let last = lines(&body).pop().unwrap();
    assert_eq!(last["errorDetail"]["code"], 7, "{last}");
    assert_eq!(
        last["error"],
        "The command '/bin/sh -c exit 7' returned a non-zero code: 7"
    );
    // prune: the cache's untagged images go (the tagged image stays, whole)
    let _ = d.docker(&["container", "prune", "-f"]);
    let (st, _, body) = d.http("POST", "/build/prune", None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["CachesDeleted"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert!(v["SpaceReclaimed"].as_u64().is_some());
    let (st, _, _) = d.http("GET", "/images/api:1/json", None);
    assert_eq!(st, 200);
    let run = common::docker_ok(&d, &["run", "--rm", "api:1"]);
    if let Some(run) = run {
        assert_eq!(run, "hi\n");
    }
}

#[test]
fn a_client_that_disconnects_stops_the_build_and_its_container_goes() {
    use std::io::{Read, Write};
    let d = Daemon::start();
    d.load_busybox();
    let ctx = tar_of(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo started; sleep 60\nRUN echo never\n",
    )]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    write!(
        s,
        "POST /build?t=gone HTTP/1.1\r\nHost: berth\r\nContent-Length: {}\r\n\r\n",
        ctx.len()
    )
    .unwrap();
    s.write_all(&ctx).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    while !String::from_utf8_lossy(&seen).contains(r#"{"stream":"started"#) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    // the RUN container exists while it runs
    let (_, _, ps) = d.http("GET", "/containers/json?all=1", None);
    let ps: Vec<serde_json::Value> = serde_json::from_slice(&ps).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    drop(s);
    assert!(
        common::eventually(20, || {
            let (_, _, ps) = d.http("GET", "/containers/json?all=1", None);
            String::from_utf8_lossy(&ps).trim() == "[]"
        }),
        "the build container is still there"
    );
    let (st, _, _) = d.http("GET", "/images/gone/json", None);
    assert_eq!(st, 404);
}

/// `docker build` (classic) against any daemon socket.
fn build_on(host: &str, cfg: &Path, ctx: &Path, args: &[&str]) -> Output {
    Command::new(DOCKER)
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", cfg)
        .env_remove("DOCKER_API_VERSION")
        .current_dir(ctx)
        .arg("build")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("docker build")
}

/// The step lines of a build's output, IDs masked, without the container lines docker
/// prints for metadata steps (berth writes those images without a container).
fn steps(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| {
            l.starts_with("Step ")
                || l.starts_with("Successfully")
                || l.starts_with("# Executing")
                || l.starts_with("[Warning]")
        })
        .map(|l| {
            if l.starts_with("Successfully built") {
                "Successfully built <id>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[test]
fn history_config_and_steps_match_dockerd() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(dk) = common::dockerd::Dockerd::start(&d.root) else {
        return;
    };
    let o = dk.docker(&["load", "-i", common::busybox_tar().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ctx = context(&[
        (
            "Dockerfile",
            "# a comment\n\
             FROM busybox\n\
             LABEL a=b \"c d\"=\"e f\"\n\
             ENV X=1 Y=\"two words\"\n\
             ENV Z 3\n\
             ARG V=9\n\
             RUN echo $V $X > /v\n\
             WORKDIR /w\n\
             COPY f.txt .\n\
             COPY d/ /d/\n\
             ADD f.txt /added\n\
             EXPOSE 80 53/udp\n\
             VOLUME [\"/data\"]\n\
             USER nobody\n\
             STOPSIGNAL SIGUSR1\n\
             HEALTHCHECK --interval=5s --retries=2 CMD true\n\
             SHELL [\"/bin/sh\", \"-ec\"]\n\
             RUN echo shell \\\n    continued\n\
             ONBUILD RUN echo trig\n\
             ENTRYPOINT [\"sh\"]\n\
             CMD [\"-c\", \"true\"]\n\
             MAINTAINER me\n",
        ),
        ("f.txt", "file\n"),
        ("d/one", "1"),
        ("d/sub/two", "2"),
    ]);
    let args = ["--build-arg", "V=7", "--label", "lbl=x", "-t", "cmp:1", "."];
    let ours = build_on(&d.host(), &d.root.join("cfg"), &ctx, &args);
    assert!(ours.status.success(), "{}{}", stdout(&ours), stderr(&ours));
    let theirs = build_on(&dk.host(), &dk.root.join("cfg"), &ctx, &args);
    assert!(
        theirs.status.success(),
        "{}{}",
        stdout(&theirs),
        stderr(&theirs)
    );
    assert_eq!(steps(&stdout(&ours)), steps(&stdout(&theirs)));
    let fmt = "{{.CreatedBy}}";
    let hist = |o: Output| -> Vec<String> {
        stdout(&o)
            .lines()
            // COPY/ADD: docker's content hash differs by mtime handling; compare the rest
            .map(|l| match l.find("file:").or_else(|| l.find("dir:")) {
                Some(i) => {
                    let end = l[i..].find(' ').map(|e| i + e).unwrap_or(l.len());
                    format!("{}<hash>{}", &l[..i], &l[end..])
                }
                None => l.to_string(),
            })
            .collect()
    };
    let h_ours = hist(
        d.docker(&["history", "--no-trunc", "--format", fmt, "cmp:1"])
            .unwrap(),
    );
    let h_theirs = hist(dk.docker(&["history", "--no-trunc", "--format", fmt, "cmp:1"]));
    for (a, b) in h_ours.iter().zip(&h_theirs) {
        assert_eq!(a, b, "history differs:\n{h_ours:#?}\n{h_theirs:#?}");
    }
    assert_eq!(h_ours.len(), h_theirs.len());
    let sizes = |o: Output| -> Vec<bool> { stdout(&o).lines().map(|l| l == "0B").collect() };
    assert_eq!(
        sizes(
            d.docker(&["history", "--format", "{{.Size}}", "cmp:1"])
                .unwrap()
        ),
        sizes(dk.docker(&["history", "--format", "{{.Size}}", "cmp:1"])),
        "empty layers differ"
    );
    for f in [
        "{{json .Config.Cmd}}",
        "{{json .Config.Entrypoint}}",
        "{{json .Config.Env}}",
        "{{json .Config.WorkingDir}}",
        "{{json .Config.User}}",
        "{{json .Config.ExposedPorts}}",
        "{{json .Config.Volumes}}",
        "{{json .Config.Labels}}",
        "{{json .Config.Healthcheck}}",
        "{{json .Config.StopSignal}}",
        "{{json .Config.OnBuild}}",
        "{{json .Config.Shell}}",
        "{{json .Author}}",
        "{{json .ContainerConfig.Cmd}}",
        "{{.Os}}/{{.Architecture}}",
        "{{len .RootFS.Layers}}",
    ] {
        let a = stdout(&d.docker(&["inspect", "-f", f, "cmp:1"]).unwrap());
        let b = stdout(&dk.docker(&["inspect", "-f", f, "cmp:1"]));
        assert_eq!(a, b, "{f}");
    }
    let run = |o: Output| stdout(&o);
    assert_eq!(
        run(d
            .docker(&[
                "run",
                "--rm",
                "--entrypoint",
                "cat",
                "cmp:1",
                "/v",
                "/w/f.txt",
                "/d/sub/two",
                "/added"
            ])
            .unwrap()),
        run(dk.docker(&[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            "cmp:1",
            "/v",
            "/w/f.txt",
            "/d/sub/two",
            "/added"
        ]))
    );
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn a_private_base_is_pulled_with_the_clients_credentials() {
    let Some(reg) = common::registry::Registry::start_htpasswd("builder", "s3cret") else {
        return;
    };
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("private/base:1");
    let login = ["login", "-u", "builder", "-p", "s3cret", reg.addr.as_str()];
    if d.docker(&login).is_none() {
        return;
    }
    docker(&d, &["tag", "busybox", &name]);
    docker(&d, &["push", &name]);
    docker(&d, &["rmi", &name]);
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {name}\nRUN echo on-private > /p\n"),
    )]);
    // the CLI sends its credentials in X-Registry-Config; the base is pulled with them
    let out = build_ok(&d, &ctx, &["-t", "frompriv", "."]).unwrap();
    assert!(out.contains("Pulling from private/base"), "{out}");
    assert_eq!(
        docker(&d, &["run", "--rm", "frompriv", "cat", "/p"]),
        "on-private\n"
    );
    // --pull fetches it again even though it is here
    let out = build_ok(&d, &ctx, &["--pull", "-t", "frompriv", "."]).unwrap();
    assert!(out.contains("Pulling from private/base"), "{out}");
    // without credentials: the registry's refusal ends the build
    docker(&d, &["logout", reg.addr.as_str()]);
    docker(&d, &["rmi", "frompriv", &name]);
    let o = docker_build(&d, &ctx, &["--pull", "."]).unwrap();
    assert!(!o.status.success(), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn heredocs_onbuild_hosts_network_and_cache_from() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\n\
         ARG WHO=world\n\
         RUN <<EOF\n\
         echo hello $WHO > /greeting\n\
         echo second line >> /greeting\n\
         EOF\n\
         COPY <<EOT /etc/motd\n\
         motd for ${WHO}\n\
         EOT\n\
         RUN grep -q 'myhost' /etc/hosts && echo host-ok > /hosts-ok\n\
         ONBUILD RUN echo triggered > /trig\n",
    )]);
    let Some(out) = build_ok(
        &d,
        &ctx,
        &[
            "--add-host",
            "myhost:10.1.2.3",
            "--network",
            "none",
            "--build-arg",
            "WHO=you",
            "-t",
            "hd:1",
            ".",
        ],
    ) else {
        return;
    };
    assert!(!out.contains("Using cache"), "{out}");
    let got = docker(
        &d,
        &[
            "run",
            "--rm",
            "hd:1",
            "cat",
            "/greeting",
            "/etc/motd",
            "/hosts-ok",
        ],
    );
    assert_eq!(got, "hello you\nsecond line\nmotd for you\nhost-ok\n");
    // the child runs the trigger right after its FROM; the trigger is not inherited further
    let child = context(&[("Dockerfile", "FROM hd:1\nRUN cat /trig\n")]);
    let out = build_ok(&d, &child, &["-t", "hd:child", "."]).unwrap();
    assert!(out.contains("# Executing 1 build trigger"), "{out}");
    assert_eq!(
        docker(&d, &["run", "--rm", "hd:child", "cat", "/trig"]),
        "triggered\n"
    );
    let ob = docker(
        &d,
        &["inspect", "-f", "{{json .Config.OnBuild}}", "hd:child"],
    );
    assert!(ob.trim() == "null" || ob.trim() == "[]", "{ob}");
    // --cache-from: a fresh daemon-side cache (after prune of the index) still reuses the chain
    let (st, _, _) = d.http("POST", "/build/prune", None);
    assert_eq!(st, 200);
    let out = build_ok(
        &d,
        &ctx,
        &[
            "--add-host",
            "myhost:10.1.2.3",
            "--network",
            "none",
            "--build-arg",
            "WHO=you",
            "--cache-from",
            "hd:1",
            "-t",
            "hd:2",
            ".",
        ],
    )
    .unwrap();
    assert_eq!(out.matches("Using cache").count(), 5, "{out}");
    assert_eq!(
        docker(&d, &["inspect", "-f", "{{.Id}}", "hd:2"]),
        docker(&d, &["inspect", "-f", "{{.Id}}", "hd:1"])
    );
    let _ = std::fs::remove_dir_all(&ctx);
    let _ = std::fs::remove_dir_all(&child);
}

/// Serves `body` at any path on 127.0.0.1 (one thread, until the process ends).
fn serve_once(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn add_urls_and_archives_and_run_flags() {
    let d = Daemon::start();
    d.load_busybox();
    let port = serve_once("downloaded\n");
    let ctx = context(&[
        (
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 ADD http://127.0.0.1:{port}/files/remote.txt /dl/\n\
                 ADD bundle.tar /unpacked/\n\
                 COPY bundle.tar /copied/\n\
                 RUN --network=none cat /proc/net/dev | grep -c : > /ifaces\n"
            ),
        ),
        ("x", ""),
    ]);
    // a tar in the context: ADD unpacks it, COPY does not
    let bundle = ctx.join("bundle.tar");
    let status = Command::new("tar")
        .args([
            "-C",
            ctx.to_str().unwrap(),
            "-cf",
            bundle.to_str().unwrap(),
            "x",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let Some(_) = build_ok(&d, &ctx, &["-t", "add:1", "."]) else {
        return;
    };
    assert_eq!(
        docker(&d, &["run", "--rm", "add:1", "cat", "/dl/remote.txt"]),
        "downloaded\n"
    );
    let ls = docker(&d, &["run", "--rm", "add:1", "ls", "/unpacked", "/copied"]);
    assert!(ls.contains("/unpacked:\nx\n"), "{ls}");
    assert!(ls.contains("/copied:\nbundle.tar\n"), "{ls}");
    // RUN --network=none: only the loopback device
    assert_eq!(
        docker(&d, &["run", "--rm", "add:1", "cat", "/ifaces"]),
        "1\n"
    );
    // what needs BuildKit is refused with docker's words
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN --mount=type=cache,target=/c true\n",
    )
    .unwrap();
    let o = docker_build(&d, &ctx, &["."]).unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("the --mount option requires BuildKit"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&ctx);
}

#[test]
fn shm_size_and_memory_limits_reach_run() {
    let d = Daemon::start();
    d.load_busybox();
    let ctx = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN df -k /dev/shm | tail -1 | awk '{print $2}' > /shm; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null > /mem; true\n",
    )]);
    let Some(_) = build_ok(
        &d,
        &ctx,
        &["--shm-size", "100m", "--memory", "256m", "-t", "lim:1", "."],
    ) else {
        return;
    };
    assert_eq!(
        docker(&d, &["run", "--rm", "lim:1", "cat", "/shm"]),
        "102400\n"
    );
    let mem = docker(&d, &["run", "--rm", "lim:1", "cat", "/mem"]);
    // cgroup v2 or v1
    assert_eq!(mem, "268435456\n");
    let _ = std::fs::remove_dir_all(&ctx);
}
