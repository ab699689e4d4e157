//! Inspect and info shapes as dockerd 20.10's (issue 12, point 4): Go-style bodies (nulls for
//! what is not set) go to berthd and, when installed, to a private dockerd; the same assertions
//! hold for both, so each value asserted here is dockerd's.

mod common;
use common::sdk::{docker_py_available, dockerd_with_busybox, engines, run_docker_py, Api};
use common::Daemon;
use serde_json::{json, Value};
use std::process::Output;

/// `docker exec` on the engine behind `api` (the berth CLI for berthd).
fn exec(d: &Daemon, dk: Option<&common::dockerd::Dockerd>, api: &Api, args: &[&str]) -> String {
    let mut a = vec!["exec"];
    a.extend_from_slice(args);
    let o: Output = match (api.name, dk) {
        ("dockerd", Some(dk)) => dk.docker(&a),
        _ => d.berth(&a),
    };
    assert!(
        o.status.success(),
        "{}: exec {args:?}: {}",
        api.name,
        common::stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn created(api: &Api, path: &str, body: &Value) -> String {
    let a = api.call_json("POST", path, body);
    assert_eq!(a.status, 201, "{}: {path}: {:?}", api.name, a.body);
    a.body["Id"].as_str().expect("Id").to_string()
}

fn started(api: &Api, name: &str) {
    let a = api.call("POST", &format!("/containers/{name}/start"), None);
    assert_eq!(a.status, 204, "{}: start {name}: {:?}", api.name, a.body);
}

fn inspect(api: &Api, name: &str) -> Value {
    let a = api.call("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(a.status, 200, "{}: inspect {name}: {:?}", api.name, a.body);
    a.body
}

#[test]
fn container_inspect_shapes_as_dockerd() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let apis = engines(&d, dk.as_ref());
    for (i, api) in apis.iter().enumerate() {
        let n = api.name;
        // every optional field null, as Go's encoding/json writes them
        created(
            api,
            "/containers/create?name=plain",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "StopTimeout": null,
                "HostConfig": {"MaskedPaths": null, "ReadonlyPaths": null, "IpcMode": "",
                    "Links": null, "Tmpfs": null, "Runtime": ""}}),
        );
        started(api, "plain");
        let c = inspect(api, "plain");
        let hc = &c["HostConfig"];
        let masked: Vec<&str> = hc["MaskedPaths"]
            .as_array()
            .expect("MaskedPaths")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            masked.contains(&"/proc/kcore") && masked.contains(&"/sys/firmware"),
            "{n}: {masked:?}"
        );
        assert!(
            hc["ReadonlyPaths"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("/proc/sys"))),
            "{n}: {hc}"
        );
        assert_eq!(hc["IpcMode"], "private", "{n}");
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "", "MaximumRetryCount": 0}),
            "{n}"
        );
        // not asked for: the engine's default runtime
        let info = api.call("GET", "/info", None).body;
        assert_eq!(hc["Runtime"], info["DefaultRuntime"], "{n}");
        assert!(
            c["Config"].get("StopTimeout").is_none(),
            "{n}: {}",
            c["Config"]
        );
        assert!(
            hc["Dns"].is_null() && hc["Ulimits"].is_null() && hc["Devices"].is_null(),
            "{n}: {hc}"
        );

        // a container with everything the issue names set
        created(
            api,
            "/containers/create?name=rich",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "StopTimeout": 7,
                "MacAddress": "02:42:ac:11:00:99",
                "Healthcheck": {"Test": ["CMD", "sleep", "5"], "Interval": 1_000_000_000i64, "Timeout": 500_000_000},
                "HostConfig": {"Tmpfs": {"/t": "size=1m"}, "Mounts": [{"Type": "tmpfs", "Target": "/t2"}],
                    "Runtime": "runc", "Links": ["plain:db"], "PidsLimit": -1, "CpuRealtimeRuntime": 1000,
                    "CpuRealtimePeriod": 1_000_000}}),
        );
        let c = inspect(api, "rich");
        let hc = &c["HostConfig"];
        assert_eq!(c["Config"]["StopTimeout"], 7, "{n}");
        assert_eq!(c["Config"]["MacAddress"], "02:42:ac:11:00:99", "{n}");
        assert_eq!(hc["Runtime"], "runc", "{n}");
        assert_eq!(hc["Links"], json!(["/plain:/rich/db"]), "{n}");
        assert!(hc["PidsLimit"].is_null(), "{n}: {}", hc["PidsLimit"]);
        assert_eq!(hc["CpuRealtimeRuntime"], 1000, "{n}");
        assert_eq!(hc["CpuRealtimePeriod"], 1_000_000, "{n}");
        // `--tmpfs` is no mount point of its own; a `--mount type=tmpfs` is
        let mounts: Vec<&str> = c["Mounts"]
            .as_array()
            .expect("Mounts")
            .iter()
            .filter_map(|m| m["Destination"].as_str())
            .collect();
        assert_eq!(mounts, ["/t2"], "{n}");
        // the linked container is listed under its alias too
        let list = api.call("GET", "/containers/json?all=1", None).body;
        let plain = list
            .as_array()
            .expect("list")
            .iter()
            .find(|c| c["Names"][0] == "/plain")
            .cloned()
            .expect("plain listed");
        assert_eq!(plain["Names"], json!(["/plain", "/rich/db"]), "{n}");

        // a health check that times out says so, with the timeout as Go prints it
        created(
            api,
            "/containers/create?name=hto",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"],
                "Healthcheck": {"Test": ["CMD", "sleep", "5"], "Interval": 1_000_000_000i64, "Timeout": 500_000_000}}),
        );
        started(api, "hto");
        let mut log = Value::Null;
        let ok = common::eventually(20, || {
            log = inspect(api, "hto")["State"]["Health"]["Log"][0].clone();
            !log.is_null()
        });
        assert!(ok, "{n}: no health log");
        assert_eq!(
            log["Output"], "Health check exceeded timeout (500ms)",
            "{n}: {log}"
        );
        assert_eq!(log["ExitCode"], -1, "{n}");

        // a network whose name has a space; the endpoint keeps IPAMConfig and LinkLocalIPs,
        // and the container's MacAddress is its interface's
        let subnet = format!("10.{}.0.0/24", 77 + i);
        let a = api.call_json(
            "POST",
            "/networks/create",
            &json!({"Name": "my net", "CheckDuplicate": true, "Labels": null, "Options": null,
                "IPAM": {"Driver": "default", "Options": null,
                    "Config": [{"Subnet": subnet, "IPRange": null, "Gateway": null, "AuxiliaryAddresses": null}]}}),
        );
        assert_eq!(a.status, 201, "{n}: {:?}", a.body);
        let a = api.call("GET", "/networks/my%20net", None);
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        assert_eq!(a.body["Name"], "my net", "{n}");
        let ip = format!("10.{}.0.9", 77 + i);
        created(
            api,
            "/containers/create?name=ll",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "MacAddress": "02:42:0a:4d:00:33",
                "HostConfig": {"NetworkMode": "my net"},
                "NetworkingConfig": {"EndpointsConfig": {"my net": {
                    "IPAMConfig": {"IPv4Address": ip, "LinkLocalIPs": ["169.254.7.7"]},
                    "Aliases": ["al"], "Links": null, "DriverOpts": null}}}}),
        );
        started(api, "ll");
        let c = inspect(api, "ll");
        let ep = &c["NetworkSettings"]["Networks"]["my net"];
        assert_eq!(
            ep["IPAMConfig"],
            json!({"IPv4Address": ip, "LinkLocalIPs": ["169.254.7.7"]}),
            "{n}"
        );
        assert_eq!(ep["IPAddress"], ip, "{n}");
        assert_eq!(ep["MacAddress"], "02:42:0a:4d:00:33", "{n}");
        assert_eq!(
            exec(
                &d,
                dk.as_ref(),
                api,
                &["ll", "cat", "/sys/class/net/eth0/address"]
            ),
            "02:42:0a:4d:00:33",
            "{n}"
        );
        let a = api.call("DELETE", "/containers/ll?force=1", None);
        assert_eq!(a.status, 204, "{n}: {:?}", a.body);
        let a = api.call("DELETE", "/networks/my%20net", None);
        assert_eq!(a.status, 204, "{n}: {:?}", a.body);
    }
}

