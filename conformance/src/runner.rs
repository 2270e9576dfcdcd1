//! Runs checks concurrently (bounded), each with its own context, transcript and cleanup.
//!
//! A check never sees another check's data: [`Ctx::repo`] hands out a fresh repository name
//! under the namespace on every call, so checks can run in any order and in parallel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;

use quayside_spec::grammar::{Algorithm, Digest};

use crate::check::{fail, Check, Level, Outcome, Workflow};
use crate::http::{Auth, Exchange, Http, Request, Response};

/// The manifest media types docker, containerd and skopeo list in Accept: OCI and Docker
/// schema 2, images and indexes.
pub const CLIENT_MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Adds [`CLIENT_MANIFEST_ACCEPT`] to a manifest request that has no Accept of its own.
/// Registries may negotiate on Accept (Distribution answers 404 to an OCI manifest GET
/// without it), so checks about other things must not depend on its absence; requests
/// built with [`Request::new`] directly stay as written.
pub fn with_client_accept(req: Request) -> Request {
    let is_manifest = req
        .path
        .split('?')
        .next()
        .is_some_and(|p| p.contains("/manifests/"));
    let has_accept = req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("accept"));
    if is_manifest && !has_accept {
        req.header("Accept", CLIENT_MANIFEST_ACCEPT)
    } else {
        req
    }
}

/// What to test and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// Registry base URL, e.g. `http://127.0.0.1:5000`.
    pub url: String,
    /// Repository namespace every check writes under.
    pub namespace: String,
    /// A second namespace for cross-repository mounts; mount checks use a sibling of
    /// `namespace` when absent.
    pub crossmount_namespace: Option<String>,
    /// Credentials.
    pub auth: Auth,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Workflows to run; empty means all.
    pub workflows: Vec<Workflow>,
    /// Run only checks whose id contains this text.
    pub filter: Option<String>,
    /// Checks running at once.
    pub concurrency: usize,
    /// Time allowed to one check, cleanup included.
    pub check_timeout: Duration,
}

impl Config {
    /// Defaults for a registry at `url`: namespace `conformance`, all workflows, 8 at once.
    pub fn new(url: impl Into<String>) -> Config {
        Config {
            url: url.into(),
            namespace: "conformance".to_owned(),
            crossmount_namespace: None,
            auth: Auth::None,
            insecure: false,
            workflows: Vec::new(),
            filter: None,
            concurrency: 8,
            check_timeout: Duration::from_secs(120),
        }
    }

    /// Whether `check` is selected by workflow and filter.
    pub fn selects(&self, check: &Check) -> bool {
        (self.workflows.is_empty() || self.workflows.contains(&check.workflow))
            && self.filter.as_deref().is_none_or(|f| check.id.contains(f))
    }
}

/// What a check left behind for the runner to delete afterwards.
#[derive(Debug, Clone)]
enum Cleanup {
    Manifest { repo: String, reference: String },
    Blob { repo: String, digest: String },
}

struct CtxInner {
    check_id: &'static str,
    config: Arc<Config>,
    http: Http,
    nonce: String,
    counter: AtomicU64,
    transcript: Arc<Mutex<Vec<Exchange>>>,
    cleanups: Mutex<Vec<Cleanup>>,
    notes: Mutex<Vec<String>>,
}

/// Everything a check body gets: configuration, recording HTTP, fresh names, cleanup.
/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Ctx(Arc<CtxInner>);

impl Ctx {
    fn new(check_id: &'static str, config: Arc<Config>, http: Http, nonce: String) -> Ctx {
        Ctx(Arc::new(CtxInner {
            check_id,
            config,
            http,
            nonce,
            counter: AtomicU64::new(0),
            transcript: Arc::new(Mutex::new(Vec::new())),
            cleanups: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
        }))
    }

