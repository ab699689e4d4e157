//! `HostConfig.PidMode`: a PID namespace of the container's own (the default), the host's
//! (`host`), or another running container's (`container:<name|id>`, compose's
//! `pid: "service:x"`).

use crate::{Engine, Error, Result};
use serde_json::{json, Value};

#[derive(Debug, PartialEq)]
pub(crate) enum PidNs {
    New,
    Host,
    /// `/proc/<pid>/ns/pid` of the other container's init
    Join(String),
}

impl Engine {
    /// The PID namespace the container is to run in; the other container must be running.
    pub(crate) fn pid_namespace(&self, pid_mode: &str) -> Result<PidNs> {
        match pid_mode {
            "host" => Ok(PidNs::Host),
            m => match m.strip_prefix("container:").filter(|o| !o.is_empty()) {
                None => Ok(PidNs::New),
                Some(other) => {
                    let o = self.get_container(other)?;
                    let st = o.state();
                    if !st.status.is_running() || st.pid <= 0 {
                        return Err(Error::Conflict(format!(
                            "cannot join PID of a non running container: {}",
                            o.id
                        )));
                    }
                    Ok(PidNs::Join(format!("/proc/{}/ns/pid", st.pid)))
                }
            },
        }
    }
}

/// Rewrites the spec's `pid` namespace entry for `ns`.
pub(crate) fn apply(spec: &mut Value, ns: &PidNs) {
    let Some(list) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    list.retain(|n| n["type"] != "pid");
    match ns {
        PidNs::New => list.insert(0, json!({"type": "pid"})),
        PidNs::Host => {}
        PidNs::Join(path) => list.insert(0, json!({"type": "pid", "path": path})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid_entries(spec: &Value) -> Vec<Value> {
        spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "pid")
            .cloned()
            .collect()
    }

    #[test]
    fn pid_namespace_entry() {
        let base =
            json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}]}});
        let mut s = base.clone();
        apply(&mut s, &PidNs::New);
        assert_eq!(pid_entries(&s), [json!({"type": "pid"})]);
        let mut s = base.clone();
        apply(&mut s, &PidNs::Host);
        assert!(pid_entries(&s).is_empty());
        assert_eq!(s["linux"]["namespaces"].as_array().unwrap().len(), 2);
        let mut s = base;
        apply(&mut s, &PidNs::Join("/proc/42/ns/pid".into()));
        assert_eq!(
            pid_entries(&s),
            [json!({"type": "pid", "path": "/proc/42/ns/pid"})]
        );
    }
}
