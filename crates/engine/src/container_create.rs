//! `create`: resolve the image, merge its config, prepare the RW layer, write the record.

use crate::container::{now_nanos, Container, Record, State};
use crate::{names, Engine, Error, Result};
use berth_types::CreateRequest;
use rand::RngCore;
use std::collections::BTreeMap;
use std::sync::Arc;

/// docker's wording for an image that is not here.
pub(crate) fn no_such_image(name: &str) -> Error {
    let shown = berth_image::Reference::parse(name)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| name.to_string());
    Error::NotFound(format!("No such image: {shown}"))
}

/// Image env first, then the container's; a later `KEY=` replaces an earlier one.
fn merge_env(image: &[String], own: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in image.iter().chain(own) {
        let key = e.split('=').next().unwrap_or(e);
        if let Some(slot) = out
            .iter_mut()
            .find(|x| x.split('=').next().unwrap_or(x) == key)
        {
            *slot = e.clone();
        } else {
            out.push(e.clone());
        }
    }
    out
}

impl Engine {
    /// Creates a container; returns its ID and warnings.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        req: CreateRequest,
    ) -> Result<(String, Vec<String>)> {
        self.create_with_pod(name, req, None).await
    }

    /// Creates a container of a CRI pod sandbox: it joins the sandbox's namespaces and logs in
    /// the CRI format (`berth-cri`).
    pub async fn create_in_pod(
        self: &Arc<Self>,
        name: &str,
        req: CreateRequest,
        pod: crate::PodLink,
    ) -> Result<(String, Vec<String>)> {
        self.create_with_pod(Some(name), req, Some(pod)).await
    }

    async fn create_with_pod(
        self: &Arc<Self>,
        name: Option<&str>,
        mut req: CreateRequest,
        pod: Option<crate::PodLink>,
    ) -> Result<(String, Vec<String>)> {
        // a start follows a create: the kernel's cgroup-move lock made ready meanwhile
        berth_runtime::prime_cgroup_move();
        if req.config.image.is_empty() {
            return Err(Error::InvalidParameter(
                "Config cannot be empty in order to create a container".into(),
            ));
        }
        if req.host_config.auto_remove
            && !matches!(req.host_config.restart_policy.name.as_str(), "" | "no")
        {
            return Err(Error::InvalidParameter(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        if self.cfg.userns.is_some() {
            crate::userns::check_create(&req.host_config)?;
        }
        let image = self.images.get(&req.config.image).map_err(|_| {
            // a name that is no reference is a 400 (`UPPER`), as dockerd's
            match berth_image::Reference::parse(&req.config.image) {
                Err(e) => Error::from(e),
                Ok(_) => no_such_image(&req.config.image),
            }
        })?;
        // every option is applied or refused here, before anything is written
        let warnings = self.validate_create(&req)?;

        let mut idb = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut idb);
        let id = hex::encode(idb);

        let name = self.reserve_name(name, &id)?;
        match self
            .create_reserved(&id, &name, &image, &mut req, pod)
            .await
        {
            Ok(()) => Ok((id, warnings)),
            Err(e) => {
                self.names.write().expect("names lock").remove(&name);
                let _ = self.snaps.remove_rw(&id);
                let _ = std::fs::remove_dir_all(self.container_dir(&id));
                Err(e)
            }
        }
    }

    /// `HostConfig.Links` in docker's stored form, `/target:/name/alias` (`None`: none given).
    fn canonical_links(
        &self,
        name: &str,
        links: Option<&serde_json::Value>,
    ) -> Option<serde_json::Value> {
        let list = links?.as_array()?;
        let out: Vec<String> = list
            .iter()
            .filter_map(|l| l.as_str())
            .map(|l| {
                let (target, alias) = l.split_once(':').unwrap_or((l, l));
                let target = target.trim_start_matches('/');
                let alias = alias.rsplit('/').next().unwrap_or(alias);
                let tname = self
                    .get_container(target)
                    .map(|c| c.record().name.clone())
                    .unwrap_or_else(|_| target.to_string());
                format!("/{tname}:/{name}/{alias}")
            })
            .collect();
        Some(serde_json::json!(out))
    }

    /// Takes `name` (or a random one) for `id`, or says who has it.
    pub(crate) fn reserve_name(&self, name: Option<&str>, id: &str) -> Result<String> {
        let mut names = self.names.write().expect("names lock");
        let name = match name {
            Some(n) if !n.is_empty() => {
                let n = n.trim_start_matches('/');
                if !names::valid_name(n) {
                    return Err(Error::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                if let Some(other) = names.get(n) {
                    return Err(Error::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                    )));
                }
                n.to_string()
            }
            _ => loop {
                let n = names::random_name();
                if !names.contains_key(&n) {
                    break n;
                }
            },
        };
        names.insert(name.clone(), id.to_string());
        Ok(name)
    }

    async fn create_reserved(
        self: &Arc<Self>,
        id: &str,
        name: &str,
        image: &berth_image::Image,
        req: &mut CreateRequest,
        pod: Option<crate::PodLink>,
    ) -> Result<()> {
        let icfg = image.config.config.clone().unwrap_or_default();
        let hostname_given = !req.config.hostname.is_empty();
        let c = &mut req.config;
        if let Some(ports) = &icfg.exposed_ports {
            let mut all = ports.clone();
            if let Some(serde_json::Value::Object(own)) = c.extra.get("ExposedPorts") {
                all.extend(own.clone());
            }
            if !all.is_empty() {
                c.extra
                    .insert("ExposedPorts".into(), serde_json::Value::Object(all));
            }
        }
        c.env = Some(merge_env(
            icfg.env.as_deref().unwrap_or(&[]),
            c.env.as_deref().unwrap_or(&[]),
        ));
        // An entrypoint given at create time drops the image's Cmd (docker's rule).
        match &c.entrypoint {
            None => {
                c.entrypoint = icfg.entrypoint.clone();
                if c.cmd.is_none() {
                    c.cmd = icfg.cmd.clone();
                }
            }
            Some(ep) if ep.len() == 1 && ep[0].is_empty() => c.entrypoint = None,
            Some(_) => {}
        }
        if c.working_dir.is_empty() {
            c.working_dir = icfg.working_dir.clone().unwrap_or_default();
        }
        if c.user.is_empty() {
            c.user = icfg.user.clone().unwrap_or_default();
        }
        if c.stop_signal.is_none() {
            c.stop_signal = icfg.stop_signal.clone();
        }
        if !c.extra.contains_key("Healthcheck") {
            if let Some(h) = icfg.extra.get("Healthcheck").filter(|h| !h.is_null()) {
                c.extra.insert("Healthcheck".into(), h.clone());
            }
        }
        let mut labels: BTreeMap<String, String> = icfg.labels.clone().unwrap_or_default();
        labels.extend(c.labels.take().unwrap_or_default());
        c.labels = Some(labels);
        let uts_host = req
            .host_config
            .extra
            .get("UTSMode")
            .and_then(|v| v.as_str())
            == Some("host");
        if c.hostname.is_empty() && uts_host {
            c.hostname = nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default();
        }
        if c.hostname.is_empty() {
            c.hostname = id[..12].to_string();
        }
        let mut argv: Vec<String> = c.entrypoint.clone().unwrap_or_default();
        argv.extend(c.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(Error::InvalidParameter("No command specified".into()));
        }
        let daemon = self.settings();
        let hc = &mut req.host_config;
        if hc.network_mode.is_empty() {
            hc.network_mode = "default".into();
        }
        // the daemon's `log-driver`, and its `log-opts` under keys the container left unset
        if hc.log_config.kind.is_empty() {
            hc.log_config.kind = daemon.log_driver.clone();
        }
        if hc.log_config.kind == daemon.log_driver {
            for (k, v) in &daemon.log_opts {
                hc.log_config
                    .config
                    .entry(k.clone())
                    .or_insert_with(|| v.clone());
            }
        }
        // the daemon's `default-shm-size`, as dockerd records it in the HostConfig
        if hc
            .extra
            .get("ShmSize")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
            <= 0
        {
            hc.extra
                .insert("ShmSize".into(), serde_json::json!(daemon.default_shm_size));
        }
        const DOCKER_DRIVERS: &[&str] = &[
            "local",
            "syslog",
            "journald",
            "gelf",
            "fluentd",
            "awslogs",
            "splunk",
            "etwlogs",
            "gcplogs",
            "logentries",
        ];
        match hc.log_config.kind.as_str() {
            "json-file" | "none" => {}
            k if DOCKER_DRIVERS.contains(&k) => {
                return Err(Error::InvalidParameter(format!(
                    "logger: no log driver named '{k}' is registered"
                )))
            }
            // dockerd looks an unknown name up as a plugin
            k => {
                return Err(Error::InvalidParameter(format!(
                    "error looking up logging plugin {k}: plugin \"{k}\" not found"
                )))
            }
        }
        for (k, v) in &hc.log_config.config {
            match k.as_str() {
                "max-size" if crate::container_start::parse_size(v).is_some() => {}
                "max-file" if v.parse::<u32>().map(|n| n > 0).unwrap_or(false) => {}
                "max-size" | "max-file" => {
                    return Err(Error::InvalidParameter(format!(
                        "invalid value for log option {k}: {v}"
                    )))
                }
                "compress" | "labels" | "env" | "tag" | "mode" | "max-buffer-size" => {}
                _ => {
                    return Err(Error::InvalidParameter(format!(
                        "unknown log opt '{k}' for json-file log driver"
                    )))
                }
            }
        }
        let networks = self.plan_networks(req, hostname_given)?;
        let hc = &mut req.host_config;
        // an unset restart policy stays "" (dockerd shows it so; "" and "no" mean the same)
        if hc.console_size.is_none() {
            hc.console_size = Some([0, 0]);
        }
        // an empty IpcMode or Runtime is the default one (inspect shows it, as dockerd's)
        for k in ["IpcMode", "Runtime"] {
            if hc
                .extra
                .get(k)
                .is_some_and(|v| v.is_null() || v.as_str() == Some(""))
            {
                hc.extra.remove(k);
            }
        }
        // each port binding has both fields, as dockerd stores them
        if let Some(serde_json::Value::Object(pb)) = hc.extra.get_mut("PortBindings") {
            for list in pb.values_mut().filter_map(|l| l.as_array_mut()) {
                for b in list.iter_mut().filter_map(|b| b.as_object_mut()) {
                    for k in ["HostIp", "HostPort"] {
                        if b.get(k).is_none_or(|v| v.is_null()) {
                            b.insert(k.into(), serde_json::json!(""));
                        }
                    }
                }
            }
        }
        // a PidsLimit of 0 or below is no limit: stored as none, as dockerd does
        if hc
            .extra
            .get("PidsLimit")
            .and_then(|v| v.as_i64())
            .is_some_and(|n| n <= 0)
        {
            hc.extra.insert("PidsLimit".into(), serde_json::Value::Null);
        }
        let links = self.canonical_links(name, hc.extra.get("Links"));
        if let Some(l) = links {
            hc.extra.insert("Links".into(), l);
        }
        // dockerd records the cgroup namespace mode it picked (inspect shows it). With
        // --userns-remap the hierarchies can only be mounted from a cgroup namespace the
        // container's user namespace owns: private unless asked otherwise.
        let unset = !matches!(
            hc.extra.get("CgroupnsMode").and_then(|v| v.as_str()),
            Some("host" | "private")
        );
        let cgns = match self.cfg.default_cgroupns_mode.as_deref() {
            Some(m @ ("host" | "private")) if unset => m,
            _ if unset && self.cfg.userns.is_some() && !crate::userns::opted_out(hc) => "private",
            _ => crate::spec::cgroupns_mode(hc),
        };
        hc.extra.insert("CgroupnsMode".into(), cgns.into());

        let dir = self.container_dir(id);
        std::fs::create_dir_all(&dir)?;
        let hostname = req.config.hostname.clone();
        std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
        std::fs::write(
            dir.join("hosts"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        )?;
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        std::fs::write(dir.join("resolv.conf"), resolv)?;

        let mut parent: Option<String> = None;
        for d in &image.config.rootfs.diff_ids {
            parent = Some(berth_snapshot::Snapshotter::chain_id(parent.as_deref(), d));
        }
        self.snaps.create_rw(id, parent.as_deref())?;

        let image_volumes: Vec<String> = icfg
            .volumes
            .clone()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        let mounts = self.resolve_mounts(req, &image_volumes)?;
        let (path, args) = (argv[0].clone(), argv[1..].to_vec());
        let rec = Record {
            id: id.to_string(),
            name: name.to_string(),
            created: now_nanos(),
            image_id: image.id.as_str().to_string(),
            path,
            args,
            config: req.config.clone(),
            host_config: req.host_config.clone(),
            layer_parent: parent,
            state: State::default(),
            restart_count: 0,
            mounts,
            networks,
            ports: Vec::new(),
            pod,
        };
        let ctr = Arc::new(Container::new(rec));
        ctr.save(&dir)?;
        self.containers
            .write()
            .expect("containers lock")
            .insert(id.to_string(), ctr.clone());
        self.emit(&ctr, "create", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_merges_by_key() {
        let img = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let own = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&img, &own), vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
