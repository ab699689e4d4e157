//! berthd as a systemd service (issue 13, point 1): the units pass `systemd-analyze verify`,
//! the API socket can be passed by a socket activator (`-H fd://`, the first request starts
//! the daemon), and the daemon reports READY / RELOADING / STOPPING on `NOTIFY_SOCKET`
//! without passing that socket on to its shims.

mod common;
use common::{bin_dir, bridge_name, repo_root, stdout, Daemon};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !have("systemd-analyze") {
        eprintln!("skipping: systemd-analyze not installed");
        return;
    }
    let units = repo_root().join("contrib/systemd");
    let dir = common::tmpdir("units");
    // the unit names /usr/bin/berthd, which verify wants to exist: point it at this build
    let service = std::fs::read_to_string(units.join("berthd.service")).expect("service");
    assert!(service.contains("Type=notify") && service.contains("KillMode=process"));
    assert!(
        service.contains("Delegate=yes") && service.contains("ExecStart=/usr/bin/berthd -H fd://")
    );
    let berthd = bin_dir().join("berthd");
    std::fs::write(
        dir.join("berthd.service"),
        service.replace("/usr/bin/berthd", berthd.to_str().expect("utf8")),
    )
    .expect("write");
    std::fs::copy(units.join("berth.socket"), dir.join("berth.socket")).expect("copy");
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.join("berthd.service"))
        .arg(dir.join("berth.socket"))
        .output()
        .expect("systemd-analyze");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    // a socket whose unit name differs from the service's must name the service
    let socket = std::fs::read_to_string(units.join("berth.socket")).expect("socket");
    assert!(socket.contains("Service=berthd.service"), "{socket}");
    assert!(socket.contains("SocketMode=0660") && socket.contains("SocketGroup=berth"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The socket is made by the activator; the daemon starts on the first request, answers it,
/// and leaves the socket in place when it stops (it is systemd's).
#[test]
fn socket_activation_starts_the_daemon_on_the_first_request() {
    if !have("systemd-socket-activate") {
        eprintln!("skipping: systemd-socket-activate not installed");
        return;
    }
    let root = Daemon::fresh_root();
    let sock = root.join("act.sock");
    std::fs::write(root.join("daemon.json"), "{}\n").expect("config");
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .arg(bin_dir().join("berthd"))
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("run"))
        .args(["-H", "fd://"])
        .arg("--pidfile")
        .arg(root.join("berthd.pid"))
        .args(["--bridge", &bridge_name(&root), "--dns", "127.0.0.1"])
        .arg("--config-file")
        .arg(root.join("daemon.json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("berthd.log")).expect("log"))
        .spawn()
        .expect("systemd-socket-activate");
    assert!(
        common::eventually(10, || sock.exists()),
        "no socket from the activator"
    );
    // nothing runs yet: the activator itself listens
    assert!(
        !root.join("berthd.pid").exists(),
        "the daemon started before any request"
    );
    let mut d = Daemon::adopt(&root, sock.clone(), child);
    let v = d.berth(&["version", "--format", "{{.Server.Os}}"]);
    assert!(v.status.success(), "{}{}", stdout(&v), d.log());
    assert_eq!(stdout(&v).trim(), "linux");
    assert!(root.join("berthd.pid").exists());
    // the CRI socket lands beside the passed one (it is bound after the API serves)
    assert!(
        common::eventually(10, || root.join("cri.sock").exists()),
        "{}",
        d.log()
    );
    d.load_busybox();
    assert_eq!(
        d.ok(&["run", "--rm", "busybox", "echo", "via fd"]).trim(),
        "via fd"
    );
    d.stop_daemon();
    assert!(sock.exists(), "the daemon removed systemd's socket");
}

/// READY=1 once the API answers, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
/// SIGHUP reload, STOPPING=1 at shutdown; the shims do not inherit NOTIFY_SOCKET.
#[test]
fn notifications_follow_the_daemons_life() {
    let dir = common::tmpdir("notify");
    let path = dir.join("notify.sock");
    let rx = UnixDatagram::bind(&path).expect("bind");
    rx.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let p = path.clone();
    let mut d = Daemon::start_with(&[], move |c| {
        c.env("NOTIFY_SOCKET", &p);
    });
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = rx.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "READY=1");
    // the API answered before READY was sent
    assert!(d.berth(&["version"]).status.success());
    // SAFETY: signalling the daemon this test started, by pid.
    unsafe { libc::kill(d.pid(), libc::SIGHUP) };
    let r = next();
    assert!(r.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{r}");
    assert_eq!(next(), "READY=1");
    d.load_busybox();
    d.ok(&["run", "-d", "--name", "s1", "busybox", "sleep", "60"]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "s1"]);
    let shim = std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).into_owned();
            (cmd.contains("berth-shim") && cmd.contains(id.trim())).then(|| e.path())
        })
        .next()
        .expect("the container's shim");
    let env = std::fs::read(shim.join("environ")).expect("environ");
    assert!(
        !String::from_utf8_lossy(&env).contains("NOTIFY_SOCKET"),
        "the shim inherited NOTIFY_SOCKET"
    );
    d.ok(&["rm", "-f", "s1"]);
    d.stop_daemon();
    assert_eq!(next(), "STOPPING=1");
    let _ = std::fs::remove_dir_all(&dir);
}

