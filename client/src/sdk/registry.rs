//! A handle on one registry: auth (anonymous, Basic, Bearer with a token cache, one retry
//! after a 401), blobs (skip-if-present, mount, monolithic or chunked push with resume,
//! verified streamed pull with `Range` resume), manifests with media-type negotiation and
//! digest checks, referrers with the tag-schema fallback, and paginated tags/catalog.
//!
//! Upload `Location`s are followed as given (absolute or relative, query kept), since
//! registries such as Distribution keep state in the query.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use futures::StreamExt;
use quayside_spec::grammar::{Digest, Digester};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::auth::{parse_challenge, Challenge, Credentials};
use super::Error;

/// Every manifest type we can copy, in order of preference.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Blobs up to this size are pushed in one PUT; larger ones in chunks of this size (or the
/// registry's `OCI-Chunk-Min-Length`, whichever is larger).
pub const CHUNK_SIZE: u64 = 8 * 1024 * 1024;
/// How many times a dropped transfer is resumed before giving up.
const RESUMES: u32 = 3;

/// Where the bytes of a blob to push come from.
pub enum BlobSource<'a> {
    Bytes(Bytes),
    /// A file, re-read from an offset when an upload resumes.
    File(&'a Path),
}

/// A manifest as fetched: the exact bytes (their digest is the manifest's identity).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Bytes,
    pub digest: Digest,
}

impl Manifest {
    /// Builds one from raw bytes, taking the media type from the JSON when not given.
    pub fn from_bytes(bytes: Bytes, media_type: Option<&str>) -> Manifest {
        let media_type = media_type.map(str::to_owned).unwrap_or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned())
        });
        let digest = Digest::of(&bytes);
        Manifest {
            media_type,
            bytes,
            digest,
        }
    }
}

/// One registry, reached over HTTPS (or HTTP with `plain_http`).
pub struct Registry {
    http: reqwest::Client,
    base: Url,
    host: String,
    creds: Option<Credentials>,
    /// Bearer tokens by scope, and whether the registry asked for Basic.
    tokens: Mutex<HashMap<String, String>>,
    basic: Mutex<bool>,
}

