//! Issue 10, "defaults equal to docker's or stricter": one container's view of its own
//! confinement (capabilities, masked and read-only paths, mounts and their options, the
//! device cgroup, mknod, /dev, the pids limit), taken the same way in a berth container and,
//! when dockerd is installed, in a docker 20.10 + runc container on this machine. Without
//! dockerd the docker values are the constants below (what dockerd 20.10 shows here).

mod common;
use common::dockerd::Dockerd;
use common::{docker_ok, Daemon};
use std::collections::{BTreeMap, BTreeSet};

/// docker's default capability set (CapEff = CapPrm = CapBnd of PID 1).
const DOCKER_CAPS: u64 = 0xa80425fb;
const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// docker's device cgroup allow-list (devices.list) for a default container.
const DOCKER_DEVICES: &[&str] = &[
    "b *:* m",
    "c *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
    "c 136:* rwm",
];
/// docker's special mounts: per-mount flags that restrict, and the tmpfs sizes/modes.
const DOCKER_MOUNTS: &[(&str, &str, &str)] = &[
    ("/proc", "proc", "nosuid,nodev,noexec"),
    ("/dev", "tmpfs", "nosuid"),
    ("/dev/pts", "devpts", "nosuid,noexec"),
    ("/sys", "sysfs", "ro,nosuid,nodev,noexec"),
    ("/dev/mqueue", "mqueue", "nosuid,nodev,noexec"),
    ("/dev/shm", "tmpfs", "nosuid,nodev,noexec"),
];

/// What a container sees of its confinement, one `key value` per line.
const PROBE: &str = r#"
grep -E '^Cap(Eff|Bnd|Prm):' /proc/1/status
for p in /proc/asound /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list /proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
  if [ ! -e $p ]; then echo "path $p absent"; continue; fi
  o=$(awk -v p=$p '$5==p {print $6}' /proc/self/mountinfo | tail -1)
  if [ -d $p ]; then n=$(ls -A $p | wc -l); else n=$(head -c 64 $p 2>/dev/null | wc -c); fi
  echo "path $p ${o:-none} $n"
done
for m in /proc /dev /dev/pts /sys /dev/mqueue /dev/shm /sys/fs/cgroup; do
  awk -v p=$m '$5==p {split($0, a, " - "); split(a[2], b, " "); print "mount", p, b[1], $6, b[3]}' /proc/self/mountinfo | tail -1
done
awk '$5 ~ "^/sys/fs/cgroup/" {print "cgroupfs", $5, $6}' /proc/self/mountinfo
cat /sys/fs/cgroup/devices/devices.list 2>/dev/null | sed 's/^/devices /'
echo "pids $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max 2>/dev/null)"
mknod /tmp/c c 1 3 2>/dev/null && echo "mknod char ok" || echo "mknod char refused"
mknod /tmp/b b 7 0 2>/dev/null && echo "mknod block ok" || echo "mknod block refused"
ls -A /dev | tr '\n' ' ' | sed 's/^/dev /'; echo
echo x > /sys/kernel/uevent_helper 2>/dev/null && echo "sys rw" || echo "sys ro"
"#;

#[derive(Debug, Default)]
struct View {
    caps: BTreeMap<String, u64>,
    /// path → (mount options or "none", entries/bytes readable)
    paths: BTreeMap<String, (String, String)>,
    /// mount point → (fs type, per-mount options, super options)
    mounts: BTreeMap<String, (String, String, String)>,
    cgroupfs: BTreeMap<String, String>,
    devices: BTreeSet<String>,
    pids: String,
    mknod_char: bool,
    mknod_block: bool,
    dev: BTreeSet<String>,
    sys_rw: bool,
}

fn parse(out: &str) -> View {
    let mut v = View::default();
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [k, hex] if k.starts_with("Cap") => {
                v.caps.insert(
                    k.trim_end_matches(':').to_string(),
                    u64::from_str_radix(hex, 16).unwrap(),
                );
            }
            ["path", p, "absent"] => {
                v.paths
                    .insert(p.to_string(), ("absent".into(), String::new()));
            }
            ["path", p, o, n] => {
                v.paths
                    .insert(p.to_string(), (o.to_string(), n.to_string()));
            }
            ["mount", p, t, o, s] => {
                v.mounts
                    .insert(p.to_string(), (t.to_string(), o.to_string(), s.to_string()));
            }
            ["cgroupfs", p, o] => {
                v.cgroupfs.insert(p.to_string(), o.to_string());
            }
            ["devices", rest @ ..] => {
                v.devices.insert(rest.join(" "));
            }
            ["pids", rest @ ..] => v.pids = rest.join(" "),
            ["mknod", "char", r] => v.mknod_char = *r == "ok",
            ["mknod", "block", r] => v.mknod_block = *r == "ok",
            ["dev", rest @ ..] => v.dev = rest.iter().map(|s| s.to_string()).collect(),
            ["sys", r] => v.sys_rw = *r == "rw",
            _ => {}
        }
    }
    v
}

