//! Blob transfers as clients make them: POST then PUT (monolithic), POST, PATCHes and a
//! closing PUT (chunked), and GET (pull). Bodies stream from two shared 1 MiB buffers, so
//! the benchmark itself neither allocates nor copies per byte sent.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use reqwest::{header, Client, Response, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::load::Target;
use crate::rawget::{self, Fetched};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCTET: &str = "application/octet-stream";
const PIECE: usize = 1 << 20;

/// `len` bytes of a cheap pseudo-random pattern; `seed` makes blobs of different runs differ
/// (registries deduplicate by digest, so a repeated blob would measure nothing).
pub fn pattern(len: usize, seed: u32) -> Bytes {
    let mut state = u64::from(seed) ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        // xorshift64*: fast, and incompressible enough for a transfer benchmark.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let take = word.len().min(len - out.len());
        out.extend_from_slice(&word[..take]);
    }
    Bytes::from(out)
}

/// A blob made of a unique first MiB followed by a repeated MiB.
pub struct Blob {
    pub size: u64,
    pub digest: String,
    first: Bytes,
    rest: Bytes,
}

impl Blob {
    pub fn new(size: u64, seed: u32) -> Blob {
        let mut blob = Blob {
            size,
            digest: String::new(),
            first: pattern(PIECE, seed),
            rest: pattern(PIECE, 1),
        };
        let mut hasher = Sha256::new();
        for piece in blob.pieces(0, size) {
            hasher.update(&piece);
        }
        blob.digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        blob
    }

    /// The bytes `[offset, offset + len)` as slices of the shared buffers (no copies).
    fn pieces(&self, offset: u64, len: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
        let first = self.first.clone();
        let rest = self.rest.clone();
        let end = offset + len;
        let mut at = offset;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let within = (at % PIECE as u64) as usize;
            let take = ((PIECE - within) as u64).min(end - at) as usize;
            let source = if at < PIECE as u64 { &first } else { &rest };
            at += take as u64;
            Some(source.slice(within..within + take))
        })
    }

    fn body(&self, offset: u64, len: u64) -> reqwest::Body {
        let pieces: Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send> =
            Box::new(stream::iter(self.pieces(offset, len).map(Ok)));
        reqwest::Body::wrap_stream(Box::into_pin(pieces))
    }
}

/// The image the request-rate scenarios read: one config, one layer, one manifest under
/// several tags.
pub struct Image {
    pub tag: String,
    pub manifest_digest: String,
    blobs: Vec<String>,
}

/// One registry repository over HTTP.
pub struct Registry {
    client: Client,
    base: String,
    repo: String,
    /// The `Authorization` value, for requests made without `client` (raw pulls).
    authorization: Option<String>,
}