#[test]
fn commit_records_parent_and_expands_env() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        let n = api.name;
        let base = api.call("GET", "/images/busybox/json", None).body;
        assert!(
            base["Config"]["Labels"].is_null(),
            "{n}: {}",
            base["Config"]
        );
        let path = base["Config"]["Env"][0].as_str().expect("PATH").to_string();
        created(
            &api,
            "/containers/create?name=src",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"]}),
        );
        started(&api, "src");
        let a = api.call(
            "POST",
            "/commit?container=src&repo=cm&tag=1&changes=ENV%20PATH%3D%2Fx%3A%24PATH",
            Some("null"),
        );
        assert_eq!(a.status, 201, "{n}: {:?}", a.body);
        let img = api.call("GET", "/images/cm:1/json", None).body;
        assert_eq!(img["Parent"], base["Id"], "{n}");
        // nothing changed in the container: no layer of its own
        assert_eq!(img["RootFS"]["Layers"], base["RootFS"]["Layers"], "{n}");
        assert_eq!(
            img["Config"]["Env"],
            json!([format!("PATH=/x:{}", &path["PATH=".len()..])]),
            "{n}"
        );
        assert_eq!(img["Config"]["Image"], "busybox", "{n}");
        assert_eq!(
            img["ContainerConfig"]["Cmd"],
            json!(["sleep", "300"]),
            "{n}"
        );
        // the list shows the same parent
        let list = api.call("GET", "/images/json?all=1", None).body;
        let row = list
            .as_array()
            .expect("list")
            .iter()
            .find(|r| r["Id"] == img["Id"])
            .cloned()
            .expect("committed image listed");
        assert_eq!(row["ParentId"], base["Id"], "{n}");
    }
}

