//! Blob uploads: sessions (POST, PATCH, GET, PUT, DELETE), monolithic pushes and
//! cross-repository mounts. Data is streamed into the blob store, which verifies size and
//! digest before the blob becomes visible; only then is it linked into the repository.
//!
//! A session id is 128 random bits and is the capability to use the session: the store does
//! not record the repository a session was opened for, so the commit links the blob into
//! the repository named in the commit URL (the one the client has push access to).

use futures::TryStreamExt;
use http::StatusCode;
use quayside_spec::grammar::{Algorithm, Digest, RepoName};

use super::errors::upload_range;
use super::{blob_location, supported, Registry};
use crate::error::Error;
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ErrorCode, RequestBody};
use crate::storage::{ByteStream, UploadId, UploadStatus};

/// `/v2/<name>/blobs/uploads/<id>`
fn session_location(name: &RepoName, id: &UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// A request body as a storage stream. A body that breaks off (client gone, bad chunked
/// encoding) is the request's fault, not the registry's: 400, and the store keeps only the
/// bytes it had acknowledged.
fn byte_stream(body: RequestBody, id: &UploadId) -> ByteStream {
    let session = id.to_string();
    Box::pin(body.map_err(move |err| Error::BlobUploadInvalid {
        session: session.clone(),
        reason: format!("the request body could not be read ({err})"),
    }))
}

fn session_id(text: &str) -> Result<UploadId, ApiError> {
    Ok(text.parse::<UploadId>()?)
}

/// Parses `Content-Range: <start>-<end>` (pattern already checked) into the chunk's offset
/// and length; an end before the start, or numbers beyond u64, cannot be appended.
fn parse_content_range(value: &str, session: &UploadId) -> Result<(u64, u64), ApiError> {
    let invalid = |why: &str| {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::BlobUploadInvalid,
            format!("Content-Range {value:?} is invalid: {why}"),
        )
        .with_detail(serde_json::json!({ "session": session.as_str(), "contentRange": value }))
    };
    let (start, end) = value
        .split_once('-')
        .ok_or_else(|| invalid("expected <start>-<end>"))?;
    let start = start
        .parse::<u64>()
        .map_err(|_| invalid("start is not a byte offset"))?;
    let end = end
        .parse::<u64>()
        .map_err(|_| invalid("end is not a byte offset"))?;
    if end < start {
        return Err(invalid("end is before start"));
    }
    Ok((start, end - start + 1))
}

/// Refuses a chunk whose `Content-Length` disagrees with its `Content-Range` before any byte
/// is written, so a malformed request leaves the upload as it was.
fn check_chunk_length(
    range_len: u64,
    content_length: Option<u64>,
    session: &UploadId,
) -> Result<(), ApiError> {
    match content_length {
        Some(len) if len != range_len => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::SizeInvalid,
            format!("Content-Length {len} does not match the Content-Range length {range_len}"),
        )
        .with_detail(serde_json::json!({ "session": session.as_str() }))),
        _ => Ok(()),
    }
}

fn accepted(name: &RepoName, status: &UploadStatus) -> UploadStartResponse {
    UploadStartResponse::Accepted {
        headers: UploadStartAcceptedHeaders {
            location: Some(session_location(name, &status.id)),
            range: Some(upload_range(status.size)),
            content_length: Some(0),
            oci_chunk_min_length: None,
            docker_upload_uuid: Some(status.id.to_string()),
        },
    }
}

fn created(name: &RepoName, digest: Digest) -> UploadStartResponse {
    UploadStartResponse::Created {
        headers: UploadStartCreatedHeaders {
            location: Some(blob_location(name, &digest)),
            docker_content_digest: Some(digest),
            content_length: Some(0),
        },
    }
}

/// `digest-algorithm`: only registered algorithms can be hashed as data arrives.
fn parse_algorithm(text: &str) -> Result<Algorithm, ApiError> {
    text.parse::<Algorithm>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            format!("digest algorithm {text:?} is not supported; use sha256 or sha512"),
        )
        .with_detail(serde_json::json!({ "digest-algorithm": text }))
    })
}

pub(super) async fn start(
    registry: &Registry,
    params: UploadStartParams,
) -> Result<UploadStartResponse, ApiError> {
    let storage = &registry.storage;
    let algorithm = params
        .digest_algorithm
        .as_deref()
        .map(parse_algorithm)
        .transpose()?;

    if let Some(mount) = &params.mount {
        if let Some(digest) = try_mount(registry, &params.name, mount, params.from.as_ref()).await?
        {
            return Ok(created(&params.name, digest));
        }
        // The spec's fallback: an ordinary session, so the client uploads instead.
        let status = storage.blobs.upload_create(algorithm).await?;
        return Ok(accepted(&params.name, &status));
    }

    if let Some(digest) = params.digest {
        let algorithm = supported(&digest)?;
        let session = storage.blobs.upload_create(Some(algorithm)).await?;
        let info = storage
            .blobs
            .upload_commit(
                &session.id,
                &digest,
                params.content_length,
                Some(byte_stream(params.body, &session.id)),
            )
            .await;
        let info = match info {
            Ok(info) => info,
            Err(err) => {
                // The store discards the session on a verification failure; after an I/O
                // failure it may not have, and a half-written session must not linger.
                let _ = storage.blobs.upload_cancel(&session.id).await;
                return Err(err.into());
            }
        };
        storage
            .metadata
            .link_blob(&params.name, &info.digest)
            .await?;
        return Ok(created(&params.name, info.digest));
    }

    let status = storage.blobs.upload_create(algorithm).await?;
    Ok(accepted(&params.name, &status))
}

