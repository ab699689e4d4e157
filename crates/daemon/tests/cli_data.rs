//! The berth CLI's data commands end to end: cp both ways, volume *, system df and prune.

mod common;
use common::{stderr, stdout, Daemon};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn fail_text(d: &Daemon, args: &[&str]) -> (i32, String) {
    let o = d.berth(args);
    assert!(
        !o.status.success(),
        "berth {args:?} should fail: {}",
        stdout(&o)
    );
    (o.status.code().unwrap_or(-1), stderr(&o))
}

fn tar_names(data: &[u8]) -> Vec<String> {
    tar::Archive::new(data)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn cp_both_ways() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&["run", "-d", "--name", "cpc", "busybox", "sleep", "1000"]);
    let h = d.root.join("host");
    std::fs::create_dir_all(h.join("d1/sub")).unwrap();
    std::fs::write(h.join("f.txt"), "hello file\n").unwrap();
    std::fs::set_permissions(h.join("f.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(h.join("d1/a"), "aaa\n").unwrap();
    std::fs::write(h.join("d1/sub/b"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(h.join("d1/sub/b"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = |x: &str| h.join(x).to_string_lossy().into_owned();

    // host → container: a file into a directory, keeping its mode
    let o = d.berth(&["cp", &p("f.txt"), "cpc:/tmp/"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no progress line without a terminal");
    assert_eq!(d.ok(&["exec", "cpc", "cat", "/tmp/f.txt"]), "hello file\n");
    assert_eq!(
        d.ok(&["exec", "cpc", "stat", "-c", "%a", "/tmp/f.txt"]),
        "640\n"
    );
    // a file to a new name; then onto an existing file (renamed entry)
    d.ok(&["cp", &p("f.txt"), "cpc:/tmp/g.txt"]);
    d.ok(&["cp", &p("d1/a"), "cpc:/tmp/g.txt"]);
    assert_eq!(d.ok(&["exec", "cpc", "cat", "/tmp/g.txt"]), "aaa\n");
    // a directory to a new name, then into an existing directory
    d.ok(&["cp", &p("d1"), "cpc:/tmp/d2"]);
    assert_eq!(
        d.ok(&["exec", "cpc", "cat", "/tmp/d2/sub/b"]),
        "#!/bin/sh\n"
    );
    assert_eq!(
        d.ok(&["exec", "cpc", "stat", "-c", "%a", "/tmp/d2/sub/b"]),
        "755\n"
    );
    d.ok(&["cp", &p("d1"), "cpc:/tmp/d2"]);
    assert_eq!(d.ok(&["exec", "cpc", "cat", "/tmp/d2/d1/a"]), "aaa\n");
    // `/.`: the contents only
    d.ok(&["exec", "cpc", "mkdir", "/tmp/d3"]);
    d.ok(&["cp", &format!("{}/.", p("d1")), "cpc:/tmp/d3"]);
    assert_eq!(d.ok(&["exec", "cpc", "cat", "/tmp/d3/a"]), "aaa\n");
    assert!(!d
        .berth(&["exec", "cpc", "test", "-e", "/tmp/d3/d1"])
        .status
        .success());

    // -a keeps the host uid/gid
    std::fs::write(h.join("own"), "x").unwrap();
    std::os::unix::fs::chown(h.join("own"), Some(1234), Some(5678)).unwrap();
    d.ok(&["cp", "-a", &p("own"), "cpc:/tmp/own"]);
    assert_eq!(
        d.ok(&["exec", "cpc", "stat", "-c", "%u:%g", "/tmp/own"]),
        "1234:5678\n"
    );

    // container → host: a file (mode kept), a directory to a new name and into a directory
    d.ok(&["cp", "cpc:/tmp/f.txt", &p("back.txt")]);
    assert_eq!(
        std::fs::read_to_string(h.join("back.txt")).unwrap(),
        "hello file\n"
    );
    assert_eq!(mode_of(&h.join("back.txt")), 0o640);
    d.ok(&["cp", "cpc:/tmp/d2", &p("out")]);
    assert_eq!(
        std::fs::read_to_string(h.join("out/sub/b")).unwrap(),
        "#!/bin/sh\n"
    );
    assert_eq!(mode_of(&h.join("out/sub/b")), 0o755);
    d.ok(&["cp", "cpc:/tmp/d2", &p("out")]);
    assert!(h.join("out/d2/sub/b").exists());
    d.ok(&["cp", "cpc:/tmp/d3/.", &p("out3")]);
    assert_eq!(std::fs::read_to_string(h.join("out3/a")).unwrap(), "aaa\n");
    // files copied out belong to the caller
    let md = std::fs::metadata(h.join("back.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(md.uid(), unsafe { libc::geteuid() });

    // `-` streams a tar out and reads one in
    let o = d.berth(&["cp", "cpc:/tmp/d3", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = tar_names(&o.stdout);
    assert!(names.contains(&"d3/a".to_string()), "{names:?}");
    let mut tb = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_ustar();
    hd.set_size(9);
    hd.set_mode(0o600);
    hd.set_uid(0);
    hd.set_gid(0);
    hd.set_mtime(1_700_000_000);
    tb.append_data(&mut hd, "streamed.txt", &b"from tar\n"[..])
        .unwrap();
    let input = tb.into_inner().unwrap();
    let o = d.berth_stdin(&["cp", "-", "cpc:/tmp"], &input);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        d.ok(&["exec", "cpc", "cat", "/tmp/streamed.txt"]),
        "from tar\n"
    );
    let o = d.berth_stdin(&["cp", "-", "cpc:/tmp/f.txt"], &input);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "destination \"cpc:/tmp/f.txt\" must be a directory\n"
    );

    // the whole root of a running container: its files, not the kernel's
    let o = d.berth(&["cp", "cpc:/", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names = tar_names(&o.stdout);
    assert!(names.contains(&"./etc/hostname".to_string()), "{names:?}");
    assert!(names.contains(&"./proc/".to_string()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("./proc/") && n.len() > 7),
        "{names:?}"
    );

    // a stopped container (never started)
    d.ok(&["create", "--name", "cps", "busybox", "true"]);
    d.ok(&["cp", &p("f.txt"), "cps:/f.txt"]);
    let o = d.berth(&["cp", "cps:/f.txt", "-"]);
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let mut s = String::new();
    std::io::Read::read_to_string(&mut e, &mut s).unwrap();
    assert_eq!(s, "hello file\n");

    // errors as docker words them
    assert_eq!(
        fail_text(&d, &["cp", "cpc:/nosuch", &p("x")]),
        (
            1,
            "Error response from daemon: Could not find the file /nosuch in container cpc\n".into()
        )
    );
    assert_eq!(
        fail_text(&d, &["cp", &p("f.txt"), "nosuchc:/tmp"]),
        (
            1,
            "Error response from daemon: No such container: nosuchc\n".into()
        )
    );
    assert_eq!(
        fail_text(&d, &["cp", &p("nosuch"), "cpc:/tmp"]),
        (
            1,
            format!("lstat {}: no such file or directory\n", p("nosuch"))
        )
    );
    assert_eq!(
        fail_text(&d, &["cp", &p("d1"), "cpc:/tmp/f.txt"]),
        (1, "cannot copy directory\n".into())
    );
    assert_eq!(
        fail_text(&d, &["cp", &p("f.txt"), "cpc:/nosuchdir/"]),
        (1, "no such directory\n".into())
    );
    assert_eq!(
        fail_text(&d, &["cp", &p("f.txt"), &p("g")]),
        (1, "must specify at least one container source\n".into())
    );
    assert_eq!(
        fail_text(&d, &["cp", "cpc:/a", "cps:/b"]),
        (1, "copying between containers is not supported\n".into())
    );
    let (code, e) = fail_text(&d, &["cp", "cpc:/x"]);
    assert_eq!(code, 1);
    assert!(
        e.starts_with("berth: 'berth cp' requires 2 arguments\n"),
        "{e}"
    );
}

#[test]
fn volumes_and_disk_usage() {
    let d = Daemon::start();
    d.load_busybox();
    assert_eq!(d.ok(&["volume", "create", "v1"]), "v1\n");
    assert_eq!(
        d.ok(&[
            "volume",
            "create",
            "--name",
            "v2",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "--label",
            "a=b"
        ]),
        "v2\n"
    );
    let anon = d.ok(&["volume", "create"]);
    assert_eq!(anon.trim().len(), 64, "{anon}");
    let ls = d.ok(&["volume", "ls"]);
    assert!(ls.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.contains("local     v1\nlocal     v2\n"), "{ls}");
    assert_eq!(d.ok(&["volume", "ls", "-q", "-f", "name=v"]), "v1\nv2\n");
    assert_eq!(
        d.ok(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Labels}}",
            "-f",
            "label=a"
        ]),
        "v2 a=b\n"
    );
    assert_eq!(
        d.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{json .Options}}",
            "v2"
        ]),
        "v2 local {\"device\":\"tmpfs\",\"type\":\"tmpfs\"}\n"
    );
    let o = d.berth(&["volume", "inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no such volume"), "{}", stderr(&o));
    let o = d.berth(&["volume", "create", "--name", "x", "y"]);
    assert_eq!(
        stderr(&o),
        "conflicting options: cannot specify a volume-name through both --name and as a positional arg\n"
    );

    // a container keeps v1 in use
    // (berth run has no -v yet: create through the API)
    let (st, _, body) = d.http(
        "POST",
        "/containers/create?name=user",
        Some(r#"{"Image":"busybox","Cmd":["sh","-c","echo 12345 > /data/f"],"HostConfig":{"Binds":["v1:/data"]}}"#),
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    d.ok(&["start", "-a", "user"]);
    let df = d.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages          1         1         "), "{df}");
    assert!(
        df.contains("\nLocal Volumes   3         1         "),
        "{df}"
    );
    let v = d.ok(&["system", "df", "-v"]);
    assert!(
        v.starts_with("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID       CREATED"),
        "{v}"
    );
    assert!(v.contains("\nbusybox      latest    "), "{v}");
    assert!(
        v.contains("\nContainers space usage:\n\nCONTAINER ID   IMAGE     COMMAND"),
        "{v}"
    );
    assert!(v.contains("   user\n"), "{v}");
    assert!(
        v.contains("\nLocal Volumes space usage:\n\nVOLUME NAME"),
        "{v}"
    );
    assert!(
        v.lines().any(|l| l.starts_with("v1 ") && l.contains(" 1 ")),
        "{v}"
    );
    assert!(
        v.contains("\nBuild cache usage: 0B\n\nCACHE ID   CACHE TYPE"),
        "{v}"
    );
    assert_eq!(
        d.ok(&["system", "df", "--format", "json"]).lines().count(),
        4
    );

    // prune: v1 is used and stays; the others go
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert!(
        out.contains(&format!("\n{}\n", anon.trim())) && out.contains("\nv2\n"),
        "{out}"
    );
    assert!(out.ends_with("\nTotal reclaimed space: 0B\n"), "{out}");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "v1\n");
    // rm: in use fails, missing fails, both reported
    let o = d.berth(&["volume", "rm", "v1", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 2, "{}", stderr(&o));
    d.ok(&["rm", "user"]);
    assert_eq!(d.ok(&["volume", "rm", "v1"]), "v1\n");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    // declining the prompt removes nothing
    d.ok(&["volume", "create", "keep"]);
    let o = d.berth_stdin(&["volume", "prune"], b"n\n");
    assert_eq!(
        stdout(&o),
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "keep\n");
}

#[test]
fn system_prune_all() {
    let d = Daemon::start();
    d.load_busybox();
    d.ok(&["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    d.ok(&["run", "--name", "done", "busybox", "true"]);
    d.ok(&["create", "--name", "base", "busybox"]);
    d.ok(&["commit", "base", "extra:1"]);
    d.ok(&["rm", "base"]);
    d.ok(&["network", "create", "spare"]);
    d.ok(&["volume", "create", "dangling"]);
    let o = d.berth_stdin(&["system", "prune", "-a", "--volumes"], b"n\n");
    assert!(stdout(&o).starts_with("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n  - all build cache\n\nAre you sure"), "{}", stdout(&o));
    assert!(d.ok(&["ps", "-aq"]).lines().count() == 2);

    let out = d.ok(&["system", "prune", "-a", "--volumes", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains("\n\nDeleted Networks:\nspare\n\n"), "{out}");
    assert!(out.contains("Deleted Volumes:\ndangling\n\n"), "{out}");
    assert!(
        out.contains("Deleted Images:\nuntagged: extra:1\ndeleted: sha256:"),
        "{out}"
    );
    assert!(out.contains("\nTotal reclaimed space: "), "{out}");
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "keeper\n");
    assert!(!d.ok(&["network", "ls"]).contains("spare"));
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    let imgs = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(imgs, "busybox:latest\n", "the image in use stays");
    // nothing left: only the total
    assert_eq!(
        d.ok(&["system", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
}

#[test]
fn run_volume_and_mount_flags_through_berth() {
    let d = Daemon::start();
    d.load_busybox();
    let host = d.root.join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from-host\n").unwrap();
    let file = d.root.join("single.conf");
    std::fs::write(&file, "single-file\n").unwrap();
    let h = host.to_str().unwrap();
    let f = file.to_str().unwrap();
    // a named volume is created on first use and gets the image's content at its path
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "cat",
        "/etc/passwd",
    ]);
    assert!(out.contains("root:"), "{out}");
    let out = d.ok(&["volume", "ls", "-q"]);
    assert!(out.lines().any(|l| l == "etcvol"), "{out}");
    // binds of a directory and of one file, read-only refused for writes
    let out = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/in:ro"),
        "-v",
        &format!("{f}:/etc/single.conf"),
        "busybox",
        "sh",
        "-c",
        "cat /in/in.txt /etc/single.conf; touch /in/x 2>&1 || echo ro-refused",
    ]);
    assert!(
        out.contains("from-host") && out.contains("single-file"),
        "{out}"
    );
    assert!(out.contains("ro-refused"), "{out}");
    // --mount bind/volume/tmpfs and --tmpfs
    let out = d.ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,source={h},target=/b"),
        "--mount",
        "type=volume,src=mvol,dst=/v",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1m",
        "--tmpfs",
        "/scratch:size=2m",
        "busybox",
        "sh",
        "-c",
        "echo w > /b/written; echo v > /v/f; grep -E ' /(t|scratch) ' /proc/mounts",
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("written")).unwrap(),
        "w\n"
    );
    assert!(
        out.contains(" /t tmpfs") && out.contains(" /scratch tmpfs"),
        "{out}"
    );
    // --volumes-from, an anonymous volume removed with the container by rm -v
    d.ok(&[
        "create", "--name", "vsrc", "-v", "/anon", "-v", "mvol:/v", "busybox", "true",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "vsrc",
        "busybox",
        "sh",
        "-c",
        "cat /v/f; ls -d /anon",
    ]);
    assert!(out.contains("v\n") && out.contains("/anon"), "{out}");
    let anon = d.inspect("vsrc")["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .and_then(|m| m["Name"].as_str())
        .unwrap()
        .to_string();
    d.ok(&["rm", "-v", "vsrc"]);
    let out = d.ok(&["volume", "ls", "-q"]);
    assert!(!out.contains(&anon), "anonymous volume kept: {out}");
    assert!(out.contains("mvol"), "named volume removed: {out}");
    // --read-only rootfs
    let o = d.berth(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert!(!o.status.success());
    // bad --mount is the client's error, as docker's
    let o = d.berth(&["run", "--rm", "--mount", "src=/a", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("target is required"));
}
