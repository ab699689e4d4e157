//! Endpoints SDK clients call before anything else (issue 12, point 2): the plugin API as a
//! dockerd without plugins, the swarm family as a dockerd outside a swarm, routes with a
//! trailing slash, and `DELETE /containers/{id}/{alias}?link=1`. Each request goes to berthd
//! and to a private dockerd (when installed) and both must answer the same status and message.

mod common;
use common::sdk::{dockerd_with_busybox, engines, expect_all, Api};
use common::Daemon;
use serde_json::{json, Value};

const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn plugins_swarm_and_trailing_slashes_as_dockerd() {
    let d = Daemon::start();
    let dk = common::dockerd::Dockerd::start(&d.root);
    let apis = engines(&d, dk.as_ref());
    // (method, path, body, status, message)
    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        (
            "GET",
            "/plugins/x/json",
            None,
            404,
            "plugin \"x\" not found",
        ),
        (
            "GET",
            "/plugins/vieux/sshfs:1/json",
            None,
            404,
            "plugin \"vieux/sshfs:1\" not found",
        ),
        ("GET", "/plugins/privileges?remote=x", None, 200, ""),
        (
            "GET",
            "/plugins/privileges",
            None,
            500,
            "invalid reference format",
        ),
        (
            "POST",
            "/plugins/x/enable",
            None,
            500,
            "strconv.Atoi: parsing \"\": invalid syntax",
        ),
        (
            "POST",
            "/plugins/x/enable?timeout=0",
            None,
            404,
            "plugin \"x\" not found",
        ),
        (
            "POST",
            "/plugins/x/disable",
            None,
            404,
            "plugin \"x\" not found",
        ),
        (
            "POST",
            "/plugins/x/push",
            None,
            404,
            "plugin \"x\" not found",
        ),
        ("DELETE", "/plugins/x", None, 404, "plugin \"x\" not found"),
        (
            "DELETE",
            "/plugins/x?force=1",
            None,
            404,
            "plugin \"x\" not found",
        ),
        (
            "POST",
            "/plugins/x/set",
            None,
            400,
            "got EOF while reading request body",
        ),
        (
            "POST",
            "/plugins/x/set",
            Some("[\"a=b\"]"),
            404,
            "plugin \"x\" not found",
        ),
        (
            "POST",
            "/plugins/x/upgrade?remote=x",
            Some("[]"),
            404,
            "plugin \"x:latest\" not found",
        ),
        (
            "POST",
            "/plugins/pull?remote=x",
            None,
            500,
            "failed to parse privileges: EOF",
        ),
        (
            "POST",
            "/plugins/create?name=x",
            None,
            500,
            "no rootfs found: EOF",
        ),
        ("GET", "/plugins/", None, 404, "page not found"),
        // swarm: 503 outside a swarm, after dockerd's own checks
        ("GET", "/swarm", None, 503, NOT_MANAGER),
        ("GET", "/swarm/unlockkey", None, 503, NOT_MANAGER),
        (
            "POST",
            "/swarm/leave",
            None,
            503,
            "This node is not part of a swarm",
        ),
        (
            "POST",
            "/swarm/leave?force=1",
            None,
            503,
            "This node is not part of a swarm",
        ),
        (
            "POST",
            "/swarm/init",
            None,
            400,
            "got EOF while reading request body",
        ),
        (
            "POST",
            "/swarm/init",
            Some("{}"),
            400,
            "invalid ListenAddr \"\": invalid empty address",
        ),
        (
            "POST",
            "/swarm/join",
            Some("{}"),
            400,
            "invalid ListenAddr \"\": invalid empty address",
        ),
        (
            "POST",
            "/swarm/join",
            Some("{\"ListenAddr\":\"0.0.0.0:2377\"}"),
            400,
            "at least 1 RemoteAddr is required to join",
        ),
        (
            "POST",
            "/swarm/update",
            Some("{}"),
            400,
            "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax",
        ),
        (
            "POST",
            "/swarm/update?version=1",
            Some("{}"),
            503,
            NOT_MANAGER,
        ),
        ("POST", "/swarm/unlock", Some("{}"), 503, NOT_MANAGER),
        ("POST", "/swarm/unlock", Some("[]"), 400, ""),
        ("GET", "/swarm/x", None, 404, "page not found"),
        ("GET", "/services", None, 503, NOT_MANAGER),
        ("GET", "/services?filters=%7B%7D", None, 503, NOT_MANAGER),
        ("GET", "/services/x", None, 503, NOT_MANAGER),
        ("DELETE", "/services/x", None, 503, NOT_MANAGER),
        ("POST", "/services/create", Some("{}"), 503, NOT_MANAGER),
        (
            "POST",
            "/services/create",
            None,
            400,
            "got EOF while reading request body",
        ),
        (
            "POST",
            "/services/x/update",
            Some("{}"),
            400,
            "invalid service version '': strconv.ParseUint",
        ),
        (
            "POST",
            "/services/x/update?version=1",
            Some("{}"),
            503,
            NOT_MANAGER,
        ),
        (
            "GET",
            "/services/x/logs",
            None,
            500,
            "Bad parameters: you must choose at least one stream",
        ),
        ("GET", "/services/x/logs?stdout=1", None, 503, NOT_MANAGER),
        ("GET", "/services/", None, 404, "page not found"),
        ("GET", "/tasks", None, 503, NOT_MANAGER),
        ("GET", "/tasks/x", None, 503, NOT_MANAGER),
        ("GET", "/tasks/x/logs?stderr=1", None, 503, NOT_MANAGER),
        ("GET", "/nodes", None, 503, NOT_MANAGER),
        ("GET", "/nodes/x", None, 503, NOT_MANAGER),
        ("DELETE", "/nodes/x", None, 503, NOT_MANAGER),
        (
            "POST",
            "/nodes/x/update",
            Some("{}"),
            400,
            "invalid node version '': strconv.ParseUint",
        ),
        (
            "POST",
            "/nodes/x/update?version=1",
            Some("{}"),
            503,
            NOT_MANAGER,
        ),
        ("GET", "/secrets", None, 503, NOT_MANAGER),
        ("GET", "/secrets/x", None, 503, NOT_MANAGER),
        ("DELETE", "/secrets/x", None, 503, NOT_MANAGER),
        ("POST", "/secrets/create", Some("{}"), 503, NOT_MANAGER),
        (
            "POST",
            "/secrets/x/update",
            Some("{}"),
            400,
            "invalid secret version",
        ),
        (
            "POST",
            "/secrets/x/update?version=1",
            Some("{}"),
            503,
            NOT_MANAGER,
        ),
        ("GET", "/configs", None, 503, NOT_MANAGER),
        ("GET", "/configs/x", None, 503, NOT_MANAGER),
        ("DELETE", "/configs/x", None, 503, NOT_MANAGER),
        ("POST", "/configs/create", Some("{}"), 503, NOT_MANAGER),
        (
            "POST",
            "/configs/x/update",
            Some("{}"),
            400,
            "invalid config version",
        ),
        (
            "POST",
            "/configs/x/update?version=1",
            Some("{}"),
            503,
            NOT_MANAGER,
        ),
        // trailing slashes as dockerd's router has them
        ("GET", "/volumes/", None, 404, "get: no such volume"),
        (
            "GET",
            "/volumes/nosuch/",
            None,
            404,
            "get nosuch/: no such volume",
        ),
        (
            "GET",
            "/networks/bridge/",
            None,
            404,
            "network bridge/ not found",
        ),
        ("GET", "/containers/json/", None, 404, "page not found"),
        ("GET", "/images/json/", None, 404, "page not found"),
        ("GET", "/info/", None, 404, "page not found"),
        ("GET", "/_ping/", None, 404, "page not found"),
    ];
    for &(method, path, body, status, msg) in cases {
        expect_all(&apis, method, path, body, status, msg);
    }
    for api in &apis {
        let a = api.call("GET", "/plugins", None);
        assert_eq!((a.status, &a.body), (200, &json!([])), "{}", api.name);
        let a = api.call("GET", "/v1.41/plugins", None);
        assert_eq!((a.status, &a.body), (200, &json!([])), "{}", api.name);
        // `/networks/` is the list
        let list = api.call("GET", "/networks/", None);
        assert_eq!(list.status, 200, "{}: {:?}", api.name, list.body);
        let names: Vec<&str> = list
            .body
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|n| n["Name"].as_str())
            .collect();
        assert!(names.contains(&"bridge"), "{}: {names:?}", api.name);
    }
}

