//! Image commands (tag, rmi, history, images filters, image prune) through the real docker CLI.

mod common;
use common::{stderr, stdout, Daemon};

fn docker_ok(d: &Daemon, args: &[&str]) -> Option<String> {
    let o = d.docker(args)?;
    assert!(
        o.status.success(),
        "docker {args:?} failed ({:?}): {}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    Some(stdout(&o))
}

#[test]
fn tag_rmi_history_filters_prune() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(&d, &["tag", "busybox", "mine:v1"]) else {
        return;
    };
    docker_ok(&d, &["tag", "busybox", "localhost:5000/team/app:2"]);
    let images = docker_ok(&d, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).unwrap();
    for t in ["busybox:latest", "mine:v1", "localhost:5000/team/app:2"] {
        assert!(images.contains(t), "{images}");
    }
    let f = docker_ok(
        &d,
        &[
            "images",
            "--format",
            "{{.Repository}}",
            "-f",
            "reference=mine*",
        ],
    )
    .unwrap();
    assert_eq!(f.trim(), "mine");
    assert!(docker_ok(&d, &["images", "-q", "-f", "dangling=true"])
        .unwrap()
        .trim()
        .is_empty());
    // history: one layer, newest first, the image ID on top
    let h = docker_ok(
        &d,
        &[
            "history",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.CreatedBy}}",
            "busybox",
        ],
    )
    .unwrap();
    assert!(
        h.starts_with("sha256:") && h.contains("make-busybox-image"),
        "{h}"
    );
    // removing by ID with several names needs -f
    let id = docker_ok(&d, &["inspect", "-f", "{{.Id}}", "busybox"])
        .unwrap()
        .trim()
        .to_string();
    let o = d.docker(&["rmi", &id[7..19]]).unwrap();
    assert!(
        stderr(&o).contains("referenced in multiple repositories"),
        "{}",
        stderr(&o)
    );
    // untag keeps the image while other names remain
    let out = docker_ok(&d, &["rmi", "mine:v1", "localhost:5000/team/app:2"]).unwrap();
    assert!(
        out.contains("Untagged: mine:v1") && out.contains("Untagged: localhost:5000/team/app:2"),
        "{out}"
    );
    assert!(!out.contains("Deleted"), "{out}");
    // an image a container uses is refused, and -f untags only
    docker_ok(&d, &["create", "--name", "user", "busybox"]);
    let o = d.docker(&["rmi", "busybox"]).unwrap();
    assert!(
        stderr(&o).contains("must force") && stderr(&o).contains("is using its referenced image"),
        "{}",
        stderr(&o)
    );
    let out = docker_ok(&d, &["rmi", "-f", "busybox"]).unwrap();
    assert!(
        out.contains("Untagged: busybox:latest") && !out.contains("Deleted"),
        "{out}"
    );
    let dangling = docker_ok(&d, &["images", "-q", "-f", "dangling=true"]).unwrap();
    assert_eq!(
        dangling.trim(),
        &id[7..19],
        "the untagged image stays as <none>"
    );
    assert!(docker_ok(&d, &["images"]).unwrap().contains("<none>"));
    // once the container is gone, prune deletes it and its layer
    docker_ok(&d, &["rm", "user"]);
    let out = docker_ok(&d, &["image", "prune", "-f"]).unwrap();
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert!(docker_ok(&d, &["images", "-q"]).unwrap().trim().is_empty());
    let layers: Vec<_> = std::fs::read_dir(d.root.join("data/overlay2"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "l")
        .collect();
    assert!(layers.is_empty(), "layers left: {layers:?}");
    // loading again works, and rmi by name deletes the last reference's image
    d.load_busybox();
    let out = docker_ok(&d, &["rmi", "busybox"]).unwrap();
    assert!(
        out.contains("Untagged: busybox:latest") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    let o = d.docker(&["rmi", "busybox"]).unwrap();
    assert!(
        stderr(&o).contains("No such image: busybox:latest"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn diff_export_system_df() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(_) = docker_ok(
        &d,
        &[
            "run",
            "--name",
            "df1",
            "busybox",
            "sh",
            "-c",
            "mkdir /tmp/d1; echo x > /tmp/d1/a; rm /bin/vi; echo y >> /etc/passwd",
        ],
    ) else {
        return;
    };
    let diff = docker_ok(&d, &["diff", "df1"]).unwrap();
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /bin",
            "D /bin/vi",
            "C /etc",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/d1",
            "A /tmp/d1/a"
        ],
        "{diff}"
    );
    // export: one flattened tar of the container's view, the deletion applied
    let o = std::process::Command::new("/usr/local/bin/docker")
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", d.root.join("dc"))
        .args(["export", "df1"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let mut names = Vec::new();
    let mut passwd = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if p == "etc/passwd" {
            std::io::Read::read_to_string(&mut e, &mut passwd).unwrap();
        }
        names.push(p);
    }
    assert!(names.iter().any(|n| n == "tmp/d1/a"));
    assert!(names.iter().any(|n| n == "bin/sh"));
    assert!(
        !names.iter().any(|n| n == "bin/vi"),
        "deleted file exported"
    );
    assert!(passwd.ends_with("y\n"));
    let df = docker_ok(&d, &["system", "df"]).unwrap();
    assert!(df.contains("Images") && df.contains("Containers"), "{df}");
}