/// systemd as PID 1 of a berth container (an image `berth build` makes from the host's Debian
/// systemd, scripts/make-systemd-context.sh) drives berth's own units the way an administrator
/// would: `enable --now berth.socket`, a first request starts berthd (Type=notify), reload and
/// restart keep a container of the inner daemon running (KillMode=process), stop. The outer
/// container stops on its image's STOPSIGNAL (SIGRTMIN+3: systemd halts) and leaves no cgroup.
#[test]
fn systemd_as_pid1_in_a_container_drives_the_units() {
    if !std::path::Path::new("/lib/systemd/systemd").exists() {
        eprintln!("skipping: systemd is not installed");
        return;
    }
    let d = Daemon::start();
    let ctx = common::tmpdir("systemd-ctx");
    let st = Command::new(repo_root().join("scripts/make-systemd-context.sh"))
        .arg(&ctx)
        .arg(bin_dir())
        .status()
        .expect("make-systemd-context.sh");
    assert!(st.success(), "make-systemd-context.sh failed");
    d.ok(&[
        "build",
        "-q",
        "-t",
        "berth-systemd",
        ctx.to_str().expect("utf8"),
    ]);
    let _ = std::fs::remove_dir_all(&ctx);
    assert_eq!(
        d.ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.StopSignal}}",
            "berth-systemd"
        ])
        .trim(),
        "SIGRTMIN+3"
    );
    // privileged: systemd writes its cgroups, the inner berthd makes bridges and mounts in the
    // container's own namespaces; its data root on a volume (overlayfs is no upper layer)
    d.ok(&[
        "run",
        "-d",
        "--name",
        "sd",
        "--privileged",
        "--cgroupns",
        "private",
        "-v",
        "sdvar:/var/lib/berth",
        "berth-systemd",
    ]);
    let id = d.ok(&["inspect", "-f", "{{.Id}}", "sd"]).trim().to_string();
    let sh = |script: &str| -> String {
        let o = d.berth(&["exec", "sd", "sh", "-c", script]);
        assert!(
            o.status.success(),
            "{script}: {}{}",
            stdout(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        stdout(&o).trim().to_string()
    };
    assert_eq!(
        sh("timeout 60 systemctl is-system-running --wait || systemctl --failed --no-pager"),
        "running"
    );
    assert_eq!(sh("ps -o pid,comm | awk '$1 == 1 {print $2}'"), "systemd");

    // the socket first; the daemon is not started until a request comes
    sh("systemctl enable --now berth.socket");
    assert_eq!(
        sh("systemctl is-enabled berth.socket; systemctl is-active berth.socket"),
        "enabled\nactive"
    );
    assert_eq!(sh("systemctl is-active berthd.service || true"), "inactive");
    assert_eq!(
        sh("stat -c '%a %U:%G' /run/berth/berth.sock"),
        "660 root:berth"
    );
    assert_eq!(
        sh("berth version --format '{{.Server.Version}}'"),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sh("systemctl is-active berthd.service"), "active");
    assert_eq!(
        sh("systemctl show berthd -p Type -p KillMode -p Delegate -p OOMScoreAdjust -p TasksMax"),
        "Type=notify\nDelegate=yes\nTasksMax=infinity\nOOMScoreAdjust=-500\nKillMode=process"
    );
    let pid1 = sh("systemctl show berthd -p MainPID --value");

    // a container of the inner daemon
    d.ok(&[
        "cp",
        common::busybox_tar().to_str().expect("utf8"),
        "sd:/tmp/busybox.tar",
    ]);
    sh("berth load -q -i /tmp/busybox.tar && berth run -d --name inner busybox sleep 1000");
    let inner = sh("berth inspect -f '{{.State.Pid}}' inner");

    // reload: RELOADING=1 then READY=1, the same process
    sh("systemctl reload berthd");
    assert_eq!(sh("systemctl is-active berthd"), "active");
    assert_eq!(sh("systemctl show berthd -p MainPID --value"), pid1);

    // restart: a new daemon, the container untouched
    sh("systemctl restart berthd");
    let pid2 = sh("systemctl show berthd -p MainPID --value");
    assert_ne!(pid2, pid1);
    assert_eq!(
        sh("berth inspect -f '{{.State.Running}} {{.State.Pid}}' inner"),
        format!("true {inner}")
    );

    // stop both units: only berthd goes, and nothing answers on the socket
    sh("systemctl stop berth.socket berthd.service");
    assert_eq!(
        sh("systemctl is-active berthd berth.socket || true"),
        "inactive\ninactive"
    );
    assert_eq!(sh(&format!("kill -0 {inner} && echo alive")), "alive");
    assert!(
        sh("berth version 2>&1 || true").contains("Cannot connect to the berth daemon"),
        "the API answered with its units stopped"
    );
    // and a request brings it all back
    sh("systemctl start berth.socket");
    assert_eq!(sh("berth ps --format '{{.Names}}'"), "inner");
    sh("berth rm -f inner");

    // `berth stop` sends the image's SIGRTMIN+3: systemd halts (the kernel ends a namespace's
    // init that halts with SIGINT: 130), and no SIGKILL is needed
    d.ok(&["stop", "sd"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.ExitCode}}", "sd"]).trim(),
        "130"
    );
    // `--until 0s` is sent in whole seconds, as docker's CLI sends it: this second's events
    // are after it
    std::thread::sleep(Duration::from_millis(1100));
    let kills = d.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        "0s",
        "--filter",
        "container=sd",
        "--filter",
        "event=kill",
        "--format",
        "{{.Actor.Attributes.signal}}",
    ]);
    assert_eq!(
        kills.trim(),
        "37",
        "signals sent to stop the container: {kills}"
    );
    d.ok(&["rm", "sd"]);
    let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroupfs")
        .flatten()
        .map(|h| h.path().join("berth").join(&id))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
}