impl Registry {
    /// `client` sends `authorization` itself (as a default header).
    pub fn new(
        client: Client,
        base: String,
        repo: String,
        authorization: Option<String>,
    ) -> Registry {
        Registry {
            client,
            base,
            repo,
            authorization,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        let response = self.client.get(format!("{}/v2/", self.base)).send().await?;
        expect(response, &[StatusCode::OK], "GET /v2/").await?;
        Ok(())
    }

    /// Pushes a blob, monolithically (`chunk` None) or in PATCHes of `chunk` bytes, and
    /// returns the seconds from the POST to the 201.
    pub async fn push(&self, blob: &Blob, chunk: Option<u64>) -> Result<f64> {
        let start = Instant::now();
        let response = self
            .client
            .post(format!("{}/v2/{}/blobs/uploads/", self.base, self.repo))
            .header(header::CONTENT_LENGTH, 0)
            .send()
            .await?;
        let response = expect(response, &[StatusCode::ACCEPTED], "POST upload").await?;
        let mut location = self.location(&response)?;
        let final_body = match chunk {
            None => (blob.body(0, blob.size), blob.size),
            Some(chunk) => {
                let chunk = chunk.max(1);
                let mut offset = 0;
                while offset < blob.size {
                    let len = chunk.min(blob.size - offset);
                    let response = self
                        .client
                        .patch(&location)
                        .header(header::CONTENT_TYPE, OCTET)
                        .header(header::CONTENT_LENGTH, len)
                        .header(
                            header::CONTENT_RANGE,
                            format!("{}-{}", offset, offset + len - 1),
                        )
                        .body(blob.body(offset, len))
                        .send()
                        .await?;
                    let response = expect(response, &[StatusCode::ACCEPTED], "PATCH").await?;
                    location = self.location(&response)?;
                    offset += len;
                }
                (reqwest::Body::from(Bytes::new()), 0)
            }
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .client
            .put(format!("{location}{separator}digest={}", blob.digest))
            .header(header::CONTENT_TYPE, OCTET)
            .header(header::CONTENT_LENGTH, final_body.1)
            .body(final_body.0)
            .send()
            .await?;
        expect(response, &[StatusCode::CREATED], "PUT upload").await?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Downloads a blob, checking its length (and digest when `verify`), and returns the
    /// seconds from the request to the last byte. Plain-HTTP registries that answer `200`
    /// directly are read with [`rawget`](crate::rawget) (one copy per byte); redirects,
    /// authentication and TLS go through reqwest.
    pub async fn pull(&self, blob: &Blob, verify: bool) -> Result<f64> {
        let start = Instant::now();
        let path = format!("/v2/{}/blobs/{}", self.repo, blob.digest);
        let mut hasher = verify.then(Sha256::new);
        let mut received = None;
        if let Ok(target) = Target::parse(&self.base) {
            let authorization = self.authorization.as_deref();
            let fetched = rawget::get(&target, &path, authorization, |piece| {
                if let Some(hasher) = hasher.as_mut() {
                    hasher.update(piece);
                }
            })
            .await?;
            if let Fetched::Body(n) = fetched {
                received = Some(n);
            }
        }
        let received = match received {
            Some(n) => n,
            None => {
                let response = self
                    .client
                    .get(format!("{}{path}", self.base))
                    .send()
                    .await?;
                let response = expect(response, &[StatusCode::OK], "GET blob").await?;
                let mut body = response.bytes_stream();
                let mut received = 0u64;
                while let Some(piece) = body.next().await {
                    let piece = piece.context("reading the blob body")?;
                    received += piece.len() as u64;
                    if let Some(hasher) = hasher.as_mut() {
                        hasher.update(&piece);
                    }
                }
                received
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        if received != blob.size {
            bail!("GET blob returned {received} bytes, expected {}", blob.size);
        }
        if let Some(hasher) = hasher {
            let got = format!("sha256:{}", hex::encode(hasher.finalize()));
            if got != blob.digest {
                bail!(
                    "GET blob returned content with digest {got}, expected {}",
                    blob.digest
                );
            }
        }
        Ok(seconds)
    }

    pub async fn delete_blob(&self, digest: &str) -> Result<()> {
        let response = self
            .client
            .delete(format!("{}/v2/{}/blobs/{digest}", self.base, self.repo))
            .send()
            .await?;
        expect(response, &[StatusCode::ACCEPTED], "DELETE blob").await?;
        Ok(())
    }

    /// Pushes a small valid OCI image tagged `latest` and `t0`..`t<tags-1>`.
    pub async fn push_image(&self, tags: u32) -> Result<Image> {
        let layer = Blob::new(4096, 7);
        self.push(&layer, None).await.context("pushing the layer")?;
        let config_json = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        });
        let config = Bytes::from(serde_json::to_vec(&config_json)?);
        let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
        self.push_small(&config, &config_digest)
            .await
            .context("pushing the config")?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer.digest,
                "size": layer.size,
            }],
        });
        let manifest = Bytes::from(serde_json::to_vec(&manifest)?);
        let manifest_digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
        let mut names = vec!["latest".to_string()];
        names.extend((0..tags).map(|i| format!("t{i}")));
        for tag in &names {
            let response = self
                .client
                .put(format!("{}/v2/{}/manifests/{tag}", self.base, self.repo))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body(manifest.clone())
                .send()
                .await?;
            expect(response, &[StatusCode::CREATED], "PUT manifest").await?;
        }
        Ok(Image {
            tag: "latest".to_string(),
            manifest_digest,
            blobs: vec![layer.digest.clone(), config_digest],
        })
    }

    pub async fn delete_image(&self, image: &Image) -> Result<()> {
        let response = self
            .client
            .delete(format!(
                "{}/v2/{}/manifests/{}",
                self.base, self.repo, image.manifest_digest
            ))
            .send()
            .await?;
        expect(response, &[StatusCode::ACCEPTED], "DELETE manifest").await?;
        for digest in &image.blobs {
            self.delete_blob(digest).await?;
        }
        Ok(())
    }

    async fn push_small(&self, content: &Bytes, digest: &str) -> Result<()> {
        let response = self
            .client
            .post(format!("{}/v2/{}/blobs/uploads/", self.base, self.repo))
            .header(header::CONTENT_LENGTH, 0)
            .send()
            .await?;
        let response = expect(response, &[StatusCode::ACCEPTED], "POST upload").await?;
        let location = self.location(&response)?;
        let separator = if location.contains('?') { '&' } else { '?' };
        let response = self
            .client
            .put(format!("{location}{separator}digest={digest}"))
            .header(header::CONTENT_TYPE, OCTET)
            .body(content.clone())
            .send()
            .await?;
        expect(response, &[StatusCode::CREATED], "PUT upload").await?;
        Ok(())
    }

    /// The absolute upload URL from a `Location` header (registries may send a path).
    fn location(&self, response: &Response) -> Result<String> {
        let value = response
            .headers()
            .get(header::LOCATION)
            .context("the response has no Location header")?
            .to_str()
            .context("the Location header is not text")?;
        Ok(
            if value.starts_with("http://") || value.starts_with("https://") {
                value.to_string()
            } else {
                format!("{}{value}", self.base)
            },
        )
    }
}

/// The response when its status is expected; otherwise an error quoting status and body.
async fn expect(response: Response, ok: &[StatusCode], what: &str) -> Result<Response> {
    let status = response.status();
    if ok.contains(&status) {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    bail!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(blob: &Blob, offset: u64, len: u64) -> Vec<u8> {
        blob.pieces(offset, len).flat_map(|b| b.to_vec()).collect()
    }

    #[test]
    fn pieces_of_any_range_match_the_whole_blob() {
        let blob = Blob::new(3 * PIECE as u64 + 17, 42);
        let whole = concat(&blob, 0, blob.size);
        assert_eq!(whole.len() as u64, blob.size);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&whole)));
        assert_eq!(digest, blob.digest);
        for (offset, len) in [
            (0, 5),
            (PIECE as u64 - 3, 10),
            (2 * PIECE as u64 + 1, PIECE as u64 + 16),
        ] {
            assert_eq!(
                concat(&blob, offset, len),
                whole[offset as usize..(offset + len) as usize]
            );
        }
    }

    #[test]
    fn different_seeds_give_different_digests() {
        assert_ne!(Blob::new(1000, 1).digest, Blob::new(1000, 2).digest);
        assert_eq!(Blob::new(1000, 3).digest, Blob::new(1000, 3).digest);
    }
}
