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
async fn wrong_method_is_405_with_allow() {
    let registry = TestRegistry::fs().await;
    let response = registry
        .client
        .post(registry.url("/v2/library/alpine/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&response, "allow"), "GET");
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
