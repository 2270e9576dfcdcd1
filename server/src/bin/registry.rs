//! The `registry` binary: `registry serve` (the default) runs a Quayside registry.
//!
//! Settings come from, in increasing priority: built-in defaults, the YAML file given with
//! `--config`, `QUAYSIDE_*` environment variables, and command-line flags.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use quayside_server::config::{AuthConfig, Backend, Config, HtpasswdConfig, TlsSection};
use quayside_server::registry::{self, logging};

#[derive(Parser)]
#[command(
    name = "registry",
    version,
    about = "Quayside: an OCI distribution registry",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command, the flags of `serve` apply.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry API (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// YAML configuration file; flags and QUAYSIDE_* variables override its settings.
    #[arg(long, env = "QUAYSIDE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on (port 0 picks a free port, printed at start) [default: 127.0.0.1:5000].
    #[arg(long, env = "QUAYSIDE_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Directory of the filesystem storage (created if missing) [default: ./data].
    #[arg(long, env = "QUAYSIDE_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// Storage backend: filesystem (persistent) or memory (lost on exit) [default: filesystem].
    #[arg(long, env = "QUAYSIDE_STORAGE", value_name = "BACKEND")]
    storage: Option<Backend>,

    /// Refuse DELETE of manifests, tags and blobs (405 UNSUPPORTED).
    #[arg(long, env = "QUAYSIDE_NO_DELETE", value_parser = switch)]
    no_delete: bool,

    /// Write upload data through the page cache instead of with direct I/O (O_DIRECT), for
    /// filesystems where direct I/O is slow or only emulated.
    #[arg(long, env = "QUAYSIDE_NO_DIRECT_IO", value_parser = switch)]
    no_direct_io: bool,

    /// Do not fsync blobs before publishing them: faster small pushes, still safe against a
    /// crash of the registry process, but a power loss can lose recently pushed blobs
    /// (Distribution's behaviour). For caches, mirrors and CI registries.
    #[arg(long, env = "QUAYSIDE_NO_SYNC", value_parser = switch)]
    no_sync: bool,

    /// Discard upload sessions idle for this many seconds [default: 86400].
    #[arg(long, env = "QUAYSIDE_UPLOAD_EXPIRY_SECS", value_name = "SECS")]
    upload_expiry_secs: Option<u64>,

    /// Largest manifest accepted, in bytes (at least 4 MiB) [default: 4194304].
    #[arg(long, env = "QUAYSIDE_MANIFEST_MAX_BYTES", value_name = "BYTES")]
    manifest_max_bytes: Option<usize>,

    /// Threads running request handlers and network I/O (hashing and file I/O run beside
    /// them) [default: the CPUs available, less one, at least 1].
    #[arg(long, env = "QUAYSIDE_WORKERS", value_name = "N")]
    workers: Option<usize>,

    /// Log filter, e.g. info, debug, quayside_server=debug; RUST_LOG overrides it [default: info].
    #[arg(long, env = "QUAYSIDE_LOG_LEVEL", value_name = "FILTER")]
    log_level: Option<String>,

    /// Require Basic auth against this htpasswd file (bcrypt entries, `htpasswd -B`).
    #[arg(long, env = "QUAYSIDE_HTPASSWD", value_name = "FILE")]
    htpasswd: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(
        long,
        env = "QUAYSIDE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM PKCS#8 private key of --tls-cert.
    #[arg(
        long,
        env = "QUAYSIDE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
}

/// An on/off switch's value, as `QUAYSIDE_NO_*` variables spell it: `1`/`true`/`yes`/`on`,
/// or `0`/`false`/`no`/`off`/empty.
fn switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!(
            "`{other}` is not on or off (1/0, true/false, yes/no, on/off)"
        )),
    }
}

impl ServeArgs {
    /// The file's configuration with the flags (and their environment variables) applied.
    fn config(&self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path).map_err(|err| err.to_string())?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(root) = &self.root {
            config.storage.root = root.clone();
        }
        if let Some(backend) = self.storage {
            config.storage.backend = backend;
        }
        if self.no_delete {
            config.storage.delete.enabled = false;
        }
        if self.no_direct_io {
            config.storage.direct_io = false;
        }
        if self.no_sync {
            config.storage.sync = false;
        }
        if let Some(secs) = self.upload_expiry_secs {
            config.uploads.expire_after_secs = secs;
        }
        if let Some(bytes) = self.manifest_max_bytes {
            config.limits.manifest_max_bytes = bytes;
        }
        if let Some(level) = &self.log_level {
            config.log.level = level.clone();
        }
        if let Some(workers) = self.workers {
            config.runtime.workers = Some(workers);
        }
        if let Some(path) = &self.htpasswd {
            let realm = match &config.auth {
                AuthConfig::Htpasswd(htpasswd) => htpasswd.realm.clone(),
                _ => HtpasswdConfig::DEFAULT_REALM.to_owned(),
            };
            config.auth = AuthConfig::Htpasswd(HtpasswdConfig {
                path: path.clone(),
                realm,
            });
        }
        if let (Some(certificate), Some(key)) = (&self.tls_cert, &self.tls_key) {
            config.tls = Some(TlsSection {
                certificate: certificate.clone(),
                key: key.clone(),
            });
        }
        config.validate().map_err(|err| err.to_string())?;
        Ok(config)
    }
}

