//! `wait`: `not-running` (default), `next-exit`, `removed`.

use crate::container::Progress;
use crate::{Engine, Error, Result};
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: Option<&str>) -> Result<WaitCondition> {
        match s.unwrap_or("") {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            o => Err(Error::InvalidParameter(format!(
                "invalid condition: \"{o}\""
            ))),
        }
    }
}

impl Engine {
    /// Resolves the container now (404 at once) and returns a future giving the exit code.
    pub fn wait(
        self: &Arc<Self>,
        name_or_id: &str,
        cond: WaitCondition,
    ) -> Result<impl Future<Output = i32> + Send + 'static> {
        let c = self.get_container(name_or_id)?;
        let mut rx = c.progress.subscribe();
        let start: Progress = *rx.borrow();
        let running = c.state().status.is_running();
        let code_now = c.state().exit_code;
        Ok(async move {
            if cond == WaitCondition::NotRunning && !running {
                return code_now;
            }
            loop {
                {
                    let p = *rx.borrow_and_update();
                    match cond {
                        WaitCondition::Removed if p.removed => return p.exit_code,
                        WaitCondition::NotRunning | WaitCondition::NextExit
                            if p.exits > start.exits =>
                        {
                            return p.exit_code
                        }
                        _ => {}
                    }
                }
                if rx.changed().await.is_err() {
                    // The container is gone with its channel.
                    return rx.borrow().exit_code;
                }
            }
        })
    }
}
