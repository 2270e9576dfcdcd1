//! Running the registry: opening storage, serving the generated API with dropshot, and the
//! background sweep that expires idle upload sessions.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{CompressionConfig, ConfigDropshot, HandlerTaskMode, HttpServer, ServerBuilder};

use super::{logging, Registry, Settings};
use crate::config::Config;
use crate::generated::api_description;
use crate::storage::Storage;

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("opening storage: {0}")]
    Storage(#[from] crate::error::Error),
    #[error("registering the API: {0}")]
    Api(String),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
}

/// A registry serving HTTP until [`RunningRegistry::shutdown`].
pub struct RunningRegistry {
    server: HttpServer<Arc<Registry>>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl RunningRegistry {
    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
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

/// Opens the configured storage and serves it on `config.listen`.
pub async fn start(config: &Config) -> Result<RunningRegistry, StartError> {
    let storage = Storage::open(&config.storage_config()).await?;
    let registry = Registry::new(storage, Settings::from_config(config));
    serve(registry, config.listen)
}

/// Serves an already built registry (tests use it with any storage).
pub fn serve(registry: Registry, listen: SocketAddr) -> Result<RunningRegistry, StartError> {
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
    let sweeper = registry.storage.spawn_upload_expiry(
        registry.settings.upload_expiry,
        registry.settings.sweep_interval,
    );
    let server = ServerBuilder::new(api, Arc::new(registry), logging::dropshot_logger())
        .config(dropshot_config)
        .start()
        .map_err(|err| {
            sweeper.abort();
            StartError::Listen {
                addr: listen,
                reason: err.to_string(),
            }
        })?;
    Ok(RunningRegistry { server, sweeper })
}
