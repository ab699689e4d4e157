//! `pause` / `unpause`: the cgroup freezer, through the shim.

use crate::container::Status;
use crate::{shim_client, Engine, Error, Result};
use std::sync::Arc;

impl Engine {
    pub async fn pause(self: &Arc<Self>, name_or_id: &str) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        match c.state().status {
            Status::Running => {}
            Status::Paused => {
                return Err(Error::Conflict(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => {
                return Err(Error::Conflict(format!(
                    "Container {} is not running",
                    c.id
                )))
            }
        }
        self.freezer(&c.id, "PAUSE").await?;
        c.update(|r| r.state.status = Status::Paused);
        c.save(&self.container_dir(&c.id))?;
        self.emit(&c, "pause", &[]);
        Ok(())
    }

    pub async fn unpause(self: &Arc<Self>, name_or_id: &str) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        if c.state().status != Status::Paused {
            return Err(Error::Conflict(format!("Container {} is not paused", c.id)));
        }
        self.freezer(&c.id, "RESUME").await?;
        c.update(|r| r.state.status = Status::Running);
        c.save(&self.container_dir(&c.id))?;
        self.emit(&c, "unpause", &[]);
        Ok(())
    }

    async fn freezer(&self, id: &str, cmd: &str) -> Result<()> {
        let answer = shim_client::request(&self.shim_socket(id), cmd)
            .await
            .map_err(|e| Error::Internal(format!("cannot reach the container's shim: {e}")))?;
        match answer.strip_prefix("ERROR ") {
            Some(m) => Err(Error::Internal(m.to_string())),
            None => Ok(()),
        }
    }
}
