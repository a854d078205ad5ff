//! Log output: `tracing` to stderr, in the shape the place we run in wants.
//!
//! Under systemd (`$JOURNAL_STREAM` or `$INVOCATION_ID` set) the journal adds timestamps and
//! stores the priority, so lines carry no timestamp and no colour, and start with a `<N>`
//! syslog priority the journal understands (`SyslogLevelPrefix=`, on by default). On a terminal
//! lines are timestamped (and coloured when stderr is a terminal). `json` writes one object per
//! line for log shippers.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::config::{LogConfig, LogFormat};

/// True when systemd started us with stderr connected to the journal (or at least as a unit).
pub fn under_systemd() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some()
}

/// The format `auto` stands for here.
pub fn resolve(format: LogFormat) -> LogFormat {
    match format {
        LogFormat::Auto if under_systemd() => LogFormat::Journald,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    }
}

/// The filter: `RUST_LOG` when set, else `[log] level`, else `default`.
fn filter(config: Option<&LogConfig>, default: &str) -> EnvFilter {
    if let Ok(env) = std::env::var("RUST_LOG")
        && let Ok(f) = EnvFilter::builder().parse(&env)
    {
        return f;
    }
    let level = config.map_or(default, |c| c.level.as_str());
    EnvFilter::builder()
        .parse(level)
        .unwrap_or_else(|_| EnvFilter::new(default))
}

/// Installs the global subscriber. `config` is `None` for one-shot commands, which log
/// warnings only unless `RUST_LOG` says otherwise. Calling it twice is harmless.
pub fn init(config: Option<&LogConfig>) {
    let format = resolve(config.map_or(LogFormat::Auto, |c| c.format));
    let filter = filter(config, if config.is_some() { "info" } else { "warn" });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Journald => builder
            .with_ansi(false)
            .event_format(Journald(Format::default().without_time().with_ansi(false)))
            .try_init(),
        LogFormat::Text | LogFormat::Auto => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
}

/// The default line format without time or colour, behind a syslog priority prefix.
struct Journald<F>(F);

/// The syslog priority of a level (sd-daemon(3): `<3>` error … `<7>` debug).
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}