fn opts(o: &str) -> BTreeSet<String> {
    o.split(',').map(String::from).collect()
}

/// The flags of a mount that restrict (ro, nosuid, nodev, noexec).
fn restricting(o: &str) -> BTreeSet<String> {
    opts(o)
        .into_iter()
        .filter(|x| matches!(x.as_str(), "ro" | "nosuid" | "nodev" | "noexec"))
        .collect()
}

fn masked(v: &View, p: &str) -> bool {
    match v.paths.get(p) {
        Some((o, n)) if o == "absent" => n.is_empty(),
        Some((o, n)) => o != "none" && n == "0",
        None => false,
    }
}

fn read_only(v: &View, p: &str) -> bool {
    match v.paths.get(p) {
        Some((o, _)) => o == "absent" || opts(o).contains("ro"),
        None => false,
    }
}

/// berth's default container against docker's: equal, or stricter where said.
fn check_default(berth: &View, docker: Option<&View>) {
    // capabilities: docker's set exactly
    for k in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(berth.caps.get(k), Some(&DOCKER_CAPS), "{k}");
        if let Some(d) = docker {
            assert_eq!(d.caps.get(k), Some(&DOCKER_CAPS), "docker {k}");
        }
    }
    for p in MASKED {
        assert!(
            masked(berth, p),
            "{p} is not masked: {:?}",
            berth.paths.get(*p)
        );
        if let Some(d) = docker {
            // a path docker masks, berth masks too
            if masked(d, p) {
                assert!(masked(berth, p), "{p}");
            }
        }
    }
    for p in READONLY {
        assert!(
            read_only(berth, p),
            "{p} is not read-only: {:?}",
            berth.paths.get(*p)
        );
        if let Some(d) = docker {
            assert!(read_only(d, p), "docker {p}");
        }
    }
    // the special mounts: at least docker's restricting flags, same tmpfs sizes and modes
    for (m, fstype, flags) in DOCKER_MOUNTS {
        let (t, o, s) = berth
            .mounts
            .get(*m)
            .unwrap_or_else(|| panic!("no {m} mount"));
        assert_eq!(t, fstype, "{m}");
        let want: BTreeSet<String> = flags.split(',').map(String::from).collect();
        assert!(restricting(o).is_superset(&want), "{m}: {o} lacks {flags}");
        if let Some(d) = docker {
            let (dt, dopt, ds) = d.mounts.get(*m).unwrap_or_else(|| panic!("docker {m}"));
            assert_eq!(t, dt, "{m}");
            assert!(
                restricting(o).is_superset(&restricting(dopt)),
                "{m}: {o} vs docker {dopt}"
            );
            let sized = |s: &str| -> BTreeSet<String> {
                opts(s)
                    .into_iter()
                    .filter(|x| x.starts_with("size=") || x.starts_with("mode="))
                    .collect()
            };
            assert_eq!(sized(s), sized(ds), "{m}: {s} vs docker {ds}");
        }
    }
    // /sys/fs/cgroup: every hierarchy read-only, as docker shows them
    assert!(!berth.cgroupfs.is_empty() || berth.mounts.contains_key("/sys/fs/cgroup"));
    for (p, o) in &berth.cgroupfs {
        assert!(opts(o).contains("ro"), "{p} {o}");
    }
    if let Some(d) = docker {
        let mine: BTreeSet<&String> = berth.cgroupfs.keys().collect();
        let theirs: BTreeSet<&String> = d.cgroupfs.keys().collect();
        assert_eq!(mine, theirs, "cgroup hierarchies");
    }
    // device cgroup: docker's allow-list without `b *:* m` (no block device node can be made)
    let want: BTreeSet<String> = DOCKER_DEVICES
        .iter()
        .filter(|r| **r != "b *:* m")
        .map(|s| s.to_string())
        .collect();
    if !berth.devices.is_empty() || docker.is_some_and(|d| !d.devices.is_empty()) {
        assert_eq!(berth.devices, want);
    }
    if let Some(d) = docker {
        if !d.devices.is_empty() {
            let all: BTreeSet<String> = DOCKER_DEVICES.iter().map(|s| s.to_string()).collect();
            assert_eq!(d.devices, all);
        }
        assert!(d.mknod_char && d.mknod_block, "docker: {d:?}");
        // the same character devices in /dev (berth adds no device node docker lacks)
        assert!(
            berth
                .dev
                .is_subset(&d.dev.union(&["core".to_string()].into()).cloned().collect()),
            "{:?} vs {:?}",
            berth.dev,
            d.dev
        );
        assert_eq!(berth.pids, d.pids, "pids limit");
    }
    assert!(berth.mknod_char, "mknod c 1:3 must work");
    assert!(
        !berth.mknod_block,
        "mknod of a block device must be refused"
    );
    // the default pids limit: none, as docker
    assert_eq!(berth.pids, "max");
    assert!(!berth.sys_rw, "/sys must be read-only");
}

