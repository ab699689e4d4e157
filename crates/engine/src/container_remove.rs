//! `rm`: only the container's RW layer and records go; the image is untouched.

use crate::container::Status;
use crate::{Engine, Error, Result};
use std::sync::Arc;

impl Engine {
    pub async fn remove(self: &Arc<Self>, name_or_id: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name_or_id, force, false).await
    }

    /// `rm [-f] [-v]`: with `volumes`, the container's anonymous volumes go too.
    pub async fn remove_with_volumes(
        self: &Arc<Self>,
        name_or_id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        if !self
            .containers
            .read()
            .expect("containers lock")
            .contains_key(&c.id)
        {
            return Ok(()); // removed while we waited for the lock
        }
        let st = c.state().status;
        if st == Status::Restarting {
            if !force {
                return Err(Error::Conflict(format!(
                    "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
        } else if st.is_running() {
            if !force {
                return Err(Error::Conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id
                )));
            }
            self.stop_locked(&c.id, libc::SIGKILL, 0).await?;
        }
        c.update(|r| r.state.status = Status::Removing);
        self.snaps.remove_rw(&c.id)?;
        crate::container_ipc::release(&self.run_dir(&c.id));
        let _ = std::fs::remove_dir_all(self.run_dir(&c.id));
        std::fs::remove_dir_all(self.container_dir(&c.id))?;
        self.containers
            .write()
            .expect("containers lock")
            .remove(&c.id);
        let name = c.name();
        {
            let mut names = self.names.write().expect("names lock");
            if names.get(&name) == Some(&c.id) {
                names.remove(&name);
            }
        }
        if volumes {
            self.remove_anonymous_volumes(&c.record().mounts);
        }
        self.emit(&c, "destroy", &[]);
        c.notify_removed();
        Ok(())
    }
}
