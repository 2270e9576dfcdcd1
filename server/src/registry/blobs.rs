//! Blob reads and deletes. A blob is served from a repository only when linked to it
//! (pushed or mounted there), or when it is one of the repository's manifests, so access
//! per repository cannot be bypassed by knowing a digest.

use futures::TryStreamExt;
use http::StatusCode;
use quayside_spec::grammar::{Digest, RepoName};

use super::{supported, Registry};
use crate::error::Error;
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ErrorCode, ResponseBody};
use crate::storage::ByteRange;

/// Fails with 404 BLOB_UNKNOWN unless `name` may serve `digest`.
async fn check_visible(
    registry: &Registry,
    name: &RepoName,
    digest: &Digest,
) -> Result<(), ApiError> {
    supported(digest)?;
    let meta = &registry.storage.metadata;
    if meta.is_linked(name, digest).await? || meta.get_manifest(name, digest).await?.is_some() {
        return Ok(());
    }
    Err(Error::BlobNotInRepository {
        repository: name.clone(),
        digest: digest.clone(),
    }
    .into())
}

/// Parses the `Range` header (already checked against `bytes=(\d+-\d*|-\d+)`); numbers too
/// large for u64 cannot lie inside any blob, so they are unsatisfiable, not malformed.
fn parse_range(header: &str) -> Result<ByteRange, ApiError> {
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::SizeInvalid,
            format!("byte range {header:?} cannot be served"),
        )
    };
    let spec = header.strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    if start.is_empty() {
        let n = end.parse::<u64>().map_err(|_| unsatisfiable())?;
        return Ok(ByteRange::Suffix(n));
    }
    let start = start.parse::<u64>().map_err(|_| unsatisfiable())?;
    let end = if end.is_empty() {
        None
    } else {
        Some(end.parse::<u64>().map_err(|_| unsatisfiable())?)
    };
    Ok(ByteRange::From { start, end })
}

pub(super) async fn get(
    registry: &Registry,
    params: BlobGetParams,
) -> Result<BlobGetResponse, ApiError> {
    check_visible(registry, &params.name, &params.digest).await?;
    let range = params.range.as_deref().map(parse_range).transpose()?;
    let read = registry.storage.blobs.read(&params.digest, range).await?;
    let length = read.range.end - read.range.start;
    let body = ResponseBody::stream(sync_wrapper::SyncStream::new(
        read.body
            .map_err(|err| std::io::Error::other(err.to_string())),
    ));
    if range.is_some() {
        let content_range = format!(
            "bytes {}-{}/{}",
            read.range.start,
            read.range.end.saturating_sub(1),
            read.size
        );
        return Ok(BlobGetResponse::PartialContent {
            headers: BlobGetPartialContentHeaders {
                docker_content_digest: Some(params.digest),
                content_length: Some(length),
                content_range: Some(content_range),
            },
            body,
        });
    }
    Ok(BlobGetResponse::Ok {
        headers: BlobGetOkHeaders {
            docker_content_digest: Some(params.digest),
            content_length: Some(length),
            accept_ranges: Some("bytes".to_owned()),
        },
        body,
    })
}

pub(super) async fn head(
    registry: &Registry,
    params: BlobHeadParams,
) -> Result<BlobHeadResponse, ApiError> {
    check_visible(registry, &params.name, &params.digest).await?;
    let size = registry
        .storage
        .blobs
        .stat(&params.digest)
        .await?
        .ok_or_else(|| Error::BlobUnknown {
            digest: params.digest.clone(),
        })?;
    Ok(BlobHeadResponse::Ok {
        headers: BlobHeadOkHeaders {
            docker_content_digest: Some(params.digest),
            content_length: Some(size),
            accept_ranges: Some("bytes".to_owned()),
        },
    })
}

/// Unlinks the blob from the repository only: other repositories may hold the same
/// content, and reclaiming unreferenced bytes is garbage collection's job.
pub(super) async fn delete(
    registry: &Registry,
    params: BlobDeleteParams,
) -> Result<BlobDeleteResponse, ApiError> {
    registry.check_delete_enabled()?;
    supported(&params.digest)?;
    if !registry
        .storage
        .metadata
        .unlink_blob(&params.name, &params.digest)
        .await?
    {
        return Err(Error::BlobNotInRepository {
            repository: params.name,
            digest: params.digest,
        }
        .into());
    }
    Ok(BlobDeleteResponse::Accepted {
        headers: BlobDeleteAcceptedHeaders {
            content_length: Some(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_into_storage_ranges() {
        assert_eq!(
            parse_range("bytes=0-9").unwrap(),
            ByteRange::From {
                start: 0,
                end: Some(9)
            }
        );
        assert_eq!(
            parse_range("bytes=5-").unwrap(),
            ByteRange::From {
                start: 5,
                end: None
            }
        );
        assert_eq!(parse_range("bytes=-3").unwrap(), ByteRange::Suffix(3));
        let huge = parse_range("bytes=99999999999999999999999-").unwrap_err();
        assert_eq!(huge.status, StatusCode::RANGE_NOT_SATISFIABLE);
    }
}
