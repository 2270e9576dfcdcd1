//! Logging: `tracing` to stderr, with dropshot's own `slog` events (one "request completed"
//! per request, with method, URI, status and latency) forwarded into it, so the request log
//! and the registry's messages share one format and one level filter.

use std::fmt::Write as _;

use slog::{Drain, Level, OwnedKVList, Record, KV};

/// Installs the global subscriber: `RUST_LOG` if set, else `default_filter` (e.g. `info`).
/// Written straight to stderr: a background writer thread (tracing-appender, buffered)
/// measured no faster at 70k requests/s on two cores, as formatting, not the write, is
/// most of a line's cost (the request log costs ~10% of manifest-GET throughput).
/// Safe to call more than once (later calls keep the first subscriber).
pub fn init(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default_filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal; log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// A slog logger whose records become `tracing` events under the `dropshot` target.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}

/// Forwards slog records to `tracing`, key-values flattened into the message.
struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    /// Lets slog skip building records (and this drain formatting them) that the tracing
    /// filter would drop anyway.
    fn is_enabled(&self, level: Level) -> bool {
        match level {
            Level::Critical | Level::Error => {
                tracing::enabled!(target: "dropshot", tracing::Level::ERROR)
            }
            Level::Warning => tracing::enabled!(target: "dropshot", tracing::Level::WARN),
            Level::Info => tracing::enabled!(target: "dropshot", tracing::Level::INFO),
            Level::Debug => tracing::enabled!(target: "dropshot", tracing::Level::DEBUG),
            Level::Trace => tracing::enabled!(target: "dropshot", tracing::Level::TRACE),
        }
    }

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        if !self.is_enabled(record.level()) {
            return Ok(());
        }
        let mut fields = Fields(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let message = record.msg();
        let fields = fields.0;
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "dropshot", "{message}{fields}")
            }
            Level::Warning => tracing::warn!(target: "dropshot", "{message}{fields}"),
            // One line per connection is noise next to one per request.
            Level::Info if message.as_str() == Some("accepted connection") => {
                tracing::debug!(target: "dropshot", "{message}{fields}")
            }
            Level::Info => tracing::info!(target: "dropshot", "{message}{fields}"),
            Level::Debug => tracing::debug!(target: "dropshot", "{message}{fields}"),
            Level::Trace => tracing::trace!(target: "dropshot", "{message}{fields}"),
        }
        Ok(())
    }
}

/// ` key=value` pairs.
struct Fields(String);

impl slog::Serializer for Fields {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}
