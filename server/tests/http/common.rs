//! The harness: a real registry on 127.0.0.1:0 (filesystem storage in a temp dir, or
//! memory), a reqwest client, and helpers that push content and read OCI error envelopes.

use quayside_server::config::Config;
use quayside_server::registry::{server::serve, Registry, RunningRegistry, Settings};
use quayside_server::storage::{Storage, StorageConfig};
use quayside_spec::grammar::{Algorithm, Digest};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// A running registry and a client for it.
pub struct TestRegistry {
    pub running: Option<RunningRegistry>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Filesystem storage in a fresh temporary directory.
    pub async fn fs() -> TestRegistry {
        TestRegistry::fs_with(Settings::default()).await
    }

    pub async fn fs_with(settings: Settings) -> TestRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        TestRegistry::open(dir, settings).await
    }

    /// Memory storage.
    pub async fn memory() -> TestRegistry {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(&StorageConfig::Memory)
            .await
            .expect("memory storage");
        TestRegistry::serve(dir, storage, Settings::default())
    }

    async fn open(dir: tempfile::TempDir, settings: Settings) -> TestRegistry {
        let storage = Storage::open(&StorageConfig::Filesystem {
            root: dir.path().join("data"),
            direct_io: true,
            sync: true,
        })
        .await
        .expect("filesystem storage");
        TestRegistry::serve(dir, storage, settings)
    }

    fn serve(dir: tempfile::TempDir, storage: Storage, settings: Settings) -> TestRegistry {
        let running = serve(
            Registry::new(storage, settings),
            "127.0.0.1:0".parse().expect("address"),
        )
        .expect("registry starts");
        TestRegistry {
            base: format!("http://{}", running.local_addr()),
            running: Some(running),
            client: reqwest::Client::new(),
            dir,
        }
    }

    /// Stops the server and starts a new one on the same storage root, as a restart would.
    pub async fn restart(mut self, settings: Settings) -> TestRegistry {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("clean shutdown");
        }
        TestRegistry::open(self.dir, settings).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.client.head(self.url(path)).send().await.expect("HEAD")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("DELETE")
    }

    /// Pushes a blob monolithically (POST ?digest=) and returns its sha256 digest.
    pub async fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let response = self
            .client
            .post(self.url(&format!("/v2/{name}/blobs/uploads/?digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("POST blob");
        assert_eq!(response.status(), StatusCode::CREATED, "pushing a blob");
        digest
    }

    /// Pushes a manifest with its media type as Content-Type.
    pub async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Response {
        self.client
            .put(self.url(&format!("/v2/{name}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// Pushes a config and a layer and an OCI manifest naming them, tagged `tag`; returns
    /// the manifest bytes and digest.
    pub async fn push_image(&self, name: &str, tag: &str) -> (Vec<u8>, String) {
        let config = self.push_blob(name, b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}").await;
        let layer = self
            .push_blob(name, format!("layer of {name}:{tag}").as_bytes())
            .await;
        let manifest = oci_manifest(&config, &[&layer], None);
        let response = self.put_manifest(name, tag, OCI_MANIFEST, &manifest).await;
        assert_eq!(response.status(), StatusCode::CREATED, "pushing an image");
        let digest = sha256(&manifest);
        (manifest, digest)
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

pub fn sha512(bytes: &[u8]) -> String {
    Digest::of_with(Algorithm::Sha512, bytes).to_string()
}

/// An OCI image manifest (not in canonical JSON form, so re-serialising would show).
pub fn oci_manifest(config: &str, layers: &[&str], subject: Option<&str>) -> Vec<u8> {
    let mut doc = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": OCI_CONFIG, "digest": config, "size": 64 },
        "layers": layers.iter().map(|d| json!({ "mediaType": OCI_LAYER, "digest": d, "size": 10 })).collect::<Vec<_>>(),
    });
    if let Some(subject) = subject {
        doc["subject"] = json!({ "mediaType": OCI_MANIFEST, "digest": subject, "size": 100 });
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("json");
    text.push('\n');
    text.into_bytes()
}

/// An artifact manifest referring to `subject`, with the empty config.
pub fn artifact(artifact_type: &str, config: &str, subject: &str, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2 },
        "layers": [],
        "subject": { "mediaType": OCI_MANIFEST, "digest": subject, "size": 100 },
        "annotations": { "note": note },
    }))
    .expect("json")
}

/// Status, code and the whole envelope of an error answer; asserts it is an envelope with
/// exactly one error and the API version header.
pub async fn error_of(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.expect("error envelope is JSON");
    let errors = body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1, "{body}");
    let code = errors[0]["code"].as_str().expect("code").to_owned();
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, code, body)
}

/// Asserts an error answer's status and code; returns the envelope.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let (got_status, got_code, body) = error_of(response).await;
    assert_eq!((got_status, got_code.as_str()), (status, code), "{body}");
    body
}

pub fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .expect("ASCII header")
}

/// Sends raw HTTP/1.1 bytes (for paths reqwest would normalise) and returns the status
/// line's code and the body.
pub async fn raw_request(base: &str, request_line: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("{request_line} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The default configuration's settings, with deletes switched off.
pub fn no_delete() -> Settings {
    let mut config = Config::default();
    config.storage.delete.enabled = false;
    Settings::from_config(&config)
}
