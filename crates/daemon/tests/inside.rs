//! Issue 12 point 7, "inside the container, as docker provides it": what a process sees of
//! its cgroups (the files runtimes such as the JVM, Go and Node size themselves from), its
//! UTS names, /etc/hosts, docker's default sysctls and the names the embedded DNS answers.
//! Every check runs the same commands in a berth container and, when dockerd is installed, in
//! a docker 20.10 container on this machine, and the two outputs must be equal (after the
//! container ids, `/berth/` vs `/docker/` and addresses are put in words); the berth side is
//! also checked against the values asked for, so the test never passes on two equal wrongs.

mod common;
use common::dockerd::Dockerd;
use common::{busybox_tar, stderr, stdout, Daemon};
use std::path::PathBuf;

/// A berthd and (when installed) a private dockerd, each with busybox loaded.
struct Pair {
    berth: Daemon,
    docker: Option<Dockerd>,
    root: PathBuf,
}

impl Pair {
    fn start(tag: &str) -> Option<Pair> {
        let berth = Daemon::start();
        berth.load_busybox();
        // the docker CLI drives both daemons
        berth.docker(&["version"])?;
        let root = common::tmpdir(tag);
        let docker = Dockerd::start(&root);
        if let Some(dk) = &docker {
            let o = dk.docker(&["load", "-i", busybox_tar().to_str().expect("utf8")]);
            assert!(o.status.success(), "docker load: {}", stderr(&o));
        }
        Some(Pair {
            berth,
            docker,
            root,
        })
    }