impl Registry {
    pub fn new(host: &str, plain_http: bool, creds: Option<Credentials>) -> Result<Self, Error> {
        let scheme = if plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{host}/"))
            .map_err(|e| Error::Usage(format!("bad registry host `{host}`: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("quayside-dist/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Registry {
            http,
            base,
            host: host.to_owned(),
            creds,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(false),
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(path)
            .map_err(|e| Error::Protocol(format!("bad URL {path}: {e}")))
    }

    /// Sends a request with whatever auth is known for `scope`; on a 401 answers the
    /// challenge (Basic, or a Bearer token from the realm) and retries once.
    async fn send(
        &self,
        scope: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let resp = self.authorize(build(&self.http), scope).send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        match challenge {
            Some(Challenge::Basic) if self.creds.is_some() => {
                *self.basic.lock().map_err(|_| Error::Poisoned)? = true;
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope: asked,
            }) => {
                let token = self
                    .fetch_token(
                        &realm,
                        service.as_deref(),
                        asked.as_deref().unwrap_or(scope),
                    )
                    .await?;
                self.tokens
                    .lock()
                    .map_err(|_| Error::Poisoned)?
                    .insert(scope.to_owned(), token);
            }
            _ => return Err(Error::Unauthorized(self.host.clone())),
        }
        let resp = self.authorize(build(&self.http), scope).send().await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized(self.host.clone()));
        }
        Ok(resp)
    }

    fn authorize(&self, req: RequestBuilder, scope: &str) -> RequestBuilder {
        if let Some(token) = self.tokens.lock().ok().and_then(|t| t.get(scope).cloned()) {
            return req.bearer_auth(token);
        }
        match (&self.creds, self.basic.lock().map(|b| *b).unwrap_or(false)) {
            (Some(c), true) => req.header(AUTHORIZATION, c.basic_header()),
            _ => req,
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, Error> {
        let mut url = Url::parse(realm)
            .map_err(|e| Error::Protocol(format!("bad token realm {realm}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            // One `scope` parameter per scope, as token servers expect (a mount needs two).
            for one in scope.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", one);
            }
        }
        let mut req = self.http.get(url);
        if let Some(c) = &self.creds {
            req = req.header(AUTHORIZATION, c.basic_header());
        }
        let resp = req.send().await?;
        if !resp.status().is_success() {
            return Err(Error::Unauthorized(format!(
                "{} (token server {realm} said {})",
                self.host,
                resp.status()
            )));
        }
        let body: serde_json::Value = resp.json().await?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| Error::Protocol(format!("token server {realm} returned no token")))
    }

    /// Checks that the registry speaks the V2 API and that we may use it.
    pub async fn ping(&self) -> Result<(), Error> {
        let url = self.url("/v2/")?;
        let resp = self.send("", |c| c.get(url.clone())).await?;
        expect(resp, &[StatusCode::OK], "GET /v2/").await.map(drop)
    }

    // ---- blobs ----

    /// The blob's size when the repository has it.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> Result<Option<u64>, Error> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self.send(&pull(repo), |c| c.head(url.clone())).await?;
        match resp.status() {
            // The header, not `content_length()`: a HEAD response has an empty body.
            StatusCode::OK => Ok(header_str(resp.headers(), "content-length")
                .and_then(|v| v.parse().ok())
                .or(Some(0))),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Error::Status {
                what: format!("HEAD blob {digest} in {repo}"),
                status: s,
                body: String::new(),
            }),
        }
    }

    /// Streams a blob into `out`, checking its size and digest; a dropped connection is
    /// resumed with `Range`. Nothing wrong is accepted: a mismatch is [`Error::Corrupt`].
    pub async fn pull_blob<W: AsyncWrite + Unpin>(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        out: &mut W,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<u64, Error> {
        let algorithm = digest.supported_algorithm()?;
        let mut hasher = Digester::new(algorithm);
        let mut done: u64 = 0;
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let mut attempts = 0;
        loop {
            let resp = self
                .send(&pull(repo), |c| {
                    let r = c.get(url.clone());
                    if done > 0 {
                        r.header(reqwest::header::RANGE, format!("bytes={done}-"))
                    } else {
                        r
                    }
                })
                .await?;
            let expected = if done > 0 {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            let resp = expect(resp, &[expected], &format!("GET blob {digest} from {repo}")).await?;
            let mut stream = resp.bytes_stream();
            let mut dropped = false;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        done += chunk.len() as u64;
                        if size.is_some_and(|s| done > s) {
                            return Err(Error::Corrupt(format!(
                                "blob {digest} from {repo}: more than the {} bytes expected",
                                size.unwrap_or(0)
                            )));
                        }
                        hasher.update(&chunk);
                        out.write_all(&chunk).await?;
                        if let Some(p) = progress {
                            p.inc(chunk.len() as u64);
                        }
                    }
                    Err(_) if attempts < RESUMES => {
                        dropped = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if dropped {
                attempts += 1;
                continue;
            }
            break;
        }
        out.flush().await?;
        if let Some(s) = size {
            if s != done {
                return Err(Error::Corrupt(format!(
                    "blob {digest} from {repo}: got {done} bytes, descriptor says {s}"
                )));
            }
        }
        let got = hasher.finalize();
        if &got != digest {
            return Err(Error::Corrupt(format!(
                "blob {digest} from {repo}: content hashes to {got}"
            )));
        }
        Ok(done)
    }

    /// A small blob (a config) in memory, verified.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Bytes, Error> {
        let mut buf = Vec::new();
        self.pull_blob(repo, digest, size, &mut buf, None).await?;
        Ok(buf.into())
    }

    /// Pushes a blob unless the repository already has it; tries a cross-repository mount
    /// from `mount_from` first. Returns whether bytes were sent.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: BlobSource<'_>,
        mount_from: Option<&str>,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<bool, Error> {
        if self.blob_size(repo, digest).await?.is_some() {
            return Ok(false);
        }
        let scope = push(repo);
        let mut start = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        if let Some(from) = mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", digest.as_str())
                .append_pair("from", from);
        }
        let scope_with_from = match mount_from {
            Some(from) => format!("{scope} repository:{from}:pull"),
            None => scope.clone(),
        };
        let resp = self
            .send(&scope_with_from, |c| {
                c.post(start.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        if resp.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(false);
        }
        let resp = expect(
            resp,
            &[StatusCode::ACCEPTED],
            &format!("starting upload to {repo}"),
        )
        .await?;
        let min_chunk = resp
            .headers()
            .get("oci-chunk-min-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let mut location = self.location(resp.headers())?;
        let chunk = CHUNK_SIZE.max(min_chunk);

        if size <= CHUNK_SIZE {
            let body = match source {
                BlobSource::Bytes(b) => b,
                BlobSource::File(p) => tokio::fs::read(p).await?.into(),
            };
            let mut url = location.clone();
            url.query_pairs_mut().append_pair("digest", digest.as_str());
            let resp = self
                .send(&scope_with_from, |c| {
                    c.put(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(body.clone())
                })
                .await?;
            expect(
                resp,
                &[StatusCode::CREATED],
                &format!("PUT blob {digest} to {repo}"),
            )
            .await?;
            if let Some(p) = progress {
                p.inc(size);
            }
            return Ok(true);
        }

        let mut offset: u64 = 0;
        let mut resumes = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let body = read_range(&source, offset, len).await?;
            let url = location.clone();
            let result = self
                .send(&scope_with_from, |c| {
                    c.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(
                            reqwest::header::CONTENT_RANGE,
                            format!("{}-{}", offset, offset + len - 1),
                        )
                        .body(body.clone())
                })
                .await;
            match result {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    location = self.location(resp.headers())?;
                    offset += len;
                    if let Some(p) = progress {
                        p.inc(len);
                    }
                }
                Ok(resp) => {
                    expect(
                        resp,
                        &[StatusCode::ACCEPTED],
                        &format!("PATCH blob {digest} to {repo}"),
                    )
                    .await?;
                }
                Err(Error::Http(e)) if resumes < RESUMES => {
                    // The connection dropped: ask the registry how far it got and go on.
                    resumes += 1;
                    let (loc, end) = self
                        .upload_status(&scope, &location)
                        .await
                        .map_err(|_| Error::Http(e))?;
                    location = loc;
                    offset = end;
                }
                Err(e) => return Err(e),
            }
        }
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let resp = self
            .send(&scope, |c| {
                c.put(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        expect(
            resp,
            &[StatusCode::CREATED],
            &format!("closing upload of {digest} to {repo}"),
        )
        .await?;
        Ok(true)
    }

    /// Where an interrupted upload stands: its location and the next offset to send.
    async fn upload_status(&self, scope: &str, location: &Url) -> Result<(Url, u64), Error> {
        let resp = self.send(scope, |c| c.get(location.clone())).await?;
        let resp = expect(resp, &[StatusCode::NO_CONTENT], "upload status").await?;
        let next = resp
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit_once('-')?.1.parse::<u64>().ok())
            .map_or(0, |last| last + 1);
        let loc = self
            .location(resp.headers())
            .unwrap_or_else(|_| location.clone());
        Ok((loc, next))
    }

    fn location(&self, headers: &HeaderMap) -> Result<Url, Error> {
        let loc = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol("upload response without Location".into()))?;
        self.base
            .join(loc)
            .map_err(|e| Error::Protocol(format!("bad upload Location {loc}: {e}")))
    }

    pub async fn delete_blob(&self, repo: &str, digest: &Digest) -> Result<(), Error> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let resp = self.send(&delete(repo), |c| c.delete(url.clone())).await?;
        expect(
            resp,
            &[StatusCode::ACCEPTED],
            &format!("DELETE blob {digest} in {repo}"),
        )
        .await
        .map(drop)
    }

    // ---- manifests ----

    /// Fetches a manifest by tag or digest, accepting OCI and Docker types, and checks its
    /// digest: against the reference when it is one, else against `Docker-Content-Digest`.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Manifest, Error> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&pull(repo), |c| {
                c.get(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        let what = format!("manifest {repo}:{reference}");
        let resp = expect(resp, &[StatusCode::OK], &what).await?;
        let media_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let claimed = header_str(resp.headers(), "docker-content-digest");
        let bytes = resp.bytes().await?;
        let mut m = Manifest::from_bytes(bytes, None);
        if let Some(mt) = media_type.filter(|m| !m.is_empty() && m != "application/json") {
            m.media_type = mt.split(';').next().unwrap_or(&mt).trim().to_owned();
        }
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => claimed.and_then(|c| c.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected {
            let got = Digest::of_with(expected.supported_algorithm()?, &m.bytes);
            if got != expected {
                return Err(Error::Corrupt(format!(
                    "{what}: expected {expected}, bytes hash to {got}"
                )));
            }
        }
        Ok(m)
    }

    /// Whether a manifest exists (HEAD), and its digest.
    pub async fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, Error> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&pull(repo), |c| {
                c.head(url.clone()).header(ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(
                header_str(resp.headers(), "docker-content-digest").and_then(|d| d.parse().ok())
            ),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(Error::Status {
                what: format!("HEAD manifest {repo}:{reference}"),
                status: s,
                body: String::new(),
            }),
        }
    }

    /// Pushes a manifest under a tag or its digest; returns whether the registry processed
    /// a `subject` (it answered with `OCI-Subject`).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        m: &Manifest,
    ) -> Result<bool, Error> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self
            .send(&push(repo), |c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, m.media_type.as_str())
                    .body(m.bytes.clone())
            })
            .await?;
        let resp = expect(
            resp,
            &[StatusCode::CREATED],
            &format!("PUT manifest {repo}:{reference}"),
        )
        .await?;
        Ok(resp.headers().contains_key("oci-subject"))
    }

