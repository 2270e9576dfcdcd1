//! The one place where domain [`Error`]s become HTTP answers: status, OCI code, message,
//! detail and the headers some statuses need (`Range` on a refused chunk, `Content-Range`
//! on an unsatisfiable range, `Retry-After` on 429). Internal failures are logged here and
//! answered 500 without their inner detail.

use http::header::{HeaderName, CONTENT_RANGE, RETRY_AFTER};
use http::StatusCode;
use serde_json::json;

use crate::error::Error;
use crate::http::runtime::{ApiError, ErrorCode};

/// The status the registry answers for a domain error.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::BlobUnknown { .. }
        | Error::BlobNotInRepository { .. }
        | Error::BlobUploadUnknown { .. }
        | Error::ManifestUnknown { .. }
        | Error::NameUnknown { .. } => StatusCode::NOT_FOUND,
        Error::BlobUploadInvalid { .. }
        | Error::DigestInvalid { .. }
        | Error::DigestMismatch { .. }
        | Error::ManifestBlobUnknown { .. }
        | Error::ManifestInvalid { .. }
        | Error::NameInvalid { .. }
        | Error::SizeInvalid { .. }
        | Error::Unsupported { .. } => StatusCode::BAD_REQUEST,
        Error::ChunkOutOfOrder { .. } | Error::RangeNotSatisfiable { .. } => {
            StatusCode::RANGE_NOT_SATISFIABLE
        }
        Error::ManifestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
        Error::Denied { .. } => StatusCode::FORBIDDEN,
        Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Io { .. } | Error::Internal { .. } if error.is_storage_full() => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        Error::Io { .. } | Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `detail` of the envelope: the values the client sent or must fix.
fn detail_of(error: &Error) -> Option<serde_json::Value> {
    Some(match error {
        Error::BlobUnknown { digest } => json!({ "digest": digest.as_str() }),
        Error::BlobNotInRepository { repository, digest }
        | Error::ManifestBlobUnknown { repository, digest } => {
            json!({ "name": repository.as_str(), "digest": digest.as_str() })
        }
        Error::BlobUploadInvalid { session, .. } | Error::BlobUploadUnknown { session } => {
            json!({ "session": session })
        }
        Error::ChunkOutOfOrder {
            session,
            expected,
            given,
        } => json!({ "session": session, "expected": expected, "given": given }),
        Error::DigestInvalid { value, .. } => json!({ "digest": value }),
        Error::DigestMismatch { expected, actual } => {
            json!({ "expected": expected.as_str(), "actual": actual.as_str() })
        }
        Error::ManifestUnknown {
            repository,
            reference,
        } => json!({ "name": repository.as_str(), "reference": reference }),
        Error::ManifestTooLarge { size, limit } => json!({ "size": size, "limit": limit }),
        Error::NameInvalid { value, .. } => json!({ "name": value }),
        Error::NameUnknown { repository } => json!({ "name": repository.as_str() }),
        Error::SizeInvalid { expected, actual } => {
            json!({ "expected": expected, "actual": actual })
        }
        Error::RangeNotSatisfiable { requested, size } => {
            json!({ "range": requested, "size": size })
        }
        _ => return None,
    })
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let status = status_of(&error);
        if error.is_storage_full() {
            tracing::error!(error = %error, "request failed: the storage is full");
            return ApiError::new(
                status,
                ErrorCode::Unsupported,
                "the registry's storage is full; retry once space is freed",
            );
        }
        if error.is_internal() {
            tracing::error!(error = %error, "request failed inside the registry");
            return ApiError::internal("the registry failed to complete the request; retry later");
        }
        let code = ErrorCode::parse(error.code()).unwrap_or(ErrorCode::Unsupported);
        let mut api = ApiError::new(status, code, error.to_string());
        if let Some(detail) = detail_of(&error) {
            api = api.with_detail(detail);
        }
        match &error {
            Error::ChunkOutOfOrder { expected, .. } => {
                api.with_header(HeaderName::from_static("range"), &upload_range(*expected))
            }
            Error::RangeNotSatisfiable { size, .. } => {
                api.with_header(CONTENT_RANGE, &format!("bytes */{size}"))
            }
            Error::TooManyRequests {
                retry_after: Some(after),
            } => api.with_header(RETRY_AFTER, &after.as_secs().max(1).to_string()),
            _ => api,
        }
    }
}

/// The `Range` header of an upload holding `size` bytes: `0-<last byte>` inclusive, and
/// `0-0` for an empty upload, as Distribution and the clients built against it expect.
pub fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quayside_spec::grammar::Digest;

    #[test]
    fn a_full_disk_is_507_and_other_failures_500_without_their_details() {
        let full = ApiError::from(Error::io(
            "writing upload data",
            std::io::Error::from_raw_os_error(28),
        ));
        assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(full.message.contains("storage is full"), "{}", full.message);
        let other = ApiError::from(Error::io(
            "writing upload data",
            std::io::Error::other("/secret/path broke"),
        ));
        assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!other.message.contains("secret"), "{}", other.message);
    }

    #[test]
    fn chunk_out_of_order_becomes_416_with_the_accepted_range() {
        let api = ApiError::from(Error::ChunkOutOfOrder {
            session: "s".into(),
            expected: 10,
            given: 4,
        });
        assert_eq!(api.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(api.code, ErrorCode::BlobUploadInvalid);
        assert_eq!(api.headers().unwrap()["range"], "0-9");
    }

    #[test]
    fn digest_mismatch_is_400_digest_invalid_with_both_digests() {
        let expected = Digest::of(b"a");
        let actual = Digest::of(b"b");
        let api = ApiError::from(Error::DigestMismatch {
            expected: expected.clone(),
            actual,
        });
        assert_eq!(api.status, StatusCode::BAD_REQUEST);
        assert_eq!(api.code, ErrorCode::DigestInvalid);
        assert_eq!(api.detail().unwrap()["expected"], expected.as_str());
    }

    #[test]
    fn internal_failures_are_500_without_inner_detail() {
        let api = ApiError::from(Error::io(
            "writing /secret/path",
            std::io::Error::other("disk full"),
        ));
        assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!api.message.contains("/secret/path"));
    }

    #[test]
    fn empty_upload_range_is_zero_zero() {
        assert_eq!(upload_range(0), "0-0");
        assert_eq!(upload_range(1), "0-0");
        assert_eq!(upload_range(100), "0-99");
    }
}
