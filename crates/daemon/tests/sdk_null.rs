//! Go clients send `null` for every nil map, slice and pointer (issue 12, point 1): each
//! request body type, sent as Go's client marshals it with every optional field `null`, is
//! accepted (201/200) with the same effect as the body with those keys left out, by berthd and
//! by a private dockerd when one is installed.

mod common;
use common::sdk::{dockerd_with_busybox, engines, Api};
use common::{eventually, Daemon};
use serde_json::{json, Value};

/// `POST /containers/create` as Go's client marshals a zero-valued `container.Config` +
/// `HostConfig` + `NetworkingConfig` (docker 20.10's api/types field list: every key present,
/// the zero value of each; omitempty ones included).
const GO_CREATE: &str = r#"{
 "Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,
 "AttachStderr":false,"ExposedPorts":null,"Tty":false,"OpenStdin":false,"StdinOnce":false,
 "Env":null,"Cmd":null,"Healthcheck":null,"ArgsEscaped":false,"Image":"",
 "Volumes":null,"WorkingDir":"","Entrypoint":null,"NetworkDisabled":false,"MacAddress":"",
 "OnBuild":null,"Labels":null,"StopSignal":"","StopTimeout":null,"Shell":null,
 "HostConfig":{
  "Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":null},"NetworkMode":"",
  "PortBindings":null,"RestartPolicy":{"Name":"","MaximumRetryCount":0},"AutoRemove":false,
  "VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"",
  "Dns":null,"DnsOptions":null,"DnsSearch":null,"ExtraHosts":null,"GroupAdd":null,
  "IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,
  "PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"StorageOpt":null,
  "Tmpfs":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Sysctls":null,"Runtime":"",
  "ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,
  "CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,
  "BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,
  "CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"",
  "CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,
  "KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,
  "MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,
  "CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"Mounts":null,"MaskedPaths":null,
  "ReadonlyPaths":null,"Init":null},
 "NetworkingConfig":{"EndpointsConfig":null}}"#;

/// Nested structs a client fills in, with every optional member of each `null`.
const NESTED_NULLS: &str = r#"{
 "Image":"busybox","Cmd":["true"],"ExposedPorts":{"80/tcp":{}},
 "Healthcheck":{"Test":["CMD","true"],"Interval":null,"Timeout":null,"StartPeriod":null,"Retries":null},
 "HostConfig":{
  "LogConfig":{"Type":null,"Config":null},
  "RestartPolicy":{"Name":null,"MaximumRetryCount":null},
  "PortBindings":{"80/tcp":[{"HostIp":null,"HostPort":null}]},
  "Mounts":[{"Type":"tmpfs","Target":"/t","Source":null,"ReadOnly":null,"Consistency":null,
    "BindOptions":null,"VolumeOptions":null,"TmpfsOptions":{"SizeBytes":null,"Mode":null}},
   {"Type":"volume","Target":"/v","Source":null,"ReadOnly":null,"Consistency":null,
    "BindOptions":null,"TmpfsOptions":null,
    "VolumeOptions":{"NoCopy":null,"Labels":null,"DriverConfig":{"Name":null,"Options":null}}}],
  "Ulimits":[{"Name":"nofile","Soft":1024,"Hard":1024}],
  "ConsoleSize":null},
 "NetworkingConfig":{"EndpointsConfig":{"bridge":{"IPAMConfig":{"IPv4Address":null,
   "IPv6Address":null,"LinkLocalIPs":null},"Links":null,"Aliases":null,"NetworkID":null,
   "EndpointID":null,"Gateway":null,"IPAddress":null,"IPPrefixLen":null,"IPv6Gateway":null,
   "GlobalIPv6Address":null,"GlobalIPv6PrefixLen":null,"MacAddress":null,"DriverOpts":null}}}}"#;

/// Every leaf of `v` (recursively through objects) replaced by `null`, except `keep`.
fn all_null(v: &Value, keep: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = if keep.contains(&k.as_str()) {
                        x.clone()
                    } else if x.is_object() {
                        all_null(x, keep)
                    } else {
                        Value::Null
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// The same body with its `null` members left out (the oracle: what "not set" means).
fn omit_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), omit_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(omit_nulls).collect()),
        x => x.clone(),
    }
}

