//! A minimal in-memory `RegistryApi`: enough of a registry to drive the generated stubs
//! end to end. Not the real server (that lives over `storage`); no garbage collection, no
//! auth, sha256 only.

use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use quayside_server::generated::*;
use quayside_spec::grammar::{Digest, Reference, RepoName, Tag};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryRegistry {
    /// Settings; the rest is state.
    pub settings: Settings,
    state: Mutex<State>,
    next_session: AtomicU64,
}

#[derive(Default)]
pub struct Settings {
    /// Overrides `max_buffered_body` when set.
    pub manifest_limit: Option<usize>,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub require_token: Option<String>,
}

impl MemoryRegistry {
    pub fn with(settings: Settings) -> Self {
        Self {
            settings,
            ..Default::default()
        }
    }
}

#[derive(Default)]
struct State {
    blobs: HashMap<Digest, Bytes>,
    uploads: HashMap<String, (RepoName, Vec<u8>)>,
    /// (repository, digest) → (media type, bytes)
    manifests: HashMap<(RepoName, Digest), (String, Bytes)>,
    /// (repository, tag) → digest
    tags: BTreeMap<(RepoName, Tag), Digest>,
    repositories: BTreeSet<RepoName>,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn err(status: StatusCode, code: ErrorCode, message: String) -> ApiError {
    ApiError::new(status, code, message)
}

fn blob_unknown(digest: &Digest) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        ErrorCode::BlobUnknown,
        format!("blob {digest} is not here"),
    )
    .with_detail(serde_json::json!({ "digest": digest.as_str() }))
}

fn session_unknown(id: &str) -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        ErrorCode::BlobUploadUnknown,
        format!("no upload session {id}"),
    )
}

async fn read_all(mut body: RequestBody) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            err(
                StatusCode::BAD_REQUEST,
                ErrorCode::BlobUploadInvalid,
                e.to_string(),
            )
        })?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

impl MemoryRegistry {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn commit_blob(
        &self,
        name: &RepoName,
        bytes: Vec<u8>,
        expected: &Digest,
    ) -> Result<(), ApiError> {
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(err(
                StatusCode::BAD_REQUEST,
                ErrorCode::DigestInvalid,
                format!("content has digest {actual}, not {expected}"),
            ));
        }
        let mut state = self.state();
        state.blobs.insert(actual, bytes.into());
        state.repositories.insert(name.clone());
        Ok(())
    }

    fn resolve(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<(Digest, String, Bytes), ApiError> {
        let state = self.state();
        let digest = match reference {
            Reference::Digest(digest) => digest.clone(),
            Reference::Tag(tag) => state
                .tags
                .get(&(name.clone(), tag.clone()))
                .cloned()
                .ok_or_else(|| {
                    err(
                        StatusCode::NOT_FOUND,
                        ErrorCode::ManifestUnknown,
                        format!("no tag {tag} in {name}"),
                    )
                })?,
        };
        let (media_type, bytes) = state
            .manifests
            .get(&(name.clone(), digest.clone()))
            .cloned()
            .ok_or_else(|| {
                err(
                    StatusCode::NOT_FOUND,
                    ErrorCode::ManifestUnknown,
                    format!("no manifest {digest} in {name}"),
                )
            })?;
        Ok((digest, media_type, bytes))
    }
}

impl RegistryApi for MemoryRegistry {
    async fn authorize(&self, meta: &RequestMeta, _route: &Route) -> Result<(), ApiError> {
        let Some(token) = &self.settings.require_token else {
            return Ok(());
        };
        if meta.header("authorization") == Some(format!("Bearer {token}").as_str()) {
            return Ok(());
        }
        Err(err(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "authentication required".into(),
        )
        .with_header(
            http::header::WWW_AUTHENTICATE,
            r#"Bearer realm="https://auth.example/token",service="quayside""#,
        ))
    }

    fn max_buffered_body(&self, _operation: Operation) -> usize {
        self.settings
            .manifest_limit
            .unwrap_or(quayside_server::http::runtime::DEFAULT_MAX_BUFFERED_BODY)
    }

    async fn v2_check(
        &self,
        _meta: &RequestMeta,
        _params: V2CheckParams,
    ) -> Result<V2CheckResponse, ApiError> {
        Ok(V2CheckResponse::Ok {
            body: Bytes::from_static(b"{}").into(),
        })
    }

    async fn catalog_list(
        &self,
        _meta: &RequestMeta,
        _params: CatalogListParams,
    ) -> Result<CatalogListResponse, ApiError> {
        let repositories: Vec<String> = self
            .state()
            .repositories
            .iter()
            .map(|r| r.to_string())
            .collect();
        Ok(CatalogListResponse::Ok {
            headers: Default::default(),
            body: ResponseBody::json(&serde_json::json!({ "repositories": repositories }))?,
        })
    }

