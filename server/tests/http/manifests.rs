//! Manifest PUT, GET, HEAD and DELETE for OCI and Docker media types.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn manifest_by_tag_and_by_digest_is_served_byte_for_byte() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let layer = registry.push_blob("app", b"layer").await;
    let manifest = oci_manifest(&config, &[&layer], None);
    let digest = sha256(&manifest);

    let put = registry
        .put_manifest("app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        header(&put, "location"),
        format!("/v2/app/manifests/{digest}")
    );
    assert_eq!(header(&put, "docker-content-digest"), digest);
    assert!(put.headers().get("oci-subject").is_none());

    for reference in ["v1", digest.as_str()] {
        let get = registry
            .get(&format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&get, "docker-content-digest"), digest);
        assert_eq!(header(&get, "content-length"), manifest.len().to_string());
        assert_eq!(get.bytes().await.unwrap(), manifest);

        let head = registry
            .head(&format!("/v2/app/manifests/{reference}"))
            .await;
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&head, "docker-content-digest"), digest);
        assert_eq!(header(&head, "content-length"), manifest.len().to_string());
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn manifest_survives_a_restart() {
    let registry = TestRegistry::fs().await;
    let (manifest, digest) = registry.push_image("app", "v1").await;
    let registry = registry
        .restart(quayside_server::registry::Settings::default())
        .await;
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().await.unwrap(), manifest);
}

#[tokio::test]
async fn put_by_digest_with_tag_parameters_applies_them_and_lists_oci_tag() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let digest = sha256(&manifest);
    let response = registry
        .client
        .put(registry.url(&format!("/v2/app/manifests/{digest}?tag=1.0&tag=latest")))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let tags: Vec<&str> = response
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(tags, ["1.0", "latest"]);
    for tag in ["1.0", "latest"] {
        let get = registry.get(&format!("/v2/app/manifests/{tag}")).await;
        assert_eq!(header(&get, "docker-content-digest"), digest);
    }
}

#[tokio::test]
async fn put_by_wrong_digest_is_400_digest_invalid() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let wrong = sha256(b"not the manifest");
    let response = registry
        .put_manifest("app", &wrong, OCI_MANIFEST, &manifest)
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let get = registry
        .get(&format!("/v2/app/manifests/{}", sha256(&manifest)))
        .await;
    expect_error(get, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn put_by_sha512_digest_stores_under_sha512() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let digest = sha512(&manifest);
    let response = registry
        .put_manifest("app", &digest, OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let get = registry.get(&format!("/v2/app/manifests/{digest}")).await;
    assert_eq!(get.bytes().await.unwrap(), manifest);
}

/// A blob is linked to its repository while its file is made durable, so a crash can leave
/// the link without the file: such a blob counts as missing, for manifests and for reads.
#[tokio::test]
async fn a_link_whose_blob_file_is_gone_counts_as_missing() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let layer = registry.push_blob("app", b"layer lost in a crash").await;
    let hex = layer.trim_start_matches("sha256:");
    let file = registry
        .dir
        .path()
        .join("data/blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    std::fs::remove_file(&file).expect("the blob file is where the store puts it");
    let manifest = oci_manifest(&config, &[&layer], None);
    let response = registry
        .put_manifest("app", "v1", OCI_MANIFEST, &manifest)
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["missing"], json!([layer]));
    let head = registry.head(&format!("/v2/app/blobs/{layer}")).await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    // Pushed again, it is whole and the manifest is accepted.
    assert_eq!(
        registry.push_blob("app", b"layer lost in a crash").await,
        layer
    );
    let response = registry
        .put_manifest("app", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn missing_layer_is_400_manifest_blob_unknown_and_nothing_is_stored() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let missing = sha256(b"never pushed");
    let elsewhere = registry.push_blob("other", b"pushed elsewhere").await;
    let manifest = oci_manifest(&config, &[&missing, &elsewhere], None);
    let response = registry
        .put_manifest("app", "v1", OCI_MANIFEST, &manifest)
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], missing);
    assert_eq!(
        body["errors"][0]["detail"]["missing"],
        json!([missing, elsewhere])
    );
    let get = registry.get("/v2/app/manifests/v1").await;
    expect_error(get, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn layers_with_urls_need_not_be_pushed() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("win", b"{}").await;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config, "size": 2 },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha256(b"foreign"),
            "size": 7,
            "urls": ["https://example.com/foreign.tar.gz"]
        }]
    }))
    .unwrap();
    let response = registry
        .put_manifest("win", "v1", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn invalid_manifests_are_400_manifest_invalid() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let no_config = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []
    }))
    .unwrap();
    let bad_digest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": "sha256:nothex", "size": 2 },
        "layers": []
    }))
    .unwrap();
    let mismatched = oci_manifest(&config, &[], None);
    for (body, content_type) in [
        (b"not json".to_vec(), OCI_MANIFEST),
        (b"{\"schemaVersion\": 2,}".to_vec(), OCI_MANIFEST),
        (no_config, OCI_MANIFEST),
        (bad_digest, OCI_MANIFEST),
        (mismatched, DOCKER_MANIFEST),
    ] {
        let response = registry
            .put_manifest("app", "bad", content_type, &body)
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    }
    let tags = registry.get("/v2/app/tags/list").await;
    let listed: serde_json::Value = tags.json().await.unwrap();
    assert_eq!(listed["tags"], json!([]));
}