    /// The run's configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The id of the running check.
    pub fn check_id(&self) -> &'static str {
        self.0.check_id
    }

    /// A repository name nobody else uses: `<namespace>/<check id>-<run nonce>-<n>`.
    pub fn repo(&self) -> String {
        self.repo_in(&self.0.config.namespace)
    }

    /// A fresh repository in the cross-mount namespace (or a sibling of the namespace).
    pub fn crossmount_repo(&self) -> String {
        let ns = self
            .0
            .config
            .crossmount_namespace
            .clone()
            .unwrap_or_else(|| format!("{}/crossmount", self.0.config.namespace));
        self.repo_in(&ns)
    }

    fn repo_in(&self, namespace: &str) -> String {
        let n = self.0.counter.fetch_add(1, Ordering::Relaxed);
        let id = self
            .0
            .check_id
            .replace(['.', '_'], "-")
            .to_ascii_lowercase();
        format!("{namespace}/{id}-{}-{n}", self.0.nonce)
    }

    /// A tag nobody else uses in this run.
    pub fn tag(&self, prefix: &str) -> String {
        let n = self.0.counter.fetch_add(1, Ordering::Relaxed);
        format!("{prefix}-{}-{n}", self.0.nonce)
    }

    /// `len` pseudo-random bytes, different on every call (so no blob is shared between
    /// checks or runs and dedup cannot make one check depend on another).
    pub fn random_bytes(&self, len: usize) -> Vec<u8> {
        let n = self.0.counter.fetch_add(1, Ordering::Relaxed);
        let mut state = seed_from(&format!("{}{}{n}", self.0.nonce, self.0.check_id));
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            // xorshift64*: fast and good enough for distinct test content
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// `path` (or a `Location` value) as an absolute URL.
    pub fn url(&self, path: &str) -> String {
        self.0.http.url(path)
    }

    /// Adds a line to the check's report (e.g. why an optional path was taken).
    pub fn note(&self, text: impl Into<String>) {
        if let Ok(mut notes) = self.0.notes.lock() {
            notes.push(text.into());
        }
    }

    /// Sends a request, recording it; validated against the spec when `req.op(..)` was set.
    pub async fn send(&self, req: Request) -> Result<Response, Outcome> {
        self.0.http.send(req, &self.0.transcript).await
    }

    /// Like [`Ctx::send`], but reads the response while the body is still being written:
    /// for requests a registry may refuse early (oversized bodies). See
    /// [`Http::send_reading_early`].
    pub async fn send_reading_early(&self, req: Request) -> Result<Response, Outcome> {
        self.0
            .http
            .send_reading_early(req, &self.0.transcript)
            .await
    }

    /// GET `path`, validated against `operation`. Manifest GETs carry the Accept list real
    /// clients send (see [`with_client_accept`]).
    pub async fn get(&self, path: &str, operation: &'static str) -> Result<Response, Outcome> {
        self.send(with_client_accept(
            Request::new(Method::GET, path).op(operation),
        ))
        .await
    }

    /// HEAD `path`, validated against `operation`; manifest HEADs carry Accept like GETs.
    pub async fn head(&self, path: &str, operation: &'static str) -> Result<Response, Outcome> {
        self.send(with_client_accept(
            Request::new(Method::HEAD, path).op(operation),
        ))
        .await
    }

    /// DELETE `path`, validated against `operation`.
    pub async fn delete(&self, path: &str, operation: &'static str) -> Result<Response, Outcome> {
        self.send(Request::new(Method::DELETE, path).op(operation))
            .await
    }

    /// POST `/v2/<repo>/blobs/uploads/` expecting 202; returns the absolute upload URL.
    pub async fn start_upload(&self, repo: &str) -> Result<String, Outcome> {
        let resp = self
            .send(
                Request::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")).op("upload_start"),
            )
            .await?;
        resp.expect_status(&[202])?;
        Ok(self.url(resp.require_header("Location")?))
    }

    /// Uploads `bytes` with POST then PUT `?digest=` (the path every registry supports),
    /// expects 201, and registers the blob for cleanup. Returns its sha256 digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<Digest, Outcome> {
        let digest = Digest::of(bytes);
        let location = self.start_upload(repo).await?;
        let resp = self
            .send(
                Request::new(
                    Method::PUT,
                    with_query(&location, "digest", digest.as_str()),
                )
                .op("upload_complete")
                .header("Content-Type", "application/octet-stream")
                .body(bytes.to_vec()),
            )
            .await?;
        resp.expect_status(&[201])?;
        self.cleanup_blob(repo, digest.as_str());
        Ok(digest)
    }

    /// PUTs a manifest under `reference` with its media type as Content-Type, expects
    /// 201, and registers it for cleanup. Returns the response.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Response, Outcome> {
        let resp = self
            .put_manifest(repo, reference, media_type, bytes)
            .await?;
        resp.expect_status(&[201])?;
        self.cleanup_manifest(repo, Digest::of(bytes).as_str());
        Ok(resp)
    }

    /// PUTs a manifest and returns whatever the registry answered (no status check).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Response, Outcome> {
        self.send(
            Request::new(Method::PUT, format!("/v2/{repo}/manifests/{reference}"))
                .op("manifest_put")
                .header("Content-Type", media_type)
                .body(bytes.to_vec()),
        )
        .await
    }

    /// Pushes a random config and layer plus an OCI image manifest referencing them,
    /// tagged `reference`. Returns the manifest bytes and digest.
    pub async fn push_image(&self, repo: &str, reference: &str) -> Result<PushedImage, Outcome> {
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"comment":"{}"}}"#,
            self.tag("cfg")
        )
        .into_bytes();
        let layer = self.random_bytes(1024);
        let config_digest = self.push_blob(repo, &config).await?;
        let layer_digest = self.push_blob(repo, &layer).await?;
        let manifest = image_manifest(
            (&config_digest, config.len()),
            &[(&layer_digest, layer.len())],
        );
        self.push_manifest(repo, reference, OCI_MANIFEST, &manifest)
            .await?;
        Ok(PushedImage {
            digest: Digest::of(&manifest),
            manifest,
            config_digest,
            layer_digest,
            layer,
        })
    }

    /// Deletes this manifest when the check ends (errors ignored).
    pub fn cleanup_manifest(&self, repo: &str, reference: &str) {
        if let Ok(mut c) = self.0.cleanups.lock() {
            c.push(Cleanup::Manifest {
                repo: repo.to_owned(),
                reference: reference.to_owned(),
            });
        }
    }

    /// Deletes this blob when the check ends (errors ignored).
    pub fn cleanup_blob(&self, repo: &str, digest: &str) {
        if let Ok(mut c) = self.0.cleanups.lock() {
            c.push(Cleanup::Blob {
                repo: repo.to_owned(),
                digest: digest.to_owned(),
            });
        }
    }

    /// Runs the registered cleanups: manifests first (they reference blobs), then blobs.
    /// Recorded apart from the check's transcript, so cleanup never fails a check.
    async fn run_cleanups(&self) {
        let cleanups = self
            .0
            .cleanups
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let scratch = Arc::new(Mutex::new(Vec::new()));
        let (manifests, blobs): (Vec<_>, Vec<_>) = cleanups
            .into_iter()
            .partition(|c| matches!(c, Cleanup::Manifest { .. }));
        for cleanup in manifests.into_iter().rev().chain(blobs.into_iter().rev()) {
            let path = match cleanup {
                Cleanup::Manifest { repo, reference } => {
                    format!("/v2/{repo}/manifests/{reference}")
                }
                Cleanup::Blob { repo, digest } => format!("/v2/{repo}/blobs/{digest}"),
            };
            let _ = self
                .0
                .http
                .send(Request::new(Method::DELETE, path), &scratch)
                .await;
        }
    }

    fn take_transcript(&self) -> Vec<Exchange> {
        self.0
            .transcript
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    fn take_notes(&self) -> Vec<String> {
        self.0
            .notes
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

/// An image [`Ctx::push_image`] pushed.
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// Its sha256 digest.
    pub digest: Digest,
    /// The config blob's digest.
    pub config_digest: Digest,
    /// The single layer's digest.
    pub layer_digest: Digest,
    /// The layer's bytes.
    pub layer: Vec<u8>,
}

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OCI image manifest (canonical JSON bytes) for a config and layers given as
/// (digest, size).
pub fn image_manifest(config: (&Digest, usize), layers: &[(&Digest, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, size)| {
            serde_json::json!({"mediaType": OCI_LAYER, "digest": d.as_str(), "size": size})
        })
        .collect();
    let value = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.0.as_str(), "size": config.1},
        "layers": layers,
    });
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Appends `key=value` to a URL that may already carry a query (upload Locations often do).
pub fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={}", encode_query_value(value))
}

