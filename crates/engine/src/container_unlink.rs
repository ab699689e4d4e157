//! `rm --link`: `DELETE /containers/{parent}/{alias}?link=1` removes a legacy link.

use crate::{Engine, Error, Result};
use serde_json::Value;

/// The alias a `HostConfig.Links` entry gives its target: `target:alias` (docker's stored
/// form `/target:/parent/alias` too) or the target's name when there is no alias.
pub(crate) fn link_alias(entry: &str) -> &str {
    let alias = entry.split_once(':').map_or(entry, |(_, a)| a);
    alias.rsplit('/').next().unwrap_or(alias)
}

impl Engine {
    /// Removes the link `alias` of the container `parent` (the link's `/parent/alias` name;
    /// docker's texts: 404 `No such container: parent/alias` when there is none).
    pub fn remove_link(&self, parent: &str, alias: &str) -> Result<()> {
        let not_found = || Error::NotFound(format!("No such container: {parent}/{alias}"));
        let c = self.get_container(parent).map_err(|_| not_found())?;
        let rec = c.record();
        let links: Vec<Value> = rec
            .host_config
            .extra
            .get("Links")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let kept: Vec<Value> = links
            .iter()
            .filter(|l| l.as_str().map(link_alias) != Some(alias))
            .cloned()
            .collect();
        if kept.len() == links.len() {
            return Err(not_found());
        }
        c.update(|r| {
            let v = if kept.is_empty() {
                Value::Null
            } else {
                Value::Array(kept)
            };
            r.host_config.extra.insert("Links".into(), v);
        });
        c.save(&self.container_dir(&c.id))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aliases_of_link_entries() {
        assert_eq!(super::link_alias("top:db"), "db");
        assert_eq!(super::link_alias("/top:/child/db"), "db");
        assert_eq!(super::link_alias("top"), "top");
    }
}