    pub async fn delete_manifest(&self, repo: &str, reference: &str) -> Result<(), Error> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let resp = self.send(&delete(repo), |c| c.delete(url.clone())).await?;
        expect(
            resp,
            &[StatusCode::ACCEPTED],
            &format!("DELETE manifest {repo}:{reference}"),
        )
        .await
        .map(drop)
    }

    /// The referrers of `subject` as an image index: from the referrers API, or from the
    /// `sha256-<hex>` tag when the registry has no such API (it answers 404 there).
    pub async fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
    ) -> Result<serde_json::Value, Error> {
        let url = self.url(&format!("/v2/{repo}/referrers/{subject}"))?;
        let resp = self.send(&pull(repo), |c| c.get(url.clone())).await?;
        let is_index = header_str(resp.headers(), CONTENT_TYPE.as_str())
            .is_some_and(|t| t.starts_with(OCI_INDEX));
        if resp.status() == StatusCode::OK && is_index {
            return Ok(resp.json().await?);
        }
        match self.get_manifest(repo, &fallback_tag(subject)).await {
            Ok(m) => Ok(serde_json::from_slice(&m.bytes)?),
            Err(Error::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(empty_index()),
            Err(e) => Err(e),
        }
    }

    /// Records `referrer` under the tag-schema fallback tag of `subject` (for registries
    /// without a referrers API): fetch the index there, add the descriptor, push it back.
    pub async fn add_fallback_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        referrer: serde_json::Value,
    ) -> Result<(), Error> {
        let tag = fallback_tag(subject);
        let mut index = match self.get_manifest(repo, &tag).await {
            Ok(m) => serde_json::from_slice(&m.bytes)?,
            Err(Error::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => empty_index(),
            Err(e) => return Err(e),
        };
        let list = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| Error::Protocol(format!("{repo}:{tag} is not an image index")))?;
        if !list
            .iter()
            .any(|d| d.get("digest") == referrer.get("digest"))
        {
            list.push(referrer);
        }
        let m = Manifest::from_bytes(serde_json::to_vec(&index)?.into(), Some(OCI_INDEX));
        self.put_manifest(repo, &tag, &m).await.map(drop)
    }

    // ---- listings ----

    /// All tags of a repository, following `Link` pagination.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, Error> {
        self.paginated(&pull(repo), &format!("/v2/{repo}/tags/list"), "tags")
            .await
    }

    /// All repositories (`/v2/_catalog`), following `Link` pagination.
    pub async fn catalog(&self) -> Result<Vec<String>, Error> {
        self.paginated("registry:catalog:*", "/v2/_catalog", "repositories")
            .await
    }

    async fn paginated(&self, scope: &str, first: &str, key: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut next = Some(self.url(first)?);
        while let Some(url) = next.take() {
            let resp = self.send(scope, |c| c.get(url.clone())).await?;
            let resp = expect(resp, &[StatusCode::OK], &format!("GET {}", url.path())).await?;
            next = header_str(resp.headers(), "link")
                .and_then(|l| next_link(&l))
                .map(|l| url.join(&l))
                .transpose()
                .map_err(|e| Error::Protocol(format!("bad Link: {e}")))?;
            let body: serde_json::Value = resp.json().await?;
            if let Some(items) = body.get(key).and_then(|v| v.as_array()) {
                out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_owned)));
            }
        }
        Ok(out)
    }
}

