//! The generated client (`quayside-client`, progenitor) against a dropshot server built
//! from the generated stubs: blob push, manifest push with a vendor media type, byte-exact
//! manifest pull, tags list and a typed OCI error, all through typed calls.

use crate::memory::{sha256, MemoryRegistry};
use crate::server::start;
use futures::TryStreamExt;
use quayside_client::{Client, Error};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The session id is the last segment of an upload `Location`.
fn session_of(location: &str) -> String {
    location.rsplit('/').next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn generated_client_pushes_and_pulls_through_generated_server() {
    let server = start(MemoryRegistry::default());
    let client = Client::new(&format!("http://{}", server.local_addr()));
    let name = "library/app";

    client.v2_check().send().await.expect("v2 check");

    // Blob push: start a session, send one chunk, commit with the digest.
    let layer = b"layer bytes for the client test".to_vec();
    let layer_digest = sha256(&layer);
    let started = client
        .upload_start()
        .name(name)
        .body(Vec::new())
        .send()
        .await
        .expect("upload start");
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let session = session_of(&location);
    let chunk = client
        .upload_chunk()
        .name(name)
        .session_id(session.as_str())
        .content_range(format!("0-{}", layer.len() - 1).as_str())
        .body(layer.clone())
        .send()
        .await
        .expect("chunk");
    assert_eq!(chunk.status(), 202);
    assert_eq!(
        chunk.headers()["range"],
        format!("0-{}", layer.len() - 1).as_str()
    );
    let committed = client
        .upload_complete()
        .name(name)
        .session_id(session.as_str())
        .digest(layer_digest.as_str())
        .body(Vec::new())
        .send()
        .await
        .expect("commit");
    assert_eq!(committed.status(), 201);
    assert_eq!(
        committed.headers()["docker-content-digest"],
        layer_digest.as_str()
    );

    // The blob reads back byte for byte.
    let blob = client
        .blob_get()
        .name(name)
        .digest(layer_digest.as_str())
        .send()
        .await
        .expect("blob get");
    let bytes: Vec<u8> = blob
        .into_inner()
        .into_inner()
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .expect("blob body");
    assert_eq!(bytes, layer);

    // Manifest push with a vendor media type; the bytes are not canonical JSON on purpose.
    let manifest = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{DOCKER_MANIFEST}\",\n  \"config\": {{ \"mediaType\": \"application/vnd.docker.container.image.v1+json\", \"size\": 2, \"digest\": \"{}\" }},\n  \"layers\": [ {{ \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": {}, \"digest\": \"{layer_digest}\" }} ]\n}}\n",
        sha256(b"{}"),
        layer.len()
    )
    .into_bytes();
    let manifest_digest = sha256(&manifest);
    let pushed = client
        .manifest_put()
        .name(name)
        .reference("v1")
        .content_type(DOCKER_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .expect("manifest put");
    assert_eq!(pushed.status(), 201);
    assert_eq!(
        pushed.headers()["docker-content-digest"],
        manifest_digest.as_str()
    );

    // Manifest pull: the exact bytes, under the pushed media type.
    let pulled = client
        .manifest_get()
        .name(name)
        .reference("v1")
        .accept(DOCKER_MANIFEST)
        .send()
        .await
        .expect("manifest get");
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(
        pulled.headers()["docker-content-digest"],
        manifest_digest.as_str()
    );
    let bytes: Vec<u8> = pulled
        .into_inner()
        .into_inner()
        .map_ok(|chunk| chunk.to_vec())
        .try_concat()
        .await
        .expect("manifest body");
    assert_eq!(bytes, manifest, "byte-exact");

    // Tags list, typed.
    let tags = client
        .tag_list()
        .name(name)
        .send()
        .await
        .expect("tags")
        .into_inner();
    assert_eq!(tags.name.to_string(), name);
    let tags: Vec<String> = tags
        .tags
        .unwrap_or_default()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(tags, ["v1"]);

    // A typed OCI error: the envelope arrives as the client's ErrorEnvelope.
    match client
        .manifest_get()
        .name(name)
        .reference("v2")
        .send()
        .await
    {
        Err(Error::ErrorResponse(response)) => {
            assert_eq!(response.status(), 404);
            let envelope = response.into_inner();
            assert_eq!(envelope.errors.len(), 1);
            assert_eq!(envelope.errors[0].code.to_string(), "MANIFEST_UNKNOWN");
        }
        Err(other) => panic!("expected a typed MANIFEST_UNKNOWN error, got {other:?}"),
        Ok(response) => panic!("expected an error, got {}", response.status()),
    }

    server.close().await.expect("server stops");
}