#[test]
fn old_api_versions_as_dockerd() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let swap = std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    for api in engines(&d, dk.as_ref()) {
        let n = api.name;
        created(
            &api,
            "/v1.19/containers/create?name=c19",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "Volumes": {"/data": {}},
                "HostConfig": {"CpusetCpus": "0", "CpuShares": 512}}),
        );
        let c = inspect(&api, "c19");
        assert!(
            c["Config"].get("Cpuset").is_none(),
            "{n}: current versions have no Config.Cpuset"
        );
        let a = api.call("GET", "/v1.19/containers/c19/json", None);
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        let c = a.body;
        assert_eq!(c["Config"]["Cpuset"], "0", "{n}");
        assert_eq!(c["Config"]["CpuShares"], 512, "{n}");
        assert_eq!(c["Config"]["NetworkDisabled"], false, "{n}");
        assert!(c.get("Mounts").is_none(), "{n}: {c}");
        assert_eq!(c["VolumesRW"]["/data"], true, "{n}: {c}");
        assert!(c["NetworkSettings"].get("Networks").is_none(), "{n}");
        // 1.20: Mounts, and no resources in Config
        let c = api.call("GET", "/v1.20/containers/c19/json", None).body;
        assert!(
            c["Mounts"].as_array().is_some_and(|m| m.len() == 1),
            "{n}: {c}"
        );
        assert!(
            c["Config"].get("Cpuset").is_none() && c.get("Volumes").is_none(),
            "{n}: {c}"
        );
        assert_eq!(c["Config"]["MacAddress"], "", "{n}");

        // resources a 1.18 client puts in the config itself; AutoRemove left to the client
        // below 1.25
        created(
            &api,
            "/v1.18/containers/create?name=c18",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "Memory": 67_108_864,
                "CpuShares": 256, "Cpuset": "0", "HostConfig": {"AutoRemove": true}}),
        );
        let hc = inspect(&api, "c18")["HostConfig"].clone();
        assert_eq!(hc["Memory"], 67_108_864, "{n}");
        assert_eq!(hc["CpuShares"], 256, "{n}");
        assert_eq!(hc["CpusetCpus"], "0", "{n}");
        assert_eq!(hc["AutoRemove"], false, "{n}");
        let c = api.call("GET", "/v1.18/containers/c18/json", None).body;
        assert_eq!(c["Config"]["Memory"], 67_108_864, "{n}");

        // IpcMode: `shareable` for clients below 1.40 that send a HostConfig
        created(
            &api,
            "/v1.39/containers/create?name=c39",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {}}),
        );
        assert_eq!(
            inspect(&api, "c39")["HostConfig"]["IpcMode"],
            "shareable",
            "{n}"
        );
        created(
            &api,
            "/v1.40/containers/create?name=c40",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "HostConfig": {}}),
        );
        assert_eq!(
            inspect(&api, "c40")["HostConfig"]["IpcMode"],
            "private",
            "{n}"
        );
        // below 1.41 on a cgroup v1 host the cgroup namespace is the host's
        if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            assert_eq!(
                inspect(&api, "c40")["HostConfig"]["CgroupnsMode"],
                "host",
                "{n}"
            );
        }

        // info: ExecutionDriver below 1.25, SecurityOptions as names; SwapLimit as the host
        let info = api.call("GET", "/v1.24/info", None).body;
        assert_eq!(info["ExecutionDriver"], "<not supported>", "{n}");
        assert!(
            info["SecurityOptions"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("seccomp"))),
            "{n}: {}",
            info["SecurityOptions"]
        );
        let info = api.call("GET", "/info", None).body;
        assert!(info.get("ExecutionDriver").is_none(), "{n}");
        assert_eq!(info["SwapLimit"], swap, "{n}");

        // kill of a container that is not running: fine below 1.20, a 409 from 1.20 on
        let a = api.call("POST", "/v1.19/containers/c40/kill", None);
        assert_eq!(a.status, 204, "{n}: {:?}", a.body);
        let a = api.call("POST", "/v1.20/containers/c40/kill", None);
        assert_eq!(a.status, 409, "{n}: {:?}", a.body);

        // PidsLimit: ignored in updates below 1.40; 0 and negatives mean unlimited (0)
        started(&api, "c40");
        let a = api.call(
            "POST",
            "/v1.39/containers/c40/update",
            Some(r#"{"PidsLimit":77}"#),
        );
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        assert!(a.body["Warnings"].is_null(), "{n}: {:?}", a.body);
        assert!(
            inspect(&api, "c40")["HostConfig"]["PidsLimit"].is_null(),
            "{n}"
        );
        let a = api.call(
            "POST",
            "/v1.40/containers/c40/update",
            Some(r#"{"PidsLimit":77}"#),
        );
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        assert_eq!(inspect(&api, "c40")["HostConfig"]["PidsLimit"], 77, "{n}");
        let a = api.call(
            "POST",
            "/containers/c40/update",
            Some(r#"{"PidsLimit":-2}"#),
        );
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        assert_eq!(inspect(&api, "c40")["HostConfig"]["PidsLimit"], 0, "{n}");
    }
}

/// Differences between two answers in keys and JSON types (values may differ), below `path`.
fn shape_diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => shape_diff(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: only berthd has it")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only dockerd has it"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            // dockerd's order of some lists (Mounts, networks, volumes) is a map's: compare the
            // first pair with the same Destination or Name, else the first of each
            if let (Some(v), Some(w)) = (x.first(), y.first()) {
                let same = |v: &Value, w: &Value| {
                    ["Destination", "Name"]
                        .iter()
                        .any(|k| v.get(*k).is_some() && v.get(*k) == w.get(*k))
                };
                let (v, w) = x
                    .iter()
                    .find_map(|v| y.iter().find(|w| same(v, w)).map(|w| (v, w)))
                    .unwrap_or((v, w));
                shape_diff(&format!("{path}[0]"), v, w, out);
            }
        }
        _ if kind(a) != kind(b) => out.push(format!("{path}: berthd {a} / dockerd {b}")),
        _ => {}
    }
}

