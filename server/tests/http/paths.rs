//! Names, tags and path tricks: all refused with the right code before touching storage.

use crate::common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn invalid_names_are_400_name_invalid() {
    let registry = TestRegistry::fs().await;
    // 257 characters: over the 255 cap.
    let long = vec!["a"; 129].join("/");
    for name in ["UPPER", "a__-b", "-lead", "a/", long.as_str()] {
        let response = registry.get(&format!("/v2/{name}/tags/list")).await;
        expect_error(response, StatusCode::BAD_REQUEST, "NAME_INVALID").await;
    }
}

#[tokio::test]
async fn name_of_255_characters_is_accepted() {
    let registry = TestRegistry::fs().await;
    let name = format!("{}/b", "a".repeat(253));
    let digest = registry.push_blob(&name, b"long name").await;
    let get = registry.get(&format!("/v2/{name}/blobs/{digest}")).await;
    assert_eq!(get.status(), StatusCode::OK);
}

#[tokio::test]
async fn encoded_slash_in_a_name_is_refused() {
    let registry = TestRegistry::fs().await;
    registry.push_image("a/b", "v1").await;
    let (status, body) = raw_request(&registry.base, "GET /v2/a%2Fb/manifests/v1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("NAME_INVALID"), "{body}");
}

#[tokio::test]
async fn dot_segments_are_refused() {
    let registry = TestRegistry::fs().await;
    registry.push_image("a/b", "v1").await;
    for path in [
        "GET /v2/a/../b/manifests/v1",
        "GET /v2/a/%2e%2e/b/manifests/v1",
        "GET /v2/../v2/a/b/manifests/v1",
    ] {
        let (status, body) = raw_request(&registry.base, path).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
        assert_ne!(status, 200, "{path}");
    }
}

#[tokio::test]
async fn names_may_contain_endpoint_words() {
    let registry = TestRegistry::fs().await;
    let name = "blobs/manifests/tags/uploads";
    let (manifest, _) = registry.push_image(name, "v1").await;
    let get = registry.get(&format!("/v2/{name}/manifests/v1")).await;
    assert_eq!(get.bytes().await.unwrap(), manifest);
}

#[tokio::test]
async fn invalid_tag_reference_is_400() {
    let registry = TestRegistry::fs().await;
    let too_long = "t".repeat(129);
    for reference in [".hidden", too_long.as_str()] {
        let response = registry
            .get(&format!("/v2/app/manifests/{reference}"))
            .await;
        let (status, _, _) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{reference}");
    }
}
