//! A real dropshot server built from the generated `api_description`, driven over HTTP:
//! blob push, manifest push with a vendor media type, byte-exact manifest pull, tag list,
//! and a typed OCI error.

use crate::memory::{sha256, MemoryRegistry};
use dropshot::{ConfigDropshot, ConfigLogging, ConfigLoggingLevel, HttpServer, ServerBuilder};
use quayside_server::generated::api_description;
use reqwest::StatusCode;
use std::sync::Arc;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn start(registry: MemoryRegistry) -> HttpServer<Arc<MemoryRegistry>> {
    let api = api_description::<MemoryRegistry>().expect("endpoints register");
    let log = ConfigLogging::StderrTerminal {
        level: ConfigLoggingLevel::Error,
    }
    .to_logger("e2e")
    .expect("logger");
    let config = ConfigDropshot {
        bind_address: "127.0.0.1:0".parse().expect("address"),
        ..Default::default()
    };
    ServerBuilder::new(api, Arc::new(registry), log)
        .config(config)
        .start()
        .expect("server starts")
}

/// The manifest pushed and pulled: deliberately not in serde's canonical form (spaces, key
/// order, trailing newline) so a re-serialisation anywhere would change its digest.
fn manifest(config_digest: &str, layer_digest: &str) -> Vec<u8> {
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{DOCKER_MANIFEST}\",\n  \"config\": {{ \"size\": 2, \"mediaType\": \"application/vnd.docker.container.image.v1+json\", \"digest\": \"{config_digest}\" }},\n  \"layers\": [ {{ \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": 11, \"digest\": \"{layer_digest}\" }} ]\n}}\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn push_and_pull_over_http() {
    let server = start(MemoryRegistry::default());
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();

    // API version check.
    let check = client
        .get(format!("{base}/v2/"))
        .send()
        .await
        .expect("GET /v2/");
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(
        check.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // Blob push: POST a session, PATCH a chunk, PUT to commit.
    let layer = b"hello layer".to_vec();
    let layer_digest = sha256(&layer);
    let start = client
        .post(format!("{base}/v2/library/app/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = start.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(
        location.starts_with("/v2/library/app/blobs/uploads/"),
        "{location}"
    );
    let chunk = client
        .patch(format!("{base}{location}"))
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", layer.len() - 1))
        .body(layer.clone())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(chunk.status(), StatusCode::ACCEPTED);
    assert_eq!(chunk.headers()["range"], format!("0-{}", layer.len() - 1));
    let commit = client
        .put(format!("{base}{location}?digest={layer_digest}"))
        .send()
        .await
        .expect("PUT");
    assert_eq!(commit.status(), StatusCode::CREATED);
    assert_eq!(
        commit.headers()["docker-content-digest"],
        layer_digest.as_str()
    );

    // Monolithic push of the config.
    let config = b"{}".to_vec();
    let config_digest = sha256(&config);
    let mono = client
        .post(format!(
            "{base}/v2/library/app/blobs/uploads/?digest={config_digest}"
        ))
        .header("content-type", "application/octet-stream")
        .body(config)
        .send()
        .await
        .expect("POST monolithic");
    assert_eq!(mono.status(), StatusCode::CREATED);

    // The blob comes back (streamed by the implementation) with its length and digest.
    let blob = client
        .get(format!("{base}/v2/library/app/blobs/{layer_digest}"))
        .send()
        .await
        .expect("GET blob");
    assert_eq!(blob.status(), StatusCode::OK);
    assert_eq!(
        blob.headers()["docker-content-digest"],
        layer_digest.as_str()
    );
    assert_eq!(
        blob.headers()["content-length"],
        layer.len().to_string().as_str()
    );
    assert_eq!(
        blob.bytes().await.expect("blob body").as_ref(),
        layer.as_slice()
    );

    // Manifest push with a vendor media type, tagged.
    let body = manifest(&config_digest, &layer_digest);
    let digest = sha256(&body);
    let put = client
        .put(format!("{base}/v2/library/app/manifests/v1"))
        .header("content-type", DOCKER_MANIFEST)
        .body(body.clone())
        .send()
        .await
        .expect("PUT manifest");
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(put.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        put.headers()["location"],
        format!("/v2/library/app/manifests/{digest}").as_str()
    );

    // Manifest pull: byte-exact, with the pushed media type, by tag and by digest.
    for reference in ["v1", digest.as_str()] {
        let got = client
            .get(format!("{base}/v2/library/app/manifests/{reference}"))
            .header("accept", DOCKER_MANIFEST)
            .send()
            .await
            .expect("GET manifest");
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(got.headers()["content-type"], DOCKER_MANIFEST);
        assert_eq!(got.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(
            got.headers()["content-length"],
            body.len().to_string().as_str()
        );
        assert!(
            got.headers().get("content-encoding").is_none(),
            "no compression"
        );
        assert_eq!(
            got.bytes().await.expect("manifest body").as_ref(),
            body.as_slice()
        );
    }

    // HEAD on the manifest: headers, no body.
    let head = client
        .head(format!("{base}/v2/library/app/manifests/v1"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        head.headers()["content-length"],
        body.len().to_string().as_str()
    );
    assert!(head.bytes().await.expect("head body").is_empty());

    // Tags list.
    let tags = client
        .get(format!("{base}/v2/library/app/tags/list"))
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.status(), StatusCode::OK);
    assert_eq!(tags.headers()["content-type"], "application/json");
    let tags: serde_json::Value = tags.json().await.expect("tags JSON");
    assert_eq!(
        tags,
        serde_json::json!({"name": "library/app", "tags": ["v1"]})
    );

    // A typed OCI error: unknown manifest → 404 MANIFEST_UNKNOWN in the envelope.
    let missing = client
        .get(format!("{base}/v2/library/app/manifests/v2"))
        .send()
        .await
        .expect("GET missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["content-type"], "application/json");
    assert_eq!(
        missing.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let envelope: serde_json::Value = missing.json().await.expect("envelope");
    assert_eq!(envelope["errors"][0]["code"], "MANIFEST_UNKNOWN");

    server.close().await.expect("server stops");
}

#[tokio::test]
async fn server_answers_router_edge_cases_in_the_envelope() {
    let server = start(MemoryRegistry::default());
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::new();

    let bare = client
        .get(format!("{base}/v2"))
        .send()
        .await
        .expect("GET /v2");
    assert_eq!(bare.status(), StatusCode::OK);
    assert_eq!(
        bare.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // dropshot would decode %2F into the segment; the raw path is what routing sees.
    let encoded = client
        .get(format!("{base}/v2/library%2Fapp/tags/list"))
        .send()
        .await
        .expect("GET encoded");
    assert_eq!(encoded.status(), StatusCode::BAD_REQUEST);
    let envelope: serde_json::Value = encoded.json().await.expect("envelope");
    assert_eq!(envelope["errors"][0]["code"], "NAME_INVALID");

    // dropshot would collapse `//`; an empty name component is invalid.
    let doubled = client
        .get(format!("{base}/v2/library//app/tags/list"))
        .send()
        .await
        .expect("GET doubled");
    assert_eq!(doubled.status(), StatusCode::BAD_REQUEST);
    let envelope: serde_json::Value = doubled.json().await.expect("envelope");
    assert_eq!(envelope["errors"][0]["code"], "NAME_INVALID");

    let wrong = client
        .post(format!("{base}/v2/a/tags/list"))
        .send()
        .await
        .expect("POST tags");
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.headers()["allow"], "GET, HEAD");

    // A blob larger than dropshot's default body limit (1 KiB) streams through.
    let big = vec![7u8; 3 * 1024 * 1024];
    let digest = sha256(&big);
    let push = client
        .post(format!("{base}/v2/a/blobs/uploads/?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(big.clone())
        .send()
        .await
        .expect("POST big");
    assert_eq!(push.status(), StatusCode::CREATED);
    let pulled = client
        .get(format!("{base}/v2/a/blobs/{digest}"))
        .send()
        .await
        .expect("GET big");
    assert_eq!(pulled.bytes().await.expect("body").len(), big.len());

    server.close().await.expect("server stops");
}
