//! Health checks: the image's `HEALTHCHECK` or `--health-*`, run as execs in the container.

use crate::container::{now_nanos, Container, Health, HealthLog, Status};
use crate::Engine;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_INTERVAL: u64 = 30_000_000_000;
const DEFAULT_TIMEOUT: u64 = 30_000_000_000;
const DEFAULT_RETRIES: u64 = 3;
const MAX_LOG: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// The container's effective `Healthcheck`, None when there is none or it is `NONE`.
pub(crate) fn healthcheck(c: &Container) -> Option<Value> {
    let hc = c.record().config.extra.get("Healthcheck").cloned()?;
    let test = hc.get("Test")?.as_array()?;
    match test.first().and_then(Value::as_str) {
        Some("NONE") | None => None,
        _ => Some(hc),
    }
}

fn nanos(hc: &Value, k: &str, default: u64) -> u64 {
    match hc.get(k).and_then(Value::as_u64) {
        Some(0) | None => default,
        Some(n) => n,
    }
}

impl Engine {
    /// Starts the probe loop for a started container (no-op without a health check).
    pub(crate) fn spawn_health(self: &Arc<Self>, c: Arc<Container>) {
        let Some(hc) = healthcheck(&c) else { return };
        let test: Vec<String> = hc["Test"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let argv = match test.first().map(String::as_str) {
            Some("CMD-SHELL") => vec!["/bin/sh".to_string(), "-c".to_string(), test[1..].join(" ")],
            Some("CMD") => test[1..].to_vec(),
            _ => test.clone(),
        };
        if argv.is_empty() {
            return;
        }
        let interval = nanos(&hc, "Interval", DEFAULT_INTERVAL);
        let timeout = nanos(&hc, "Timeout", DEFAULT_TIMEOUT);
        let start_period = nanos(&hc, "StartPeriod", 0);
        let retries = hc
            .get("Retries")
            .and_then(Value::as_u64)
            .filter(|&r| r > 0)
            .unwrap_or(DEFAULT_RETRIES);
        let started = c.state().started_at;
        c.update(|r| {
            r.state.health = Some(Health {
                status: "starting".into(),
                failing_streak: 0,
                log: r.state.health.take().map(|h| h.log).unwrap_or_default(),
            })
        });
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_nanos(interval)).await;
                let st = c.state();
                if st.started_at != started
                    || !matches!(st.status, Status::Running | Status::Paused)
                {
                    return;
                }
                if st.status == Status::Paused {
                    continue;
                }
                let begin = now_nanos();
                let (code, output) = match tokio::time::timeout(
                    Duration::from_nanos(timeout),
                    engine.run_probe(&c.id, argv.clone(), MAX_OUTPUT),
                )
                .await
                {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => (-1, e.to_string()),
                    Err(_) => (
                        -1,
                        format!("Health check exceeded timeout ({})", go_duration(timeout)),
                    ),
                };
                let end = now_nanos();
                let in_start_period =
                    begin.saturating_sub(started.unwrap_or(0)) < start_period as u128;
                let changed = c.update(|r| {
                    if r.state.started_at != started {
                        return None;
                    }
                    let h = r.state.health.get_or_insert_with(Health::default);
                    let before = h.status.clone();
                    h.log.push(HealthLog {
                        start: begin,
                        end,
                        exit_code: code,
                        output: output.clone(),
                    });
                    if h.log.len() > MAX_LOG {
                        h.log.remove(0);
                    }
                    if code == 0 {
                        h.status = "healthy".into();
                        h.failing_streak = 0;
                    } else if !in_start_period {
                        h.failing_streak += 1;
                        if h.failing_streak as u64 >= retries {
                            h.status = "unhealthy".into();
                        }
                    }
                    (h.status != before).then(|| h.status.clone())
                });
                let _ = c.save(&engine.container_dir(&c.id));
                if let Some(status) = changed {
                    engine.emit(&c, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }
}

/// A duration as Go's `time.Duration` prints it (`2s`, `500ms`, `1.5s`, `1m30s`), as docker
/// writes it in the health log.
fn go_duration(nanos: u64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.9}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match nanos {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", trim(n as f64 / 1e3)),
        n if n < 1_000_000_000 => format!("{}ms", trim(n as f64 / 1e6)),
        n => {
            let secs = n / 1_000_000_000;
            let frac = trim((n % 60_000_000_000) as f64 / 1e9);
            match (secs / 3600, (secs / 60) % 60) {
                (0, 0) => format!("{frac}s"),
                (0, m) => format!("{m}m{frac}s"),
                (h, m) => format!("{h}h{m}m{frac}s"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::go_duration;

    #[test]
    fn durations_print_as_go() {
        assert_eq!(go_duration(2_000_000_000), "2s");
        assert_eq!(go_duration(500_000_000), "500ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }
}