/// The tag-schema fallback tag for a subject: `<alg>-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm_str(), subject.encoded())
}

fn empty_index() -> serde_json::Value {
    serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
}

/// The target of `rel="next"` in a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            })
    })
}

fn pull(repo: &str) -> String {
    format!("repository:{repo}:pull")
}
fn push(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}
fn delete(repo: &str) -> String {
    format!("repository:{repo}:delete")
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_owned)
}

/// Passes a response with an expected status; turns any other into [`Error::Status`]
/// carrying the registry's error body.
async fn expect(resp: Response, ok: &[StatusCode], what: &str) -> Result<Response, Error> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(Error::Status {
        what: what.to_owned(),
        status,
        body: body.chars().take(500).collect(),
    })
}

async fn read_range(source: &BlobSource<'_>, offset: u64, len: u64) -> Result<Bytes, Error> {
    let start = usize::try_from(offset).map_err(|_| Error::Usage("blob too large".into()))?;
    let n = usize::try_from(len).map_err(|_| Error::Usage("chunk too large".into()))?;
    match source {
        BlobSource::Bytes(b) => b
            .get(start..start + n)
            .map(|s| b.slice_ref(s))
            .ok_or_else(|| Error::Usage("blob shorter than its size".into())),
        BlobSource::File(p) => {
            let mut f = tokio::fs::File::open(p).await?;
            f.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut buf = vec![0; n];
            f.read_exact(&mut buf).await?;
            Ok(buf.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_other_relations() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"<http://x/p>; rel="prev""#), None);
    }

    #[test]
    fn fallback_tag_is_algorithm_dash_hex() {
        let d = Digest::of(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.encoded()));
    }
}