#[tokio::test]
async fn schema1_is_stored_byte_for_byte_once_its_layers_exist() {
    let registry = TestRegistry::fs().await;
    let layer = registry.push_blob("app", b"layer").await;
    // Non-canonical spacing on purpose: what goes in must come out.
    let manifest = format!(
        "{{\"schemaVersion\": 1, \"name\": \"app\", \"tag\": \"v1\", \"architecture\": \"amd64\",\n \"fsLayers\": [{{\"blobSum\": \"{layer}\"}}],\n \"history\": [{{\"v1Compatibility\": \"{{}}\"}}]}}"
    )
    .into_bytes();
    let schema1 = "application/vnd.docker.distribution.manifest.v1+json";
    let put = registry.put_manifest("app", "v1", schema1, &manifest).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "docker-content-digest"), sha256(&manifest));
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "content-type"), schema1);
    assert_eq!(get.bytes().await.unwrap(), manifest);
}

#[tokio::test]
async fn schema1_with_a_missing_layer_is_manifest_blob_unknown() {
    let registry = TestRegistry::fs().await;
    let missing = sha256(b"never pushed");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 1, "name": "app", "tag": "v1", "architecture": "amd64",
        "fsLayers": [{ "blobSum": missing }], "history": [{ "v1Compatibility": "{}" }]
    }))
    .unwrap();
    let response = registry
        .put_manifest(
            "app",
            "v1",
            "application/vnd.docker.distribution.manifest.v1+json",
            &manifest,
        )
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], json!(missing));
}

#[tokio::test]
async fn missing_content_type_falls_back_to_the_media_type_field() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let response = registry
        .client
        .put(registry.url("/v2/app/manifests/v1"))
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(header(&get, "content-type"), OCI_MANIFEST);
}

#[tokio::test]
async fn unknown_content_type_is_refused() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let response = registry
        .put_manifest("app", "v1", "text/plain", &manifest)
        .await;
    let (status, code, _) = error_of(response).await;
    assert!(status.is_client_error(), "{status}");
    assert!(
        code == "UNSUPPORTED" || code == "MANIFEST_INVALID",
        "{code}"
    );
}

#[tokio::test]
async fn docker_schema2_and_manifest_list_are_accepted() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("d", b"{\"os\":\"linux\"}").await;
    let layer = registry.push_blob("d", b"docker layer").await;
    let image = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": { "mediaType": DOCKER_CONFIG, "digest": config, "size": 14 },
        "layers": [{ "mediaType": DOCKER_LAYER, "digest": layer, "size": 12 }]
    }))
    .unwrap();
    let image_digest = sha256(&image);
    let put = registry
        .put_manifest("d", "amd64", DOCKER_MANIFEST, &image)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);

    let list = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [{
            "mediaType": DOCKER_MANIFEST, "digest": image_digest, "size": image.len(),
            "platform": { "architecture": "amd64", "os": "linux" }
        }]
    }))
    .unwrap();
    let put = registry
        .put_manifest("d", "latest", DOCKER_LIST, &list)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = registry.get("/v2/d/manifests/latest").await;
    assert_eq!(header(&get, "content-type"), DOCKER_LIST);
    assert_eq!(get.bytes().await.unwrap(), list);
}

#[tokio::test]
async fn index_with_unknown_child_is_400_manifest_blob_unknown() {
    let registry = TestRegistry::fs().await;
    let child = sha256(b"no such manifest");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": child, "size": 10 }]
    }))
    .unwrap();
    let response = registry
        .put_manifest("app", "multi", OCI_INDEX, &index)
        .await;
    let body = expect_error(response, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_eq!(body["errors"][0]["detail"]["digest"], child);
}