/// The same objects made on both engines: every answer a client reads has dockerd's keys,
/// and the same JSON types (`null` where dockerd has `null`).
#[test]
fn answers_have_dockerds_keys_and_types() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let apis = engines(&d, dk.as_ref());
    let paths = [
        "/containers/ctr/json",
        "/containers/json?all=1",
        "/containers/json?size=1",
        "/v1.19/containers/ctr/json",
        "/v1.20/containers/ctr/json",
        "/images/busybox/json",
        "/images/json",
        "/networks/n1",
        "/volumes/v1",
        "/version",
        "/info",
        "/v1.24/info",
        "/system/df",
        "/volumes",
        "/images/busybox/history",
        "/containers/ctr/top",
        "/containers/ctr/stats?stream=0",
        "/exec/EXEC/json",
        "/networks",
        "/containers/ctr/changes",
        "/v1.24/images/json",
        "/v1.24/containers/json",
        "/v1.24/volumes",
        "/v1.30/containers/ctr/json",
    ];
    let mut answers = Vec::new();
    for api in &apis {
        let n = api.name;
        created(
            api,
            "/containers/create?name=ctr",
            &json!({"Image": "busybox", "Cmd": ["sleep", "300"], "Labels": {"x": "y"}, "Volumes": {"/v": {}},
                "ExposedPorts": {"80/tcp": {}},
                "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "0"}]}, "Binds": ["/tmp:/h"],
                    "Dns": null, "Ulimits": null, "Devices": null}}),
        );
        started(api, "ctr");
        let a = api.call(
            "POST",
            "/volumes/create",
            Some(r#"{"Name":"v1","Labels":{"a":"b"},"DriverOpts":null}"#),
        );
        assert_eq!(a.status, 201, "{n}: {:?}", a.body);
        let a = api.call("POST", "/networks/create", Some(r#"{"Name":"n1","Labels":null,"IPAM":{"Driver":"default","Options":null,"Config":null}}"#));
        assert_eq!(a.status, 201, "{n}: {:?}", a.body);
        let a = api.call(
            "POST",
            "/containers/ctr/exec",
            Some(r#"{"Cmd":["sleep","60"],"Env":null,"User":""}"#),
        );
        assert_eq!(a.status, 201, "{n}: {:?}", a.body);
        let exec = a.body["Id"].as_str().expect("exec Id").to_string();
        let a = api.call(
            "POST",
            &format!("/exec/{exec}/start"),
            Some(r#"{"Detach":true,"Tty":false}"#),
        );
        assert_eq!(a.status, 200, "{n}: {:?}", a.body);
        let mut got = Vec::new();
        for p in paths {
            let p = p.replace("EXEC", &exec);
            let a = api.call("GET", &p, None);
            assert_eq!(a.status, 200, "{n}: {p}: {:?}", a.body);
            got.push(a.body);
        }
        // values a client reads, asserted on each engine
        let net = &got[7];
        assert!(net["IPAM"]["Options"].is_null(), "{n}: {net}");
        let images = got[6].as_array().expect("images");
        assert!(images[0]["RepoDigests"].is_null(), "{n}: {images:?}");
        let c = &got[0];
        assert!(
            c["HostConfig"]["Dns"].is_null() && c["HostConfig"]["Ulimits"].is_null(),
            "{n}"
        );
        assert_eq!(
            c["HostConfig"]["PortBindings"]["80/tcp"][0],
            json!({"HostIp": "", "HostPort": "0"}),
            "{n}"
        );
        let port = &c["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"];
        assert!(
            port.as_str()
                .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0)),
            "{n}: {port}"
        );
        // the network list names no containers, inspect does
        let list = got[paths.iter().position(|p| *p == "/networks").expect("list")].clone();
        assert!(
            list.as_array()
                .is_some_and(|l| l.iter().all(|n| n["Containers"] == json!({}))),
            "{n}: {list}"
        );
        let bridge = api.call("GET", "/networks/bridge", None).body;
        assert!(
            bridge["Containers"]
                .as_object()
                .is_some_and(|c| c.len() == 1),
            "{n}: {bridge}"
        );
        // an ID of dockerd's form, the same on every call
        let id = got[10]["ID"].as_str().expect("ID").to_string();
        let groups: Vec<&str> = id.split(':').collect();
        assert!(
            groups.len() == 12
                && groups.iter().all(|g| g.len() == 4
                    && g.chars()
                        .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))),
            "{n}: {id}"
        );
        assert_eq!(
            api.call("GET", "/info", None).body["ID"],
            id.as_str(),
            "{n}"
        );
        assert!(got[10]["NFd"].as_u64().is_some_and(|f| f > 0), "{n}");
        assert_eq!(
            got[10]["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"], true,
            "{n}"
        );
        answers.push(got);
    }
    if answers.len() < 2 {
        return;
    }
    // what berth has of its own on purpose: its runtime and bridge names, its driver lists
    let own = [
        ".info.Runtimes.",
        ".v1.24/info.Runtimes.",
        ".version.Components[0].Details.",
        // memory.stat's keys as this kernel has them (dockerd copies a fixed subset)
        ".containers/ctr/stats?stream=0.memory_stats.stats.",
    ];
    // what the host decides reads the same on both
    for k in [
        "OSVersion",
        "BridgeNfIptables",
        "BridgeNfIp6tables",
        "SwapLimit",
        "CgroupVersion",
        "NCPU",
        "MemTotal",
    ] {
        assert_eq!(answers[0][10][k], answers[1][10][k], "info {k}");
    }
    let mut diffs = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        shape_diff(
            &format!(".{}", p.trim_start_matches('/')),
            &answers[0][i],
            &answers[1][i],
            &mut diffs,
        );
    }
    diffs.retain(|d| !own.iter().any(|o| d.starts_with(o)));
    assert!(
        diffs.is_empty(),
        "shapes differ from dockerd's:\n{}",
        diffs.join("\n")
    );
}

