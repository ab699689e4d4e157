//! Server-side stream rules SDK clients rely on (issue 12, point 5): each behaviour is sent
//! to berthd and to a private dockerd (when installed) and both must act alike.

mod common;
use common::sdk::{dockerd_with_busybox, engines};
use common::Daemon;
use serde_json::json;

/// A kill with SIGKILL (the default signal) answers once the container has exited: an
/// inspect sent right after the answer shows it stopped, every time.
#[test]
fn sigkill_answers_after_the_exit() {
    let d = Daemon::start();
    d.load_busybox();
    let dk = dockerd_with_busybox(&d);
    for api in engines(&d, dk.as_ref()) {
        for (i, signal) in ["", "?signal=KILL", "?signal=9", ""].iter().enumerate() {
            let name = format!("killwait{i}");
            let body = json!({"Image":"busybox","Cmd":["sleep","300"]});
            let a = api.call_json("POST", &format!("/containers/create?name={name}"), &body);
            assert_eq!(a.status, 201, "{}: {:?}", api.name, a.body);
            let a = api.call("POST", &format!("/containers/{name}/start"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
            let a = api.call("POST", &format!("/containers/{name}/kill{signal}"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
            let s = api
                .call("GET", &format!("/containers/{name}/json"), None)
                .body["State"]
                .clone();
            assert_eq!(s["Running"], json!(false), "{} {signal}: {s}", api.name);
            assert_eq!(s["ExitCode"], json!(137), "{} {signal}: {s}", api.name);
            let a = api.call("DELETE", &format!("/containers/{name}"), None);
            assert_eq!(a.status, 204, "{}: {:?}", api.name, a.body);
        }
    }
}
