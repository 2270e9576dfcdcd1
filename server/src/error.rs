//! The one error type of the registry core: every failure a storage backend or service can
//! report, each tied to an OCI error code. HTTP statuses are chosen by the HTTP layer from
//! [`Error::code`] and the variant, so this module knows nothing of HTTP.

use std::time::Duration;

use quayside_spec::grammar::{Digest, GrammarError, RepoName};

/// Shorthand used across storage and services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A registry failure with enough context to tell the client what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {digest} is not known to this registry; push it before referring to it")]
    BlobUnknown { digest: Digest },

    #[error("blob {digest} is not part of repository {repository}; push or mount it there first")]
    BlobNotInRepository {
        repository: RepoName,
        digest: Digest,
    },

    #[error("upload {session} is invalid: {reason}; start a new upload")]
    BlobUploadInvalid { session: String, reason: String },

    #[error(
        "chunk for upload {session} starts at byte {given} but the upload has {expected} bytes; \
         ask for the upload status and resume from there"
    )]
    ChunkOutOfOrder {
        session: String,
        expected: u64,
        given: u64,
    },

    #[error("upload {session} is unknown, finished, cancelled or expired; start a new upload")]
    BlobUploadUnknown { session: String },

    #[error("digest {value:?} is invalid: {reason}")]
    DigestInvalid { value: String, reason: String },

    #[error(
        "content digest is {actual}, not the expected {expected}; the data was not stored, \
         check the data and the digest and push again"
    )]
    DigestMismatch { expected: Digest, actual: Digest },

    #[error("manifest in {repository} references {digest}, which is not in the repository; push it first")]
    ManifestBlobUnknown {
        repository: RepoName,
        digest: Digest,
    },

    #[error("manifest is invalid: {reason}")]
    ManifestInvalid { reason: String },

    #[error("manifest {reference} is not known in repository {repository}")]
    ManifestUnknown {
        repository: RepoName,
        reference: String,
    },

    #[error("manifest is {size} bytes, over the {limit}-byte limit; split it or use an index")]
    ManifestTooLarge { size: u64, limit: u64 },

    #[error("repository name {value:?} is invalid: {reason}")]
    NameInvalid { value: String, reason: String },

    #[error("repository {repository} is not known to this registry")]
    NameUnknown { repository: RepoName },

    #[error(
        "content is {actual} bytes, not the expected {expected}; nothing was stored, push again"
    )]
    SizeInvalid { expected: u64, actual: u64 },

    #[error(
        "byte range {requested} cannot be served from a blob of {size} bytes; ask for a range \
         inside the blob"
    )]
    RangeNotSatisfiable { requested: String, size: u64 },

    #[error("authentication required: {reason}")]
    Unauthorized { reason: String },

    #[error("access denied: {reason}")]
    Denied { reason: String },

    #[error("unsupported: {what}")]
    Unsupported { what: String },

    #[error("too many requests; retry later")]
    TooManyRequests { retry_after: Option<Duration> },

    #[error("storage I/O failed while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("internal error while {context}: {source}")]
    Internal {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// The OCI error code for the envelope. Failures of the registry itself (not the
    /// client's request) have no OCI code and report `UNKNOWN`, as Distribution does.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BlobUnknown { .. } | Error::BlobNotInRepository { .. } => "BLOB_UNKNOWN",
            Error::BlobUploadInvalid { .. } | Error::ChunkOutOfOrder { .. } => {
                "BLOB_UPLOAD_INVALID"
            }
            Error::BlobUploadUnknown { .. } => "BLOB_UPLOAD_UNKNOWN",
            Error::DigestInvalid { .. } | Error::DigestMismatch { .. } => "DIGEST_INVALID",
            Error::ManifestBlobUnknown { .. } => "MANIFEST_BLOB_UNKNOWN",
            Error::ManifestInvalid { .. } => "MANIFEST_INVALID",
            Error::ManifestUnknown { .. } => "MANIFEST_UNKNOWN",
            Error::NameInvalid { .. } => "NAME_INVALID",
            Error::NameUnknown { .. } => "NAME_UNKNOWN",
            Error::SizeInvalid { .. }
            | Error::ManifestTooLarge { .. }
            | Error::RangeNotSatisfiable { .. } => "SIZE_INVALID",
            Error::Unauthorized { .. } => "UNAUTHORIZED",
            Error::Denied { .. } => "DENIED",
            Error::Unsupported { .. } => "UNSUPPORTED",
            Error::TooManyRequests { .. } => "TOOMANYREQUESTS",
            Error::Io { .. } | Error::Internal { .. } => "UNKNOWN",
        }
    }

    /// True for failures of the registry rather than of the request (log them, answer 5xx).
    pub fn is_internal(&self) -> bool {
        matches!(self, Error::Io { .. } | Error::Internal { .. })
    }

    /// True when the failure is the storage being full (`ENOSPC`, or a quota): not a fault
    /// of the request, but nothing a retry fixes until space is freed, so it is told apart
    /// (`507`) from other failures. Looks through wrapped causes (the metadata database's
    /// errors carry the I/O error inside).
    pub fn is_storage_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = match self {
            Error::Io { source, .. } => Some(source),
            Error::Internal { source, .. } => Some(source.as_ref()),
            _ => None,
        };
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) {
                    return true;
                }
            }
            cause = error.source();
        }
        false
    }

    /// An I/O failure with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Any other internal failure with what was being done.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Internal {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// Grammar failures become the code the spec assigns to the malformed part.