fn links(api: &Api, name: &str) -> Value {
    api.call("GET", &format!("/containers/{name}/json"), None)
        .body["HostConfig"]["Links"]
        .clone()
}

#[test]
fn delete_with_link_removes_a_legacy_link() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        for (name, body) in [
            ("lktop", json!({"Image":"busybox","Cmd":["sleep","300"]})),
            (
                "lkchild",
                json!({"Image":"busybox","Cmd":["sleep","300"],"HostConfig":{"Links":["lktop:db","lktop:cache"]}}),
            ),
        ] {
            let a = api.call_json("POST", &format!("/containers/create?name={name}"), &body);
            assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
            let a = api.call("POST", &format!("/containers/{name}/start"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        }
        assert_eq!(
            links(&api, "lkchild").as_array().map(Vec::len),
            Some(2),
            "{}",
            api.name
        );
        let a = api.call("DELETE", "/containers/lkchild/db?link=1", None);
        assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        let l = links(&api, "lkchild");
        assert_eq!(l.as_array().map(Vec::len), Some(1), "{}: {l}", api.name);
        assert!(
            l[0].as_str().unwrap().ends_with("cache"),
            "{}: {l}",
            api.name
        );
        // the linked and the linking container both stay
        for n in ["lktop", "lkchild"] {
            let a = api.call("GET", &format!("/containers/{n}/json"), None);
            assert_eq!(a.body["State"]["Running"], true, "{}: {n}", api.name);
        }
        let a = api.call("DELETE", "/containers/lkchild/cache?link=1", None);
        assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        assert_eq!(links(&api, "lkchild"), Value::Null, "{}", api.name);
    }
    let apis = engines(&d, dk.as_ref());
    expect_all(
        &apis,
        "DELETE",
        "/containers/lkchild/db?link=1",
        None,
        404,
        "No such container: lkchild/db",
    );
    expect_all(
        &apis,
        "DELETE",
        "/containers/nosuch/db?link=1",
        None,
        404,
        "No such container: nosuch/db",
    );
    expect_all(
        &apis,
        "DELETE",
        "/containers/lkchild/db",
        None,
        404,
        "No such container: lkchild/db",
    );
    expect_all(
        &apis,
        "DELETE",
        "/containers/lkchild?link=1",
        None,
        500,
        "Conflict, cannot remove the default link name of the container",
    );
}
