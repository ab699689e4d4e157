use super::context::{self, Plan, Source};
use super::*;
use std::path::{Path, PathBuf};

fn parse(args: &[&str]) -> Opts {
    let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let p = flags::parse(&a, FLAGS, true).unwrap();
    Opts::from_flags(&p, &|k| (k == "FROMENV").then(|| "e v".to_string())).unwrap()
}

fn parse_err(args: &[&str]) -> String {
    let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let p = flags::parse(&a, FLAGS, true).unwrap();
    Opts::from_flags(&p, &|_| None).unwrap_err()
}

#[test]
fn query_as_docker_28_sends_it() {
    // the capture 31b: --no-cache --build-arg A=zz --label k=v -f ctx2/Dockerfile -t ac-b4 -t ac-b4:two
    let o = parse(&[
        "--no-cache",
        "--build-arg",
        "A=zz",
        "--label",
        "k=v",
        "-t",
        "ac-b4",
        "-t",
        "ac-b4:two",
        ".",
    ]);
    assert_eq!(
        o.query(Some("Dockerfile")),
        "/build?buildargs=%7B%22A%22%3A%22zz%22%7D&dockerfile=Dockerfile&labels=%7B%22k%22%3A%22v%22%7D&nocache=1&t=ac-b4&t=ac-b4%3Atwo&version=1"
    );
    // the capture 31: -t ac-b1:1
    assert_eq!(
        parse(&["-t", "ac-b1:1", "."]).query(Some("Dockerfile")),
        "/build?dockerfile=Dockerfile&t=ac-b1%3A1&version=1"
    );
    // -q with a tar on stdin and no -f: no dockerfile at all
    assert_eq!(parse(&["-q", "-"]).query(None), "/build?q=1&version=1");
}

#[test]
fn query_every_flag() {
    let o = parse(&[
        "--build-arg",
        "B",
        "--build-arg",
        "FROMENV",
        "--build-arg",
        "A=<x>",
        "--cache-from",
        "a:1,b:2",
        "--cache-from",
        "c",
        "--cgroup-parent",
        "cg",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "-c",
        "512",
        "--cpuset-cpus",
        "0-1",
        "--cpuset-mems",
        "0",
        "--add-host",
        "h1=10.0.0.1",
        "--add-host",
        "h2:10.0.0.2",
        "--force-rm",
        "--label",
        "z",
        "-m",
        "64m",
        "--memory-swap",
        "-1",
        "--network",
        "none",
        "--platform",
        "Linux/AMD64",
        "--pull",
        "--rm=false",
        "--shm-size",
        "1g",
        "--target",
        "t1",
        "--ulimit",
        "nofile=1024:2048",
        "--security-opt",
        "seccomp=unconfined",
        ".",
    ]);
    assert_eq!(
        o.query(Some("sub/Dockerfile.x")),
        concat!(
            "/build?buildargs=%7B%22A%22%3A%22%5Cu003cx%5Cu003e%22%2C%22B%22%3Anull%2C%22FROMENV%22%3A%22e+v%22%7D",
            "&cachefrom=%5B%22a%3A1%22%2C%22b%3A2%22%2C%22c%22%5D",
            "&cgroupparent=cg&cpuperiod=100000&cpuquota=50000&cpusetcpus=0-1&cpusetmems=0&cpushares=512",
            "&dockerfile=sub%2FDockerfile.x",
            "&extrahosts=h1%3A10.0.0.1&extrahosts=h2%3A10.0.0.2",
            "&forcerm=1&labels=%7B%22z%22%3A%22%22%7D&memory=67108864&memswap=-1",
            "&networkmode=none&platform=linux%2Famd64&pull=1&rm=0",
            "&securityopt=seccomp%3Dunconfined&shmsize=1073741824&target=t1",
            "&ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Hard%22%3A2048%2C%22Soft%22%3A1024%7D%5D",
            "&version=1"
        )
    );
    // defaults stay out: --rm, --network default, --isolation default
    assert_eq!(
        parse(&[
            "--rm",
            "--network",
            "default",
            "--isolation",
            "default",
            "."
        ])
        .query(Some("Dockerfile")),
        "/build?dockerfile=Dockerfile&version=1"
    );
}

#[test]
fn flag_values_refused_as_docker_does() {
    assert_eq!(
        parse_err(&["-t", "Bad:x", "."]),
        "invalid argument \"Bad:x\" for \"-t, --tag\" flag: invalid reference format: repository name (library/Bad) must be lowercase"
    );
    assert_eq!(
        parse_err(&["--add-host", "foo", "."]),
        "invalid argument \"foo\" for \"--add-host\" flag: bad format for add-host: \"foo\""
    );
    assert_eq!(
        parse_err(&["-m", "lots", "."]),
        "invalid argument \"lots\" for \"-m, --memory\" flag: invalid size: 'lots'"
    );
    assert_eq!(
        parse_err(&["-c", "x", "."]),
        "invalid argument \"x\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        parse_err(&["--build-arg", "=v", "."]),
        "invalid argument \"=v\" for \"--build-arg\" flag: invalid environment variable: =v"
    );
}