/// Percent-encodes the characters that matter in a query value (`:` stays, as registries
/// expect digests verbatim).
fn encode_query_value(value: &str) -> String {
    value
        .replace('%', "%25")
        .replace('&', "%26")
        .replace('+', "%2B")
        .replace('#', "%23")
        .replace(' ', "%20")
}

/// A sha256 digest of `bytes`; `Algorithm` re-exported for sha512 checks.
pub fn digest_of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
    Digest::of_with(algorithm, bytes)
}

fn seed_from(text: &str) -> u64 {
    // FNV-1a, then make sure the xorshift state is never zero
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash | 1
}

/// One check's result with everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Check id.
    pub id: &'static str,
    /// Workflow.
    pub workflow: Workflow,
    /// MUST / SHOULD / MAY.
    pub level: Level,
    /// Title.
    pub title: &'static str,
    /// Rule cited.
    pub rule: &'static str,
    /// Where it ended.
    pub outcome: Outcome,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Notes the check left.
    pub notes: Vec<String>,
    /// Every exchange the check made (cleanup excluded).
    pub transcript: Vec<Exchange>,
}

impl CheckReport {
    /// True when this result counts as a MUST failure.
    pub fn is_must_failure(&self) -> bool {
        self.outcome.is_fail() && self.level != Level::Should
    }

