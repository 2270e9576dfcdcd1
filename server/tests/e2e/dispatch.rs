//! The generated dispatcher, in process: how it enforces the spec before the implementation
//! is called, and how every answer is rendered.

use crate::memory::{sha256, MemoryRegistry, Settings};
use bytes::Bytes;
use dropshot::Body;
use http::{Method, Request, StatusCode};
use quayside_server::generated::dispatch;
use quayside_server::http::runtime::read_body;
use serde_json::Value;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error answer in the OCI envelope with `code`.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["errors"][0]["code"], code, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(
            self.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
    }
}

pub async fn send(
    registry: &MemoryRegistry,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.into()).expect("request");
    let response = dispatch(registry, request, None).await;
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: read_body(body).await.expect("body"),
    }
}

fn manifest(size_hint: usize) -> Vec<u8> {
    let padding = "x".repeat(size_hint);
    format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[],"annotations":{{"pad":"{padding}"}}}}"#).into_bytes()
}

#[tokio::test]
async fn every_answer_carries_the_api_version_header() {
    let registry = MemoryRegistry::default();
    let ok = send(&registry, Method::GET, "/v2/", &[], Body::empty()).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let missing = send(
        &registry,
        Method::GET,
        "/v2/a/manifests/latest",
        &[],
        Body::empty(),
    )
    .await;
    missing.assert_error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn malformed_digest_in_path_is_400_digest_invalid() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::GET,
        "/v2/a/blobs/sha256",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    assert_eq!(answer.json()["errors"][0]["detail"]["parameter"], "digest");
}

#[tokio::test]
async fn invalid_name_is_400_name_invalid() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::GET,
        "/v2/UPPER/tags/list",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "NAME_INVALID");
    assert_eq!(answer.json()["errors"][0]["detail"]["name"], "UPPER");
}

#[tokio::test]
async fn percent_encoded_slash_is_400_name_invalid() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::GET,
        "/v2/library%2Falpine/tags/list",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "NAME_INVALID");
}

#[tokio::test]
async fn malformed_reference_is_manifest_invalid_unless_it_looks_like_a_digest() {
    let registry = MemoryRegistry::default();
    let tag = send(
        &registry,
        Method::GET,
        "/v2/a/manifests/-tag",
        &[],
        Body::empty(),
    )
    .await;
    tag.assert_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID");
    let digest = send(
        &registry,
        Method::GET,
        "/v2/a/manifests/sha256:",
        &[],
        Body::empty(),
    )
    .await;
    digest.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn non_ascii_digits_in_a_header_are_rejected_not_ignored() {
    let registry = MemoryRegistry::default();
    let start = send(
        &registry,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    let location = start.header("location").expect("location").to_string();
    // Arabic-Indic digits: `\d` in the `regex` crate would take them, JSON Schema's does not;
    // and a header that is not ASCII must not pass as absent.
    let range = http::HeaderValue::from_bytes("\u{0660}-\u{0664}".as_bytes()).expect("obs-text");
    let request = Request::builder()
        .method(Method::PATCH)
        .uri(&location)
        .header("content-range", range)
        .body(Body::from(Bytes::from_static(b"hello")))
        .expect("request");
    let response = dispatch(&registry, request, None).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let body = read_body(response.into_body()).await.expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::PATCH,
        "/v2/a/manifests/latest",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
    assert_eq!(answer.header("allow"), Some("GET, HEAD, PUT, DELETE"));
}

#[tokio::test]
async fn unknown_path_is_404_in_the_envelope() {
    let registry = MemoryRegistry::default();
    let answer = send(&registry, Method::GET, "/v2/a/b", &[], Body::empty()).await;
    answer.assert_error(StatusCode::NOT_FOUND, "UNSUPPORTED");
}

#[tokio::test]
async fn upload_complete_without_digest_is_400_digest_invalid() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::PUT,
        "/v2/a/blobs/uploads/s0",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
}

#[tokio::test]
async fn non_numeric_page_size_is_rejected() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::GET,
        "/v2/a/tags/list?n=many",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["errors"][0]["detail"]["parameter"], "n");
}

#[tokio::test]
async fn manifest_with_undeclared_content_type_is_415() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::PUT,
        "/v2/a/manifests/v1",
        &[("content-type", "text/plain")],
        manifest(0),
    )
    .await;
    answer.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED");
}