/// Links `digest` into `name` if `from` holds it and the content exists; `None` tells the
/// caller to fall back to an upload session. Mounting without `from` is not attempted, since
/// the client's right to read other repositories is unknown here.
async fn try_mount(
    registry: &Registry,
    name: &RepoName,
    digest: &Digest,
    from: Option<&RepoName>,
) -> Result<Option<Digest>, ApiError> {
    let (Some(from), Some(_)) = (from, digest.algorithm()) else {
        return Ok(None);
    };
    let meta = &registry.storage.metadata;
    if !meta.is_linked(from, digest).await? {
        return Ok(None);
    }
    if registry.storage.blobs.stat(digest).await?.is_none() {
        return Ok(None);
    }
    meta.link_blob(name, digest).await?;
    Ok(Some(digest.clone()))
}

pub(super) async fn status(
    registry: &Registry,
    params: UploadStatusParams,
) -> Result<UploadStatusResponse, ApiError> {
    let id = session_id(&params.session_id)?;
    let status = registry.storage.blobs.upload_status(&id).await?;
    Ok(UploadStatusResponse::NoContent {
        headers: UploadStatusNoContentHeaders {
            location: Some(session_location(&params.name, &id)),
            range: Some(upload_range(status.size)),
            docker_upload_uuid: Some(id.to_string()),
        },
    })
}

pub(super) async fn chunk(
    registry: &Registry,
    params: UploadChunkParams,
) -> Result<UploadChunkResponse, ApiError> {
    let id = session_id(&params.session_id)?;
    let offset = match params.content_range.as_deref() {
        Some(range) => {
            let (start, len) = parse_content_range(range, &id)?;
            check_chunk_length(len, params.content_length, &id)?;
            Some(start)
        }
        None => None,
    };
    let location = session_location(&params.name, &id);
    let size = registry
        .storage
        .blobs
        .upload_append(&id, offset, byte_stream(params.body, &id))
        .await
        .map_err(|err| {
            let refused_chunk = matches!(err, Error::ChunkOutOfOrder { .. });
            let api = ApiError::from(err);
            if refused_chunk {
                api.with_header(http::header::LOCATION, &location)
            } else {
                api
            }
        })?;
    Ok(UploadChunkResponse::Accepted {
        headers: UploadChunkAcceptedHeaders {
            location: Some(location),
            range: Some(upload_range(size)),
            content_length: Some(0),
            docker_upload_uuid: Some(id.to_string()),
        },
    })
}

pub(super) async fn complete(
    registry: &Registry,
    params: UploadCompleteParams,
) -> Result<UploadCompleteResponse, ApiError> {
    let id = session_id(&params.session_id)?;
    supported(&params.digest)?;
    let blobs = &registry.storage.blobs;
    // A final chunk with Content-Range must start where the upload ends, like a PATCH; the
    // size check then covers the whole blob.
    let expected_size = match params.content_range.as_deref() {
        Some(range) => {
            let (start, len) = parse_content_range(range, &id)?;
            check_chunk_length(len, params.content_length, &id)?;
            let status = blobs.upload_status(&id).await?;
            if status.size != start {
                return Err(Error::ChunkOutOfOrder {
                    session: id.to_string(),
                    expected: status.size,
                    given: start,
                }
                .into());
            }
            Some(start + len)
        }
        None => None,
    };
    // The blob is recorded in the repository while it is made durable (both wait on an
    // fsync); manifests check that the blobs they reference exist, in case a crash lands
    // between the two.
    let link = registry
        .storage
        .metadata
        .link_blob(&params.name, &params.digest);
    let info = blobs
        .upload_commit_alongside(
            &id,
            &params.digest,
            expected_size,
            Some(byte_stream(params.body, &id)),
            Box::pin(link),
        )
        .await?;
    Ok(UploadCompleteResponse::Created {
        headers: UploadCompleteCreatedHeaders {
            location: Some(blob_location(&params.name, &info.digest)),
            docker_content_digest: Some(info.digest),
            content_length: Some(0),
        },
    })
}

pub(super) async fn cancel(
    registry: &Registry,
    params: UploadCancelParams,
) -> Result<UploadCancelResponse, ApiError> {
    let id = session_id(&params.session_id)?;
    registry.storage.blobs.upload_cancel(&id).await?;
    Ok(UploadCancelResponse::NoContent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_gives_offset_and_length() {
        let id = UploadId::random();
        assert_eq!(parse_content_range("0-9", &id).unwrap(), (0, 10));
        assert_eq!(parse_content_range("10-10", &id).unwrap(), (10, 1));
        for bad in ["9-0", "99999999999999999999999-1", "5"] {
            let err = parse_content_range(bad, &id).unwrap_err();
            assert_eq!(err.status, StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
        }
    }

    #[test]
    fn length_disagreeing_with_range_is_refused() {
        let id = UploadId::random();
        assert!(check_chunk_length(10, Some(10), &id).is_ok());
        assert!(check_chunk_length(10, None, &id).is_ok());
        assert_eq!(
            check_chunk_length(10, Some(3), &id).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }
}
