//! Registries: pull, push, login and search against a real registry server (Debian's
//! `docker-registry`, distribution 2.8) on loopback, through the docker CLI, docker-py and
//! raw API calls, side by side with a private dockerd for image IDs.

mod common;

use common::registry::Registry;
use common::{stderr, stdout, Daemon};

/// The JSON lines of a progress stream.
fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn statuses(v: &[serde_json::Value]) -> Vec<String> {
    v.iter()
        .filter_map(|m| m.get("status").and_then(|s| s.as_str()).map(String::from))
        .collect()
}

fn image_id(d: &Daemon, name: &str) -> String {
    let (st, _, body) = d.http("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200, "{name}: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["Id"].as_str().expect("Id").to_string()
}

#[test]
fn push_then_pull_through_the_docker_cli() {
    let Some(reg) = Registry::start() else { return };
    let d = Daemon::start();
    d.load_busybox();
    let name = reg.image("test/busybox:1");
    d.ok(&["tag", "busybox", &name]);
    let id = image_id(&d, "busybox");

    // push through the raw API: docker's messages
    let (st, _, body) = d.http("POST", &format!("/images/{}/push?tag=1", reg.image("test/busybox")), None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let msgs = lines(&body);
    let s = statuses(&msgs);
    assert_eq!(s[0], format!("The push refers to repository [{}]", reg.image("test/busybox")));
    assert!(s.iter().any(|x| x == "Preparing"), "{s:?}");
    assert!(s.iter().any(|x| x == "Pushed"), "{s:?}");
    assert!(msgs.iter().all(|m| m.get("error").is_none()), "{msgs:?}");
    let last = s.iter().rfind(|x| x.starts_with("1: digest: sha256:")).expect("digest line");
    let digest = last.split_whitespace().nth(2).expect("digest").to_string();
    let aux = msgs.iter().find_map(|m| m.get("aux")).expect("aux");
    assert_eq!(aux["Tag"], "1");
    assert_eq!(aux["Digest"], digest.as_str());

    // a second push: every layer already exists, same manifest digest
    let o = d.docker(&["push", &name]);
    if let Some(o) = o {
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("Layer already exists"), "{out}");
        assert!(out.contains(&format!("1: digest: {digest}")), "{out}");
    }

    // a fresh daemon pulls it with the docker CLI
    let d2 = Daemon::start();
    if let Some(o) = d2.docker(&["pull", &name]) {
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("Pull complete"), "{out}");
        assert!(out.contains(&format!("Digest: {digest}")), "{out}");
        assert!(out.contains(&format!("Status: Downloaded newer image for {name}")), "{out}");
    } else {
        let (st, _, body) = d2.http("POST", &format!("/images/create?fromImage={}&tag=1", reg.image("test/busybox")), None);
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    }
    assert_eq!(image_id(&d2, &name), id, "the image ID survives the round trip");
    let (st, _, body) = d2.http("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["RepoDigests"], serde_json::json!([format!("{}@{digest}", reg.image("test/busybox"))]));
    // it runs
    let out = d2.ok(&["run", "--rm", &name, "echo", "pulled"]);
    assert_eq!(out.trim(), "pulled");

    // a re-pull is up to date and fetches nothing
    let (st, _, body) = d2.http("POST", &format!("/images/create?fromImage={}&tag=1", reg.image("test/busybox")), None);
    assert_eq!(st, 200);
    let s = statuses(&lines(&body));
    assert_eq!(s.last().map(String::as_str), Some(format!("Status: Image is up to date for {name}").as_str()), "{s:?}");
    assert!(!s.iter().any(|x| x == "Downloading"), "{s:?}");
}
