//! `ps`: the list of containers with docker's status wording.

use crate::container::{Container, Status};
use crate::timefmt::{from_unix_nanos, human_duration, unix_secs};
use crate::{Engine, Error, Result};
use berth_util::filters::labels_match;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// `size=1`: SizeRw and SizeRootFs
    pub size: bool,
    /// -n / -l
    pub limit: Option<usize>,
    /// filter name → accepted values (docker's `{"status":{"exited":true}}`)
    pub filters: HashMap<String, Vec<String>>,
}

impl ListOptions {
    /// Parses docker's filter JSON: `{"k":{"v":true}}` (or the older `{"k":["v"]}`).
    pub fn parse_filters(s: &str) -> Result<HashMap<String, Vec<String>>> {
        berth_util::filters::parse(s).map_err(Error::InvalidParameter)
    }
}

/// docker's `Status` column text.
pub fn status_text(c: &Container) -> String {
    let st = c.state();
    let ago = |t: Option<SystemTime>| {
        t.and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    let health = match st.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)",
        Some("healthy") => " (healthy)",
        Some("unhealthy") => " (unhealthy)",
        _ => "",
    };
    match st.status {
        Status::Running => format!("Up {}{health}", ago(st.started())),
        Status::Paused => format!("Up {} (Paused)", ago(st.started())),
        Status::Restarting => format!("Restarting ({}) {} ago", st.exit_code, ago(st.finished())),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if !st.has_started => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, ago(st.finished())),
    }
}

fn matches(engine: &Engine, c: &Container, filters: &HashMap<String, Vec<String>>) -> bool {
    let rec = c.record();
    let created_of = |v: &str| engine.get_container(v).ok().map(|o| o.record().created);
    filters.iter().all(|(k, vals)| {
        if k == "label" {
            return labels_match(vals, rec.config.labels.as_ref().unwrap_or(&BTreeMap::new()));
        }
        vals.is_empty()
            || vals.iter().any(|v| match k.as_str() {
                "status" => {
                    let s = rec.state.status;
                    let shown = if s == Status::Exited && !rec.state.has_started {
                        "created"
                    } else {
                        s.as_str()
                    };
                    shown == v
                }
                "name" => rec.name.contains(v.trim_start_matches('/')),
                "id" => rec.id.starts_with(v.as_str()),
                "exited" => {
                    rec.state.status == Status::Exited
                        && v.parse::<i32>().ok() == Some(rec.state.exit_code)
                }
                "ancestor" => {
                    rec.config.image == *v
                        || rec
                            .image_id
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:"))
                        || engine
                            .images
                            .get(v)
                            .map(|i| i.id.as_str() == rec.image_id)
                            .unwrap_or(false)
                }
                "before" => created_of(v).map(|t| rec.created < t).unwrap_or(false),
                "since" => created_of(v).map(|t| rec.created > t).unwrap_or(false),
                "health" => {
                    let h = rec
                        .state
                        .health
                        .as_ref()
                        .map(|h| h.status.as_str())
                        .unwrap_or("none");
                    h == v
                }
                // the gateway bridge endpoint is not one of the container's networks
                "network" => rec
                    .networks
                    .iter()
                    .filter(|(_, ep)| !ep.gwbridge)
                    .any(|(n, ep)| {
                        n == v || (!v.is_empty() && ep.network_id.starts_with(v.as_str()))
                    }),
                "publish" => {
                    let (port, proto) = v.split_once('/').unwrap_or((v.as_str(), "tcp"));
                    rec.state.status.is_running()
                        && rec
                            .ports
                            .iter()
                            .any(|p| p.host_port.to_string() == port && p.proto == proto)
                }
                "expose" => {
                    let key = if v.contains('/') {
                        v.clone()
                    } else {
                        format!("{v}/tcp")
                    };
                    rec.config
                        .extra
                        .get("ExposedPorts")
                        .and_then(|e| e.as_object())
                        .is_some_and(|m| m.contains_key(&key))
                }
                "volume" | "is-task" => false,
                _ => true,
            })
    })
}

impl Engine {
    /// The `/containers/json` array, newest first.
    pub fn list(&self, opts: &ListOptions) -> Result<Value> {
        let mut all = self.all_containers();
        all.sort_by_key(|c| std::cmp::Reverse(c.record().created));
        let show_all = opts.all || opts.limit.is_some() || opts.filters.contains_key("status");
        // docker lists a linked container also under `/linker/alias`
        let mut link_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &all {
            let rec = c.record();
            for l in rec
                .host_config
                .extra
                .get("Links")
                .and_then(|l| l.as_array())
                .into_iter()
                .flatten()
            {
                if let Some((t, n)) = l.as_str().and_then(|l| l.split_once(':')) {
                    link_names
                        .entry(t.trim_start_matches('/').to_string())
                        .or_default()
                        .push(n.to_string());
                }
            }
        }
        let mut out = Vec::new();
        for c in all {
            let rec = c.record();
            if !show_all && !rec.state.status.is_running() {
                continue;
            }
            if !matches(self, &c, &opts.filters) {
                continue;
            }
            let mut command = rec.path.clone();
            for a in &rec.args {
                command.push(' ');
                command.push_str(a);
            }
            let shown_state = if rec.state.status == Status::Exited && !rec.state.has_started {
                "created"
            } else {
                rec.state.status.as_str()
            };
            // dockerd lists all names of a container in name order (its index is sorted)
            let mut names: Vec<String> = std::iter::once(format!("/{}", rec.name))
                .chain(link_names.get(&rec.name).cloned().unwrap_or_default())
                .collect();
            names.sort();
            let mut item = json!({
                "Id": rec.id,
                "Names": names,
                "Image": rec.config.image,
                "ImageID": rec.image_id,
                "Command": command,
                "Created": unix_secs(from_unix_nanos(rec.created)),
                "Ports": self.ports_list(&rec),
                "Labels": rec.config.labels.clone().unwrap_or_default(),
                "State": shown_state,
                "Status": status_text(&c),
                "HostConfig": {"NetworkMode": rec.host_config.network_mode},
                "NetworkSettings": {"Networks": self.networks_list(&rec)},
                "Mounts": crate::container_mounts::listed_mounts(&rec)
            });
            if opts.size {
                let (rw, rootfs) = self.container_size(&rec.id, &rec.image_id);
                // dockerd leaves a zero SizeRw out of the list (omitempty)
                if rw > 0 {
                    item["SizeRw"] = json!(rw);
                }
                item["SizeRootFs"] = json!(rootfs);
            }
            out.push(item);
            if opts.limit.is_some_and(|n| out.len() >= n) {
                break;
            }
        }
        Ok(Value::Array(out))
    }
}