#[test]
fn sending_line_as_docker_prints_it() {
    assert_eq!(
        sending_line(3072),
        "Sending build context to Docker daemon  3.072kB"
    );
    assert_eq!(
        sending_line(1536),
        "Sending build context to Docker daemon  1.536kB"
    );
    assert_eq!(
        sending_line(512),
        "Sending build context to Docker daemon     512B"
    );
    assert_eq!(
        sending_line(12_345_678),
        "Sending build context to Docker daemon  12.35MB"
    );
}

// ---------------------------------------------------------------- context

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-build-ctx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The tar written for `plan`: (name, type, content) in order.
fn tar_of(plan: &Plan) -> Vec<(String, char, String)> {
    let mut out = Vec::new();
    context::write_tar(&plan.source, &mut std::io::empty(), &mut out).unwrap();
    let mut a = tar::Archive::new(&out[..]);
    let mut v = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            _ => 'f',
        };
        assert_eq!(e.header().uid().unwrap(), 0);
        let mut s = String::new();
        if kind == 'l' || kind == 'h' {
            s = e
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned();
        } else {
            e.read_to_string(&mut s).unwrap();
        }
        v.push((name.trim_end_matches('/').to_string(), kind, s));
    }
    v
}

fn names(plan: &Plan) -> Vec<String> {
    tar_of(plan).into_iter().map(|(n, _, _)| n).collect()
}

fn prep(ctx: &Path, file: Option<&str>) -> Plan {
    context::prepare(ctx.to_str().unwrap(), file, &mut std::io::empty()).unwrap()
}

