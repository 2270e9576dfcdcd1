//! The referrers API and `subject` handling on push.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const SIG: &str = "application/vnd.example.signature.v1";
const SBOM: &str = "application/vnd.example.sbom.v1";

#[tokio::test]
async fn referrers_are_listed_and_filtered_by_artifact_type() {
    let registry = TestRegistry::fs().await;
    let (_, subject) = registry.push_image("app", "v1").await;
    let empty = registry.push_blob("app", b"{}").await;
    let sig = artifact(SIG, &empty, &subject, "signed");
    let sbom = artifact(SBOM, &empty, &subject, "sbom");
    for doc in [&sig, &sbom] {
        let put = registry
            .put_manifest("app", &sha256(doc), OCI_MANIFEST, doc)
            .await;
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(header(&put, "oci-subject"), subject);
    }

    let all = registry.get(&format!("/v2/app/referrers/{subject}")).await;
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(header(&all, "content-type"), OCI_INDEX);
    assert!(all.headers().get("oci-filters-applied").is_none());
    let body: Value = all.json().await.unwrap();
    assert_eq!(body["schemaVersion"], 2);
    assert_eq!(body["mediaType"], OCI_INDEX);
    let mut listed: Vec<Value> = body["manifests"].as_array().unwrap().clone();
    listed.sort_by_key(|d| d["artifactType"].as_str().unwrap().to_owned());
    assert_eq!(
        listed,
        vec![
            json!({ "mediaType": OCI_MANIFEST, "digest": sha256(&sbom), "size": sbom.len(),
                    "artifactType": SBOM, "annotations": { "note": "sbom" } }),
            json!({ "mediaType": OCI_MANIFEST, "digest": sha256(&sig), "size": sig.len(),
                    "artifactType": SIG, "annotations": { "note": "signed" } }),
        ]
    );

    let filtered = registry
        .get(&format!("/v2/app/referrers/{subject}?artifactType={SIG}"))
        .await;
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let body: Value = filtered.json().await.unwrap();
    let digests: Vec<&str> = body["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [sha256(&sig)]);
}

#[tokio::test]
async fn referrer_with_dangling_subject_is_accepted() {
    let registry = TestRegistry::fs().await;
    let empty = registry.push_blob("app", b"{}").await;
    let subject = sha256(b"pushed later");
    let sig = artifact(SIG, &empty, &subject, "early");
    let put = registry
        .put_manifest("app", "sig", OCI_MANIFEST, &sig)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "oci-subject"), subject);
    let body: Value = registry
        .get(&format!("/v2/app/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["manifests"][0]["digest"], sha256(&sig));
}

#[tokio::test]
async fn unknown_subject_gets_an_empty_index() {
    let registry = TestRegistry::fs().await;
    let subject = sha256(b"nothing refers to me");
    for name in ["app", "never/pushed"] {
        let response = registry
            .get(&format!("/v2/{name}/referrers/{subject}"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] })
        );
    }
}

#[tokio::test]
async fn deleting_a_referrer_removes_it_from_the_list() {
    let registry = TestRegistry::fs().await;
    let (_, subject) = registry.push_image("app", "v1").await;
    let empty = registry.push_blob("app", b"{}").await;
    let sig = artifact(SIG, &empty, &subject, "gone soon");
    let digest = sha256(&sig);
    registry
        .put_manifest("app", &digest, OCI_MANIFEST, &sig)
        .await;
    let deleted = registry
        .delete(&format!("/v2/app/manifests/{digest}"))
        .await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    let body: Value = registry
        .get(&format!("/v2/app/referrers/{subject}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["manifests"], json!([]));
}

#[tokio::test]
async fn malformed_referrers_digest_is_400() {
    let registry = TestRegistry::fs().await;
    for digest in ["sha256:123", "md5:d41d8cd98f00b204e9800998ecf8427e"] {
        let response = registry.get(&format!("/v2/app/referrers/{digest}")).await;
        expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}