fn probe(run: impl Fn(&[&str]) -> Option<String>, extra: &[&str]) -> Option<View> {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(extra);
    a.extend_from_slice(&["busybox", "sh", "-c", PROBE]);
    run(&a).map(|o| parse(&o))
}

#[test]
fn default_confinement_is_dockers_or_stricter() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(berth) = probe(|a| docker_ok(&d, a), &[]) else {
        return;
    };
    let root = common::tmpdir("dk-def");
    let dk = Dockerd::start(&root);
    let docker = dk.as_ref().map(|dk| {
        assert!(dk
            .docker(&["load", "-i", common::busybox_tar().to_str().unwrap()])
            .status
            .success());
        probe(
            |a| {
                let o = dk.docker(a);
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                Some(String::from_utf8_lossy(&o.stdout).into_owned())
            },
            &[],
        )
        .expect("docker probe")
    });
    eprintln!("berth: {berth:#?}\ndocker: {docker:#?}");
    check_default(&berth, docker.as_ref());
    drop(dk);
    let _ = std::fs::remove_dir_all(&root);
}

fn cap_bnd(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let v = s.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap();
    u64::from_str_radix(v.trim(), 16).unwrap()
}

#[test]
fn privileged_gets_all_caps_all_devices_no_masking_and_rw_sys() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(v) = probe(|a| docker_ok(&d, a), &["--privileged"]) else {
        return;
    };
    // every capability berthd holds (docker's "all" fails outright on a host whose
    // bounding set lacks one, as this one may)
    assert_eq!(v.caps.get("CapEff"), Some(&cap_bnd(d.pid())));
    for p in MASKED {
        assert!(
            !masked(&v, p) || v.paths[*p].0 == "absent",
            "{p} masked: {:?}",
            v.paths[*p]
        );
    }
    for p in READONLY {
        if let Some((o, _)) = v.paths.get(*p).filter(|(o, _)| o != "absent") {
            assert!(
                !opts(o).contains("ro"),
                "{p} read-only when privileged: {o}"
            );
        }
    }
    let (_, sys, _) = &v.mounts["/sys"];
    assert!(!opts(sys).contains("ro"), "{sys}");
    for (p, o) in &v.cgroupfs {
        assert!(!opts(o).contains("ro"), "{p} {o}");
    }
    if !v.devices.is_empty() {
        assert_eq!(v.devices, ["a *:* rwm".to_string()].into());
    }
    assert!(v.mknod_char && v.mknod_block);
    // the host's device nodes are there
    let host: BTreeSet<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.file_type()
                .is_ok_and(|t| t.is_block_device() || t.is_char_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "console")
        .collect();
    assert!(
        host.is_subset(&v.dev),
        "missing: {:?}",
        host.difference(&v.dev).collect::<Vec<_>>()
    );
}

#[test]
fn cgroup_hierarchies_show_only_the_containers_own_cgroup() {
    let d = Daemon::start();
    d.load_busybox();
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipping: no cgroup v1 memory hierarchy");
        return;
    }
    // the host's other cgroups (berth/, docker/, system ones) must not be visible in either
    // cgroup namespace mode; the limits read inside are the container's
    let script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; ls /sys/fs/cgroup/memory | grep -c -E '^(berth|docker|system.slice|user.slice)$'; cat /sys/fs/cgroup/pids/cgroup.procs | wc -l";
    for mode in ["private", "host"] {
        let Some(out) = docker_ok(
            &d,
            &[
                "run",
                "--rm",
                "--cgroupns",
                mode,
                "--memory",
                "64m",
                "busybox",
                "sh",
                "-c",
                script,
            ],
        ) else {
            return;
        };
        let l: Vec<&str> = out.lines().collect();
        assert_eq!(l[0], "67108864", "{mode}: {out}");
        assert_eq!(l[1], "0", "{mode}: host cgroups visible: {out}");
        // sh, cat and wc: the container's processes only
        assert!(l[2].trim().parse::<u32>().unwrap() <= 4, "{mode}: {out}");
    }
}
