//! `POST /build`'s query parameters (API 1.41) → [`BuildOptions`].

use std::collections::BTreeMap;

/// A query parameter that does not decode (400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct OptionsError(pub String);

/// What a build was asked to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOptions {
    /// `dockerfile` (path in the context; default `Dockerfile`)
    pub dockerfile: Option<String>,
    /// `t`, repeated
    pub tags: Vec<String>,
    /// `q`
    pub quiet: bool,
    /// `nocache`
    pub nocache: bool,
    /// `cachefrom` (JSON array of image names)
    pub cache_from: Vec<String>,
    /// `pull`
    pub pull: bool,
    /// `rm` (default true)
    pub rm: bool,
    /// `forcerm`
    pub forcerm: bool,
    /// `buildargs` (JSON object; a null value means "take it from the client's environment",
    /// which the client has already done: treated as unset)
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels` (JSON object), added to the final image
    pub labels: BTreeMap<String, String>,
    /// `target`
    pub target: Option<String>,
    /// `networkmode`
    pub network_mode: Option<String>,
    /// `extrahosts` (`host:ip`, comma separated or repeated)
    pub extra_hosts: Vec<String>,
    /// `platform`
    pub platform: Option<String>,
    /// `shmsize` (bytes)
    pub shm_size: Option<i64>,
    pub memory: Option<i64>,
    pub memswap: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `ulimits` (JSON array of `{"Name","Soft","Hard"}`), for RUN containers
    pub ulimits: Vec<serde_json::Value>,
    /// `cgroupparent`, for RUN containers
    pub cgroup_parent: Option<String>,
    /// `X-Registry-Config`: registry → credentials JSON, for pulling bases
    pub registry_config: BTreeMap<String, serde_json::Value>,
}

fn truthy(v: &str) -> bool {
    !matches!(v, "" | "0" | "false" | "False" | "FALSE" | "no")
}

impl BuildOptions {
    /// From the decoded query pairs (a key may repeat).
    pub fn from_query(pairs: &[(String, String)]) -> Result<BuildOptions, OptionsError> {
        let mut o = BuildOptions {
            rm: true,
            ..Default::default()
        };
        let num = |k: &str, v: &str| -> Result<Option<i64>, OptionsError> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| OptionsError(format!("invalid value for {k}: {v:?}")))
        };
        for (k, v) in pairs {
            match k.as_str() {
                "dockerfile" => o.dockerfile = Some(v.clone()).filter(|d| !d.is_empty()),
                "t" if !v.is_empty() => o.tags.push(v.clone()),
                "q" => o.quiet = truthy(v),
                "nocache" => o.nocache = truthy(v),
                "pull" => o.pull = truthy(v),
                "rm" => o.rm = truthy(v),
                "forcerm" => o.forcerm = truthy(v),
                "cachefrom" if !v.is_empty() => {
                    o.cache_from = serde_json::from_str(v)
                        .map_err(|e| OptionsError(format!("invalid cachefrom: {e}")))?
                }
                "buildargs" if !v.is_empty() => {
                    o.build_args = serde_json::from_str(v)
                        .map_err(|e| OptionsError(format!("invalid buildargs: {e}")))?
                }
                "labels" if !v.is_empty() => {
                    o.labels = serde_json::from_str(v)
                        .map_err(|e| OptionsError(format!("invalid labels: {e}")))?
                }
                "target" => o.target = Some(v.clone()).filter(|t| !t.is_empty()),
                "networkmode" => o.network_mode = Some(v.clone()).filter(|t| !t.is_empty()),
                "extrahosts" => o.extra_hosts.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|h| !h.is_empty())
                        .map(String::from),
                ),
                "platform" => o.platform = Some(v.clone()).filter(|t| !t.is_empty()),
                "shmsize" => o.shm_size = num(k, v)?,
                "memory" => o.memory = num(k, v)?,
                "memswap" => o.memswap = num(k, v)?,
                "cpushares" => o.cpu_shares = num(k, v)?,
                "cpuperiod" => o.cpu_period = num(k, v)?,
                "cpuquota" => o.cpu_quota = num(k, v)?,
                "cpusetcpus" => o.cpuset_cpus = Some(v.clone()).filter(|t| !t.is_empty()),
                "cpusetmems" => o.cpuset_mems = Some(v.clone()).filter(|t| !t.is_empty()),
                "ulimits" if !v.is_empty() && v != "null" => {
                    o.ulimits = serde_json::from_str(v)
                        .map_err(|e| OptionsError(format!("invalid ulimits: {e}")))?
                }
                "cgroupparent" => o.cgroup_parent = Some(v.clone()).filter(|t| !t.is_empty()),
                // what this builder cannot do is refused, never ignored (dockerd's texts)
                "squash" if truthy(v) => {
                    return Err(OptionsError(
                        "squash is only supported with experimental mode".into(),
                    ))
                }
                "remote" if !v.is_empty() => {
                    return Err(OptionsError(format!(
                        "remote build contexts are not supported by berth: {v}"
                    )))
                }
                // a Linux daemon knows one isolation (dockerd's text for the others)
                "isolation" if !matches!(v.as_str(), "" | "default") => {
                    return Err(OptionsError(format!("Unsupported isolation: {v:?}")))
                }
                _ => {}
            }
        }
        o.build_args.retain(|_, v| v.is_some());
        Ok(o)
    }

    /// Decodes an `X-Registry-Config` header (base64url of `{"registry": {credentials}}`).
    pub fn set_registry_config(&mut self, header: &str) -> Result<(), OptionsError> {
        use base64::Engine as _;
        let raw = header.trim().trim_end_matches('=');
        if raw.is_empty() {
            return Ok(());
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
            .map_err(|_| OptionsError("invalid X-Registry-Config header".into()))?;
        self.registry_config = serde_json::from_slice(&bytes)
            .map_err(|e| OptionsError(format!("invalid X-Registry-Config header: {e}")))?;
        Ok(())
    }

    /// The credentials JSON given for the registry `domain` (`docker.io`, `host:port`).
    pub fn credentials_for(&self, domain: &str) -> Option<&serde_json::Value> {
        self.registry_config.iter().find_map(|(k, v)| {
            let a = k.trim();
            let a = a
                .strip_prefix("https://")
                .or_else(|| a.strip_prefix("http://"))
                .unwrap_or(a);
            let host = a.split('/').next().unwrap_or("");
            let host = match host {
                "" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
                h => h,
            };
            (host == domain).then_some(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_clis_query_decodes() {
        let o = BuildOptions::from_query(&q(&[
            ("buildargs", r#"{"A":"zz","B":null}"#),
            ("dockerfile", "Dockerfile"),
            ("labels", r#"{"k":"v"}"#),
            ("nocache", "1"),
            ("t", "ac-b4"),
            ("t", "ac-b4:two"),
            ("extrahosts", "a:1.2.3.4,b:5.6.7.8"),
            ("shmsize", "1048576"),
            ("version", "1"),
        ]))
        .unwrap();
        assert!(o.rm && o.nocache && !o.quiet);
        assert_eq!(o.tags, ["ac-b4", "ac-b4:two"]);
        assert_eq!(o.build_args.len(), 1);
        assert_eq!(o.build_args["A"].as_deref(), Some("zz"));
        assert_eq!(o.labels["k"], "v");
        assert_eq!(o.extra_hosts, ["a:1.2.3.4", "b:5.6.7.8"]);
        assert_eq!(o.shm_size, Some(1048576));
        assert!(BuildOptions::from_query(&q(&[("rm", "0")]))
            .map(|o| !o.rm)
            .unwrap());
        assert!(BuildOptions::from_query(&q(&[("memory", "x")])).is_err());
        assert!(BuildOptions::from_query(&q(&[("buildargs", "[")])).is_err());
        assert!(BuildOptions::from_query(&q(&[("isolation", "default")])).is_ok());
        let o = BuildOptions::from_query(&q(&[
            ("ulimits", r#"[{"Name":"nofile","Soft":100,"Hard":200}]"#),
            ("cgroupparent", "/x"),
        ]))
        .unwrap();
        assert_eq!(o.ulimits[0]["Name"], "nofile");
        assert_eq!(o.cgroup_parent.as_deref(), Some("/x"));
        assert!(BuildOptions::from_query(&q(&[("squash", "1")])).is_err());
        assert!(BuildOptions::from_query(&q(&[("remote", "https://x/y.git")])).is_err());
        assert_eq!(
            BuildOptions::from_query(&q(&[("isolation", "hyperv")]))
                .err()
                .map(|e| e.0),
            Some(r#"Unsupported isolation: "hyperv""#.to_string())
        );
    }

    #[test]
    fn registry_config_finds_the_registry() {
        let mut o = BuildOptions::default();
        // {"127.0.0.1:5000":{"username":"u","password":"p"}}
        o.set_registry_config(
            "eyIxMjcuMC4wLjE6NTAwMCI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAifX0=",
        )
        .unwrap();
        assert_eq!(
            o.credentials_for("127.0.0.1:5000").unwrap()["username"],
            "u"
        );
        assert!(o.credentials_for("docker.io").is_none());
        o.set_registry_config("e30=").unwrap();
        assert!(o.registry_config.is_empty());
    }
}