#[test]
fn walk_order_types_and_ignore() {
    let d = tmp("walk");
    put(&d, "Dockerfile", "FROM busybox\n");
    put(&d, "b.txt", "b");
    put(&d, "a/z.txt", "z");
    put(&d, "a/b/c.txt", "c");
    put(&d, "a.txt", "a");
    put(&d, "node_modules/m/x.js", "x");
    put(&d, "logs/keep.log", "k");
    put(&d, "logs/drop.log", "d");
    put(&d, "secret.key", "s");
    std::os::unix::fs::symlink("a.txt", d.join("link")).unwrap();
    std::fs::hard_link(d.join("b.txt"), d.join("b2.txt")).unwrap();
    put(
        &d,
        ".dockerignore",
        "# comment\nnode_modules\n**/*.key\nlogs\n!logs/keep.log\n.dockerignore\nDockerfile\n",
    );
    let plan = prep(&d, None);
    assert_eq!(plan.dockerfile.as_deref(), Some("Dockerfile"));
    let t = tar_of(&plan);
    let n: Vec<&str> = t.iter().map(|(n, _, _)| n.as_str()).collect();
    // bytewise order, a directory's contents right after it; the Dockerfile and
    // .dockerignore sent although ignored; logs walked only for its exception
    assert_eq!(
        n,
        [
            ".dockerignore",
            "Dockerfile",
            "a",
            "a/b",
            "a/b/c.txt",
            "a/z.txt",
            "a.txt",
            "b.txt",
            "b2.txt",
            "link",
            "logs/keep.log",
        ]
    );
    assert!(t.contains(&("a".into(), 'd', String::new())));
    assert!(t.contains(&("link".into(), 'l', "a.txt".into())));
    assert!(t.contains(&("b2.txt".into(), 'h', "b.txt".into())));
    assert!(t.contains(&("a/b/c.txt".into(), 'f', "c".into())));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn dockerfile_inside_and_outside_the_context() {
    let d = tmp("outside");
    let ctx = d.join("ctx");
    put(&ctx, "sub/Dockerfile.dev", "FROM busybox\n");
    put(&ctx, "f.txt", "f");
    put(&d, "Other.Dockerfile", "FROM scratch\n");
    // inside: its path relative to the context
    let plan = prep(
        &ctx,
        Some(d.join("ctx/sub/Dockerfile.dev").to_str().unwrap()),
    );
    assert_eq!(plan.dockerfile.as_deref(), Some("sub/Dockerfile.dev"));
    // outside: in the tar under a random name, listed in a .dockerignore made for it
    let plan = prep(&ctx, Some(d.join("Other.Dockerfile").to_str().unwrap()));
    let name = plan.dockerfile.clone().unwrap();
    assert!(
        name.starts_with(".dockerfile.") && name.len() == 32,
        "{name}"
    );
    assert!(name[12..].chars().all(|c| c.is_ascii_hexdigit()));
    let t = tar_of(&plan);
    assert_eq!(t.len(), 5, "{t:?}");
    assert_eq!(t[3], (name.clone(), 'f', "FROM scratch\n".into()));
    assert_eq!(
        t[4],
        (
            ".dockerignore".into(),
            'f',
            format!(".dockerignore\n{name}\n")
        )
    );
    // with a .dockerignore of its own: that one gets the name appended
    put(&ctx, ".dockerignore", "f.txt");
    let plan = prep(&ctx, Some(d.join("Other.Dockerfile").to_str().unwrap()));
    let name = plan.dockerfile.clone().unwrap();
    let t = tar_of(&plan);
    assert_eq!(
        t[0],
        (".dockerignore".into(), 'f', format!("f.txt\n{name}\n"))
    );
    assert!(!names(&plan).contains(&"f.txt".to_string()));
    // the default name, and docker's fallback to `dockerfile`
    let e = context::prepare(d.to_str().unwrap(), None, &mut std::io::empty())
        .err()
        .unwrap();
    assert_eq!(
        e,
        format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/Dockerfile: no such file or directory",
            d.display()
        )
    );
    put(&d, "dockerfile", "FROM busybox\n");
    assert_eq!(prep(&d, None).dockerfile.as_deref(), Some("dockerfile"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn stdin_contexts() {
    let d = tmp("stdin");
    put(&d, "f", "x");
    // a Dockerfile on stdin with a directory: random name, not excluded by .dockerignore
    put(&d, ".dockerignore", "*\n");
    let mut input = &b"FROM busybox\n"[..];
    let plan = context::prepare(d.to_str().unwrap(), Some("-"), &mut input).unwrap();
    let name = plan.dockerfile.clone().unwrap();
    assert!(name.starts_with(".dockerfile."));
    assert_eq!(names(&plan), [".dockerignore".to_string(), name]);
    // `-`: a tar is passed through untouched, with -f as given
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "x", &b"y"[..]).unwrap();
        b.finish().unwrap();
    }
    assert!(context::is_archive(&tar_bytes));
    let mut r = &tar_bytes[..];
    let plan = context::prepare("-", Some("sub/D"), &mut r).unwrap();
    assert_eq!(plan.dockerfile.as_deref(), Some("sub/D"));
    let mut out = Vec::new();
    let mut rest = r;
    context::write_tar(&plan.source, &mut rest, &mut out).unwrap();
    assert_eq!(out, tar_bytes);
    let plan = context::prepare("-", None, &mut &tar_bytes[..]).unwrap();
    assert_eq!(plan.dockerfile, None);
    // gzip is recognised by its magic
    assert!(context::is_archive(&[0x1f, 0x8b, 0x08, 0]));
    // `-` with plain text: the Dockerfile alone
    let plan = context::prepare("-", None, &mut &b"FROM busybox\nRUN true\n"[..]).unwrap();
    assert!(matches!(plan.source, Source::Dockerfile(_)));
    assert_eq!(plan.dockerfile.as_deref(), Some("Dockerfile"));
    let t = tar_of(&plan);
    assert_eq!(
        t,
        [("Dockerfile".into(), 'f', "FROM busybox\nRUN true\n".into())]
    );
    // both on stdin, and contexts that are no directories
    assert_eq!(
        context::prepare("-", Some("-"), &mut std::io::empty())
            .err()
            .unwrap(),
        "invalid argument: can't use stdin for both build context and dockerfile"
    );
    assert_eq!(
        context::prepare("/nonexistent-ctx", None, &mut std::io::empty())
            .err()
            .unwrap(),
        "unable to prepare context: path \"/nonexistent-ctx\" not found"
    );
    let f = d.join("f");
    assert_eq!(
        context::prepare(f.to_str().unwrap(), None, &mut std::io::empty())
            .err()
            .unwrap(),
        format!(
            "unable to prepare context: context must be a directory: {}",
            f.display()
        )
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_dockerignore_pattern() {
    let d = tmp("badignore");
    put(&d, "Dockerfile", "FROM busybox\n");
    put(&d, ".dockerignore", "[\n");
    let e = context::prepare(d.to_str().unwrap(), None, &mut std::io::empty())
        .err()
        .unwrap();
    assert!(e.starts_with("error checking context: "), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn five_thousand_files_stream_quickly() {
    let d = tmp("many");
    put(&d, "Dockerfile", "FROM busybox\n");
    for i in 0..5000 {
        put(
            &d,
            &format!("files/d{}/f{i}.txt", i % 50),
            &format!("file {i}\n"),
        );
    }
    let plan = prep(&d, None);
    let t0 = std::time::Instant::now();
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    context::write_tar(&plan.source, &mut std::io::empty(), &mut c).unwrap();
    let el = t0.elapsed();
    // 5000 files + 51 directories + Dockerfile, one data block each but the dirs
    assert!(c.0 >= (5000 * 2 + 52) * 512, "{}", c.0);
    assert!(el.as_secs_f64() < 5.0, "the walk took {el:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn walk_uses_the_parents_results_as_dockers_cli() {
    // `d1`, `!d1/sub`, `**d1`: docker's walk sends d1/sub/a (the path-only check would not)
    let d = tmp("walkinfo");
    put(&d, "Dockerfile", "FROM busybox\n");
    put(&d, "d1/sub/a", "a");
    put(&d, "d1/b", "b");
    put(&d, ".dockerignore", "d1\n!d1/sub\n**d1\n");
    let n = names(&prep(&d, None));
    assert_eq!(n, [".dockerignore", "Dockerfile", "d1/sub", "d1/sub/a"]);
    std::fs::remove_dir_all(&d).unwrap();
}
