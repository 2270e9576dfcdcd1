//! `/v2/`, routing failures and the memory backend.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn v2_check_is_200_with_api_version_header() {
    let registry = TestRegistry::fs().await;
    let response = registry.get("/v2/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(response.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn unknown_endpoint_is_404_in_the_envelope() {
    let registry = TestRegistry::fs().await;
    let response = registry.get("/v2/library/alpine/nothing/here").await;
    expect_error(response, StatusCode::NOT_FOUND, "UNSUPPORTED").await;
}

#[tokio::test]
async fn paths_outside_v2_are_404_in_the_envelope_too() {
    let registry = TestRegistry::fs().await;
    for path in ["/", "/favicon.ico", "/v1/_ping", "/v2x/"] {
        let response = registry.get(path).await;
        assert_eq!(
            header(&response, "docker-distribution-api-version"),
            "registry/2.0",
            "{path}"
        );
        expect_error(response, StatusCode::NOT_FOUND, "UNSUPPORTED").await;
    }
    // `/v2` without its slash is still the version check.
    assert_eq!(registry.get("/v2").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn methods_outside_the_spec_are_405_in_the_envelope() {
    let registry = TestRegistry::fs().await;
    for method in [reqwest::Method::OPTIONS, reqwest::Method::TRACE] {
        let response = registry
            .client
            .request(method.clone(), registry.url("/v2/"))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&response, "allow"), "GET, HEAD", "{method}");
        expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
}

/// HEAD is GET without the content (RFC 9110), also where the spec lists only GET.
#[tokio::test]
async fn head_answers_as_get_does_without_the_body() {
    let registry = TestRegistry::fs().await;
    registry.push_image("library/alpine", "3.20").await;
    for path in [
        "/v2/",
        "/v2/library/alpine/tags/list",
        "/v2/library/alpine/tags/list?n=1",
        "/v2/_catalog",
    ] {
        let get = registry.get(path).await;
        let head = registry.head(path).await;
        assert_eq!(head.status(), get.status(), "{path}");
        assert_eq!(get.status(), StatusCode::OK, "{path}");
        for name in [
            "content-type",
            "content-length",
            "link",
            "docker-distribution-api-version",
        ] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{path}: {name}"
            );
        }
        assert!(head.bytes().await.unwrap().is_empty(), "{path}");
        assert!(!get.bytes().await.unwrap().is_empty(), "{path}");
    }
    // An unknown repository: the same error status, still without a body.
    let head = registry.head("/v2/nobody/tags/list").await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let registry = TestRegistry::fs().await;
    let response = registry
        .client
        .post(registry.url("/v2/library/alpine/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "allow"), "GET, HEAD");
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
}

#[tokio::test]
async fn memory_backend_serves_a_pushed_image() {
    let registry = TestRegistry::memory().await;
    let (manifest, digest) = registry.push_image("mem/app", "v1").await;
    let response = registry.get("/v2/mem/app/manifests/v1").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    assert_eq!(response.bytes().await.unwrap(), manifest);
}

#[tokio::test]
async fn memory_backend_runs_chunked_uploads_and_refuses_gaps() {
    let registry = TestRegistry::memory().await;
    let start = registry
        .client
        .post(registry.url("/v2/mem/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = header(&start, "location").to_owned();
    let chunk = |range: &'static str, body: &'static [u8]| {
        registry
            .client
            .patch(registry.url(&location))
            .header("content-range", range)
            .body(body)
            .send()
    };
    assert_eq!(
        chunk("0-2", b"abc").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let gap = chunk("5-7", b"fgh").await.unwrap();
    expect_error(
        gap,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
    )
    .await;
    assert_eq!(
        chunk("3-4", b"de").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let digest = sha256(b"abcde");
    let done = registry
        .client
        .put(registry.url(&format!("{location}?digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::CREATED);
    let get = registry.get(&format!("/v2/mem/app/blobs/{digest}")).await;
    assert_eq!(get.bytes().await.unwrap(), &b"abcde"[..]);
    let deleted = registry
        .delete(&format!("/v2/mem/app/blobs/{digest}"))
        .await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
}