#[tokio::test]
async fn manifest_of_4_mib_is_accepted_by_default() {
    let registry = MemoryRegistry::default();
    let mut body = manifest(0);
    let target = 4 * 1024 * 1024;
    body = manifest(target - body.len());
    assert_eq!(body.len(), target);
    let answer = send(
        &registry,
        Method::PUT,
        "/v2/a/manifests/big",
        &[("content-type", OCI_MANIFEST)],
        body.clone(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    assert_eq!(
        answer.header("docker-content-digest"),
        Some(sha256(&body).as_str())
    );
}

#[tokio::test]
async fn manifest_over_the_configured_limit_is_413() {
    let registry = MemoryRegistry::with(Settings {
        manifest_limit: Some(1000),
        ..Default::default()
    });
    let body = manifest(2000);
    // Without Content-Length (streamed), the limit is found while reading.
    let stream = futures::stream::iter(
        body.chunks(300)
            .map(|c| Ok::<_, std::io::Error>(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect::<Vec<_>>(),
    );
    let answer = send(
        &registry,
        Method::PUT,
        "/v2/a/manifests/big",
        &[("content-type", OCI_MANIFEST)],
        Body::wrap(http_body_util::StreamBody::new(stream)),
    )
    .await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID");
    // With Content-Length, before reading.
    let len = body.len().to_string();
    let answer = send(
        &registry,
        Method::PUT,
        "/v2/a/manifests/big",
        &[("content-type", OCI_MANIFEST), ("content-length", &len)],
        body,
    )
    .await;
    answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID");
}

#[tokio::test]
async fn chunked_upload_streams_and_out_of_order_chunk_is_416() {
    let registry = MemoryRegistry::default();
    let start = send(
        &registry,
        Method::POST,
        "/v2/a/b/blobs/uploads/",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let location = start.header("location").expect("location").to_string();
    let first = send(
        &registry,
        Method::PATCH,
        &location,
        &[("content-range", "0-4")],
        Bytes::from_static(b"hello"),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), Some("0-4"));
    let wrong = send(
        &registry,
        Method::PATCH,
        &location,
        &[("content-range", "2-6")],
        Bytes::from_static(b"world"),
    )
    .await;
    wrong.assert_error(StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID");
    let digest = sha256(b"hello world");
    let done = send(
        &registry,
        Method::PUT,
        &format!("{location}?digest={digest}"),
        &[],
        Bytes::from_static(b" world"),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{:?}", done.body);
    let got = send(
        &registry,
        Method::GET,
        &format!("/v2/a/b/blobs/{digest}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(got.body, Bytes::from_static(b"hello world"));
}

#[tokio::test]
async fn repeated_tag_query_reaches_the_implementation_in_order() {
    let registry = MemoryRegistry::default();
    let body = manifest(0);
    let digest = sha256(&body);
    let answer = send(
        &registry,
        Method::PUT,
        &format!("/v2/a/manifests/{digest}?tag=one&tag=two"),
        &[("content-type", OCI_MANIFEST)],
        body,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let tags: Vec<_> = answer
        .headers
        .get_all("oci-tag")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(tags, ["one", "two"]);
    let invalid = send(
        &registry,
        Method::PUT,
        &format!("/v2/a/manifests/{digest}?tag=one&tag=-bad"),
        &[("content-type", OCI_MANIFEST)],
        manifest(0),
    )
    .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.json()["errors"][0]["detail"]["parameter"], "tag");
}

#[tokio::test]
async fn authorize_hook_answers_401_with_challenge_before_anything_else() {
    let registry = MemoryRegistry::with(Settings {
        require_token: Some("secret".into()),
        ..Default::default()
    });
    // Even an invalid digest is not looked at before the caller is authenticated.
    let answer = send(
        &registry,
        Method::GET,
        "/v2/a/blobs/nonsense",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(r#"Bearer realm="https://auth.example/token",service="quayside""#)
    );
    let allowed = send(
        &registry,
        Method::GET,
        "/v2/",
        &[("authorization", "Bearer secret")],
        Body::empty(),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK);
}

#[tokio::test]
async fn head_blob_declares_length_without_body() {
    let registry = MemoryRegistry::default();
    let digest = sha256(b"abc");
    let put = send(
        &registry,
        Method::POST,
        &format!("/v2/a/blobs/uploads/?digest={digest}"),
        &[("content-type", "application/octet-stream")],
        Bytes::from_static(b"abc"),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    let head = send(
        &registry,
        Method::HEAD,
        &format!("/v2/a/blobs/{digest}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("3"));
    assert_eq!(
        head.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn short_sha256_digest_is_digest_invalid_though_it_matches_the_general_pattern() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::GET,
        "/v2/a/blobs/sha256:abc",
        &[],
        Body::empty(),
    )
    .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
    let message = answer.json()["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("64"), "{message}");
}

#[tokio::test]
async fn content_type_parameters_are_dropped_from_the_media_type() {
    let registry = MemoryRegistry::default();
    let body = manifest(0);
    let with_charset = format!("{OCI_MANIFEST}; charset=utf-8");
    let put = send(
        &registry,
        Method::PUT,
        "/v2/a/manifests/v1",
        &[("content-type", &with_charset)],
        body,
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{:?}", put.body);
    let get = send(
        &registry,
        Method::GET,
        "/v2/a/manifests/v1",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(get.header("content-type"), Some(OCI_MANIFEST));
}

#[tokio::test]
async fn empty_post_labelled_as_a_form_still_starts_an_upload() {
    let registry = MemoryRegistry::default();
    let answer = send(
        &registry,
        Method::POST,
        "/v2/a/blobs/uploads/",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "0"),
        ],
        Body::empty(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{:?}", answer.body);
}