    /// True when this result counts as a SHOULD failure.
    pub fn is_should_failure(&self) -> bool {
        self.outcome.is_fail() && self.level == Level::Should
    }
}

/// Counts for one workflow (or the whole run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Passed checks.
    pub passed: usize,
    /// Failed MUST (and MAY-implemented-wrongly) checks.
    pub failed_must: usize,
    /// Failed SHOULD checks.
    pub failed_should: usize,
    /// Optional features missing.
    pub unsupported: usize,
    /// Not applicable.
    pub skipped: usize,
}

impl Tally {
    /// Adds one result.
    pub fn add(&mut self, r: &CheckReport) {
        match r.outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(_) if r.level == Level::Should => self.failed_should += 1,
            Outcome::Fail(_) => self.failed_must += 1,
            Outcome::Unsupported(_) => self.unsupported += 1,
            Outcome::Skip(_) => self.skipped += 1,
        }
    }

    /// Checks counted.
    pub fn total(&self) -> usize {
        self.passed + self.failed_must + self.failed_should + self.unsupported + self.skipped
    }

    /// Failures of either level.
    pub fn failed(&self) -> usize {
        self.failed_must + self.failed_should
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Registry tested.
    pub registry: String,
    /// Namespace used.
    pub namespace: String,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
    /// Per-check results, in the order checks were defined.
    pub results: Vec<CheckReport>,
}

impl RunReport {
    /// Totals over every result.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        self.results.iter().for_each(|r| t.add(r));
        t
    }

    /// Totals per workflow, in workflow order, only for workflows that ran.
    pub fn tally_by_workflow(&self) -> Vec<(Workflow, Tally)> {
        Workflow::ALL
            .iter()
            .filter_map(|wf| {
                let mut t = Tally::default();
                self.results
                    .iter()
                    .filter(|r| r.workflow == *wf)
                    .for_each(|r| t.add(r));
                (t.total() > 0).then_some((*wf, t))
            })
            .collect()
    }

    /// Exit status for the command line: 0 when nothing failed.
    pub fn success(&self) -> bool {
        self.tally().failed() == 0
    }
}

