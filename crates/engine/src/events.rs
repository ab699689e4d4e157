//! Events: a broadcast for live subscribers and a ring of recent ones for `--since`.

use crate::container::now_nanos;
use berth_util::filters::labels_match;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

const KEEP: usize = 1024;

#[derive(Debug, Clone)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// unix nanoseconds
    pub time: u128,
}

impl Event {
    /// docker's JSON shape (legacy `status`/`id`/`from` on container and image events).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.kind == "container" || self.kind == "image" {
            m.insert("status".into(), json!(self.action));
            m.insert("id".into(), json!(self.id));
            if let Some(img) = self.attributes.get("image") {
                m.insert("from".into(), json!(img));
            }
        }
        m.insert("Type".into(), json!(self.kind));
        m.insert("Action".into(), json!(self.action));
        m.insert(
            "Actor".into(),
            json!({"ID": self.id, "Attributes": self.attributes}),
        );
        m.insert("scope".into(), json!("local"));
        m.insert("time".into(), json!((self.time / 1_000_000_000) as i64));
        m.insert("timeNano".into(), json!(self.time as i64));
        Value::Object(m)
    }

    /// docker's event filters: type, event (action, also `health_status` prefix), container
    /// (ID, prefix or name), image, label (`k` or `k=v`, all of them must match).
    pub fn matches(&self, filters: &HashMap<String, Vec<String>>) -> bool {
        filters.iter().all(|(k, vals)| {
            if k == "label" {
                return labels_match(vals, &self.attributes);
            }
            vals.is_empty()
                || vals.iter().any(|v| match k.as_str() {
                    "type" => self.kind == v,
                    "event" => {
                        self.action == *v || self.action.split(':').next() == Some(v.as_str())
                    }
                    "container" => {
                        self.kind == "container"
                            && (self.id.starts_with(v.as_str())
                                || self.attributes.get("name").map(|n| n == v).unwrap_or(false))
                    }
                    "image" => {
                        self.attributes
                            .get("image")
                            .map(|i| i == v)
                            .unwrap_or(false)
                            || (self.kind == "image" && self.id == *v)
                    }
                    _ => true,
                })
        })
    }
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
    recent: Mutex<VecDeque<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(4096).0,
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

impl EventBus {
    pub fn emit(
        &self,
        kind: &'static str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes,
            time: now_nanos(),
        };
        {
            let mut r = self.recent.lock().expect("events lock");
            if r.len() >= KEEP {
                r.pop_front();
            }
            r.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// Subscribes first, then copies the recent events, so nothing falls in between.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let past = self
            .recent
            .lock()
            .expect("events lock")
            .iter()
            .cloned()
            .collect();
        (past, rx)
    }
}