const PY_SCRIPT: &str = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1], version='1.41')
out = []
top = c.containers.run('busybox', ['sleep', '300'], name='pytop', detach=True)
ctr = c.containers.run('busybox', ['sleep', '300'], name='pyctr', detach=True, stop_signal='SIGTERM',
                       mac_address='02:42:ac:11:00:42', tmpfs={'/t': 'size=1m'}, links={'pytop': 'db'},
                       healthcheck={'Test': ['CMD', 'true'], 'Interval': 1000000000})
ctr.reload()
out.append('mac %s' % ctr.attrs['NetworkSettings']['MacAddress'])
out.append('ifmac %s' % ctr.exec_run(['cat', '/sys/class/net/eth0/address']).output.decode().strip())
out.append('mounts %r' % [m['Destination'] for m in ctr.attrs['Mounts']])
out.append('links %r' % ctr.attrs['HostConfig']['Links'])
out.append('names %r' % [x['Names'] for x in c.api.containers(filters={'name': 'pytop'})])
out.append('ipc %s' % ctr.attrs['HostConfig']['IpcMode'])
img = ctr.commit('pyimg', 'v1', changes=['ENV PATH=/x:$PATH'])
out.append('parent %s' % (img.attrs['Parent'] == c.images.get('busybox').id))
out.append('env %r' % img.attrs['Config']['Env'][0][:7])
n = c.networks.create('py net')
out.append('net %s' % c.networks.get('py net').name)
n.remove()
old = docker.APIClient(base_url=sys.argv[1], version='1.24')
out.append('exec driver %s' % old.info()['ExecutionDriver'])
for x in (ctr, top):
    x.remove(force=True)
print('\n'.join(out))
"#;

fn py_run(host: &str) -> String {
    run_docker_py(PY_SCRIPT, &[host])
}

#[test]
fn docker_py_reads_dockerds_shapes() {
    if !docker_py_available() {
        return;
    }
    let d = Daemon::start();
    d.load_busybox();
    let berth = py_run(&d.host());
    for want in [
        "mac 02:42:ac:11:00:42",
        "ifmac 02:42:ac:11:00:42",
        "mounts []",
        "links ['/pytop:/pyctr/db']",
        "names [['/pyctr/db', '/pytop']]",
        "ipc private",
        "parent True",
        "env 'PATH=/x'",
        "net py net",
        "exec driver <not supported>",
    ] {
        assert!(
            berth.lines().any(|l| l == want),
            "{want:?} not in:\n{berth}"
        );
    }
    if let Some(dk) = dockerd_with_busybox(&d) {
        assert_eq!(berth, py_run(&dk.host()), "berthd and dockerd differ");
    }
}
