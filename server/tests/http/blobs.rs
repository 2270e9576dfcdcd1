//! Blob GET, HEAD (with ranges) and DELETE.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn pushed_blob_is_served_with_length_and_digest() {
    let registry = TestRegistry::fs().await;
    let data = b"0123456789abcdef".repeat(1000);
    let digest = registry.push_blob("team/app", &data).await;

    let get = registry.get(&format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(header(&get, "content-length"), data.len().to_string());
    assert_eq!(header(&get, "accept-ranges"), "bytes");
    assert_eq!(get.bytes().await.unwrap(), data);

    let head = registry.head(&format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "docker-content-digest"), digest);
    assert_eq!(header(&head, "content-length"), data.len().to_string());
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn blob_range_is_206_with_content_range() {
    let registry = TestRegistry::fs().await;
    let data: Vec<u8> = (0..=255u8).collect();
    let digest = registry.push_blob("r", &data).await;
    let path = registry.url(&format!("/v2/r/blobs/{digest}"));
    for (range, start, end) in [
        ("bytes=10-19", 10usize, 19usize),
        ("bytes=250-", 250, 255),
        ("bytes=-6", 250, 255),
        ("bytes=200-999", 200, 255),
    ] {
        let response = registry
            .client
            .get(&path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {start}-{end}/256")
        );
        assert_eq!(
            header(&response, "content-length"),
            (end - start + 1).to_string()
        );
        assert_eq!(header(&response, "docker-content-digest"), digest);
        assert_eq!(
            response.bytes().await.unwrap(),
            data[start..=end],
            "{range}"
        );
    }
}

#[tokio::test]
async fn blob_range_outside_the_blob_is_416() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("r", b"short").await;
    let response = registry
        .client
        .get(registry.url(&format!("/v2/r/blobs/{digest}")))
        .header("range", "bytes=5-")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "content-range"), "bytes */5");
    expect_error(response, StatusCode::RANGE_NOT_SATISFIABLE, "SIZE_INVALID").await;
}

#[tokio::test]
async fn malformed_range_header_is_refused() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("r", b"short").await;
    let response = registry
        .client
        .get(registry.url(&format!("/v2/r/blobs/{digest}")))
        .header("range", "lines=1-2")
        .send()
        .await
        .unwrap();
    let (status, _, _) = error_of(response).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn blob_of_another_repository_is_404_blob_unknown() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("one", b"private").await;
    let get = registry.get(&format!("/v2/two/blobs/{digest}")).await;
    let body = expect_error(get, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], digest);
    let head = registry.head(&format!("/v2/two/blobs/{digest}")).await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn malformed_digest_is_400_digest_invalid() {
    let registry = TestRegistry::fs().await;
    for digest in ["sha256:xyz", "sha256:ABCDEF", "nocolon"] {
        let response = registry.get(&format!("/v2/r/blobs/{digest}")).await;
        expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}

#[tokio::test]
async fn unregistered_digest_algorithm_is_400_digest_invalid() {
    let registry = TestRegistry::fs().await;
    let response = registry
        .get("/v2/r/blobs/md5:d41d8cd98f00b204e9800998ecf8427e")
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn blob_delete_is_202_then_404() {
    let registry = TestRegistry::fs().await;
    let digest = registry.push_blob("r", b"to delete").await;
    let other = registry.push_blob("keep", b"to delete").await;
    let response = registry.delete(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let again = registry.delete(&format!("/v2/r/blobs/{digest}")).await;
    expect_error(again, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let gone = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    expect_error(gone, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    // The content stays for the other repository that holds it.
    let kept = registry.get(&format!("/v2/keep/blobs/{other}")).await;
    assert_eq!(kept.status(), StatusCode::OK);
}

#[tokio::test]
async fn blob_delete_when_disabled_is_405_unsupported() {
    let registry = TestRegistry::fs_with(no_delete()).await;
    let digest = registry.push_blob("r", b"stays").await;
    let response = registry.delete(&format!("/v2/r/blobs/{digest}")).await;
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    let still = registry.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(still.status(), StatusCode::OK);
}

#[tokio::test]
async fn manifest_is_also_readable_as_a_blob_of_its_repository() {
    let registry = TestRegistry::fs().await;
    let (manifest, digest) = registry.push_image("app", "v1").await;
    let get = registry.get(&format!("/v2/app/blobs/{digest}")).await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().await.unwrap(), manifest);
    let elsewhere = registry.get(&format!("/v2/other/blobs/{digest}")).await;
    expect_error(elsewhere, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}
