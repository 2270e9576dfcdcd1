//! A `registry` child process on a loopback port, and small HTTP helpers for the protocol.
//! The child is killed on drop so a failing test never leaks a server.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use sha2::{Digest as _, Sha256};

/// How long a server may take to print its address and answer `/v2/`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// The executable under test: `QUAYSIDE_REGISTRY_BIN` if set, else this package's binary.
fn registry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("QUAYSIDE_REGISTRY_BIN") {
        return bin.into();
    }
    // option_env! keeps the tests compiling while the binary target does not exist yet.
    match option_env!("CARGO_BIN_EXE_registry") {
        Some(bin) => bin.into(),
        None => panic!(
            "the quayside-server package has no `registry` binary target; \
             these tests need `registry serve --listen ADDR --root DIR`"
        ),
    }
}

/// A running registry process serving `root`.
pub struct Registry {
    child: Child,
    /// `http://127.0.0.1:PORT`, as printed by the server.
    pub base: String,
    /// `127.0.0.1:PORT`, for clients that want a host rather than a URL.
    pub host: String,
    log: tempfile::NamedTempFile,
}

impl Registry {
    /// Starts a registry on `root` and waits (bounded) until it prints its address and
    /// answers `GET /v2/`. Its stderr goes to a temporary file, shown when a test fails.
    pub async fn start(root: &Path) -> Registry {
        let log = tempfile::NamedTempFile::new().expect("create server log file");
        let stderr = log.reopen().expect("open server log file");
        let bin = registry_bin();
        let mut child = Command::new(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--root"])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads the address line, then drains stdout so a chatty server never blocks on it.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut registry = Registry {
            child,
            base: String::new(),
            host: String::new(),
            log,
        };
        let line = match rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(Ok(line)) if line.is_empty() => {
                registry.fail("it closed stdout (or exited) before printing its address")
            }
            Ok(Ok(line)) => line,
            Ok(Err(e)) => registry.fail(&format!("reading its stdout failed: {e}")),
            Err(_) => registry.fail("it printed no `listening on` line in time"),
        };
        let Some(base) = line.trim_end().strip_prefix("listening on ") else {
            registry.fail(&format!(
                "its first stdout line was {line:?}, not `listening on http://ADDR`"
            ))
        };
        registry.base = base.trim_end_matches('/').to_owned();
        registry.host = registry
            .base
            .strip_prefix("http://")
            .unwrap_or(&registry.base)
            .to_owned();
        registry.wait_until_answering().await;
        registry
    }

    /// Polls `GET /v2/` until it answers 200, failing after the startup deadline.
    async fn wait_until_answering(&mut self) {
        let client = http_client();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let url = format!("{}/v2/", self.base);
        loop {
            match client.get(&url).send().await {
                Ok(r) if r.status() == StatusCode::OK => return,
                Ok(r) if Instant::now() > deadline => {
                    let status = r.status();
                    self.fail(&format!("GET /v2/ answered {status}, not 200"))
                }
                _ if Instant::now() > deadline => self.fail("GET /v2/ never answered"),
                _ => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("it exited with {status} while starting"));
            }
            // A poll interval, not a timing assumption: the deadline above bounds the wait.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's stderr so far, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = self.log.reopen() {
            let _ = f.read_to_string(&mut text);
        }
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    fn fail(&mut self, why: &str) -> ! {
        self.kill9();
        panic!(
            "registry server did not start: {why}\n--- server stderr ---\n{}",
            self.log_tail()
        )
    }

    /// The API root for a client.
    pub fn api(&self) -> Api {
        Api {
            http: http_client(),
            base: self.base.clone(),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A plain HTTP client: no proxy from the environment, no compression, bounded requests.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("build HTTP client")
}

/// Every manifest media type, for `Accept` (registries may refuse types not accepted).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws, \
application/vnd.docker.distribution.manifest.v1+json, \
application/vnd.oci.artifact.manifest.v1+json";

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Deterministic pseudo-random bytes, so tests can keep a seed instead of the content.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
}

/// The first OCI error code and message in a response body, if it is an error envelope.
pub fn error_code(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    Some((
        e.get("code")?.as_str()?.to_owned(),
        e.get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_owned(),
    ))
}

/// A header's value as text, or "" when absent.
pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Protocol helpers over one registry's base URL. Methods return transport errors rather
/// than panicking, because the crash test expects connections to die.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves a `Location` header (absolute or absolute-path) against the base URL.
    pub fn location(&self, r: &Response) -> String {
        let loc = header(r, "location");
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc
        } else {
            self.url(&loc)
        }
    }

    /// Single-request upload: `POST …/blobs/uploads/?digest=` with the whole body.
    pub async fn post_blob(&self, repo: &str, data: Vec<u8>) -> reqwest::Result<Response> {
        let url = self.url(&format!(
            "/v2/{repo}/blobs/uploads/?digest={}",
            sha256(&data)
        ));
        self.http
            .post(url)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
    }

    /// `POST` to open an upload session; returns the response (202 with a Location).
    pub async fn open_upload(&self, repo: &str) -> reqwest::Result<Response> {
        self.http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
    }

    /// One `PATCH` carrying bytes `start..start+chunk.len()` of an upload.
    pub async fn patch_chunk(
        &self,
        location: &str,
        start: usize,
        chunk: Vec<u8>,
    ) -> reqwest::Result<Response> {
        let end = start + chunk.len() - 1;
        self.http
            .patch(location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{end}"))
            .body(chunk)
            .send()
            .await
    }

    /// The closing `PUT …?digest=`, optionally with a last chunk.
    pub async fn close_upload(
        &self,
        location: &str,
        digest: &str,
        last: Vec<u8>,
    ) -> reqwest::Result<Response> {
        let sep = if location.contains('?') { '&' } else { '?' };
        self.http
            .put(format!("{location}{sep}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(last)
            .send()
            .await
    }

    /// Pushes a blob the simple way and insists on 201 (for test setup, not for crashes).
    pub async fn must_push_blob(&self, repo: &str, data: &[u8]) {
        let digest = sha256(data);
        let r = self
            .post_blob(repo, data.to_vec())
            .await
            .expect("blob push request");
        let status = r.status();
        let body = r.bytes().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "pushing blob {digest} to {repo}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> reqwest::Result<Response> {
        self.http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(bytes)
            .send()
            .await
    }

    /// `GET` (or `HEAD`) a manifest, accepting every manifest media type we know.
    pub async fn fetch_manifest(
        &self,
        method: reqwest::Method,
        repo: &str,
        reference: &str,
    ) -> reqwest::Result<Response> {
        self.http
            .request(
                method,
                self.url(&format!("/v2/{repo}/manifests/{reference}")),
            )
            .header("accept", MANIFEST_ACCEPT)
            .send()
            .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<Response> {
        self.http.get(self.url(path)).send().await
    }
}
