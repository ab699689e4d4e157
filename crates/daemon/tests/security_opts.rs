//! Issue 10, points 6 and 9: every option is applied or refused with docker's error, never
//! accepted and dropped. Raw create bodies are compared with a private dockerd 20.10 when it
//! is installed (the texts are also pinned here, so the test means the same without it).

mod common;
use common::dockerd::Dockerd;
use common::{docker_ok, stderr, stdout, Daemon};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// One HTTP/1.1 request on a unix socket: (status, body).
fn http(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(sock).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn message(body: &str) -> String {
    // a chunked body has the JSON on its own line
    body.lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_default()
}

/// Create (and start) `body` on dockerd: the first error message, or "" when both worked.
fn docker_error(sock: &Path, body: &str) -> String {
    let (st, b) = http(sock, "POST", "/v1.41/containers/create", body);
    if st != 201 {
        return message(&b);
    }
    let v: serde_json::Value = serde_json::from_str(b.trim()).unwrap_or_default();
    let id = v["Id"].as_str().unwrap_or("").to_string();
    let (st, b) = http(sock, "POST", &format!("/v1.41/containers/{id}/start"), "");
    let _ = http(
        sock,
        "DELETE",
        &format!("/v1.41/containers/{id}?force=1"),
        "",
    );
    if st == 204 {
        String::new()
    } else {
        message(&b)
    }
}

/// (HostConfig JSON, extra Config keys, berth's 400 message, whether dockerd 20.10 says the
/// same at create or start; `false` = dockerd 20.10 silently accepts it, docker's CLI refuses)
const CASES: &[(&str, &str, &str, bool)] = &[
    (r#"{"Memory":"64m"}"#, "", "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64", true),
    (r#"{"Memory":9223372036854775808}"#, "", "json: cannot unmarshal number 9223372036854775808 into Go struct field HostConfig.HostConfig.Memory of type int64", true),
    (r#"{"Privileged":"yes"}"#, "", "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Privileged of type bool", true),
    (r#"{"Sysctls":{"net.ipv4.ip_forward":1}}"#, "", "json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Sysctls of type string", true),
    (r#"{"NanoCpus":1000000000,"CpuPeriod":50000}"#, "", "Conflicting options: Nano CPUs and CPU Period cannot both be set", true),
    (r#"{"Memory":-1}"#, "", "Minimum memory limit allowed is 6MB", true),
    (r#"{"Memory":1000}"#, "", "Minimum memory limit allowed is 6MB", true),
    (r#"{"Memory":67108864,"MemorySwap":1000}"#, "", "Minimum memoryswap limit should be larger than memory limit, see usage", true),
    (r#"{"MemorySwap":134217728}"#, "", "You should always set the Memory limit when using Memoryswap limit, see usage", true),
    (r#"{"NanoCpus":-1}"#, "", "Range of CPUs is from 0.01 to {N}.00, as there are only {N} CPUs available", true),
    (r#"{"NanoCpus":999000000000}"#, "", "Range of CPUs is from 0.01 to {N}.00, as there are only {N} CPUs available", true),
    (r#"{"NanoCpus":1000000000,"CpuQuota":50000}"#, "", "Conflicting options: Nano CPUs and CPU Quota cannot both be set", true),
    (r#"{"CpuPeriod":500}"#, "", "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)", true),
    (r#"{"CpuQuota":500}"#, "", "CPU cfs quota can not be less than 1ms (i.e. 1000)", true),
    (r#"{"ShmSize":-1}"#, "", "SHM size can not be less than 0", true),
    (r#"{"OomScoreAdj":1001}"#, "", "Invalid value 1001, range for oom score adj is [-1000, 1000]", true),
    (r#"{"MemorySwappiness":101}"#, "", "Invalid value: 101, valid memory swappiness range is 0-100", true),
    (r#"{}"#, r#","WorkingDir":"rel/dir""#, "the working directory 'rel/dir' is invalid, it needs to be an absolute path", true),
    (r#"{"CapAdd":["CAP_FOO"]}"#, "", "invalid CapAdd: unknown capability: \"CAP_FOO\"", true),
    (r#"{"CapAdd":["foo"]}"#, "", "invalid CapAdd: unknown capability: \"CAP_FOO\"", true),
    (r#"{"CapDrop":["cap_all"]}"#, "", "invalid CapDrop: unknown capability: \"CAP_ALL\"", true),
    (r#"{"SecurityOpt":["foo"]}"#, "", "invalid --security-opt 1: \"foo\"", true),
    (r#"{"SecurityOpt":["foo=bar"]}"#, "", "invalid --security-opt 2: \"foo=bar\"", true),
    (r#"{"SecurityOpt":["systempaths=unconfined"]}"#, "", "invalid --security-opt 2: \"systempaths=unconfined\"", true),
    (r#"{"SecurityOpt":["no-new-privileges=maybe"]}"#, "", "invalid --security-opt 2: \"no-new-privileges=maybe\"", true),
    (r#"{"Devices":[{"PathOnHost":"/dev/nosuch","PathInContainer":"/dev/nosuch","CgroupPermissions":"rwm"}]}"#, "", "error gathering device information while adding custom device \"/dev/nosuch\": no such file or directory", true),
    (r#"{"Devices":[{"PathOnHost":"/etc/passwd","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]}"#, "", "error gathering device information while adding custom device \"/etc/passwd\": not a device node", true),
    (r#"{"DeviceCgroupRules":["x 1:3 rwm"]}"#, "", "invalid device cgroup rule format: 'x 1:3 rwm'", true),
    (r#"{"Sysctls":{"vm.swappiness":"1"}}"#, "", "sysctl \"vm.swappiness\" is not in a separate kernel namespace", true),
    (r#"{"Sysctls":{"kernel.hostname":"x"}}"#, "", "sysctl \"kernel.hostname\" is not allowed as it conflicts with the OCI \"hostname\" field", true),
    (r#"{"NetworkMode":"host","Sysctls":{"net.ipv4.ip_forward":"1"}}"#, "", "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace", true),
    (r#"{"IpcMode":"host","Sysctls":{"kernel.shmmax":"100000"}}"#, "", "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace", true),
    (r#"{"IpcMode":"container:nosuch"}"#, "", "No such container: nosuch", true),
    (r#"{"CgroupnsMode":"foo"}"#, "", "invalid cgroup namespace mode: foo", true),
    (r#"{"UTSMode":"host"}"#, r#","Hostname":"abc""#, "conflicting options: hostname and the UTS mode", true),
    (r#"{"IOMaximumIOps":10}"#, "", "Invalid QoS settings: linux does not support configuration of maximum IOPs", true),
    (r#"{"Runtime":"foo"}"#, "", "Unknown runtime specified foo", true),
    (r#"{"Isolation":"hyperv"}"#, "", "Invalid isolation: \"hyperv\" - linux only supports 'default'", true),
    (r#"{"StorageOpt":{"size":"1G"}}"#, "", "--storage-opt is supported only for overlay over xfs with 'pquota' mount option", true),
    (r#"{"DeviceRequests":[{"Driver":"","Count":-1,"Capabilities":[["gpu"]]}]}"#, "", "could not select device driver \"\" with capabilities: [[gpu]]", true),
    (r#"{"BlkioDeviceReadBps":[{"Path":"/dev/nosuch","Rate":1048576}]}"#, "", "stat /dev/nosuch: no such file or directory", true),
    (r#"{"IpcMode":"foo"}"#, "", "invalid IPC mode: foo", true),
    (r#"{"UTSMode":"foo"}"#, "", "invalid UTS mode: foo", false),
    (r#"{"PidMode":"foo"}"#, "", "invalid PID mode: foo", false),
    (r#"{"UsernsMode":"foo"}"#, "", "invalid USER mode: foo", false),
];

fn body(hc: &str, extra: &str) -> String {
    format!(r#"{{"Image":"busybox","Cmd":["true"]{extra},"HostConfig":{hc}}}"#)
}

#[test]
fn create_refuses_bad_options_with_dockers_errors() {
    let d = Daemon::start();
    d.load_busybox();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (hc, extra, want, _) in CASES {
        let want = want.replace("{N}", &cpus.to_string());
        let (st, _, b) = d.http("POST", "/v1.41/containers/create", Some(&body(hc, extra)));
        let b = String::from_utf8_lossy(&b);
        assert_eq!(st, 400, "{hc} {extra}: {b}");
        assert_eq!(message(&b), want, "{hc} {extra}");
    }
    // nothing of the refused ones was left behind
    let (_, _, list) = d.http("GET", "/v1.41/containers/json?all=1", None);
    assert_eq!(String::from_utf8_lossy(&list).trim(), "[]");

    // the same through the docker CLI: daemon error, exit 125 for run
    if let Some(o) = d.docker(&["run", "--rm", "--device", "/dev/nosuch", "busybox", "true"]) {
        // the docker CLI turns "no such file or directory" into 127, with dockerd too
        assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("error gathering device information while adding custom device \"/dev/nosuch\": no such file or directory"),
            "{}",
            stderr(&o)
        );
        let o = d
            .docker(&["create", "--cap-add", "foo", "busybox"])
            .unwrap();
        assert!(
            !o.status.success()
                && stderr(&o).contains("invalid CapAdd: unknown capability: \"CAP_FOO\""),
            "{}",
            stderr(&o)
        );
    }

    // side by side: dockerd 20.10 refuses the same (at create or at start) with the same text
    let root = common::tmpdir("dk-opts");
    if let Some(dk) = Dockerd::start(&root) {
        assert!(dk
            .docker(&["load", "-i", common::busybox_tar().to_str().unwrap()])
            .status
            .success());
        let sock = dk.root.join("d.sock");
        for (hc, extra, want, same) in CASES {
            let want = want.replace("{N}", &cpus.to_string());
            let got = docker_error(&sock, &body(hc, extra));
            if *same {
                // dockerd 20.10 capitalises "Invalid IPC mode" (at start)
                let got = got.replacen("Invalid IPC", "invalid IPC", 1);
                assert!(
                    got == want || got.ends_with(&format!("{want}: unknown")),
                    "dockerd says {got:?} for {hc} {extra}, berth {want:?}"
                );
            } else {
                assert_eq!(got, "", "dockerd 20.10 now refuses {hc}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

fn cap_eff(d: &Daemon, args: &[&str]) -> Option<u64> {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "grep", "CapEff", "/proc/self/status"]);
    let out = docker_ok(d, &a)?;
    let hex = out.split_whitespace().nth(1).expect("CapEff value");
    Some(u64::from_str_radix(hex, 16).expect("hex"))
}

fn own_cap_bnd(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let v = s
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd");
    u64::from_str_radix(v.trim(), 16).expect("hex")
}

#[test]
fn capabilities_are_added_and_dropped_as_docker() {
    let d = Daemon::start();
    d.load_busybox();
    // docker's default set
    let Some(def) = cap_eff(&d, &[]) else {
        return;
    };
    assert_eq!(def, 0xa80425fb);
    // drop ALL then add one: only that one (CAP_CHOWN = bit 0), any case, with or without CAP_
    assert_eq!(
        cap_eff(&d, &["--cap-drop", "ALL", "--cap-add", "chown"]),
        Some(1)
    );
    assert_eq!(
        cap_eff(&d, &["--cap-drop", "all", "--cap-add", "CAP_Chown"]),
        Some(1)
    );
    // add NET_ADMIN (bit 12), drop KILL (bit 5)
    assert_eq!(
        cap_eff(&d, &["--cap-add", "net_admin", "--cap-drop", "kill"]),
        Some((def | 1 << 12) & !(1 << 5))
    );
    // ALL: every capability berthd itself holds, minus the dropped ones
    let all = own_cap_bnd(d.pid());
    // one berthd lacks (this host may have no CAP_SYS_RESOURCE) is refused, not dropped
    if all & (1 << 24) == 0 {
        let o = d
            .docker(&[
                "run",
                "--rm",
                "--cap-add",
                "SYS_RESOURCE",
                "busybox",
                "true",
            ])
            .unwrap();
        assert_eq!(o.status.code(), Some(125));
        assert!(
            stderr(&o).contains(
                "invalid CapAdd: capability \"CAP_SYS_RESOURCE\" is not available: berthd does not hold it"
            ),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(cap_eff(&d, &["--cap-add", "ALL"]), Some(all));
    assert_eq!(
        cap_eff(&d, &["--cap-add", "all", "--cap-drop", "sys_admin"]),
        Some(all & !(1 << 21))
    );
}

fn run(d: &Daemon, args: &[&str]) -> Option<String> {
    let mut a = vec!["run", "--rm"];
    a.extend_from_slice(args);
    docker_ok(d, &a)
}

#[test]
fn devices_are_made_and_allowed_in_the_device_cgroup() {
    let d = Daemon::start();
    d.load_busybox();
    // /dev/null as /dev/mynull
    let Some(out) = run(
        &d,
        &[
            "--device",
            "/dev/null:/dev/mynull",
            "busybox",
            "sh",
            "-c",
            "ls -ln /dev/mynull; cat /dev/mynull && echo read-ok",
        ],
    ) else {
        return;
    };
    assert!(out.starts_with("crw-rw-rw-"), "{out}");
    assert!(out.contains(" 1,   3 "), "{out}");
    assert!(out.contains("read-ok"), "{out}");
    // a block device with its host mode; `:r` allows reading only, the default rwm all
    if Path::new("/dev/loop7").exists() {
        let script = "ls -ln /dev/xloop; (exec 3</dev/xloop) && echo read-ok; (exec 3>/dev/xloop) 2>/dev/null && echo write-ok || echo write-refused";
        let out = run(
            &d,
            &[
                "--device",
                "/dev/loop7:/dev/xloop:r",
                "busybox",
                "sh",
                "-c",
                script,
            ],
        )
        .unwrap();
        assert!(
            out.starts_with("brw-------") && out.contains(" 7,   7 "),
            "{out}"
        );
        assert!(
            out.contains("read-ok") && out.contains("write-refused"),
            "{out}"
        );
        let out = run(
            &d,
            &[
                "--device",
                "/dev/loop7:/dev/xloop",
                "busybox",
                "sh",
                "-c",
                script,
            ],
        )
        .unwrap();
        assert!(out.contains("read-ok") && out.contains("write-ok"), "{out}");
    }
    // --device-cgroup-rule: a node made in the container opens only with the rule
    let script = "mknod /tmp/fuse c 10 229 && (exec 3</tmp/fuse) 2>/dev/null && echo open-ok || echo open-refused";
    let out = run(&d, &["busybox", "sh", "-c", script]).unwrap();
    assert!(out.contains("open-refused"), "{out}");
    let out = run(
        &d,
        &[
            "--device-cgroup-rule",
            "c 10:229 rwm",
            "busybox",
            "sh",
            "-c",
            script,
        ],
    )
    .unwrap();
    assert!(out.contains("open-ok"), "{out}");
}

#[test]
fn namespaced_sysctls_are_applied_in_the_container() {
    let d = Daemon::start();
    d.load_busybox();
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let Some(out) = run(
        &d,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=123456789",
            "--sysctl",
            "fs.mqueue.msg_max=20",
            "busybox",
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
            "/proc/sys/kernel/shmmax",
            "/proc/sys/fs/mqueue/msg_max",
        ],
    ) else {
        return;
    };
    assert_eq!(out, "1\n123456789\n20\n");
    // the host's values did not move
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shm
    );
    // /proc/sys stays read-only for the container afterwards
    let out = run(
        &d,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "sh",
            "-c",
            "(echo 7200 > /proc/sys/net/ipv4/tcp_keepalive_time) 2>&1; true",
        ],
    )
    .unwrap();
    assert!(out.contains("Read-only file system"), "{out}");
    // a namespaced sysctl that does not exist fails the start, as runc does
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--sysctl",
            "net.ipv4.nosuch=1",
            "busybox",
            "true",
        ])
        .unwrap();
    // the docker CLI turns "no such file or directory" into 127, with dockerd too
    assert_eq!(o.status.code(), Some(127));
    assert!(
        stderr(&o).contains("/proc/sys/net/ipv4/nosuch: no such file or directory"),
        "{}",
        stderr(&o)
    );
}

fn ns(pid: &str, kind: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn ipc_uts_cgroupns_host_and_none_modes_are_applied() {
    let d = Daemon::start();
    d.load_busybox();
    let read_ns = "for n in ipc uts cgroup; do readlink /proc/self/ns/$n; done; hostname; ls -d /dev/shm 2>&1; true";
    let Some(def) = run(&d, &["busybox", "sh", "-c", read_ns]) else {
        return;
    };
    let host: Vec<String> = ["ipc", "uts", "cgroup"]
        .iter()
        .map(|k| ns("self", k))
        .collect();
    let hostname = nix_hostname();
    let def: Vec<&str> = def.lines().collect();
    assert!(def[0] != host[0] && def[1] != host[1], "{def:?}");
    // the cgroup namespace: dockerd's default per cgroup version (host on v1 and hybrid
    // hosts, private on v2), a private one when asked
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(def[2] != host[2], v2, "{def:?}");
    let private = run(
        &d,
        &["--cgroupns", "private", "busybox", "sh", "-c", read_ns],
    )
    .unwrap();
    assert_ne!(private.lines().nth(2), Some(host[2].as_str()), "{private}");
    let out = run(
        &d,
        &[
            "--ipc",
            "host",
            "--uts",
            "host",
            "--cgroupns",
            "host",
            "busybox",
            "sh",
            "-c",
            read_ns,
        ],
    )
    .unwrap();
    let out: Vec<&str> = out.lines().collect();
    assert_eq!(&out[..3], &[&host[0], &host[1], &host[2]]);
    assert_eq!(out[3], hostname);
    // --ipc none: an IPC namespace of its own and no /dev/shm
    let out = run(&d, &["--ipc", "none", "busybox", "sh", "-c", read_ns]).unwrap();
    assert!(out.contains("/dev/shm: No such file or directory"), "{out}");
    // inspect says what was asked
    let id = docker_ok(&d, &["create", "--uts", "host", "--ipc", "none", "busybox"]).unwrap();
    let v = d.inspect(id.trim());
    assert_eq!(v["HostConfig"]["UTSMode"], "host");
    assert_eq!(v["HostConfig"]["IpcMode"], "none");
}

fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn ipc_container_mode_joins_a_shareable_donor() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(donor) = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "donor",
            "--ipc",
            "shareable",
            "busybox",
            "sh",
            "-c",
            "echo hi > /dev/shm/x; sleep 300",
        ],
    ) else {
        return;
    };
    let pid = d.inspect(donor.trim())["State"]["Pid"].to_string();
    assert!(common::eventually(10, || {
        std::fs::read_to_string(format!("/proc/{pid}/root/dev/shm/x")).is_ok()
    }));
    let out = run(
        &d,
        &[
            "--ipc",
            "container:donor",
            "busybox",
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; cat /dev/shm/x",
        ],
    )
    .unwrap();
    assert_eq!(out, format!("{}\nhi\n", ns(&pid, "ipc")));
    // a private donor is refused, as docker does
    docker_ok(
        &d,
        &["run", "-d", "--name", "priv", "busybox", "sleep", "300"],
    );
    let o = d
        .docker(&["run", "--rm", "--ipc", "container:priv", "busybox", "true"])
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("non-shareable IPC"), "{}", stderr(&o));
    docker_ok(&d, &["rm", "-f", "donor", "priv"]);
}

#[test]
fn security_opt_labels_apparmor_and_systempaths_as_docker() {
    let d = Daemon::start();
    d.load_busybox();
    // no AppArmor or SELinux on this host: docker accepts these and applies nothing
    let aa = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if !aa && !Path::new("/sys/fs/selinux").exists() {
        let Some(out) = run(
            &d,
            &[
                "--security-opt",
                "label=disable",
                "--security-opt",
                "apparmor=unconfined",
                "--security-opt",
                "label:user:x",
                "busybox",
                "echo",
                "ok",
            ],
        ) else {
            return;
        };
        assert_eq!(out, "ok\n");
    }
    // systempaths=unconfined: the CLI sends empty MaskedPaths/ReadonlyPaths; nothing is masked
    let check = "grep -c -E ' /proc/(kcore|keys|timer_list|sys|sysrq-trigger|bus|fs|irq) ' /proc/self/mountinfo; echo 7200 > /proc/sys/net/ipv4/tcp_keepalive_time && echo sys-rw || echo sys-ro";
    let Some(out) = run(&d, &["busybox", "sh", "-c", &format!("({check}) 2>&1")]) else {
        return;
    };
    assert!(
        out.contains("sys-ro") && out.contains("Read-only file system"),
        "{out}"
    );
    assert_ne!(out.lines().next(), Some("0"), "{out}");
    let out = run(
        &d,
        &[
            "--security-opt",
            "systempaths=unconfined",
            "busybox",
            "sh",
            "-c",
            &format!("({check}) 2>&1"),
        ],
    )
    .unwrap();
    assert_eq!(out.lines().next(), Some("0"), "{out}");
    assert!(out.contains("sys-rw"), "{out}");
    // unknown keys through the CLI: the daemon's text, exit 125
    let o = d
        .docker(&[
            "run",
            "--rm",
            "--security-opt",
            "foo=bar",
            "busybox",
            "true",
        ])
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("invalid --security-opt 2: \"foo=bar\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn oom_score_adj_and_userns_host_are_applied() {
    let d = Daemon::start();
    d.load_busybox();
    let Some(out) = run(
        &d,
        &[
            "--oom-score-adj",
            "500",
            "busybox",
            "cat",
            "/proc/self/oom_score_adj",
        ],
    ) else {
        return;
    };
    assert_eq!(out, "500\n");
    // --domainname was accepted and dropped: now the UTS namespace's domain name
    let out = run(
        &d,
        &[
            "--domainname",
            "example.test",
            "busybox",
            "cat",
            "/proc/sys/kernel/domainname",
        ],
    )
    .unwrap();
    assert_eq!(out, "example.test\n");
    let out = run(&d, &["--userns", "host", "busybox", "id", "-u"]).unwrap();
    assert_eq!(out, "0\n");
    let o = d
        .docker(&["create", "--oom-score-adj", "5000", "busybox"])
        .unwrap();
    assert!(
        stderr(&o).contains("Invalid value 5000, range for oom score adj is [-1000, 1000]"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_host_wide_sysctl_in_an_old_record_is_refused_at_start() {
    // an older berthd took any sysctl and ignored it; the record it wrote must not now set a
    // host-wide one (the value is the host's own, so nothing changes even if it did)
    let mut d = Daemon::start();
    d.load_busybox();
    let id = d.ok(&["create", "busybox", "true"]).trim().to_string();
    d.stop_daemon();
    let rec_path = d.root.join(format!("data/containers/{id}/config.v2.json"));
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec_path).unwrap()).unwrap();
    let swappiness = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let key = if rec.get("host_config").is_some() {
        "host_config"
    } else {
        "HostConfig"
    };
    let hc = rec.get_mut(key).expect("host config in the record");
    hc["Sysctls"] = serde_json::json!({"vm.swappiness": swappiness.trim()});
    std::fs::write(&rec_path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let d = Daemon::start_on(&d.root.clone());
    let o = d.berth(&["start", &id]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
        "{}",
        stderr(&o)
    );
}

fn cgroup_file(ctrl: &str, path: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{ctrl}/{path}/{file}"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn resource_options_once_dropped_are_applied_or_warned() {
    let d = Daemon::start();
    d.load_busybox();
    let parent = format!("btpar{}", std::process::id());
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "res",
        "--memory",
        "64m",
        "--memory-swappiness",
        "10",
        "--oom-kill-disable",
        "--cgroup-parent",
        &parent,
    ];
    let loopdev = std::path::Path::new("/dev/loop7").exists();
    if loopdev {
        args.extend_from_slice(&[
            "--device-read-bps",
            "/dev/loop7:1mb",
            "--device-write-iops",
            "/dev/loop7:77",
        ]);
    }
    args.extend_from_slice(&["busybox", "sleep", "300"]);
    let Some(id) = docker_ok(&d, &args) else {
        return;
    };
    let cg = format!("{parent}/{}", id.trim());
    assert_eq!(
        cgroup_file("memory", &cg, "memory.limit_in_bytes"),
        "67108864"
    );
    assert_eq!(cgroup_file("memory", &cg, "memory.swappiness"), "10");
    assert!(
        cgroup_file("memory", &cg, "memory.oom_control").contains("oom_kill_disable 1"),
        "{}",
        cgroup_file("memory", &cg, "memory.oom_control")
    );
    if loopdev {
        assert_eq!(
            cgroup_file("blkio", &cg, "blkio.throttle.read_bps_device"),
            "7:7 1048576"
        );
        assert_eq!(
            cgroup_file("blkio", &cg, "blkio.throttle.write_iops_device"),
            "7:7 77"
        );
    }
    // the container's processes are in that cgroup, and top/stats find them there
    let top = docker_ok(&d, &["top", "res"]).unwrap();
    assert!(top.contains("sleep 300"), "{top}");
    docker_ok(&d, &["stats", "--no-stream", "res"]).unwrap();
    docker_ok(&d, &["rm", "-f", "res"]);
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(h.path().join(&parent));
    }
    // accepted but without effect here: docker's warnings in the create answer
    let (st, _, b) = d.http(
        "POST",
        "/v1.41/containers/create",
        Some(&body(
            r#"{"KernelMemory":67108864,"OomKillDisable":true,"CpuPercent":10}"#,
            "",
        )),
    );
    assert_eq!(st, 201);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
    let w: Vec<&str> = v["Warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x.as_str())
        .collect();
    assert!(w.contains(&"Specifying a kernel memory limit is deprecated and will be removed in a future release."), "{w:?}");
    assert!(w.contains(&"OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."), "{w:?}");
    assert!(
        w.contains(&"linux does not support CPU percent. Percent discarded."),
        "{w:?}"
    );
}
