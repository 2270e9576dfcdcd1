//! The registry: the generated [`RegistryApi`] implemented over [`Storage`], one module per
//! concern. Handlers only translate between HTTP shapes and storage calls; every HTTP status
//! for a domain error is chosen in [`errors`].

pub mod auth;
mod blobs;
mod catalog;
pub mod errors;
pub mod logging;
mod manifests;
mod referrers;
pub mod server;
mod tags;
mod tls;
mod uploads;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use quayside_spec::grammar::{Algorithm, Digest, RepoName};

use crate::config::{Config, MIN_MANIFEST_LIMIT};
use crate::generated::operations::*;
use crate::generated::routes::Route;
use crate::generated::RegistryApi;
use crate::http::runtime::{ApiError, ErrorCode, RequestMeta, ResponseBody};
use crate::storage::Storage;

pub use server::{start, RunningRegistry};

/// Behaviour that configuration may change.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether DELETE of manifests, tags and blobs is allowed (otherwise 405 UNSUPPORTED).
    pub delete_enabled: bool,
    /// Largest manifest accepted; larger ones get 413.
    pub manifest_max_bytes: usize,
    /// Idle upload sessions older than this are discarded by the sweeper.
    pub upload_expiry: Duration,
    /// How often the sweeper runs.
    pub sweep_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&Config::default())
    }
}

impl Settings {
    /// The settings a configuration asks for.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            delete_enabled: config.storage.delete.enabled,
            manifest_max_bytes: config.limits.manifest_max_bytes.max(MIN_MANIFEST_LIMIT),
            upload_expiry: config.upload_expiry(),
            sweep_interval: config.sweep_interval(),
        }
    }
}

/// The registry over one storage.
#[derive(Clone)]
pub struct Registry {
    storage: Storage,
    settings: Arc<Settings>,
    manifests: Arc<manifests::ManifestCache>,
    auth: Arc<auth::Auth>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("settings", &self.settings)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(storage: Storage, settings: Settings) -> Registry {
        Registry {
            storage,
            settings: Arc::new(settings),
            manifests: Arc::new(manifests::ManifestCache::default()),
            auth: Arc::new(auth::Auth::None),
        }
    }

    /// The same registry, requiring `auth` on every request.
    pub fn with_auth(mut self, auth: auth::Auth) -> Registry {
        self.auth = Arc::new(auth);
        self
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Refuses a deletion when configuration disables them.
    fn check_delete_enabled(&self) -> Result<(), ApiError> {
        if self.settings.delete_enabled {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Unsupported,
                "deletion is disabled on this registry (storage.delete.enabled: false)",
            ))
        }
    }
}

/// The algorithm of a digest the client names; unregistered algorithms cannot name any
/// content here, and the spec answers them with 400 DIGEST_INVALID.
fn supported(digest: &Digest) -> Result<Algorithm, ApiError> {
    digest.algorithm().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            format!(
                "digest algorithm {:?} is not supported; use sha256 or sha512",
                digest.algorithm_str()
            ),
        )
        .with_detail(serde_json::json!({ "digest": digest.as_str() }))
    })
}

/// `/v2/<name>/blobs/<digest>`
fn blob_location(name: &RepoName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

/// `/v2/<name>/manifests/<digest>`
fn manifest_location(name: &RepoName, digest: &Digest) -> String {
    format!("/v2/{name}/manifests/{digest}")
}

impl RegistryApi for Registry {
    async fn authorize(&self, meta: &RequestMeta, route: &Route) -> Result<(), ApiError> {
        self.auth.authorize(meta, route).await
    }

    fn max_buffered_body(&self, _operation: Operation) -> usize {
        self.settings.manifest_max_bytes
    }

    async fn v2_check(
        &self,
        _meta: &RequestMeta,
        _params: V2CheckParams,
    ) -> Result<V2CheckResponse, ApiError> {
        Ok(V2CheckResponse::Ok {
            body: ResponseBody::Bytes(bytes::Bytes::from_static(b"{}")),
        })
    }

    async fn catalog_list(
        &self,
        _meta: &RequestMeta,
        params: CatalogListParams,
    ) -> Result<CatalogListResponse, ApiError> {
        catalog::list(self, params).await
    }

    async fn blob_get(
        &self,
        _meta: &RequestMeta,
        params: BlobGetParams,
    ) -> Result<BlobGetResponse, ApiError> {
        blobs::get(self, params).await
    }

    async fn blob_head(
        &self,
        _meta: &RequestMeta,
        params: BlobHeadParams,
    ) -> Result<BlobHeadResponse, ApiError> {
        blobs::head(self, params).await
    }

    async fn blob_delete(
        &self,
        _meta: &RequestMeta,
        params: BlobDeleteParams,
    ) -> Result<BlobDeleteResponse, ApiError> {
        blobs::delete(self, params).await
    }

    async fn upload_start(
        &self,
        _meta: &RequestMeta,
        params: UploadStartParams,
    ) -> Result<UploadStartResponse, ApiError> {
        uploads::start(self, params).await
    }

    async fn upload_status(
        &self,
        _meta: &RequestMeta,
        params: UploadStatusParams,
    ) -> Result<UploadStatusResponse, ApiError> {
        uploads::status(self, params).await
    }

    async fn upload_complete(
        &self,
        _meta: &RequestMeta,
        params: UploadCompleteParams,
    ) -> Result<UploadCompleteResponse, ApiError> {
        uploads::complete(self, params).await
    }

    async fn upload_chunk(
        &self,
        _meta: &RequestMeta,
        params: UploadChunkParams,
    ) -> Result<UploadChunkResponse, ApiError> {
        uploads::chunk(self, params).await
    }

    async fn upload_cancel(
        &self,
        _meta: &RequestMeta,
        params: UploadCancelParams,
    ) -> Result<UploadCancelResponse, ApiError> {
        uploads::cancel(self, params).await
    }

    async fn manifest_get(
        &self,
        _meta: &RequestMeta,
        params: ManifestGetParams,
    ) -> Result<ManifestGetResponse, ApiError> {
        manifests::get(self, params).await
    }

    async fn manifest_head(
        &self,
        _meta: &RequestMeta,
        params: ManifestHeadParams,
    ) -> Result<ManifestHeadResponse, ApiError> {
        manifests::head(self, params).await
    }

    async fn manifest_put(
        &self,
        _meta: &RequestMeta,
        params: ManifestPutParams,
    ) -> Result<ManifestPutResponse, ApiError> {
        manifests::put(self, params).await
    }

    async fn manifest_delete(
        &self,
        _meta: &RequestMeta,
        params: ManifestDeleteParams,
    ) -> Result<ManifestDeleteResponse, ApiError> {
        manifests::delete(self, params).await
    }

    async fn tag_list(
        &self,
        _meta: &RequestMeta,
        params: TagListParams,
    ) -> Result<TagListResponse, ApiError> {
        tags::list(self, params).await
    }

    async fn referrer_list(
        &self,
        _meta: &RequestMeta,
        params: ReferrerListParams,
    ) -> Result<ReferrerListResponse, ApiError> {
        referrers::list(self, params).await
    }
}