/// What a create did, without what differs between any two containers.
fn effect(inspect: &Value) -> Value {
    let mut c = inspect["Config"].clone();
    c.as_object_mut().map(|m| m.remove("Hostname"));
    json!({
        "Config": c,
        "HostConfig": inspect["HostConfig"],
        // dockerd lists them in map order
        "Mounts": inspect["Mounts"].as_array().map(|a| {
            let mut v: Vec<String> = a.iter().map(|m| json!([m["Type"], m["Destination"], m["RW"]]).to_string()).collect();
            v.sort();
            v
        }),
        "Networks": inspect["NetworkSettings"]["Networks"].as_object().map(|n| n.keys().cloned().collect::<Vec<_>>()),
    })
}

fn create(api: &Api, name: &str, body: &Value) -> String {
    let a = api.call_json("POST", &format!("/containers/create?name={name}"), body);
    assert_eq!(
        a.status, 201,
        "{}: create {name} {body}: {:?}",
        api.name, a.body
    );
    a.body["Id"].as_str().expect("Id").to_string()
}

fn run_to_exit(api: &Api, id: &str) -> i64 {
    let a = api.call("POST", &format!("/containers/{id}/start"), None);
    assert_eq!(a.status, 204, "{}: start: {:?}", api.name, a.body);
    let a = api.call("POST", &format!("/containers/{id}/wait"), None);
    assert_eq!(a.status, 200, "{}: wait: {:?}", api.name, a.body);
    a.body["StatusCode"].as_i64().expect("StatusCode")
}

#[test]
fn container_create_takes_go_nulls() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    let zero: Value = serde_json::from_str(GO_CREATE).unwrap();
    let mut go = zero.clone();
    go["Image"] = json!("busybox");
    go["Cmd"] = json!(["true"]);
    let mut nulls = all_null(&zero, &[]);
    nulls["Image"] = json!("busybox");
    nulls["Cmd"] = json!(["true"]);
    let nested: Value = serde_json::from_str(NESTED_NULLS).unwrap();
    for api in engines(&d, dk.as_ref()) {
        for (what, body) in [("go", &go), ("nulls", &nulls), ("nested", &nested)] {
            let with = create(&api, &format!("{what}-with"), body);
            let without = create(&api, &format!("{what}-without"), &omit_nulls(body));
            let i = |id: &str| {
                api.call("GET", &format!("/containers/{id}/json"), None)
                    .body
            };
            assert_eq!(
                effect(&i(&with)),
                effect(&i(&without)),
                "{}: {what}: null and omitted differ",
                api.name
            );
            assert_eq!(run_to_exit(&api, &with), 0, "{}: {what}", api.name);
        }
    }
}

