//! The daemon's log: timestamps on a terminal; under systemd (`JOURNAL_STREAM` or
//! `INVOCATION_ID` set) one line per record with sd-daemon(3)'s `<N>` priority prefix, which
//! journald turns into the record's priority. The level can change on reload.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Whether systemd started us with stderr connected to the journal.
pub fn under_systemd(env: impl Fn(&str) -> Option<String>) -> bool {
    env("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
        || env("INVOCATION_ID").is_some_and(|v| !v.is_empty())
}

/// sd-daemon(3) priorities: 3 err, 4 warning, 6 info, 7 debug.
pub fn priority(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// `<6>message key=value`: no timestamp (the journal has its own).
pub struct Journal;

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(w, "<{}>", priority(event.metadata().level()))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

fn filter(level: &str) -> EnvFilter {
    EnvFilter::new(format!(
        "warn,berthd={level},berth_engine={level},berth_api={level},berth_snapshot={level},berth_image={level},berth_registry={level},berth_network={level}"
    ))
}

/// Changes the level of the installed log.
pub struct Handle(reload::Handle<EnvFilter, Registry>);

impl Handle {
    pub fn set_level(&self, level: &str) {
        if let Err(e) = self.0.reload(filter(level)) {
            tracing::warn!("changing the log level: {e}");
        }
    }
}

/// Installs the log at `level` (`debug`, `info`, `warn`, `error`).
pub fn init(level: &str) -> Handle {
    let (f, handle) = reload::Layer::new(filter(level));
    let journal = under_systemd(|k| std::env::var(k).ok());
    let base = tracing_subscriber::registry().with(f);
    if journal {
        base.with(
            tracing_subscriber::fmt::layer()
                .event_format(Journal)
                .with_ansi(false)
                .with_writer(std::io::stderr),
        )
        .init();
    } else {
        // colours only on a terminal, never in a log file
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        base.with(
            tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr),
        )
        .init();
    }
    Handle(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_is_told_by_its_variables() {
        assert!(under_systemd(
            |k| (k == "JOURNAL_STREAM").then(|| "8:123".into())
        ));
        assert!(under_systemd(
            |k| (k == "INVOCATION_ID").then(|| "abc".into())
        ));
        assert!(!under_systemd(|_| None));
        assert!(!under_systemd(|_| Some(String::new())));
    }

    #[test]
    fn priorities_are_sd_daemons() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
    }
}