/// Runs `checks` selected by `config`, calling `on_done` as each finishes (for progress).
pub async fn run(
    config: Config,
    checks: Vec<Check>,
    mut on_done: impl FnMut(&CheckReport, usize, usize),
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let http = Http::new(&config.url, config.auth.clone(), config.insecure)?;
    let config = Arc::new(config);
    let nonce = run_nonce();
    let selected: Vec<Check> = checks.into_iter().filter(|c| config.selects(c)).collect();
    let total = selected.len();
    let concurrency = config.concurrency.max(1);
    let mut stream = futures::stream::iter(selected.into_iter().enumerate().map(|(i, check)| {
        let ctx = Ctx::new(check.id, config.clone(), http.clone(), nonce.clone());
        let timeout = config.check_timeout;
        async move { (i, run_one(check, ctx, timeout).await) }
    }))
    .buffer_unordered(concurrency);
    let mut results: Vec<(usize, CheckReport)> = Vec::with_capacity(total);
    while let Some((i, report)) = stream.next().await {
        results.push((i, report));
        on_done(&results[results.len() - 1].1, results.len(), total);
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(RunReport {
        registry: config.url.clone(),
        namespace: config.namespace.clone(),
        started_unix,
        duration_ms: started.elapsed().as_millis() as u64,
        results: results.into_iter().map(|(_, r)| r).collect(),
    })
}

/// Runs one check on its own task (a panic fails the check, not the suite), then its
/// cleanup, and turns spec violations seen on the way into a failure.
async fn run_one(check: Check, ctx: Ctx, timeout: Duration) -> CheckReport {
    let started = Instant::now();
    let body = (check.body)(ctx.clone());
    let task = tokio::spawn(async move { tokio::time::timeout(timeout, body).await });
    let mut outcome = match task.await {
        Ok(Ok(Ok(()))) => Outcome::Pass,
        Ok(Ok(Err(outcome))) => outcome,
        Ok(Err(_)) => fail(format!("timed out after {} s", timeout.as_secs())),
        Err(join) => fail(format!("check panicked: {join}")),
    };
    let transcript = ctx.take_transcript();
    if outcome == Outcome::Pass {
        let violations: Vec<String> = transcript
            .iter()
            .flat_map(|e| {
                e.violations.iter().map(move |v| {
                    format!(
                        "{} ({} {}): {v}",
                        e.operation.as_deref().unwrap_or("-"),
                        e.method,
                        e.url
                    )
                })
            })
            .collect();
        if !violations.is_empty() {
            outcome = fail(format!("spec violation: {}", violations.join("; ")));
        }
    }
    ctx.run_cleanups().await;
    CheckReport {
        id: check.id,
        workflow: check.workflow,
        level: check.level,
        title: check.title,
        rule: check.rule,
        outcome,
        duration_ms: started.elapsed().as_millis() as u64,
        notes: ctx.take_notes(),
        transcript,
    }
}

/// Short text unique to this run, so repeated runs against one registry never collide.
fn run_nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = seed_from(&format!("{nanos}{}", std::process::id()));
    format!("{:08x}", mixed as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::ensure_eq;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server answering every request with `reply` verbatim.
    async fn canned_server(reply: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        format!("http://{addr}")
    }

    fn checks() -> Vec<Check> {
        vec![
            Check::new(
                "pull.test.lenient-body",
                Workflow::Pull,
                Level::Must,
                "a body that asserts nothing",
                "test",
                |ctx| async move {
                    let repo = ctx.repo();
                    let resp = ctx
                        .get(
                            &format!("/v2/{repo}/blobs/sha256:{}", "a".repeat(64)),
                            "blob_get",
                        )
                        .await?;
                    ensure_eq("status", &resp.status, &200u16)
                },
            ),
            Check::new(
                "push.test.panics",
                Workflow::Push,
                Level::Should,
                "a body that panics",
                "test",
                |_ctx| async move { panic!("boom") },
            ),
        ]
    }

    #[tokio::test]
    async fn spec_violation_fails_a_check_whose_own_assertions_pass() {
        // 200 for a blob GET without Docker-Content-Digest breaks end-2
        let url =
            canned_server("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        let mut config = Config::new(url);
        config.workflows = vec![Workflow::Pull];
        let report = run(config, checks(), |_, _, _| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.results.len(), 1);
        let reason = report.results[0].outcome.reason();
        assert!(
            report.results[0].outcome.is_fail(),
            "{:?}",
            report.results[0].outcome
        );
        assert!(reason.contains("spec violation: blob_get"), "{reason}");
        assert!(reason.contains("Docker-Content-Digest missing"), "{reason}");
        assert_eq!(report.results[0].transcript.len(), 1);
        assert_eq!(report.results[0].transcript[0].status, Some(200));
    }

    #[tokio::test]
    async fn panicking_check_is_a_should_failure_not_a_crash() {
        let url = canned_server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        let mut config = Config::new(url);
        config.workflows = vec![Workflow::Push];
        let report = run(config, checks(), |_, _, _| {})
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.results[0]
            .outcome
            .reason()
            .contains("check panicked"));
        let tally = report.tally();
        assert_eq!((tally.failed_must, tally.failed_should), (0, 1));
        assert!(!report.success());
    }

    #[test]
    fn repositories_are_unique_and_follow_the_name_grammar() {
        let http = Http::new("http://r.test", Auth::None, false).unwrap_or_else(|e| panic!("{e}"));
        let ctx = Ctx::new(
            "push.blob.post_put",
            Arc::new(Config::new("http://r.test")),
            http,
            "abc123".to_owned(),
        );
        let (a, b) = (ctx.repo(), ctx.repo());
        assert_ne!(a, b);
        for name in [a, b, ctx.crossmount_repo()] {
            assert!(
                name.parse::<quayside_spec::grammar::RepoName>().is_ok(),
                "{name} breaks the name grammar"
            );
        }
        assert_ne!(ctx.random_bytes(32), ctx.random_bytes(32));
    }
}
