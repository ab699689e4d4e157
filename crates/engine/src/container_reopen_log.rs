//! Reopening a running container's log file (the CRI's `ReopenContainerLog`: kubelet rotates
//! the file by renaming it, then asks for a new one at the same path).

use crate::shim_client;
use crate::{Engine, Error, Result};

impl Engine {
    pub async fn reopen_log(&self, name_or_id: &str) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        if !c.state().status.is_running() {
            return Err(Error::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        let answer = shim_client::request(&self.shim_socket(&c.id), "REOPENLOG")
            .await
            .map_err(|e| Error::Internal(format!("cannot reach the container's shim: {e}")))?;
        match answer.strip_prefix("ERROR ") {
            Some(msg) => Err(Error::Internal(msg.trim().to_string())),
            None => Ok(()),
        }
    }
}
