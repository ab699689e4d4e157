//! `kill` and `stop`.

use crate::container::Status;
use crate::{shim_client, Engine, Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// `9`, `KILL`, `SIGKILL`, `sigterm` → signal number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => match realtime(name) {
            Some(n) => n,
            None => return Err(Error::InvalidParameter(format!("Invalid signal: {s}"))),
        },
    };
    Ok(n)
}

/// The real-time names docker knows: `RTMIN`, `RTMIN+1`…`RTMIN+15`, `RTMAX-14`…`RTMAX`.
/// RTMIN is the C library's (34: glibc keeps the kernel's first two for its threads), as a
/// program in the container sees it; systemd stops on `SIGRTMIN+3`.
fn realtime(name: &str) -> Option<i32> {
    const RTMIN: i32 = 34;
    const RTMAX: i32 = 64;
    // "" for the base name, else the sign and a number in 1..=max
    let off = |rest: &str, sign: char, max: i32| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix(sign)?;
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = digits.parse::<i32>().ok()?;
        (1..=max).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return off(rest, '+', 15).map(|n| RTMIN + n);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return off(rest, '-', 14).map(|n| RTMAX - n);
    }
    None
}

impl Engine {
    pub async fn kill(self: &Arc<Self>, name_or_id: &str, signal: Option<&str>) -> Result<()> {
        // the signal is checked before the lookup, as dockerd's
        let sig = match signal {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGKILL,
        };
        let c = self.get_container(name_or_id)?;
        match c.state().status {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                return Err(Error::Conflict(format!(
                    "Container {} is restarting, wait until the container is running",
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
        c.update(|r| r.state.manually_stopped = true);
        let _ = c.save(&self.container_dir(&c.id));
        self.emit(&c, "kill", &[("signal", sig.to_string())]);
        if sig != libc::SIGKILL {
            return self.signal(&c.id, sig).await;
        }
        // a SIGKILL answers once the container has exited, as dockerd's (an inspect
        // right after shows it stopped)
        let mut rx = c.progress.subscribe();
        let exits = rx.borrow().exits;
        self.signal(&c.id, sig).await?;
        let exited = async {
            while rx.borrow().exits == exits {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), exited)
            .await
            .map_err(|_| Error::Internal(format!("container {} did not exit after SIGKILL", c.id)))
    }

    pub(crate) async fn signal(&self, id: &str, sig: i32) -> Result<()> {
        let answer = shim_client::request(&self.shim_socket(id), &format!("KILL {sig}"))
            .await
            .map_err(|e| Error::Internal(format!("cannot signal container {id}: {e}")))?;
        match answer.strip_prefix("ERROR ") {
            Some(msg) => Err(Error::Internal(msg.to_string())),
            None => Ok(()),
        }
    }

    /// The stop signal, then SIGKILL after `timeout` seconds (default: the container's
    /// `StopTimeout`, else 10). 304 when not running.
    pub async fn stop(self: &Arc<Self>, name_or_id: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        let _op = c.op.lock().await;
        match c.state().status {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                // Cancels the pending restart.
                c.update(|r| {
                    r.state.status = Status::Exited;
                    r.state.manually_stopped = true;
                });
                let _ = c.save(&self.container_dir(&c.id));
                self.emit(&c, "stop", &[]);
                return Ok(());
            }
            _ => return Err(Error::NotModified),
        }
        c.update(|r| r.state.manually_stopped = true);
        let _ = c.save(&self.container_dir(&c.id));
        let rec = c.record();
        let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        let sig = match rec.config.stop_signal.as_deref() {
            Some(s) if !s.is_empty() => parse_signal(s)?,
            _ => libc::SIGTERM,
        };
        if secs != 0 {
            self.emit(&c, "kill", &[("signal", sig.to_string())]);
        }
        self.stop_locked(&c.id, sig, secs).await?;
        self.emit(&c, "stop", &[]);
        Ok(())
    }

    /// Sends `sig`, waits up to `secs` (negative: forever), then kills.
    pub(crate) async fn stop_locked(self: &Arc<Self>, id: &str, sig: i32, secs: i64) -> Result<()> {
        let c = self.get_container(id)?;
        let mut rx = c.progress.subscribe();
        let exits = rx.borrow().exits;
        let exited = |rx: &tokio::sync::watch::Receiver<crate::container::Progress>| {
            rx.borrow().exits > exits
        };
        if secs != 0 {
            let _ = self.signal(id, sig).await;
            let wait = async {
                while !exited(&rx) {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            if secs < 0 {
                wait.await;
                return Ok(());
            }
            if tokio::time::timeout(Duration::from_secs(secs as u64), wait)
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        if c.state().status == Status::Exited || exited(&rx) {
            return Ok(());
        }
        self.emit(&c, "kill", &[("signal", libc::SIGKILL.to_string())]);
        let _ = self.signal(id, libc::SIGKILL).await;
        while !exited(&rx) {
            if tokio::time::timeout(Duration::from_secs(30), rx.changed())
                .await
                .is_err()
            {
                return Err(Error::Internal(format!(
                    "container {id} did not exit after SIGKILL"
                )));
            }
        }
        Ok(())
    }
}

impl Engine {
    /// `restart`: stop (if running), then start; docker's `restart` event.
    pub async fn restart(self: &Arc<Self>, name_or_id: &str, timeout: Option<i64>) -> Result<()> {
        let c = self.get_container(name_or_id)?;
        match self.stop(&c.id, timeout).await {
            Ok(()) | Err(Error::NotModified) => {}
            Err(e) => return Err(e),
        }
        self.start(&c.id).await?;
        self.emit(&c, "restart", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn realtime_signals_as_docker_numbers_them() {
        assert_eq!(parse_signal("SIGRTMIN").unwrap(), 34);
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse_signal("rtmin+15").unwrap(), 49);
        assert_eq!(parse_signal("RTMAX-14").unwrap(), 50);
        assert_eq!(parse_signal("SIGRTMAX").unwrap(), 64);
        for bad in [
            "RTMIN+16", "RTMIN+0", "RTMIN-1", "RTMAX+1", "RTMAX-15", "RTMIN+", "RTMINX",
            "RTMIN++3", "RTMIN+03",
        ] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}
