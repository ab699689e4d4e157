//! `top`: the host's `ps`, narrowed to the container's processes.

use crate::{Engine, Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;

/// Keeps the rows of `ps` output whose PID column is one of `pids`. The last column may hold
/// spaces (the command line), so each row is split into at most as many fields as the header.
pub(crate) fn filter_ps(output: &str, pids: &[i32]) -> Result<Value> {
    let mut lines = output.lines();
    let header = lines.next().unwrap_or("");
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| Error::Internal("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for l in lines {
        let mut fields: Vec<String> = Vec::new();
        let mut rest = l.trim_start();
        while fields.len() + 1 < titles.len() && !rest.is_empty() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            fields.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
        fields.push(rest.to_string());
        if let Some(p) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&p) {
                procs.push(fields);
            }
        }
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

impl Engine {
    pub async fn top(self: &Arc<Self>, name_or_id: &str, ps_args: Option<&str>) -> Result<Value> {
        let c = self.get_container(name_or_id)?;
        if !c.state().status.is_running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let cg = crate::spec::cgroup_path(&c.record().host_config, &c.id);
        let pids = berth_runtime::stats::pids(&cg).map_err(|e| Error::Internal(e.to_string()))?;
        let args: Vec<String> = match ps_args.filter(|a| !a.trim().is_empty()) {
            Some(a) => a.split_whitespace().map(String::from).collect(),
            None => vec!["-ef".into()],
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| Error::Internal(format!("Error running ps: {e}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::filter_ps;

    #[test]
    fn keeps_container_rows_and_whole_commands() {
        let out = "UID  PID  PPID  C STIME TTY TIME CMD\nroot 10 1 0 10:30 ? 00:00:00 sleep 1000\nroot 11 1 0 10:30 ? 00:00:00 other thing\n";
        let v = filter_ps(out, &[10]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 1000");
    }
}