#[tokio::test]
async fn index_of_pushed_manifests_is_accepted() {
    let registry = TestRegistry::fs().await;
    let (image, digest) = registry.push_image("app", "amd64").await;
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{ "mediaType": OCI_MANIFEST, "digest": digest, "size": image.len() }]
    }))
    .unwrap();
    let response = registry
        .put_manifest("app", "multi", OCI_INDEX, &index)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn manifest_of_four_mib_is_accepted_and_larger_is_413() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("big", b"{}").await;
    let sized = |total: usize| {
        let base = oci_manifest(&config, &[], None);
        let mut doc: serde_json::Value = serde_json::from_slice(&base).unwrap();
        doc["annotations"] = json!({ "pad": "" });
        let overhead = serde_json::to_vec(&doc).unwrap().len();
        doc["annotations"]["pad"] = json!("x".repeat(total - overhead));
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert_eq!(bytes.len(), total);
        bytes
    };
    let four_mib = sized(4 * 1024 * 1024);
    let response = registry
        .put_manifest("big", "max", OCI_MANIFEST, &four_mib)
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let get = registry.get("/v2/big/manifests/max").await;
    assert_eq!(get.bytes().await.unwrap().len(), four_mib.len());

    let too_big = sized(4 * 1024 * 1024 + 1);
    let response = registry
        .put_manifest("big", "over", OCI_MANIFEST, &too_big)
        .await;
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID").await;
}

#[tokio::test]
async fn unknown_manifest_is_404_manifest_unknown() {
    let registry = TestRegistry::fs().await;
    registry.push_image("app", "v1").await;
    for path in [
        "/v2/app/manifests/nope".to_owned(),
        format!("/v2/app/manifests/{}", sha256(b"nothing")),
        "/v2/never/pushed/manifests/v1".to_owned(),
    ] {
        let response = registry.get(&path).await;
        expect_error(response, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        let head = registry.head(&path).await;
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn delete_by_tag_untags_and_keeps_the_manifest() {
    let registry = TestRegistry::fs().await;
    let (_, digest) = registry.push_image("app", "v1").await;
    let response = registry.delete("/v2/app/manifests/v1").await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let by_tag = registry.get("/v2/app/manifests/v1").await;
    expect_error(by_tag, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let by_digest = registry.get(&format!("/v2/app/manifests/{digest}")).await;
    assert_eq!(by_digest.status(), StatusCode::OK);
    let again = registry.delete("/v2/app/manifests/v1").await;
    expect_error(again, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn delete_by_digest_removes_the_manifest_and_its_tags() {
    let registry = TestRegistry::fs().await;
    let (_, digest) = registry.push_image("app", "v1").await;
    let response = registry
        .delete(&format!("/v2/app/manifests/{digest}"))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    for reference in ["v1", digest.as_str()] {
        let get = registry
            .get(&format!("/v2/app/manifests/{reference}"))
            .await;
        expect_error(get, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
    let tags: serde_json::Value = registry
        .get("/v2/app/tags/list")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tags["tags"], json!([]));
    let again = registry
        .delete(&format!("/v2/app/manifests/{digest}"))
        .await;
    expect_error(again, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

#[tokio::test]
async fn manifest_delete_when_disabled_is_405_unsupported() {
    let registry = TestRegistry::fs_with(no_delete()).await;
    let (_, digest) = registry.push_image("app", "v1").await;
    for reference in ["v1", digest.as_str()] {
        let response = registry
            .delete(&format!("/v2/app/manifests/{reference}"))
            .await;
        expect_error(response, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(get.status(), StatusCode::OK);
}

#[tokio::test]
async fn too_many_tag_parameters_is_414() {
    let registry = TestRegistry::fs().await;
    let config = registry.push_blob("app", b"{}").await;
    let manifest = oci_manifest(&config, &[], None);
    let digest = sha256(&manifest);
    let query: Vec<String> = (0..101).map(|i| format!("tag=t{i}")).collect();
    let response = registry
        .client
        .put(registry.url(&format!("/v2/app/manifests/{digest}?{}", query.join("&"))))
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::URI_TOO_LONG, "UNSUPPORTED").await;
}

#[tokio::test]
async fn retagging_and_deleting_are_visible_at_once_after_reads() {
    let registry = TestRegistry::fs().await;
    let (_, first) = registry.push_image("app", "v1").await;
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(header(&get, "docker-content-digest"), first);

    let config = registry.push_blob("app", b"{\"other\":true}").await;
    let second = oci_manifest(&config, &[], None);
    let put = registry
        .put_manifest("app", "v1", OCI_MANIFEST, &second)
        .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let get = registry.get("/v2/app/manifests/v1").await;
    assert_eq!(header(&get, "docker-content-digest"), sha256(&second));
    assert_eq!(get.bytes().await.unwrap(), second);

    let by_digest = registry.head(&format!("/v2/app/manifests/{first}")).await;
    assert_eq!(by_digest.status(), StatusCode::OK);
    registry.delete(&format!("/v2/app/manifests/{first}")).await;
    let gone = registry.head(&format!("/v2/app/manifests/{first}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    registry.delete("/v2/app/manifests/v1").await;
    let untagged = registry.get("/v2/app/manifests/v1").await;
    expect_error(untagged, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}
