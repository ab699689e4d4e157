//! `rename`.

use crate::{names, Engine, Error, Result};
use std::sync::Arc;

impl Engine {
    pub async fn rename(self: &Arc<Self>, name_or_id: &str, new_name: &str) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let new = new_name.trim_start_matches('/');
        if new.is_empty() {
            return Err(Error::InvalidParameter(
                "Neither old nor new names may be empty".into(),
            ));
        }
        if !names::valid_name(new) {
            return Err(Error::InvalidParameter(format!(
                "Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = c.name();
        if old == new {
            return Err(Error::InvalidParameter(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut names = self.names.write().expect("names lock");
            if let Some(other) = names.get(new) {
                return Err(Error::Conflict(format!(
                    "Error when allocating new name: Conflict. The container name \"/{new}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name."
                )));
            }
            names.remove(&old);
            names.insert(new.to_string(), c.id.clone());
        }
        c.update(|r| r.name = new.to_string());
        c.save(&self.container_dir(&c.id))?;
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
