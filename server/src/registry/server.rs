//! Running the registry: opening storage, serving the generated API with dropshot (over
//! HTTPS when configured), and the background sweep that expires idle upload sessions.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{CompressionConfig, ConfigDropshot, HandlerTaskMode, HttpServer, ServerBuilder};

use super::{auth::Auth, logging, Registry, Settings};
use crate::config::{Config, TlsSection};
use crate::generated::api_description;
use crate::storage::Storage;

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening storage: {0}")]
    Storage(#[from] crate::error::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("registering the API: {0}")]
    Api(String),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
}

/// A registry serving HTTP until [`RunningRegistry::shutdown`].
pub struct RunningRegistry {
    server: HttpServer<Arc<Registry>>,
    sweeper: tokio::task::JoinHandle<()>,
    tls: bool,
}

impl RunningRegistry {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http://<addr>` or `https://<addr>`: the base URL clients use.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    pub fn registry(&self) -> &Registry {
        self.server.app_private()
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the sweeper.
    pub async fn shutdown(self) -> Result<(), String> {
        self.sweeper.abort();
        self.server.close().await
    }
}

/// Opens the configured storage and serves it on `config.listen`, with the configured
/// authentication and TLS.
pub async fn start(config: &Config) -> Result<RunningRegistry, StartError> {
    // Read the auth files first: a typo there should not leave a storage root behind.
    let auth = Auth::from_config(&config.auth).map_err(StartError::Auth)?;
    let storage = Storage::open(&config.storage_config()).await?;
    let registry = Registry::new(storage, Settings::from_config(config)).with_auth(auth);
    serve_with(registry, config.listen, config.tls.as_ref())
}

/// Serves an already built registry over plain HTTP (tests use it with any storage).
pub fn serve(registry: Registry, listen: SocketAddr) -> Result<RunningRegistry, StartError> {
    serve_with(registry, listen, None)
}

/// Serves an already built registry, over HTTPS when `tls` is given.
pub fn serve_with(
    registry: Registry,
    listen: SocketAddr,
    tls: Option<&TlsSection>,
) -> Result<RunningRegistry, StartError> {
    let api = api_description::<Registry>().map_err(|err| StartError::Api(err.to_string()))?;
    let dropshot_config = ConfigDropshot {
        bind_address: listen,
        // Bodies are read by the handlers as streams (RawRequest), not by dropshot.
        default_request_body_max_bytes: 1024,
        // A handler runs to completion even if the client goes away: no half-done commits.
        default_handler_task_mode: HandlerTaskMode::Detached,
        log_headers: Vec::new(),
        // Manifests must be served byte for byte.
        compression: CompressionConfig::None,
    };
    let tls_config = tls
        .map(super::tls::load)
        .transpose()
        .map_err(StartError::Tls)?;
    let sweeper = registry.storage.spawn_upload_expiry(
        registry.settings.upload_expiry,
        registry.settings.sweep_interval,
    );
    let server = ServerBuilder::new(api, Arc::new(registry), logging::dropshot_logger())
        .config(dropshot_config)
        .tls(tls_config)
        .start()
        .map_err(|err| {
            sweeper.abort();
            StartError::Listen {
                addr: listen,
                reason: err.to_string(),
            }
        })?;
    Ok(RunningRegistry {
        server,
        sweeper,
        tls: tls.is_some(),
    })
}