    /// `docker args` against berthd, insisting on success.
    fn b(&self, args: &[&str]) -> String {
        let o = self.berth.docker(args).expect("docker CLI");
        assert!(
            o.status.success(),
            "berth: docker {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// `docker args` against the private dockerd, insisting on success.
    fn d(&self, args: &[&str]) -> Option<String> {
        let dk = self.docker.as_ref()?;
        let o = dk.docker(args);
        assert!(
            o.status.success(),
            "dockerd: docker {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        Some(stdout(&o))
    }

    /// The same command on both; berth's output, and docker's when it ran.
    fn both(&self, args: &[&str]) -> (String, Option<String>) {
        (self.b(args), self.d(args))
    }

    /// The same command on both, outputs (normalised by `norm`) equal; berth's output.
    fn same(&self, args: &[&str], norm: impl Fn(&str) -> String) -> String {
        let (b, d) = self.both(args);
        let b = norm(&b);
        if let Some(d) = d {
            assert_eq!(b, norm(&d), "berth and dockerd differ for {args:?}");
        }
        b
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.docker.take();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Container ids and the engine's cgroup parent put in words.
fn norm_ids(s: &str) -> String {
    s.split('\n')
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    let w = w
                        .replace("/berth/", "/ENGINE/")
                        .replace("/docker/", "/ENGINE/");
                    match w.rfind('/') {
                        Some(i) if w.len() - i - 1 == 64 => format!("{}ID", &w[..=i]),
                        _ => w,
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn v2_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup filesystem as a process sees it: the mounts at and below /sys/fs/cgroup (root,
/// options, type), the limits in the files runtimes read, its own cgroup paths and whether
/// the hierarchies can be written.
const CGROUP_PROBE: &str = r#"
awk '$5=="/sys/fs/cgroup" || $5 ~ "^/sys/fs/cgroup/" {split($0,a," - "); split(a[2],b," "); print "mount", $5, $4, $6, b[1], b[3]}' /proc/self/mountinfo | sort
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "mem $(cat /sys/fs/cgroup/memory.max)"
  echo "cpu $(cat /sys/fs/cgroup/cpu.max)"
  echo "pids $(cat /sys/fs/cgroup/pids.max)"
  (echo max > /sys/fs/cgroup/pids.max) 2>/dev/null && echo "write ok" || echo "write refused"
else
  echo "mem $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
  echo "cpu $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
  echo "pids $(cat /sys/fs/cgroup/pids/pids.max)"
  (echo max > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo "write ok" || echo "write refused"
fi
sed 's/^[0-9]*:/cgroup /' /proc/self/cgroup | sort
"#;

#[test]
fn cgroupfs_shows_the_containers_own_limits_in_every_cgroupns_mode() {
    let Some(p) = Pair::start("in-cg") else {
        return;
    };
    let limits = ["-m", "64m", "--cpus", "1.5", "--pids-limit", "50"];
    for mode in [None, Some("private"), Some("host")] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(&limits);
        if let Some(m) = mode {
            args.extend_from_slice(&["--cgroupns", m]);
        }
        args.extend_from_slice(&["busybox", "sh", "-c", CGROUP_PROBE]);
        let out = p.same(&args, norm_ids);
        eprintln!("cgroupns {mode:?}:\n{out}");
        // the limits asked for, in the files JVM/Go/Node read
        assert!(out.contains("\nmem 67108864\n"), "{mode:?}: {out}");
        assert!(out.contains("\ncpu 150000 100000\n"), "{mode:?}: {out}");
        assert!(out.contains("\npids 50\n"), "{mode:?}: {out}");
        assert!(out.contains("\nwrite refused\n"), "{mode:?}: {out}");
        let private = match mode {
            Some(m) => m == "private",
            None => v2_host(),
        };
        for l in out.lines().filter(|l| l.starts_with("mount ")) {
            let f: Vec<&str> = l.split(' ').collect();
            if f[1] == "/sys/fs/cgroup" && f[4] == "tmpfs" {
                // v1: the tmpfs holding one directory per hierarchy, as runc leaves it
                assert_eq!(f[3], "rw,nosuid,nodev,noexec,relatime", "{l}");
                continue;
            }
            // each hierarchy read-only, rooted at the container's own cgroup
            assert!(f[3].starts_with("ro,"), "{mode:?}: not read-only: {l}");
            let root = if private { "/" } else { "/ENGINE/ID" };
            assert_eq!(f[2], root, "{mode:?}: {l}");
        }
        for l in out.lines().filter(|l| l.starts_with("cgroup ")) {
            let own = if private { "/" } else { "/ENGINE/ID" };
            assert!(l.ends_with(&format!(":{own}")), "{mode:?}: {l}");
        }
    }
    // the mode dockerd picks per cgroup version, recorded and shown by inspect
    let f = "{{.HostConfig.CgroupnsMode}}";
    for (flags, want) in [
        (vec![], if v2_host() { "private" } else { "host" }),
        (vec!["--cgroupns", "private"], "private"),
        (vec!["--cgroupns", "host"], "host"),
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(&flags);
        args.push("busybox");
        let (b, d) = p.both(&args);
        let got = p.b(&["inspect", "-f", f, b.trim()]);
        assert_eq!(got.trim(), want, "{flags:?}");
        if let Some(d) = d {
            assert_eq!(p.d(&["inspect", "-f", f, d.trim()]).unwrap().trim(), want);
            p.d(&["rm", d.trim()]);
        }
        p.b(&["rm", b.trim()]);
    }
}

/// docker's default sysctls in a network namespace of the container's own, overridable.
#[test]
fn default_sysctls_hostnames_and_etc_files_as_docker() {
    let Some(p) = Pair::start("in-uts") else {
        return;
    };
    let probe =
        "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start";
    let host_ping = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    let host_port =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    let run = |flags: &[&str], script: &str| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        p.same(&args, |s| s.to_string())
    };
    assert_eq!(run(&[], probe), "0\t2147483647\n0\n");
    assert_eq!(run(&["--net", "none"], probe), "0\t2147483647\n0\n");
    assert_eq!(
        run(
            &["--sysctl", "net.ipv4.ip_unprivileged_port_start=500"],
            probe
        ),
        "0\t2147483647\n500\n"
    );
    // their effect: a user without capabilities binds port 80, unless a --sysctl says no
    let bind80 = "nc -l -p 80 2>/dev/null & sleep 0.5; netstat -ltn | grep -c ':80 '; kill $! 2>/dev/null; true";
    assert_eq!(run(&["--user", "1000"], bind80), "1\n");
    assert_eq!(
        run(
            &[
                "--user",
                "1000",
                "--sysctl",
                "net.ipv4.ip_unprivileged_port_start=1024"
            ],
            bind80
        ),
        "0\n"
    );
    // --net host: the host's own values, untouched
    assert_eq!(
        run(&["--net", "host"], probe),
        format!("{host_ping}{host_port}")
    );

    // hostname, domainname (UTS), /etc/hostname, and the container's own /etc/hosts line
    let uts = "hostname; cat /proc/sys/kernel/domainname /etc/hostname; grep -v -e localhost -e ip6- /etc/hosts | cut -f2; echo $HOSTNAME";
    assert_eq!(
        run(&["--hostname", "h1", "--domainname", "example.org"], uts),
        "h1\nexample.org\nh1\nh1.example.org h1\nh1\n"
    );
    assert_eq!(
        run(&["--hostname", "h2.foo.bar"], uts),
        "h2.foo.bar\n(none)\nh2.foo.bar\nh2.foo.bar h2\nh2.foo.bar\n"
    );
    // a domain name longer than the UTS field keeps its first 64 bytes (dockerd writes it
    // through /proc/sys/kernel/domainname), the container starts
    let long = "d".repeat(70);
    assert_eq!(
        run(&["--domainname", &long], "cat /proc/sys/kernel/domainname"),
        format!("{}\n", &long[..64])
    );
    // a domain name in the host's UTS namespace: refused at start, the host keeps its own
    let args = [
        "run",
        "--rm",
        "--uts",
        "host",
        "--domainname",
        "x.example",
        "busybox",
        "true",
    ];
    let text = "sysctl \"kernel.domainname\" is not in a separate kernel namespace";
    let o = p.berth.docker(&args).expect("docker CLI");
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains(text), "{}", stderr(&o));
    if let Some(dk) = &p.docker {
        let o = dk.docker(&args);
        assert_eq!(o.status.code(), Some(125), "dockerd: {}", stderr(&o));
        assert!(stderr(&o).contains(text), "dockerd: {}", stderr(&o));
    }
    // --net container:x takes x's host and domain names (inspect shows them too)
    p.both(&[
        "run",
        "-d",
        "--name",
        "base",
        "--hostname",
        "bh",
        "--domainname",
        "dd.org",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(
        run(&["--name", "cm", "--net", "container:base"], uts),
        "bh\ndd.org\nbh\nbh.dd.org bh\nbh\n"
    );
    p.both(&["rm", "-f", "base"]);
    // --shm-size: the size of /dev/shm, /proc/sys read-only
    assert_eq!(
        run(
            &["--shm-size", "128m"],
            "df -k /dev/shm | tail -1 | awk '{print $2}'; (echo 1 > /proc/sys/net/ipv4/ip_forward) 2>/dev/null && echo rw || echo ro"
        ),
        "131072\nro\n"
    );
}

/// On a user network: the container's name, host name, network aliases and its own link
/// aliases answer through the embedded DNS (and a container's address its `name.network`) (links write nothing into /etc/hosts or the
/// environment there); a container started on the default bridge and connected to a user
/// network later switches to the embedded DNS and resolves that network's names.
#[test]
fn names_resolve_through_the_embedded_dns_as_docker() {
    let Some(p) = Pair::start("in-dns") else {
        return;
    };
    p.both(&["network", "create", "inn"]);
    p.both(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--net",
        "inn",
        "--network-alias",
        "al1",
        "busybox",
        "sleep",
        "300",
    ]);
    p.both(&["run", "-d", "--name", "cl", "busybox", "sleep", "300"]);
    let ip_of = |out: String| out.trim().to_string();
    let fmt = "{{.NetworkSettings.Networks.inn.IPAddress}}";
    let b_srv = ip_of(p.b(&["inspect", "-f", fmt, "srv"]));
    let d_srv = p.d(&["inspect", "-f", fmt, "srv"]).map(ip_of);
    // every name → SRV (srv's address), SELF (the asker's own) or NONE
    let script = r#"self=$(ip -o -4 addr show eth0 | awk '{print $4}' | cut -d/ -f1)
for n in me hh lk al1 srv nosuch; do
  a=$(nslookup -type=a $n 127.0.0.11 2>/dev/null | awk '/^Name/ {getline; print $2}' | head -1)
  case "$a" in "$SRV") a=SRV;; "$self") a=SELF;; "") a=NONE;; esac
  echo "$n $a"
done
echo "ptr $(nslookup $SRV 127.0.0.11 2>/dev/null | grep -o 'name = .*')"
echo "link-env $(env | grep -c '^LK_')"
echo "link-hosts $(grep -c -w lk /etc/hosts)"
grep nameserver /etc/resolv.conf"#;
    let run_me = |srv: &str| {
        vec![
            "run".to_string(),
            "--rm".into(),
            "--name".into(),
            "me".into(),
            "--hostname".into(),
            "hh".into(),
            "--net".into(),
            "inn".into(),
            "--link".into(),
            "srv:lk".into(),
            "-e".into(),
            format!("SRV={srv}"),
            "busybox".into(),
            "sh".into(),
            "-c".into(),
            script.into(),
        ]
    };
    let want = "me SELF\nhh SELF\nlk SRV\nal1 SRV\nsrv SRV\nnosuch NONE\nptr name = srv.inn\nlink-env 0\nlink-hosts 0\nnameserver 127.0.0.11\n";
    let a = run_me(&b_srv);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    assert_eq!(p.b(&a), want);
    if let Some(d_srv) = &d_srv {
        let a = run_me(d_srv);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        assert_eq!(p.d(&a).unwrap(), want, "dockerd");
    }
    // the host name is one of the endpoint's aliases (after the short id), as docker lists
    p.both(&[
        "run",
        "-d",
        "--name",
        "me3",
        "--hostname",
        "hh3",
        "--net",
        "inn",
        "busybox",
        "sleep",
        "300",
    ]);
    let f = "{{json .NetworkSettings.Networks.inn.Aliases}}";
    let (b, d) = p.both(&["inspect", "-f", f, "me3"]);
    let short = |s: String| {
        let v: Vec<String> = serde_json::from_str(s.trim()).expect("aliases");
        v.into_iter()
            .map(|a| {
                if a.len() == 12 && a != "hh3" {
                    "SHORT".into()
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(short(b), ["SHORT", "hh3"]);
    if let Some(d) = d {
        assert_eq!(short(d), ["SHORT", "hh3"], "dockerd");
    }

    // started on the default bridge, connected to the user network later
    p.both(&["network", "connect", "inn", "cl"]);
    let probe = |srv: &str| {
        format!(
            "grep nameserver /etc/resolv.conf; a=$(nslookup -type=a srv 2>/dev/null | awk '/^Name/ {{getline; print $2}}' | head -1); [ \"$a\" = {srv} ] && echo resolved || echo \"not resolved: $a\"; grep -c -w $(hostname) /etc/hosts"
        )
    };
    assert_eq!(
        p.b(&["exec", "cl", "sh", "-c", &probe(&b_srv)]),
        "nameserver 127.0.0.11\nresolved\n2\n"
    );
    if let Some(d_srv) = &d_srv {
        assert_eq!(
            p.d(&["exec", "cl", "sh", "-c", &probe(d_srv)]).unwrap(),
            "nameserver 127.0.0.11\nresolved\n2\n",
            "dockerd"
        );
    }
    // stopped on the default bridge, connected, then started: both addresses in /etc/hosts,
    // the embedded DNS in resolv.conf
    p.both(&["create", "--name", "st", "busybox", "sleep", "300"]);
    p.both(&["network", "connect", "inn", "st"]);
    p.both(&["start", "st"]);
    let probe = "grep nameserver /etc/resolv.conf; grep -c -w $(hostname) /etc/hosts";
    let (b, d) = p.both(&["exec", "st", "sh", "-c", probe]);
    assert_eq!(b, "nameserver 127.0.0.11\n2\n");
    if let Some(d) = d {
        assert_eq!(d, b, "dockerd");
    }
    for c in ["srv", "cl", "me3", "st"] {
        p.both(&["rm", "-f", c]);
    }
    p.both(&["network", "rm", "inn"]);
}

/// `--default-cgroupns-mode` (a dockerd flag): the mode of containers that do not ask for one;
/// a bad value stops the daemon.
#[test]
fn daemon_default_cgroupns_mode_flag() {
    let d = Daemon::start_args(&["--default-cgroupns-mode", "private"]);
    d.load_busybox();
    let root = common::tmpdir("in-cgns");
    let dk = Dockerd::start_args(&root, &["--default-cgroupns-mode", "private"]);
    let probe = "grep -E '^[0-9]+:memory:' /proc/self/cgroup | cut -d: -f3";
    let run = |docker: &dyn Fn(&[&str]) -> Option<std::process::Output>| {
        let o = docker(&["run", "--name", "c1", "busybox", "sh", "-c", probe])?;
        assert!(o.status.success(), "{}", stderr(&o));
        let i = docker(&["inspect", "-f", "{{.HostConfig.CgroupnsMode}}", "c1"])?;
        let _ = docker(&["rm", "c1"]);
        Some(format!("{}{}", stdout(&o), stdout(&i)))
    };
    let Some(b) = run(&|a| d.docker(a)) else {
        return;
    };
    let want = if v2_host() {
        "private\n"
    } else {
        "/\nprivate\n"
    };
    assert!(b.ends_with(want), "berth: {b}");
    if let Some(dk) = &dk {
        let o = dk.docker(&["load", "-i", busybox_tar().to_str().expect("utf8")]);
        assert!(o.status.success());
        let got = run(&|a| Some(dk.docker(a))).expect("dockerd");
        assert_eq!(got, b, "dockerd");
    }
    drop(dk);
    let _ = std::fs::remove_dir_all(&root);
    // a value that is neither: the daemon does not start
    let root = common::tmpdir("in-cgns-bad");
    let o = std::process::Command::new(common::bin_dir().join("berthd"))
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("run"))
        .arg("-H")
        .arg(format!("unix://{}", root.join("s.sock").display()))
        .arg("--pidfile")
        .arg(root.join("pid"))
        .args(["--default-cgroupns-mode", "shared"])
        .output()
        .expect("run berthd");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("default cgroup namespace mode (shared) is invalid"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&root);
}
