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
        let message = record.msg();
        if record.level() == Level::Info && message.as_str() == Some("request completed") {
            request_completed(record, values);
            return Ok(());
        }
        let mut fields = Fields(String::new());
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
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

/// The request log line, with its values as `tracing` fields rather than inside the
/// message. The formatter escapes a message character by character (against terminal
/// injection), which callgrind put at 15% of the instructions of a manifest GET; field
/// values are written as they are (measured: 2–4% more manifest GETs per second, as most
/// of a request's time is the kernel's). These values cannot carry control characters: hyper
/// has checked the method and URI, and the rest are addresses, numbers and dropshot's
/// request id. Keys this does not know (error messages) stay in the escaped message.
fn request_completed(record: &Record<'_>, values: &OwnedKVList) {
    let mut line = RequestLine::default();
    let _ = record.kv().serialize(record, &mut line);
    let _ = values.serialize(record, &mut line);
    let RequestLine {
        method,
        uri,
        status,
        latency_us,
        remote_addr,
        req_id,
        other,
    } = line;
    tracing::info!(
        target: "dropshot",
        method = %method,
        uri = %uri,
        status = %status,
        latency_us = %latency_us,
        remote_addr = %remote_addr,
        req_id = %req_id,
        "request completed{other}"
    );
}

/// The values of a "request completed" record, by key.
#[derive(Default)]
struct RequestLine {
    method: String,
    uri: String,
    status: String,
    latency_us: String,
    remote_addr: String,
    req_id: String,
    /// ` key=value` for any other key.
    other: String,
}

impl slog::Serializer for RequestLine {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let slot = match key.as_ref() {
            "method" => &mut self.method,
            "uri" => &mut self.uri,
            "response_code" => &mut self.status,
            "latency_us" => &mut self.latency_us,
            "remote_addr" => &mut self.remote_addr,
            "req_id" => &mut self.req_id,
            // Where the server listens: the same on every line.
            "local_addr" => return Ok(()),
            _ => {
                let _ = write!(self.other, " {key}={val}");
                return Ok(());
            }
        };
        let _ = write!(slot, "{val}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A drain that sorts each record's values as the request log does.
    struct Capture(Arc<Mutex<Option<RequestLine>>>);

    impl Drain for Capture {
        type Ok = ();
        type Err = slog::Never;

        fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
            let mut line = RequestLine::default();
            let _ = record.kv().serialize(record, &mut line);
            let _ = values.serialize(record, &mut line);
            *self.0.lock().unwrap() = Some(line);
            Ok(())
        }
    }

    #[test]
    fn request_line_sorts_known_keys_into_fields_and_keeps_the_rest() {
        let seen = Arc::new(Mutex::new(None));
        let root = slog::Logger::root(
            Capture(seen.clone()),
            slog::o!("local_addr" => "127.0.0.1:5000"),
        );
        let request = root.new(slog::o!("method" => "GET", "uri" => "/v2/", "req_id" => "r1"));
        slog::info!(request, "request completed";
            "response_code" => 404u16, "latency_us" => 17u64, "error_message_internal" => "no such tag");
        let line = seen.lock().unwrap().take().expect("a record");
        assert_eq!(line.method, "GET");
        assert_eq!(line.uri, "/v2/");
        assert_eq!(line.status, "404");
        assert_eq!(line.latency_us, "17");
        assert_eq!(line.req_id, "r1");
        assert_eq!(line.other, " error_message_internal=no such tag");
    }
}