    async fn blob_get(
        &self,
        _meta: &RequestMeta,
        params: BlobGetParams,
    ) -> Result<BlobGetResponse, ApiError> {
        let bytes = self
            .state()
            .blobs
            .get(&params.digest)
            .cloned()
            .ok_or_else(|| blob_unknown(&params.digest))?;
        Ok(BlobGetResponse::Ok {
            headers: BlobGetOkHeaders {
                docker_content_digest: Some(params.digest),
                content_length: Some(bytes.len() as u64),
                ..Default::default()
            },
            // Streamed in two pieces, to exercise the streaming path.
            body: {
                let mid = bytes.len() / 2;
                let pieces = vec![Ok(bytes.slice(..mid)), Ok(bytes.slice(mid..))];
                ResponseBody::stream(futures::stream::iter(pieces))
            },
        })
    }

    async fn blob_head(
        &self,
        _meta: &RequestMeta,
        params: BlobHeadParams,
    ) -> Result<BlobHeadResponse, ApiError> {
        let len = self
            .state()
            .blobs
            .get(&params.digest)
            .map(Bytes::len)
            .ok_or_else(|| blob_unknown(&params.digest))?;
        Ok(BlobHeadResponse::Ok {
            headers: BlobHeadOkHeaders {
                docker_content_digest: Some(params.digest),
                content_length: Some(len as u64),
                ..Default::default()
            },
        })
    }

    async fn blob_delete(
        &self,
        _meta: &RequestMeta,
        params: BlobDeleteParams,
    ) -> Result<BlobDeleteResponse, ApiError> {
        self.state()
            .blobs
            .remove(&params.digest)
            .ok_or_else(|| blob_unknown(&params.digest))?;
        Ok(BlobDeleteResponse::Accepted {
            headers: Default::default(),
        })
    }

    async fn upload_start(
        &self,
        _meta: &RequestMeta,
        params: UploadStartParams,
    ) -> Result<UploadStartResponse, ApiError> {
        if let Some(digest) = params.digest {
            let bytes = read_all(params.body).await?;
            self.commit_blob(&params.name, bytes, &digest)?;
            return Ok(UploadStartResponse::Created {
                headers: UploadStartCreatedHeaders {
                    location: Some(format!("/v2/{}/blobs/{digest}", params.name)),
                    docker_content_digest: Some(digest),
                    ..Default::default()
                },
            });
        }
        let id = format!("s{}", self.next_session.fetch_add(1, Ordering::Relaxed));
        self.state()
            .uploads
            .insert(id.clone(), (params.name.clone(), Vec::new()));
        Ok(UploadStartResponse::Accepted {
            headers: UploadStartAcceptedHeaders {
                location: Some(format!("/v2/{}/blobs/uploads/{id}", params.name)),
                range: Some("0-0".into()),
                docker_upload_uuid: Some(id),
                ..Default::default()
            },
        })
    }

    async fn upload_status(
        &self,
        _meta: &RequestMeta,
        params: UploadStatusParams,
    ) -> Result<UploadStatusResponse, ApiError> {
        let len = self
            .state()
            .uploads
            .get(&params.session_id)
            .map(|(_, b)| b.len())
            .ok_or_else(|| session_unknown(&params.session_id))?;
        Ok(UploadStatusResponse::NoContent {
            headers: UploadStatusNoContentHeaders {
                location: Some(format!(
                    "/v2/{}/blobs/uploads/{}",
                    params.name, params.session_id
                )),
                range: Some(format!("0-{}", len.saturating_sub(1))),
                ..Default::default()
            },
        })
    }