/// mimalloc instead of glibc malloc. With glibc's default per-thread arenas, upload buffers
/// allocated on runtime threads and freed on storage threads kept megabytes of RSS per
/// arena; one arena (`M_ARENA_MAX=1`) fixed that but put every allocation behind one lock,
/// and `perf` of a manifest GET load showed a third of the server's time in that lock's
/// futex wait and wake. mimalloc's per-thread heaps have neither problem. Its `no_thp`
/// feature keeps transparent huge pages off its arenas: with them, idle RSS was 27 MiB and
/// a 1 GiB push peaked at 51 MiB; without, 12 MiB and 26 MiB, at the same speed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let config = match args.config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("registry: {err}");
            return ExitCode::from(2);
        }
    };
    logging::init(&config.log.level);
    let open_files = match raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(%err, "reading the open-file limit");
            None
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("registry: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, open_files)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("registry: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit and returns the limit in force.
/// Every connection and every blob being read or written holds a descriptor, and the usual
/// soft default of 1024 would refuse connections at a few hundred concurrent pulls (the Go
/// runtime, and so Distribution, raises it the same way at start).
fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // Linux caps descriptors at `fs.nr_open` (2^20 by default) whatever the hard limit says.
    let wanted = limit.rlim_max.min(1 << 20);
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass. Refused (a hard limit above
        // what the system allows), the soft limit simply stays.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok(wanted);
        }
    }
    Ok(limit.rlim_cur)
}

async fn serve(config: Config, open_files: Option<u64>) -> Result<(), String> {
    let running = registry::start(&config)
        .await
        .map_err(|err| err.to_string())?;
    let addr = running.local_addr();
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", running.url()).map_err(|err| err.to_string())?;
        stdout.flush().map_err(|err| err.to_string())?;
    }
    tracing::info!(
        %addr,
        root = %config.storage.root.display(),
        backend = ?config.storage.backend,
        direct_io = config.storage.direct_io,
        sync = config.storage.sync,
        workers = config.workers(),
        open_files,
        "registry started"
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_config(args: &[&str]) -> Config {
        let cli = Cli::try_parse_from(args).expect("arguments parse");
        match cli.command {
            Some(Command::Serve(serve)) => serve.config().expect("configuration"),
            _ => panic!("not the serve command"),
        }
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit on structs we own.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
            let lowered = libc::rlimit {
                rlim_cur: 256.min(limit.rlim_max),
                rlim_max: limit.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
        }
        let raised = raise_open_file_limit().expect("limit");
        assert_eq!(raised, limit.rlim_max.min(1 << 20));
        let mut now = limit;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(now.rlim_cur, raised);
    }

    #[test]
    fn workers_come_from_the_flag_and_zero_is_refused() {
        assert_eq!(
            serve_config(&["registry", "serve"]).workers(),
            quayside_server::config::default_workers()
        );
        assert_eq!(
            serve_config(&["registry", "serve", "--workers", "3"]).workers(),
            3
        );
        let cli = Cli::try_parse_from(["registry", "serve", "--workers", "0"]).expect("parses");
        let Some(Command::Serve(zero)) = cli.command else {
            panic!("not the serve command");
        };
        let refused = zero.config().expect_err("zero workers");
        assert!(refused.contains("runtime.workers"), "{refused}");
    }

    #[test]
    fn storage_flags_turn_off_direct_io_and_fsync() {
        let defaults = serve_config(&["registry", "serve"]);
        assert!(defaults.storage.direct_io && defaults.storage.sync);
        let off = serve_config(&["registry", "serve", "--no-direct-io", "--no-sync"]);
        assert!(!off.storage.direct_io);
        assert!(!off.storage.sync);
        // The switches' variables take the usual spellings of "on", not only `true`.
        for value in ["1", "yes", "true", "on"] {
            std::env::set_var("QUAYSIDE_NO_SYNC", value);
            let from_env = serve_config(&["registry", "serve"]);
            std::env::remove_var("QUAYSIDE_NO_SYNC");
            assert!(!from_env.storage.sync, "QUAYSIDE_NO_SYNC={value}");
        }
        for value in ["", "0", "no", "false", "off"] {
            std::env::set_var("QUAYSIDE_NO_SYNC", value);
            let from_env = serve_config(&["registry", "serve"]);
            std::env::remove_var("QUAYSIDE_NO_SYNC");
            assert!(from_env.storage.sync, "QUAYSIDE_NO_SYNC={value}");
        }
        std::env::set_var("QUAYSIDE_NO_SYNC", "maybe");
        let refused = Cli::try_parse_from(["registry", "serve"]).is_err();
        std::env::remove_var("QUAYSIDE_NO_SYNC");
        assert!(refused, "an unclear value is refused");
        assert!(matches!(
            off.storage_config(),
            quayside_server::storage::StorageConfig::Filesystem {
                direct_io: false,
                sync: false,
                ..
            }
        ));
    }
}