impl From<GrammarError> for Error {
    fn from(e: GrammarError) -> Error {
        let reason = e.to_string();
        match e {
            GrammarError::InvalidName { value, .. } => Error::NameInvalid { value, reason },
            GrammarError::InvalidDigest { value, .. } => Error::DigestInvalid { value, reason },
            GrammarError::UnsupportedAlgorithm { .. } => Error::Unsupported { what: reason },
            GrammarError::InvalidTag { .. } | GrammarError::InvalidReference { .. } => {
                Error::ManifestInvalid { reason }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar_errors_map_to_the_code_of_the_malformed_part() {
        let name = "A".parse::<RepoName>().unwrap_err();
        assert_eq!(Error::from(name).code(), "NAME_INVALID");
        let digest = "sha256:xyz".parse::<Digest>().unwrap_err();
        assert_eq!(Error::from(digest).code(), "DIGEST_INVALID");
        let alg = Digest::parse_supported("md5:abc").unwrap_err();
        assert_eq!(Error::from(alg).code(), "UNSUPPORTED");
    }

    #[test]
    fn messages_name_the_context_and_the_remedy() {
        let e = Error::ChunkOutOfOrder {
            session: "abc".into(),
            expected: 10,
            given: 20,
        };
        assert_eq!(e.code(), "BLOB_UPLOAD_INVALID");
        let msg = e.to_string();
        assert!(
            msg.contains("abc") && msg.contains("10") && msg.contains("20"),
            "{msg}"
        );
        assert!(msg.contains("resume"), "{msg}");
        let io = Error::io("writing a blob", std::io::Error::other("disk full"));
        assert!(io.is_internal());
        assert_eq!(io.code(), "UNKNOWN");
        assert!(io.to_string().contains("writing a blob"));
        assert!(!io.is_storage_full());
    }

    #[test]
    fn a_full_disk_is_told_apart_even_when_wrapped() {
        let enospc = || std::io::Error::from_raw_os_error(28);
        assert!(Error::io("writing upload data", enospc()).is_storage_full());
        // As the metadata database reports it: its own error around the I/O error.
        #[derive(Debug, thiserror::Error)]
        #[error("storage error")]
        struct Wrapper(#[source] std::io::Error);
        assert!(Error::internal("linking a blob", Wrapper(enospc())).is_storage_full());
        let other = Error::internal("linking a blob", Wrapper(std::io::Error::other("x")));
        assert!(!other.is_storage_full());
        assert!(!Error::Unsupported { what: "x".into() }.is_storage_full());
    }
}
