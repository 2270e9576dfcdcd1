//! Pull checks: the base endpoint, blob and manifest reads by tag and digest, the error
//! envelope on misses, ranges, and header agreement between HEAD and GET.

use reqwest::Method;

use quayside_spec::grammar::{Algorithm, Digest};

use crate::check::{ensure, ensure_eq, fail, unsupported, Check, CheckResult, Level, Workflow};
use crate::http::{Request, Response};
use crate::runner::{image_manifest, with_query, Ctx, OCI_INDEX, OCI_MANIFEST};

/// A digest nobody pushed.
fn absent_digest(ctx: &Ctx) -> Digest {
    Digest::of(&ctx.random_bytes(64))
}

/// Asserts a response carries the content's digest and exact length.
fn expect_content_headers(resp: &Response, digest: &str, len: usize) -> CheckResult {
    ensure_eq(
        "Docker-Content-Digest",
        resp.require_header("Docker-Content-Digest")?,
        digest,
    )?;
    ensure_eq(
        "Content-Length",
        resp.require_header("Content-Length")?,
        len.to_string().as_str(),
    )
}

/// The pull checks.
pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "pull.base.v2-is-200",
            Workflow::Pull,
            Level::Must,
            "GET /v2/ answers 200",
            "end-1 MUST: GET /v2/ returns 200 when the registry implements the API",
            |ctx| async move {
                ctx.get("/v2/", "v2_check").await?.expect_status(&[200])?;
                Ok(())
            },
        ),
        Check::new(
            "pull.base.api-version-header",
            Workflow::Pull,
            Level::Should,
            "GET /v2/ names the protocol in Docker-Distribution-API-Version",
            "end-1 SHOULD: Docker-Distribution-API-Version: registry/2.0 (Docker clients check it)",
            |ctx| async move {
                let resp = ctx.get("/v2/", "v2_check").await?;
                ensure_eq(
                    "Docker-Distribution-API-Version",
                    resp.require_header("Docker-Distribution-API-Version")?,
                    "registry/2.0",
                )
            },
        ),
        Check::new(
            "pull.blob.get-existing",
            Workflow::Pull,
            Level::Must,
            "GET of a pushed blob returns its exact bytes",
            "end-2 MUST: GET /v2/<name>/blobs/<digest> returns 200 with the blob",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(4096);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/blobs/{digest}", digest = digest.as_str()), "blob_get")
                    .await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == bytes.as_slice(), || {
                    format!("body differs from the pushed {} bytes ({} received)", bytes.len(), resp.body.len())
                })?;
                expect_content_headers(&resp, digest.as_str(), bytes.len())
            },
        ),
        Check::new(
            "pull.blob.head-existing",
            Workflow::Pull,
            Level::Must,
            "HEAD of a pushed blob gives 200, its size and digest, no body",
            "end-2 MUST: HEAD /v2/<name>/blobs/<digest> returns 200 with Content-Length and Docker-Content-Digest",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(777);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx
                    .head(&format!("/v2/{repo}/blobs/{}", digest.as_str()), "blob_head")
                    .await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.is_empty(), || "HEAD response has a body".to_owned())?;
                expect_content_headers(&resp, digest.as_str(), bytes.len())
            },
        ),
        Check::new(
            "pull.blob.get-missing-is-404-blob-unknown",
            Workflow::Pull,
            Level::Must,
            "GET of an unknown blob is 404 BLOB_UNKNOWN",
            "end-2 MUST: 404 with error code BLOB_UNKNOWN when the blob is not in the repository",
            |ctx| async move {
                let repo = ctx.repo();
                // the repository exists (holds another blob), so only the blob is unknown
                ctx.push_blob(&repo, &ctx.random_bytes(16)).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/blobs/{}", absent_digest(&ctx).as_str()), "blob_get")
                    .await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["BLOB_UNKNOWN"])
            },
        ),
        Check::new(
            "pull.blob.head-missing-is-404",
            Workflow::Pull,
            Level::Must,
            "HEAD of an unknown blob is 404 without a body",
            "end-2 MUST: HEAD returns 404 when the blob is not in the repository",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(16)).await?;
                let resp = ctx
                    .head(&format!("/v2/{repo}/blobs/{}", absent_digest(&ctx).as_str()), "blob_head")
                    .await?;
                resp.expect_status(&[404])?;
                ensure(resp.body.is_empty(), || "HEAD 404 has a body".to_owned())
            },
        ),
        Check::new(
            "pull.blob.head-get-header-parity",
            Workflow::Pull,
            Level::Must,
            "HEAD and GET of a blob agree on size and digest",
            "end-2 MUST: HEAD answers as GET would, without the body",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(3000);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let path = format!("/v2/{repo}/blobs/{}", digest.as_str());
                let head = ctx.head(&path, "blob_head").await?;
                let get = ctx.get(&path, "blob_get").await?;
                head.expect_status(&[200])?;
                get.expect_status(&[200])?;
                for name in ["Content-Length", "Docker-Content-Digest"] {
                    ensure_eq(name, &head.header(name), &get.header(name))?;
                }
                Ok(())
            },
        ),
        Check::new(
            "pull.blob.range-is-206",
            Workflow::Pull,
            Level::Should,
            "GET with Range returns 206 and exactly those bytes",
            "end-2 SHOULD: honour Range: bytes=<start>-<end> with 206 and Content-Range",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(1000);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/{repo}/blobs/{}", digest.as_str()))
                            .op("blob_get")
                            .header("Range", "bytes=100-199"),
                    )
                    .await?;
                if resp.status == 200 {
                    return Err(unsupported("registry ignores Range (answered 200 with the whole blob)"));
                }
                resp.expect_status(&[206])?;
                ensure(resp.body.as_ref() == &bytes[100..200], || {
                    format!("206 body is not bytes 100-199 ({} bytes received)", resp.body.len())
                })?;
                ensure_eq(
                    "Content-Range",
                    resp.require_header("Content-Range")?,
                    "bytes 100-199/1000",
                )
            },
        ),
        Check::new(
            "pull.blob.range-open-ended-is-206",
            Workflow::Pull,
            Level::Should,
            "GET with an open-ended Range returns the tail",
            "end-2 SHOULD: Range: bytes=<start>- returns the rest of the blob with 206",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(500);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/{repo}/blobs/{}", digest.as_str()))
                            .op("blob_get")
                            .header("Range", "bytes=400-"),
                    )
                    .await?;
                if resp.status == 200 {
                    return Err(unsupported("registry ignores Range"));
                }
                resp.expect_status(&[206])?;
                ensure(resp.body.as_ref() == &bytes[400..], || {
                    format!("206 body is not bytes 400-499 ({} bytes)", resp.body.len())
                })
            },
        ),
        Check::new(
            "pull.blob.range-outside-is-416",
            Workflow::Pull,
            Level::Should,
            "GET with a Range past the end is 416",
            "end-2 SHOULD: a range wholly outside the blob is 416 Range Not Satisfiable",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(100);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/{repo}/blobs/{}", digest.as_str()))
                            .op("blob_get")
                            .header("Range", "bytes=5000-6000"),
                    )
                    .await?;
                if resp.status == 200 {
                    return Err(unsupported("registry ignores Range"));
                }
                resp.expect_status(&[416])?;
                Ok(())
            },
        ),
        Check::new(
            "pull.blob.sha512-get",
            Workflow::Pull,
            Level::May,
            "A blob pushed under a sha512 digest reads back under it",
            "end-2/end-6 MAY (2026 redesign): sha512 is a registered algorithm",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(2048);
                let digest = Digest::of_with(Algorithm::Sha512, &bytes);
                let location = ctx.start_upload(&repo).await?;
                let put = ctx
                    .send(
                        Request::new(Method::PUT, with_query(&location, "digest", digest.as_str()))
                            .op("upload_complete")
                            .header("Content-Type", "application/octet-stream")
                            .body(bytes.clone()),
                    )
                    .await?;
                if put.status == 400 {
                    return Err(unsupported("registry refuses sha512 digests"));
                }
                put.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                let resp = ctx
                    .get(&format!("/v2/{repo}/blobs/{}", digest.as_str()), "blob_get")
                    .await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == bytes.as_slice(), || "sha512 blob body differs".to_owned())?;
                expect_content_headers(&resp, digest.as_str(), bytes.len())
            },
        ),
        Check::new(
            "pull.blob.malformed-digest-is-400",
            Workflow::Pull,
            Level::Should,
            "GET of a blob by a malformed digest is 400 DIGEST_INVALID, not 404 or 500",
            "end-2 SHOULD: a malformed digest is a client error, code DIGEST_INVALID",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(8)).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/blobs/sha256:not-hex"), "blob_get")
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "pull.manifest.tag-and-digest-agree",
            Workflow::Pull,
            Level::Must,
            "A manifest read by tag and by digest is the same document",
            "end-3 MUST: a tag resolves to the manifest whose digest Docker-Content-Digest names",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "both").await?;
                let by_tag = ctx.get(&format!("/v2/{repo}/manifests/both"), "manifest_get").await?;
                by_tag.expect_status(&[200])?;
                let digest = by_tag.require_header("Docker-Content-Digest")?;
                let by_digest = ctx
                    .get(&format!("/v2/{repo}/manifests/{digest}"), "manifest_get")
                    .await?;
                by_digest.expect_status(&[200])?;
                ensure(by_tag.body == by_digest.body, || "tag and digest serve different bytes".to_owned())
            },
        ),
        Check::new(
            "pull.manifest.get-by-tag",
            Workflow::Pull,
            Level::Must,
            "GET of a manifest by tag returns the pushed bytes and media type",
            "end-3 MUST: GET /v2/<name>/manifests/<tag> returns 200 with the manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "latest").await?;
                let resp = ctx.get(&format!("/v2/{repo}/manifests/latest"), "manifest_get").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest bytes differ from the pushed ones".to_owned())?;
                ensure_eq("Content-Type", resp.require_header("Content-Type")?, OCI_MANIFEST)
            },
        ),
        Check::new(
            "pull.manifest.get-by-digest",
            Workflow::Pull,
            Level::Must,
            "GET of a manifest by digest returns the pushed bytes",
            "end-3 MUST: GET /v2/<name>/manifests/<digest> returns 200 with the manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "v1").await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/manifests/{}", image.digest.as_str()), "manifest_get")
                    .await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest bytes differ".to_owned())?;
                expect_content_headers(&resp, image.digest.as_str(), image.manifest.len())
            },
        ),
        Check::new(
            "pull.manifest.head-by-tag",
            Workflow::Pull,
            Level::Must,
            "HEAD of a manifest by tag gives digest, size and type",
            "end-3 MUST: HEAD /v2/<name>/manifests/<tag> returns 200 with Docker-Content-Digest",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "latest").await?;
                let resp = ctx.head(&format!("/v2/{repo}/manifests/latest"), "manifest_head").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.is_empty(), || "HEAD response has a body".to_owned())?;
                expect_content_headers(&resp, image.digest.as_str(), image.manifest.len())?;
                ensure_eq("Content-Type", resp.require_header("Content-Type")?, OCI_MANIFEST)
            },
        ),
        Check::new(
            "pull.manifest.head-by-digest",
            Workflow::Pull,
            Level::Must,
            "HEAD of a manifest by digest is 200",
            "end-3 MUST: HEAD /v2/<name>/manifests/<digest> returns 200",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "v1").await?;
                let resp = ctx
                    .head(&format!("/v2/{repo}/manifests/{}", image.digest.as_str()), "manifest_head")
                    .await?;
                resp.expect_status(&[200])?;
                expect_content_headers(&resp, image.digest.as_str(), image.manifest.len())
            },
        ),
        Check::new(
            "pull.manifest.head-get-header-parity",
            Workflow::Pull,
            Level::Must,
            "HEAD and GET of a manifest agree on type, size and digest",
            "end-3 MUST: HEAD answers as GET would, without the body",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "latest").await?;
                let path = format!("/v2/{repo}/manifests/latest");
                let head = ctx.head(&path, "manifest_head").await?;
                let get = ctx.get(&path, "manifest_get").await?;
                head.expect_status(&[200])?;
                get.expect_status(&[200])?;
                for name in ["Content-Type", "Content-Length", "Docker-Content-Digest"] {
                    ensure_eq(name, &head.header(name), &get.header(name))?;
                }
                Ok(())
            },
        ),
        Check::new(
            "pull.manifest.digest-header-is-digest-of-body",
            Workflow::Pull,
            Level::Must,
            "Docker-Content-Digest of a manifest GET by tag is the digest of the body",
            "end-3 MUST: Docker-Content-Digest is the digest of the returned bytes",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "latest").await?;
                let resp = ctx.get(&format!("/v2/{repo}/manifests/latest"), "manifest_get").await?;
                resp.expect_status(&[200])?;
                let header = resp.require_header("Docker-Content-Digest")?;
                ensure_eq("Docker-Content-Digest", header, Digest::of(&resp.body).as_str())
            },
        ),
        Check::new(
            "pull.manifest.get-missing-tag-is-404",
            Workflow::Pull,
            Level::Must,
            "GET of an unknown tag is 404 MANIFEST_UNKNOWN",
            "end-3 MUST: 404 MANIFEST_UNKNOWN when the tag does not exist",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "present").await?;
                let resp = ctx.get(&format!("/v2/{repo}/manifests/absent"), "manifest_get").await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["MANIFEST_UNKNOWN"])
            },
        ),
        Check::new(
            "pull.manifest.get-missing-digest-is-404",
            Workflow::Pull,
            Level::Must,
            "GET of an unknown manifest digest is 404 MANIFEST_UNKNOWN",
            "end-3 MUST: 404 MANIFEST_UNKNOWN when the digest is not in the repository",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "present").await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/manifests/{}", absent_digest(&ctx).as_str()), "manifest_get")
                    .await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["MANIFEST_UNKNOWN"])
            },
        ),
        Check::new(
            "pull.manifest.head-missing-is-404",
            Workflow::Pull,
            Level::Must,
            "HEAD of an unknown tag is 404",
            "end-3 MUST: HEAD returns 404 when the manifest does not exist",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "present").await?;
                let resp = ctx.head(&format!("/v2/{repo}/manifests/absent"), "manifest_head").await?;
                resp.expect_status(&[404])?;
                Ok(())
            },
        ),
        Check::new(
            "pull.repo.unknown-repository-is-404",
            Workflow::Pull,
            Level::Must,
            "GET of a manifest in a repository that never existed is 404",
            "end-3 MUST: 404 with NAME_UNKNOWN or MANIFEST_UNKNOWN for an unknown repository",
            |ctx| async move {
                let repo = ctx.repo();
                let resp = ctx.get(&format!("/v2/{repo}/manifests/latest"), "manifest_get").await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["NAME_UNKNOWN", "MANIFEST_UNKNOWN"])
            },
        ),
        Check::new(
            "pull.manifest.index-get",
            Workflow::Pull,
            Level::Must,
            "An image index reads back byte for byte with its media type",
            "end-3 MUST (image-spec image-index): GET returns the index with Content-Type application/vnd.oci.image.index.v1+json",
            |ctx| async move {
                let repo = ctx.repo();
                let a = ctx.push_image(&repo, "amd64").await?;
                let index = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [{
                        "mediaType": OCI_MANIFEST,
                        "digest": a.digest.as_str(),
                        "size": a.manifest.len(),
                        "platform": {"architecture": "amd64", "os": "linux"}
                    }]
                }))
                .map_err(|e| fail(e.to_string()))?;
                ctx.push_manifest(&repo, "multi", OCI_INDEX, &index).await?;
                let resp = ctx.get(&format!("/v2/{repo}/manifests/multi"), "manifest_get").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == index.as_slice(), || "index bytes differ".to_owned())?;
                ensure_eq("Content-Type", resp.require_header("Content-Type")?, OCI_INDEX)
            },
        ),
        Check::new(
            "pull.manifest.accept-does-not-alter",
            Workflow::Pull,
            Level::Must,
            "An Accept header never changes the manifest bytes",
            "end-3 MUST NOT: a registry must not alter a manifest to suit Accept (it may answer 404)",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "latest").await?;
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/{repo}/manifests/latest"))
                            .op("manifest_get")
                            .header("Accept", format!("{OCI_MANIFEST}, {OCI_INDEX}")),
                    )
                    .await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest bytes changed under Accept".to_owned())
            },
        ),
        Check::new(
            "pull.manifest.no-accept-served-as-stored",
            Workflow::Pull,
            Level::Should,
            "A manifest GET without Accept returns the stored manifest unchanged",
            "end-3 SHOULD: clients SHOULD send Accept, so its absence is a client lapse a registry should tolerate by serving what it stores",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "latest").await?;
                // built directly so no Accept is added (see runner::with_client_accept)
                let resp = ctx
                    .send(Request::new(Method::GET, format!("/v2/{repo}/manifests/latest")).op("manifest_get"))
                    .await?;
                ensure(resp.status == 200, || format!("GET without Accept answered {} (body: {})", resp.status, crate::http::preview(&resp.body, 200)))?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest bytes differ from the pushed ones".to_owned())?;
                ensure_eq("Content-Type", resp.require_header("Content-Type")?, OCI_MANIFEST)
            },
        ),
        Check::new(
            "pull.manifest.layers-readable",
            Workflow::Pull,
            Level::Must,
            "Every blob an image manifest references can be pulled from its repository",
            "end-2 MUST: the config and layers of a pulled manifest are fetchable by digest",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "latest").await?;
                let manifest = ctx.get(&format!("/v2/{repo}/manifests/latest"), "manifest_get").await?;
                manifest.expect_status(&[200])?;
                let value = manifest.json()?;
                let mut digests = vec![value["config"]["digest"].as_str().unwrap_or("").to_owned()];
                if let Some(layers) = value["layers"].as_array() {
                    digests.extend(layers.iter().filter_map(|l| l["digest"].as_str().map(str::to_owned)));
                }
                ensure_eq("layer count", &digests.len(), &2usize)?;
                for digest in digests {
                    let blob = ctx.get(&format!("/v2/{repo}/blobs/{digest}"), "blob_get").await?;
                    blob.expect_status(&[200])?;
                    ensure_eq("blob digest", Digest::of(&blob.body).as_str(), digest.as_str())?;
                }
                ensure_eq("layer digest", image.layer_digest.as_str(), Digest::of(&image.layer).as_str())
            },
        ),
        Check::new(
            "pull.manifest.scoped-to-repository",
            Workflow::Pull,
            Level::Must,
            "A manifest is visible in its repository only",
            "end-3 MUST: manifests are addressed by the digest of their bytes, per repository",
            |ctx| async move {
                let repo = ctx.repo();
                let config = b"{}".to_vec();
                let config_digest = ctx.push_blob(&repo, &config).await?;
                let manifest = image_manifest((&config_digest, config.len()), &[]);
                ctx.push_manifest(&repo, "empty", OCI_MANIFEST, &manifest).await?;
                let digest = Digest::of(&manifest);
                let other = ctx.repo();
                let resp = ctx
                    .get(&format!("/v2/{other}/manifests/{}", digest.as_str()), "manifest_get")
                    .await?;
                resp.expect_status(&[404])?;
                let own = ctx
                    .get(&format!("/v2/{repo}/manifests/{}", digest.as_str()), "manifest_get")
                    .await?;
                own.expect_status(&[200])?;
                Ok(())
            },
        ),
    ]
}