#[test]
fn network_and_volume_create_take_go_nulls() {
    let d = Daemon::start();
    let dk = dockerd_with_busybox(&d);
    // network.NetworkCreateRequest as Go marshals it, IPAM pool fields nil
    let net = json!({"Name":"gonull","CheckDuplicate":null,"Driver":null,"Scope":null,
        "EnableIPv6":null,"IPAM":{"Driver":null,"Options":null,"Config":[{"Subnet":"10.231.7.0/24",
        "IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}]},"Internal":null,
        "Attachable":null,"Ingress":null,"ConfigOnly":null,"ConfigFrom":null,"Options":null,
        "Labels":null});
    let net_all = json!({"Name":"gonull2","CheckDuplicate":null,"Driver":null,"Scope":null,
        "EnableIPv6":null,"IPAM":null,"Internal":null,"Attachable":null,"Ingress":null,
        "ConfigOnly":null,"ConfigFrom":null,"Options":null,"Labels":null});
    let vol = json!({"Name":"gonullv","Driver":null,"DriverOpts":null,"Labels":null,
        "ClusterVolumeSpec":null});
    for api in engines(&d, dk.as_ref()) {
        for body in [&net, &net_all] {
            let a = api.call_json("POST", "/networks/create", body);
            assert_eq!(a.status, 201, "{}: {body}: {:?}", api.name, a.body);
            let name = body["Name"].as_str().unwrap();
            let i = api.call("GET", &format!("/networks/{name}"), None).body;
            assert_eq!(i["Driver"], "bridge", "{}: {i}", api.name);
            assert_eq!(i["Labels"], json!({}), "{}: {i}", api.name);
            // the same body with the keys left out gives the same network
            let mut again = omit_nulls(body);
            again["Name"] = json!(format!("{name}o"));
            if let Some(c) = again.pointer_mut("/IPAM/Config/0/Subnet") {
                *c = json!("10.231.8.0/24");
            }
            let a = api.call_json("POST", "/networks/create", &again);
            assert_eq!(a.status, 201, "{}: {again}: {:?}", api.name, a.body);
            let o = api.call("GET", &format!("/networks/{name}o"), None).body;
            for k in [
                "Driver",
                "Internal",
                "Attachable",
                "EnableIPv6",
                "Options",
                "Labels",
            ] {
                assert_eq!(i[k], o[k], "{}: {k}", api.name);
            }
            if body["IPAM"].is_object() {
                assert_eq!(i["IPAM"]["Config"][0]["Subnet"], "10.231.7.0/24");
            }
        }
        let a = api.call_json("POST", "/volumes/create", &vol);
        assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
        assert_eq!(a.body["Driver"], "local", "{}", api.name);
        // as for a body without the keys (dockerd: `null`)
        assert_eq!(a.body["Labels"], Value::Null, "{}: {:?}", api.name, a.body);
        assert_eq!(a.body["Options"], Value::Null, "{}: {:?}", api.name, a.body);
        for n in ["gonull", "gonull2", "gonullo", "gonull2o"] {
            api.call("DELETE", &format!("/networks/{n}"), None);
        }
        api.call("DELETE", "/volumes/gonullv", None);
    }
}

#[test]
fn exec_update_connect_commit_take_go_nulls() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    // types.ExecConfig with every optional field nil/zero as null
    let exec = json!({"User":null,"Privileged":null,"Tty":null,"ConsoleSize":null,
        "AttachStdin":null,"AttachStderr":null,"AttachStdout":null,"Detach":null,
        "DetachKeys":null,"Env":null,"WorkingDir":null,"Cmd":["sh","-c","exit 3"]});
    let start = json!({"Detach":true,"Tty":null,"ConsoleSize":null});
    // container.UpdateConfig: Resources inline + RestartPolicy, every field null
    let update = json!({"CpuShares":null,"Memory":null,"NanoCpus":null,"CgroupParent":null,
        "BlkioWeight":null,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,
        "BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,
        "CpuPeriod":null,"CpuQuota":null,"CpuRealtimePeriod":null,"CpuRealtimeRuntime":null,
        "CpusetCpus":null,"CpusetMems":null,"Devices":null,"DeviceCgroupRules":null,
        "DeviceRequests":null,"KernelMemory":null,"KernelMemoryTCP":null,
        "MemoryReservation":null,"MemorySwap":null,"MemorySwappiness":null,
        "OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":null,"CpuPercent":null,
        "IOMaximumIOps":null,"IOMaximumBandwidth":null,
        "RestartPolicy":{"Name":null,"MaximumRetryCount":null}});
    let zero: Value = serde_json::from_str(GO_CREATE).unwrap();
    let mut commit_cfg = all_null(&zero, &[]);
    commit_cfg.as_object_mut().map(|m| {
        m.remove("HostConfig");
        m.remove("NetworkingConfig")
    });
    for api in engines(&d, dk.as_ref()) {
        let id = create(
            &api,
            "xu",
            &json!({"Image":"busybox","Cmd":["sleep","300"]}),
        );
        let a = api.call("POST", &format!("/containers/{id}/start"), None);
        assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        // exec create + start (detached), then its exit code
        let a = api.call_json("POST", &format!("/containers/{id}/exec"), &exec);
        assert_eq!(a.status, 201, "{}: exec create: {:?}", api.name, a.body);
        let eid = a.body["Id"].as_str().unwrap().to_string();
        let a = api.call_json("POST", &format!("/exec/{eid}/start"), &start);
        assert_eq!(a.status, 200, "{}: exec start: {:?}", api.name, a.body);
        assert!(
            eventually(20, || api
                .call("GET", &format!("/exec/{eid}/json"), None)
                .body["ExitCode"]
                == 3),
            "{}: exec exit code",
            api.name
        );
        // update with every field null changes nothing
        let before = api
            .call("GET", &format!("/containers/{id}/json"), None)
            .body;
        let a = api.call_json("POST", &format!("/containers/{id}/update"), &update);
        assert_eq!(a.status, 200, "{}: update: {:?}", api.name, a.body);
        let after = api
            .call("GET", &format!("/containers/{id}/json"), None)
            .body;
        assert_eq!(before["HostConfig"], after["HostConfig"], "{}", api.name);
        // network connect / disconnect with the endpoint settings' fields null
        let a = api.call_json("POST", "/networks/create", &json!({"Name":"xun","IPAM":{"Config":[{"Subnet":"10.231.9.0/24","IPRange":null,"Gateway":null,"AuxiliaryAddresses":null}]}}));
        assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
        let connect = json!({"Container": id, "EndpointConfig":{"IPAMConfig":null,"Links":null,
            "Aliases":null,"NetworkID":null,"EndpointID":null,"Gateway":null,"IPAddress":null,
            "IPPrefixLen":null,"IPv6Gateway":null,"GlobalIPv6Address":null,
            "GlobalIPv6PrefixLen":null,"MacAddress":null,"DriverOpts":null}});
        let a = api.call_json("POST", "/networks/xun/connect", &connect);
        assert_eq!(a.status, 200, "{}: connect: {:?}", api.name, a.body);
        let nets = api
            .call("GET", &format!("/containers/{id}/json"), None)
            .body;
        assert!(
            nets["NetworkSettings"]["Networks"]["xun"].is_object(),
            "{}: {nets}",
            api.name
        );
        let a = api.call_json(
            "POST",
            "/networks/xun/disconnect",
            &json!({"Container": id, "Force": null}),
        );
        assert_eq!(a.status, 200, "{}: disconnect: {:?}", api.name, a.body);
        // commit with a Go-style container config body, every field null
        let a = api.call_json(
            "POST",
            &format!("/commit?container={id}&repo=gonull&tag=c"),
            &commit_cfg,
        );
        assert_eq!(a.status, 201, "{}: commit: {:?}", api.name, a.body);
        let img = api.call("GET", "/images/gonull:c/json", None).body;
        assert_eq!(
            img["Config"]["Cmd"],
            json!(["sleep", "300"]),
            "{}",
            api.name
        );
        // a body that sets fields: merged into the container's config, as dockerd
        let body = json!({"Cmd":["echo","committed"],"Env":["A=1"],"Labels":{"l":"v"},
            "WorkingDir":"/tmp","User":"nobody","ExposedPorts":{"81/tcp":{}},"Entrypoint":null,
            "Volumes":null,"StopSignal":null});
        let a = api.call_json(
            "POST",
            &format!("/commit?container={id}&repo=gonull&tag=set&changes=ENV%20B%3D2"),
            &body,
        );
        assert_eq!(a.status, 201, "{}: commit: {:?}", api.name, a.body);
        let c = &api.call("GET", "/images/gonull:set/json", None).body["Config"];
        assert_eq!(c["Cmd"], json!(["echo", "committed"]), "{}: {c}", api.name);
        let env: Vec<&str> = c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        assert!(
            env.contains(&"A=1")
                && env.contains(&"B=2")
                && env.iter().any(|e| e.starts_with("PATH=")),
            "{}: {env:?}",
            api.name
        );
        assert_eq!(c["Labels"]["l"], "v", "{}: {c}", api.name);
        assert_eq!(c["WorkingDir"], "/tmp", "{}: {c}", api.name);
        assert_eq!(c["User"], "nobody", "{}: {c}", api.name);
        assert!(c["ExposedPorts"]["81/tcp"].is_object(), "{}: {c}", api.name);
        api.call("DELETE", &format!("/containers/{id}?force=1"), None);
        api.call("DELETE", "/networks/xun", None);
    }
}
