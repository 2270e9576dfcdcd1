//! Upload sessions: POST/PATCH/GET/PUT/DELETE, monolithic pushes, sha512, mounts, restarts
//! and expiry.

use std::time::{Duration, Instant};

use crate::common::*;
use quayside_server::registry::Settings;
use reqwest::StatusCode;

/// Opens a session; returns its Location.
async fn open_session(registry: &TestRegistry, name: &str, query: &str) -> String {
    let response = registry
        .client
        .post(registry.url(&format!("/v2/{name}/blobs/uploads/{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&response, "range"), "0-0");
    let location = header(&response, "location").to_owned();
    let uuid = header(&response, "docker-upload-uuid");
    assert_eq!(
        location,
        format!("/v2/{name}/blobs/uploads/{uuid}"),
        "Location names the session"
    );
    location
}

async fn patch(
    registry: &TestRegistry,
    location: &str,
    range: Option<&str>,
    body: &[u8],
) -> reqwest::Response {
    let mut request = registry
        .client
        .patch(registry.url(location))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec());
    if let Some(range) = range {
        request = request.header("content-range", range);
    }
    request.send().await.unwrap()
}

async fn put(
    registry: &TestRegistry,
    location: &str,
    digest: &str,
    body: &[u8],
) -> reqwest::Response {
    registry
        .client
        .put(registry.url(&format!("{location}?digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn status_range(registry: &TestRegistry, location: &str) -> String {
    let response = registry.get(location).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&response, "location"), location);
    header(&response, "range").to_owned()
}

#[tokio::test]
async fn post_then_put_monolithic_is_201_and_visible() {
    let registry = TestRegistry::fs().await;
    let data = b"two requests".to_vec();
    let digest = sha256(&data);
    let location = open_session(&registry, "r", "").await;
    let response = put(&registry, &location, &digest, &data).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/r/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let get = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(get.bytes().await.unwrap(), data);
    // The session is over.
    let after = registry.get(&location).await;
    expect_error(after, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn monolithic_post_is_201_with_location_and_digest() {
    let registry = TestRegistry::fs().await;
    let data = b"one request";
    let digest = sha256(data);
    let response = registry
        .client
        .post(registry.url(&format!("/v2/a/b/c/blobs/uploads/?digest={digest}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/a/b/c/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
}

#[tokio::test]
async fn monolithic_post_with_wrong_digest_is_400_and_stores_nothing() {
    let registry = TestRegistry::fs().await;
    let claimed = sha256(b"something else");
    let response = registry
        .client
        .post(registry.url(&format!("/v2/r/blobs/uploads/?digest={claimed}")))
        .body(b"actual bytes".to_vec())
        .send()
        .await
        .unwrap();
    let body = expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(body["errors"][0]["detail"]["expected"], claimed);
    let get = registry.head(&format!("/v2/r/blobs/{claimed}")).await;
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chunked_upload_with_content_range_reports_progress() {
    let registry = TestRegistry::fs().await;
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let digest = sha256(&data);
    let location = open_session(&registry, "r", "").await;

    let first = patch(&registry, &location, Some("0-999"), &data[..1000]).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&first, "range"), "0-999");
    assert_eq!(header(&first, "location"), location);
    assert_eq!(status_range(&registry, &location).await, "0-999");

    let second = patch(&registry, &location, Some("1000-2499"), &data[1000..2500]).await;
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&second, "range"), "0-2499");

    let done = registry
        .client
        .put(registry.url(&format!("{location}?digest={digest}")))
        .header("content-range", "2500-2999")
        .body(data[2500..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    let get = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(get.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn chunk_out_of_order_is_416_and_leaves_the_upload_unchanged() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let ok = patch(&registry, &location, Some("0-3"), b"abcd").await;
    assert_eq!(ok.status(), StatusCode::ACCEPTED);

    let gap = patch(&registry, &location, Some("10-13"), b"wxyz").await;
    assert_eq!(header(&gap, "range"), "0-3");
    assert_eq!(header(&gap, "location"), location);
    let body = expect_error(
        gap,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    assert_eq!(body["errors"][0]["detail"]["expected"], 4);
    assert_eq!(status_range(&registry, &location).await, "0-3");
}

#[tokio::test]
async fn repeated_chunk_is_416() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    assert_eq!(
        patch(&registry, &location, Some("0-3"), b"abcd")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let again = patch(&registry, &location, Some("0-3"), b"abcd").await;
    expect_error(
        again,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    assert_eq!(status_range(&registry, &location).await, "0-3");
}

#[tokio::test]
async fn content_range_disagreeing_with_length_is_refused_before_writing() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let bad = patch(&registry, &location, Some("0-99"), b"short").await;
    expect_error(bad, StatusCode::BAD_REQUEST, "SIZE_INVALID").await;
    let backwards = patch(&registry, &location, Some("5-1"), b"x").await;
    expect_error(
        backwards,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    assert_eq!(status_range(&registry, &location).await, "0-0");
}

#[tokio::test]
async fn malformed_content_range_is_416_blob_upload_invalid() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let response = patch(&registry, &location, Some("bytes 0-3/4"), b"abcd").await;
    expect_error(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    assert_eq!(status_range(&registry, &location).await, "0-0");
}

#[tokio::test]
async fn streamed_patches_without_content_range_append() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let chunks: [&[u8]; 3] = [b"docker ", b"streams ", b"chunks"];
    let mut sent = 0;
    for chunk in chunks {
        let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(chunk.to_vec())]);
        let response = registry
            .client
            .patch(registry.url(&location))
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        sent += chunk.len();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&response, "range"), format!("0-{}", sent - 1));
    }
    let digest = sha256(b"docker streams chunks");
    let done = put(&registry, &location, &digest, b"").await;
    assert_eq!(done.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn put_with_wrong_digest_is_400_and_ends_the_session() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    patch(&registry, &location, None, b"data").await;
    let wrong = sha256(b"other");
    let response = put(&registry, &location, &wrong, b"").await;
    expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let head = registry
        .head(&format!("/v2/r/blobs/{}", sha256(b"data")))
        .await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let status = registry.get(&location).await;
    expect_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn put_without_digest_is_400() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let response = registry
        .client
        .put(registry.url(&location))
        .body(b"data".to_vec())
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code, "DIGEST_INVALID");
}

#[tokio::test]
async fn sha512_upload_with_digest_algorithm() {
    let registry = TestRegistry::fs().await;
    let data = b"hashed with sha512".to_vec();
    let digest = sha512(&data);
    let location = open_session(&registry, "r", "?digest-algorithm=sha512").await;
    patch(
        &registry,
        &location,
        Some(&format!("0-{}", data.len() - 1)),
        &data,
    )
    .await;
    let done = put(&registry, &location, &digest, b"").await;
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(header(&done, "docker-content-digest"), digest);
    let get = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().await.unwrap(), data);
}

#[tokio::test]
async fn sha512_monolithic_push() {
    let registry = TestRegistry::fs().await;
    let data = b"sha512 in one go";
    let digest = sha512(data);
    let response = registry
        .client
        .post(registry.url(&format!("/v2/r/blobs/uploads/?digest={digest}")))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "docker-content-digest"), digest);
}

#[tokio::test]
async fn unsupported_digest_algorithm_is_400_digest_invalid() {
    let registry = TestRegistry::fs().await;
    let response = registry
        .client
        .post(registry.url("/v2/r/blobs/uploads/?digest-algorithm=md5"))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn cancel_is_204_and_the_session_is_gone() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    patch(&registry, &location, None, b"partial").await;
    let cancel = registry.delete(&location).await;
    assert_eq!(cancel.status(), StatusCode::NO_CONTENT);
    let status = registry.get(&location).await;
    expect_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let again = registry.delete(&location).await;
    expect_error(again, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn unknown_session_is_404_blob_upload_unknown() {
    let registry = TestRegistry::fs().await;
    for id in ["0123456789abcdef0123456789abcdef", "not-ours", "..."] {
        let location = format!("/v2/r/blobs/uploads/{id}");
        let status = registry.get(&location).await;
        expect_error(status, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
        let chunk = patch(&registry, &location, None, b"x").await;
        expect_error(chunk, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    }
}

#[tokio::test]
async fn mount_from_a_repository_holding_the_blob_is_201() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("source/repo", b"shared layer").await;
    let response = registry
        .client
        .post(registry.url(&format!(
            "/v2/target/repo/blobs/uploads/?mount={digest}&from=source/repo"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/target/repo/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let get = registry
        .get(&format!("/v2/target/repo/blobs/{digest}"))
        .await;
    assert_eq!(get.bytes().await.unwrap(), &b"shared layer"[..]);
}

#[tokio::test]
async fn mount_that_cannot_be_done_falls_back_to_a_session() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("source", b"only in source").await;
    let unknown = sha256(b"never pushed");
    for query in [
        format!("?mount={unknown}&from=source"),
        format!("?mount={digest}&from=elsewhere"),
        format!("?mount={digest}"),
    ] {
        let location = open_session(&registry, "target", &query).await;
        assert_eq!(status_range(&registry, &location).await, "0-0");
    }
    let get = registry.head(&format!("/v2/target/blobs/{digest}")).await;
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn upload_session_survives_a_restart() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    patch(&registry, &location, Some("0-4"), b"hello").await;
    let registry = registry.restart(Settings::default()).await;
    assert_eq!(status_range(&registry, &location).await, "0-4");
    let more = patch(&registry, &location, Some("5-10"), b" world").await;
    assert_eq!(more.status(), StatusCode::ACCEPTED);
    let digest = sha256(b"hello world");
    assert_eq!(
        put(&registry, &location, &digest, b"").await.status(),
        StatusCode::CREATED
    );
    let get = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(get.bytes().await.unwrap(), &b"hello world"[..]);
}

#[tokio::test]
async fn idle_upload_sessions_expire() {
    let settings = Settings {
        upload_expiry: Duration::ZERO,
        sweep_interval: Duration::from_millis(20),
        ..Settings::default()
    };
    let registry = TestRegistry::fs_with(settings).await;
    let location = open_session(&registry, "r", "").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = registry.get(&location).await;
        if response.status() == StatusCode::NOT_FOUND {
            expect_error(response, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
            break;
        }
        assert!(Instant::now() < deadline, "session never expired");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn body_cut_short_leaves_the_upload_unchanged() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    let addr = registry.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\nonly ten b"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BLOB_UPLOAD_INVALID"), "{answer}");
    assert_eq!(status_range(&registry, &location).await, "0-0");
    let ok = patch(&registry, &location, Some("0-3"), b"good").await;
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn final_chunk_out_of_order_is_416_and_the_upload_can_resume() {
    let registry = TestRegistry::fs().await;
    let location = open_session(&registry, "r", "").await;
    patch(&registry, &location, Some("0-3"), b"abcd").await;
    let digest = sha256(b"abcdefgh");
    let wrong = registry
        .client
        .put(registry.url(&format!("{location}?digest={digest}")))
        .header("content-range", "2-5")
        .body(b"efgh".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&wrong, "range"), "0-3");
    expect_error(
        wrong,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    let right = registry
        .client
        .put(registry.url(&format!("{location}?digest={digest}")))
        .header("content-range", "4-7")
        .body(b"efgh".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::CREATED);
}
