//! `Version` and `Status` (`crictl version`, `crictl info`).

use crate::{pb, Cri};

/// The CRI version this runtime speaks.
pub const CRI_API_VERSION: &str = "v1";

impl Cri {
    pub(crate) fn version(&self, _r: pb::VersionRequest) -> pb::VersionResponse {
        pb::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: CRI_API_VERSION.into(),
        }
    }

    pub(crate) fn status(&self, r: pb::StatusRequest) -> crate::Result<pb::StatusResponse> {
        let net = crate::cni::load(&self.cfg.cni_conf_dir);
        let network = match &net {
            Ok(_) => pb::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: true,
                ..Default::default()
            },
            Err(e) => pb::RuntimeCondition {
                r#type: "NetworkReady".into(),
                status: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: cni config uninitialized: {e}"),
            },
        };
        let conditions = vec![
            pb::RuntimeCondition {
                r#type: "RuntimeReady".into(),
                status: true,
                ..Default::default()
            },
            network,
        ];
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            let cfg = serde_json::json!({
                "cniConfDir": self.cfg.cni_conf_dir,
                "cniBinDirs": self.cfg.cni_bin_dirs,
                "cniConfig": net.ok().map(|n| n.raw),
                "pause": self.cfg.pause_path,
                "dataRoot": self.engine.config().data_root,
            });
            info.insert("config".to_string(), cfg.to_string());
        }
        Ok(pb::StatusResponse {
            status: Some(pb::RuntimeStatus { conditions }),
            info,
        })
    }
}
