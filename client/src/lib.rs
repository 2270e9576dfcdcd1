//! The Quayside client SDK: a typed client for the registry API, generated from
//! `spec/openapi.yaml` by `quayside-codegen` (progenitor) and committed, so building it
//! needs no generator.
//!
//! ```no_run
//! # async fn demo() -> Result<(), quayside_client::Error<quayside_client::types::ErrorEnvelope>> {
//! let client = quayside_client::Client::new("http://127.0.0.1:5000");
//! let tags = client.tag_list().name("library/alpine").send().await?;
//! println!("{:?}", tags.into_inner().tags);
//! # Ok(())
//! # }
//! ```
//!
//! Every operation is a builder named by its operationId (`client.manifest_put()`), whose
//! setters validate their input against the spec's grammar and whose `send()` returns a
//! [`ResponseValue`] (status, headers, body). Binary bodies (blobs, manifests) stream both
//! ways: pass anything that converts into a [`reqwest::Body`] and read a [`ByteStream`].
//! Manifests travel as bytes under their own media type (`.content_type(…)` on a push,
//! `.accept(…)` on a pull), because their digest is the digest of the exact bytes.
//!
//! Errors: a documented error status gives [`Error::ErrorResponse`] holding the parsed
//! `{"errors":[…]}` envelope (codes are plain strings, so codes newer than this spec still
//! parse); a status the spec does not list, or one documented without a body (such as a
//! `404` from `GET /v2/`), gives [`Error::UnexpectedResponse`] with the raw response.
//! `Client::new` allows 600 s per request; build a `reqwest::Client` yourself and use
//! `Client::new_with_client` for other limits (long blob transfers, proxies, TLS roots).

//!
//! For whole images rather than single calls, use [`sdk`]: references
//! (`host/repo:tag@digest`, `oci:DIR:tag`), a [`sdk::registry::Registry`] handle that
//! handles auth and verifies every byte it moves, OCI image layouts, and
//! [`sdk::copy::copy`] between any two of them. The `dist` binary is a CLI over it.

#[allow(
    clippy::all,
    clippy::pedantic,
    unused_mut,
    unused_imports,
    missing_docs,
    rustdoc::all
)]
pub mod generated;

pub mod sdk;

pub use generated::{builder, types, ByteStream, Client, ClientInfo, Error, ResponseValue};
pub use reqwest;

/// Percent-encodes a path parameter that spans several segments (a repository name such as
/// `library/alpine`): each segment is encoded like any other path parameter, but the `/`
/// between segments is sent as it is, as the distribution spec requires. The generated
/// client calls this for every parameter marked `x-oci-multi-segment` in the spec.
pub fn encode_multi_segment_path(value: &str) -> String {
    value
        .split('/')
        .map(progenitor_client::encode_path)
        .collect::<Vec<_>>()
        .join("/")
}

/// The upload session id at the end of an upload `Location` (absolute or relative), for the
/// `session_id` parameter of the `upload_*` operations. Quayside's locations are
/// `/v2/<name>/blobs/uploads/<id>`; a location carrying a query (some registries keep state
/// there) cannot be expressed as a session id, so it gives `None`.
pub fn session_id_from_location(location: &str) -> Option<&str> {
    if location.contains('?') {
        return None;
    }
    let path = location.trim_end_matches('/');
    let (before, id) = path.rsplit_once('/')?;
    (before.ends_with("/blobs/uploads") && !id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::{encode_multi_segment_path, session_id_from_location};

    #[test]
    fn session_id_is_the_last_segment_of_an_upload_location() {
        let id = session_id_from_location;
        assert_eq!(
            id("/v2/library/alpine/blobs/uploads/6f1b-0a3e"),
            Some("6f1b-0a3e")
        );
        assert_eq!(id("https://r.example/v2/a/blobs/uploads/x1/"), Some("x1"));
        assert_eq!(id("/v2/a/blobs/uploads/x1?_state=abc"), None);
        assert_eq!(id("/v2/a/blobs/sha256:00"), None);
        assert_eq!(id("/v2/a/blobs/uploads/"), None);
    }

    #[test]
    fn multi_segment_path_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(
            encode_multi_segment_path("library/alpine"),
            "library/alpine"
        );
        assert_eq!(encode_multi_segment_path("a b/c?d%"), "a%20b/c%3Fd%25");
        assert_eq!(encode_multi_segment_path("alpine"), "alpine");
    }
}