    async fn upload_chunk(
        &self,
        _meta: &RequestMeta,
        params: UploadChunkParams,
    ) -> Result<UploadChunkResponse, ApiError> {
        let chunk = read_all(params.body).await?;
        let mut state = self.state();
        let (_, bytes) = state
            .uploads
            .get_mut(&params.session_id)
            .ok_or_else(|| session_unknown(&params.session_id))?;
        if let Some(range) = &params.content_range {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.parse::<usize>().ok());
            if start != Some(bytes.len()) {
                return Err(err(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    ErrorCode::BlobUploadInvalid,
                    format!("chunk starts at {range}, upload is at {}", bytes.len()),
                ));
            }
        }
        bytes.extend_from_slice(&chunk);
        Ok(UploadChunkResponse::Accepted {
            headers: UploadChunkAcceptedHeaders {
                location: Some(format!(
                    "/v2/{}/blobs/uploads/{}",
                    params.name, params.session_id
                )),
                range: Some(format!("0-{}", bytes.len().saturating_sub(1))),
                ..Default::default()
            },
        })
    }

    async fn upload_complete(
        &self,
        _meta: &RequestMeta,
        params: UploadCompleteParams,
    ) -> Result<UploadCompleteResponse, ApiError> {
        let last = read_all(params.body).await?;
        let (_, mut bytes) = self
            .state()
            .uploads
            .remove(&params.session_id)
            .ok_or_else(|| session_unknown(&params.session_id))?;
        bytes.extend_from_slice(&last);
        self.commit_blob(&params.name, bytes, &params.digest)?;
        Ok(UploadCompleteResponse::Created {
            headers: UploadCompleteCreatedHeaders {
                location: Some(format!("/v2/{}/blobs/{}", params.name, params.digest)),
                docker_content_digest: Some(params.digest),
                ..Default::default()
            },
        })
    }

    async fn upload_cancel(
        &self,
        _meta: &RequestMeta,
        params: UploadCancelParams,
    ) -> Result<UploadCancelResponse, ApiError> {
        self.state()
            .uploads
            .remove(&params.session_id)
            .ok_or_else(|| session_unknown(&params.session_id))?;
        Ok(UploadCancelResponse::NoContent)
    }

    async fn manifest_get(
        &self,
        _meta: &RequestMeta,
        params: ManifestGetParams,
    ) -> Result<ManifestGetResponse, ApiError> {
        let (digest, media_type, bytes) = self.resolve(&params.name, &params.reference)?;
        Ok(ManifestGetResponse::Ok {
            headers: ManifestGetOkHeaders {
                docker_content_digest: Some(digest),
                content_length: Some(bytes.len() as u64),
            },
            content_type: media_type,
            body: bytes.into(),
        })
    }

    async fn manifest_head(
        &self,
        _meta: &RequestMeta,
        params: ManifestHeadParams,
    ) -> Result<ManifestHeadResponse, ApiError> {
        let (digest, media_type, bytes) = self.resolve(&params.name, &params.reference)?;
        Ok(ManifestHeadResponse::Ok {
            content_type: media_type,
            headers: ManifestHeadOkHeaders {
                docker_content_digest: Some(digest),
                content_length: Some(bytes.len() as u64),
            },
        })
    }

    async fn manifest_put(
        &self,
        _meta: &RequestMeta,
        params: ManifestPutParams,
    ) -> Result<ManifestPutResponse, ApiError> {
        let digest = Digest::of(&params.body);
        if let Some(expected) = params.reference.as_digest() {
            if *expected != digest {
                return Err(err(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::DigestInvalid,
                    format!("manifest has digest {digest}, not {expected}"),
                ));
            }
        }
        let media_type = params.content_type.clone().ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                ErrorCode::ManifestInvalid,
                "Content-Type is required".into(),
            )
        })?;
        let mut state = self.state();
        state.manifests.insert(
            (params.name.clone(), digest.clone()),
            (media_type, params.body),
        );
        state.repositories.insert(params.name.clone());
        let mut tags = params.tag.clone();
        tags.extend(params.reference.as_tag().cloned());
        for tag in tags {
            state
                .tags
                .insert((params.name.clone(), tag), digest.clone());
        }
        Ok(ManifestPutResponse::Created {
            headers: ManifestPutCreatedHeaders {
                location: Some(format!("/v2/{}/manifests/{digest}", params.name)),
                docker_content_digest: Some(digest),
                oci_tag: params.tag,
                ..Default::default()
            },
        })
    }

    async fn manifest_delete(
        &self,
        _meta: &RequestMeta,
        params: ManifestDeleteParams,
    ) -> Result<ManifestDeleteResponse, ApiError> {
        let (digest, _, _) = self.resolve(&params.name, &params.reference)?;
        let mut state = self.state();
        state
            .manifests
            .remove(&(params.name.clone(), digest.clone()));
        state
            .tags
            .retain(|(repo, _), d| !(repo == &params.name && *d == digest));
        Ok(ManifestDeleteResponse::Accepted {
            headers: Default::default(),
        })
    }

    async fn tag_list(
        &self,
        _meta: &RequestMeta,
        params: TagListParams,
    ) -> Result<TagListResponse, ApiError> {
        let state = self.state();
        if !state.repositories.contains(&params.name) {
            return Err(err(
                StatusCode::NOT_FOUND,
                ErrorCode::NameUnknown,
                format!("no repository {}", params.name),
            ));
        }
        let tags: Vec<&str> = state
            .tags
            .keys()
            .filter(|(repo, tag)| {
                *repo == params.name
                    && params
                        .last
                        .as_ref()
                        .is_none_or(|last| tag.as_str() > last.as_str())
            })
            .map(|(_, tag)| tag.as_str())
            .take(params.n.map_or(usize::MAX, |n| n as usize))
            .collect();
        Ok(TagListResponse::Ok {
            headers: Default::default(),
            body: ResponseBody::json(&serde_json::json!({ "name": params.name, "tags": tags }))?,
        })
    }

    async fn referrer_list(
        &self,
        _meta: &RequestMeta,
        _params: ReferrerListParams,
    ) -> Result<ReferrerListResponse, ApiError> {
        Ok(ReferrerListResponse::Ok {
            headers: Default::default(),
            body: ResponseBody::json(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [],
            }))?,
        })
    }
}
