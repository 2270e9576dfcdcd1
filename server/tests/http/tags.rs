//! Tag listing and the catalog: lexical order, `n`, `last`, `Link`.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Pushes one manifest and points every tag in `tags` at it.
async fn tag_all(registry: &TestRegistry, name: &str, tags: &[&str]) {
    let config = registry.push_blob(name, b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    for tag in tags {
        let response = registry
            .put_manifest(name, tag, OCI_MANIFEST, &manifest)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

#[tokio::test]
async fn tags_are_listed_in_lexical_order() {
    let registry = TestRegistry::fs().await;
    tag_all(&registry, "app", &["b", "a", "C", "1.0", "latest"]).await;
    let response = registry.get("/v2/app/tags/list").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("link").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "name": "app", "tags": ["1.0", "C", "a", "b", "latest"] })
    );
}

#[tokio::test]
async fn tag_pages_follow_n_last_and_link() {
    let registry = TestRegistry::fs().await;
    tag_all(&registry, "app", &["a", "b.1_x-y", "c", "d", "e"]).await;

    let first = registry.get("/v2/app/tags/list?n=2").await;
    assert_eq!(
        header(&first, "link"),
        "</v2/app/tags/list?n=2&last=b.1_x-y>; rel=\"next\""
    );
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["tags"], json!(["a", "b.1_x-y"]));

    let second = registry.get("/v2/app/tags/list?n=2&last=b.1_x-y").await;
    assert_eq!(
        header(&second, "link"),
        "</v2/app/tags/list?n=2&last=d>; rel=\"next\""
    );
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["tags"], json!(["c", "d"]));

    let last = registry.get("/v2/app/tags/list?n=2&last=d").await;
    assert!(last.headers().get("link").is_none());
    let body: Value = last.json().await.unwrap();
    assert_eq!(body["tags"], json!(["e"]));

    let after = registry.get("/v2/app/tags/list?last=c").await;
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["tags"], json!(["d", "e"]));
}

#[tokio::test]
async fn n_zero_is_an_empty_list_without_link() {
    let registry = TestRegistry::fs().await;
    tag_all(&registry, "app", &["a", "b"]).await;
    let response = registry.get("/v2/app/tags/list?n=0").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("link").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "name": "app", "tags": [] }));
}

#[tokio::test]
async fn tags_of_unknown_repository_is_404_name_unknown() {
    let registry = TestRegistry::fs().await;
    for path in ["/v2/nobody/tags/list", "/v2/nobody/tags/list?n=0"] {
        let response = registry.get(path).await;
        expect_error(response, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
    }
}

#[tokio::test]
async fn bad_page_size_is_400() {
    let registry = TestRegistry::fs().await;
    tag_all(&registry, "app", &["a"]).await;
    for query in ["n=-1", "n=abc"] {
        let response = registry.get(&format!("/v2/app/tags/list?{query}")).await;
        let (status, _, _) = error_of(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn catalog_lists_repositories_in_pages() {
    let registry = TestRegistry::fs().await;
    for name in ["zeta", "alpha/one", "alpha/two", "mid"] {
        registry.push_blob(name, name.as_bytes()).await;
    }
    let all: Value = registry.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(
        all,
        json!({ "repositories": ["alpha/one", "alpha/two", "mid", "zeta"] })
    );

    let first = registry.get("/v2/_catalog?n=3").await;
    assert_eq!(
        header(&first, "link"),
        "</v2/_catalog?n=3&last=mid>; rel=\"next\""
    );
    let body: Value = first.json().await.unwrap();
    assert_eq!(
        body["repositories"],
        json!(["alpha/one", "alpha/two", "mid"])
    );
    let rest = registry.get("/v2/_catalog?n=3&last=mid").await;
    assert!(rest.headers().get("link").is_none());
    let body: Value = rest.json().await.unwrap();
    assert_eq!(body["repositories"], json!(["zeta"]));
}

#[tokio::test]
async fn last_that_is_not_a_tag_is_400() {
    let registry = TestRegistry::fs().await;
    tag_all(&registry, "app", &["a"]).await;
    let response = registry.get("/v2/app/tags/list?last=.bad").await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "UNSUPPORTED").await;
    assert_eq!(body["errors"][0]["detail"]["parameter"], "last");
}

#[tokio::test]
async fn catalog_n_zero_is_empty_and_bad_n_is_400() {
    let registry = TestRegistry::fs().await;
    registry.push_blob("app", b"x").await;
    let zero = registry.get("/v2/_catalog?n=0").await;
    assert!(zero.headers().get("link").is_none());
    let body: Value = zero.json().await.unwrap();
    assert_eq!(body, json!({ "repositories": [] }));
    let bad = registry.get("/v2/_catalog?n=many").await;
    let (status, _, _) = error_of(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
