//! Daemon start: read every container back. Live shims are reconnected; a container whose
//! shim is gone gets the exit the shim recorded (or 255 if it recorded none).

use crate::container::{Container, Record, Status};
use crate::{shim_client, Engine, Result};
use std::sync::Arc;

pub async fn restore(engine: &Arc<Engine>) -> Result<()> {
    let dir = engine.cfg.data_root.join("containers");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let path = entry.path().join("config.v2.json");
        let rec: Record = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("skipping {}: {e}", path.display());
                continue;
            }
        };
        let c = Arc::new(Container::new(rec.clone()));
        engine
            .names
            .write()
            .expect("names lock")
            .insert(rec.name.clone(), rec.id.clone());
        engine
            .containers
            .write()
            .expect("containers lock")
            .insert(rec.id.clone(), c.clone());
        found.push(c);
    }
    for c in found {
        let st = c.state();
        let st = if st.status == Status::Restarting {
            // The daemon died while a restart was pending: treat it as exited, policy applies.
            c.update(|r| r.state.status = Status::Exited);
            let _ = c.save(&engine.container_dir(&c.id));
            engine
                .handle_exit(
                    &c,
                    Some(shim_client::Exit {
                        code: st.exit_code,
                        at: st.finished_at.unwrap_or(0),
                        oom: st.oom_killed,
                    }),
                )
                .await;
            continue;
        } else {
            st
        };
        match st.status {
            Status::Running | Status::Paused => {
                let sock = engine.shim_socket(&c.id);
                match shim_client::request(&sock, "STATE").await {
                    Ok(l)
                        if l.starts_with("RUNNING")
                            || l.starts_with("CREATED")
                            || l.starts_with("PAUSED") =>
                    {
                        if l.starts_with("PAUSED") {
                            c.update(|r| r.state.status = Status::Paused);
                        } else if st.status == Status::Paused {
                            c.update(|r| r.state.status = Status::Running);
                        }
                        tracing::info!(id = %c.id, "reconnected to running container");
                        engine.net_restore(&c);
                        engine.spawn_monitor(c.clone());
                        engine.spawn_health(c);
                    }
                    Ok(l) if l.starts_with("EXITED") => {
                        let exit = shim_client::parse_exited(&l);
                        engine.handle_exit(&c, exit).await;
                    }
                    _ => {
                        let exit = shim_client::read_exit_file(&engine.exit_file(&c.id));
                        if exit.is_none() {
                            kill_orphan(&c.id, st.pid);
                        }
                        tracing::info!(id = %c.id, ?exit, "container's shim is gone");
                        engine.handle_exit(&c, exit).await;
                        remove_cgroups(&c.id);
                    }
                }
            }
            Status::Removing => {
                let _ = engine.remove(&c.id, true).await;
            }
            Status::Exited | Status::Created if st.has_started => {
                // docker's rule at daemon start: `always` comes back even after a manual stop,
                // `unless-stopped` only if it was not stopped by hand.
                let policy = c.record().host_config.restart_policy.name;
                if policy == "always" || (policy == "unless-stopped" && !st.manually_stopped) {
                    tracing::info!(id = %c.id, "restarting on daemon start ({policy})");
                    if let Err(e) = engine.start(&c.id).await {
                        tracing::warn!(id = %c.id, "restart on daemon start failed: {e}");
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Kills a container init left without its shim, if that pid is really in our cgroup.
fn kill_orphan(id: &str, pid: i32) {
    if pid <= 0 {
        return;
    }
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    // `/berth/<id>` or `<CgroupParent>/<id>`: the 64-hex id names it either way
    if cg.contains(&format!("/{id}\n")) || cg.ends_with(&format!("/{id}")) {
        // SAFETY: plain kill(2) on a pid we verified belongs to this container.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Best-effort removal of the cgroups a dead shim left (`berth/<id>` in every hierarchy, and
/// whatever the container made below it).
fn remove_cgroups(id: &str) {
    let _ = berth_runtime::remove_cgroups(&format!("/berth/{id}"));
}
