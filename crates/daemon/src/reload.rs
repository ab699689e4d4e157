//! `SIGHUP` (and `systemctl reload`): read the configuration file again and apply the keys
//! dockerd reloads; a bad file keeps the settings in force and says why in the log.

use crate::config;
use berth_engine::Engine;
use serde_json::Value;
use std::path::PathBuf;

/// Called when a reload starts: systemd's `RELOADING=1`.
pub fn reload_begin() {
    crate::notify::reloading();
}

/// Called when a reload ends, applied or refused: systemd's `READY=1`.
pub fn reload_end() {
    crate::notify::notify("READY=1");
}

/// What a reload needs from the start: the file, the flags given (a key may not be given both
/// ways on reload either) and the file's keys in force.
pub struct Reloader {
    pub path: PathBuf,
    pub explicit: bool,
    pub flags: Vec<(&'static str, String)>,
    /// the file's keys as last applied
    pub raw: serde_json::Map<String, Value>,
    /// `log-level` in force (flag, file or default)
    pub log_level: String,
    pub log: crate::log::Handle,
}

impl Reloader {
    pub fn reload(&mut self, engine: &Engine) {
        reload_begin();
        tracing::info!(
            "Got signal to reload configuration, reloading from: {}",
            self.path.display()
        );
        if let Err(e) = self.apply(engine) {
            tracing::error!("{e}");
        }
        reload_end();
    }

    fn apply(&mut self, engine: &Engine) -> Result<(), String> {
        let loaded = config::load(&self.path, self.explicit)?.unwrap_or_default();
        config::conflicts(&loaded.raw, &self.flags).map_err(|e| config::wrap(&self.path, &e))?;
        for k in config::ignored_on_reload(&self.raw, &loaded.raw) {
            tracing::warn!(
                "configuration key {k:?} changed in {} but cannot be reloaded; restart berthd to apply it",
                self.path.display()
            );
        }
        let f = &loaded.cfg;
        let mut s = engine.settings();
        let mut reg = engine.registry_config();
        if let Some(v) = f.debug {
            s.debug = v;
        }
        if let Some(v) = &f.labels {
            s.labels = v.clone();
        }
        if let Some(v) = f.live_restore {
            s.live_restore = v;
        }
        if let Some(n) = f.max_concurrent_downloads {
            s.max_concurrent_downloads = n.max(1) as usize;
        }
        if let Some(n) = f.max_concurrent_uploads {
            s.max_concurrent_uploads = n.max(1) as usize;
        }
        if let Some(n) = f.max_download_attempts {
            s.max_download_attempts = n.max(1) as u32;
        }
        if let Some(n) = f.shutdown_timeout {
            s.shutdown_timeout = n.max(0) as u64;
        }
        if let Some(v) = &f.features {
            s.features = v.clone();
        }
        if let Some(v) = &f.default_ulimits {
            s.default_ulimits = v.clone();
        }
        if let Some(v) = f.default_shm_size.as_deref().and_then(config::parse_size) {
            s.default_shm_size = v;
        }
        if let Some(v) = &f.cluster_store {
            s.cluster_store = v.clone();
        }
        if let Some(v) = &f.cluster_advertise {
            s.cluster_advertise = v.clone();
        }
        if let Some(v) = &f.registry_mirrors {
            reg.mirrors = v.clone();
        }
        if let Some(v) = &f.insecure_registries {
            reg.insecure = v.clone();
        }
        let level = f
            .log_level
            .clone()
            .unwrap_or_else(|| self.log_level.clone());
        engine
            .reload(s.clone(), reg.clone())
            .map_err(|e| format!("reloading: {e}"))?;
        self.log_level = level;
        self.log
            .set_level(crate::level_of(s.debug, &self.log_level));
        self.raw = loaded.raw;
        tracing::info!(
            debug = s.debug,
            labels = ?s.labels,
            live_restore = s.live_restore,
            registry_mirrors = ?reg.mirrors,
            insecure_registries = ?reg.insecure,
            max_concurrent_downloads = s.max_concurrent_downloads,
            max_concurrent_uploads = s.max_concurrent_uploads,
            "Reloaded configuration"
        );
        Ok(())
    }
}
