//! Pod sandbox records: one JSON file each under `<data-root>/cri/pods`, the files the pod's
//! containers bind-mount (`hostname`, `hosts`, `resolv.conf`) under `<exec-root>/cri/pods/<id>`.

use crate::{pb, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    pub id: String,
    pub config: pb::PodSandboxConfig,
    /// unix nanoseconds
    pub created_at: i64,
    pub ready: bool,
    /// the `berth-pause` process (0 once stopped)
    pub pid: i32,
    /// the pod's IP addresses from CNI (the first is the pod's IP)
    #[serde(default)]
    pub ips: Vec<String>,
    /// the CNI result of ADD (DEL is given it back as `prevResult`)
    #[serde(default)]
    pub cni_result: Option<serde_json::Value>,
    #[serde(default)]
    pub runtime_handler: String,
}

impl Pod {
    pub fn metadata(&self) -> pb::PodSandboxMetadata {
        self.config.metadata.clone().unwrap_or_default()
    }
    /// The pod's namespace options (all `POD` when none were given).
    pub fn ns_options(&self) -> pb::NamespaceOption {
        self.config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default()
    }
    pub fn host_network(&self) -> bool {
        self.ns_options().network == pb::NamespaceMode::Node as i32
    }
    pub fn host_ipc(&self) -> bool {
        self.ns_options().ipc == pb::NamespaceMode::Node as i32
    }
    pub fn host_pid(&self) -> bool {
        self.ns_options().pid == pb::NamespaceMode::Node as i32
    }
    /// One PID namespace for the whole pod (the CRI's `POD`, its default), held by the
    /// pause process.
    pub fn shared_pid(&self) -> bool {
        self.ns_options().pid == pb::NamespaceMode::Pod as i32
    }
    /// Ready while its pause process lives (it may die under the daemon: an OOM kill).
    pub fn state(&self) -> pb::PodSandboxState {
        if self.ready && crate::pause::is_pause(self.pid) {
            pb::PodSandboxState::SandboxReady
        } else {
            pb::PodSandboxState::SandboxNotready
        }
    }
}

pub struct PodStore {
    dir: PathBuf,
    run: PathBuf,
    pods: Mutex<HashMap<String, Pod>>,
}

impl PodStore {
    pub fn open(dir: &Path, run: &Path) -> Result<PodStore> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)?;
        std::fs::create_dir_all(run)?;
        // the records hold the pods' whole configs (annotations may be secret): root only;
        // the files containers bind-mount are reached by path, not listed
        let set =
            |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        for p in [Some(dir), dir.parent()].into_iter().flatten() {
            set(p, 0o700)?;
        }
        for p in [Some(run), run.parent()].into_iter().flatten() {
            set(p, 0o711)?;
        }
        let mut pods = HashMap::new();
        for e in std::fs::read_dir(dir)?.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&p).map(|b| serde_json::from_slice::<Pod>(&b)) {
                Ok(Ok(pod)) => {
                    pods.insert(pod.id.clone(), pod);
                }
                Ok(Err(e)) => tracing::warn!("pod record {}: {e}", p.display()),
                Err(e) => tracing::warn!("pod record {}: {e}", p.display()),
            }
        }
        Ok(PodStore {
            dir: dir.to_path_buf(),
            run: run.to_path_buf(),
            pods: Mutex::new(pods),
        })
    }

    /// The directory of the pod's `hostname`, `hosts` and `resolv.conf`.
    pub fn files_dir(&self, id: &str) -> PathBuf {
        self.run.join(id)
    }

    /// Stores and writes the record (atomically).
    pub fn save(&self, pod: &Pod) -> Result<()> {
        let data = serde_json::to_vec(pod)?;
        berth_util::fs::write_atomic(&self.dir.join(format!("{}.json", pod.id)), &data)?;
        self.pods
            .lock()
            .expect("pods lock")
            .insert(pod.id.clone(), pod.clone());
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        self.pods.lock().expect("pods lock").remove(id);
        match std::fs::remove_file(self.dir.join(format!("{id}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let _ = std::fs::remove_dir_all(self.files_dir(id));
        Ok(())
    }

    /// A pod by its ID or a unique prefix of it.
    pub fn get(&self, id: &str) -> Result<Pod> {
        let pods = self.pods.lock().expect("pods lock");
        if let Some(p) = pods.get(id) {
            return Ok(p.clone());
        }
        let mut found = pods
            .values()
            .filter(|p| !id.is_empty() && p.id.starts_with(id));
        match (found.next(), found.next()) {
            (Some(p), None) => Ok(p.clone()),
            (Some(_), Some(_)) => Err(Error::NotFound(format!(
                "pod sandbox ID {id:?} is ambiguous"
            ))),
            _ => Err(Error::NotFound(format!(
                "an error occurred when try to find sandbox {id:?}: not found"
            ))),
        }
    }

    pub fn list(&self) -> Vec<Pod> {
        self.pods
            .lock()
            .expect("pods lock")
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn records_round_trip_and_stay_private() {
        let base = std::env::temp_dir().join(format!("berth-podstore-{}", std::process::id()));
        let (dir, run) = (base.join("data/cri/pods"), base.join("run/cri/pods"));
        let s = PodStore::open(&dir, &run).unwrap();
        let cfg = pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: "p".into(),
                ..Default::default()
            }),
            annotations: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        let pod = Pod {
            id: "abc123".into(),
            config: cfg,
            created_at: 1,
            ready: true,
            pid: 42,
            ips: vec!["10.0.0.2".into()],
            cni_result: None,
            runtime_handler: String::new(),
        };
        s.save(&pod).unwrap();
        assert_eq!(s.get("abc").unwrap().id, "abc123");
        assert!(s.get("zzz").is_err());
        assert!(s.get("").is_err());
        // read back by a new store (a daemon restart)
        let s2 = PodStore::open(&dir, &run).unwrap();
        let back = s2.get("abc123").unwrap();
        assert_eq!(back.config.annotations["k"], "v");
        assert_eq!(
            (back.pid, back.ips.clone()),
            (42, vec!["10.0.0.2".to_string()])
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&base.join("data/cri")), 0o700);
        assert_eq!(mode(&base.join("run/cri")), 0o711);
        s2.remove("abc123").unwrap();
        assert!(PodStore::open(&dir, &run).unwrap().list().is_empty());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
