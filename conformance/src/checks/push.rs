//! Push checks: every upload flavour (POST+PUT, monolithic POST, chunked and streamed
//! PATCH, mounts, cancel), the upload state machine's errors, and manifest pushes by tag,
//! by digest and with `?tag=`, including byte exactness and size limits.

use reqwest::Method;

use quayside_spec::grammar::{Algorithm, Digest};

use crate::check::{
    ensure, ensure_eq, fail, unsupported, Check, CheckResult, Level, Outcome, Workflow,
};
use crate::http::{Request, Response};
use crate::runner::{image_manifest, with_query, Ctx, OCI_INDEX, OCI_MANIFEST};

/// PATCHes `bytes` at `offset` to `location` with Content-Range; returns the response.
async fn patch(
    ctx: &Ctx,
    location: &str,
    offset: usize,
    bytes: &[u8],
) -> Result<Response, Outcome> {
    let end = offset + bytes.len();
    ctx.send(
        Request::new(Method::PATCH, location)
            .op("upload_chunk")
            .header("Content-Type", "application/octet-stream")
            .header(
                "Content-Range",
                format!("{offset}-{}", end.saturating_sub(1)),
            )
            .body(bytes.to_vec()),
    )
    .await
}

/// PUT `?digest=` (optionally with a final chunk) to close an upload.
async fn complete(
    ctx: &Ctx,
    location: &str,
    digest: &Digest,
    last: &[u8],
) -> Result<Response, Outcome> {
    let mut req = Request::new(Method::PUT, with_query(location, "digest", digest.as_str()))
        .op("upload_complete")
        .header("Content-Type", "application/octet-stream");
    if !last.is_empty() {
        req = req.body(last.to_vec());
    }
    ctx.send(req).await
}

/// Fails unless the blob reads back in `repo` with exactly `bytes`.
async fn expect_blob(ctx: &Ctx, repo: &str, digest: &Digest, bytes: &[u8]) -> CheckResult {
    let resp = ctx
        .get(&format!("/v2/{repo}/blobs/{}", digest.as_str()), "blob_get")
        .await?;
    resp.expect_status(&[200])?;
    ensure(resp.body.as_ref() == bytes, || {
        format!(
            "blob {} reads back as {} bytes that differ from the {} pushed",
            digest.as_str(),
            resp.body.len(),
            bytes.len()
        )
    })
}

/// An image manifest with one random layer; blobs pushed, manifest not.
async fn prepared_manifest(ctx: &Ctx, repo: &str) -> Result<Vec<u8>, Outcome> {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","comment":"{}"}}"#,
        ctx.tag("c")
    )
    .into_bytes();
    let layer = ctx.random_bytes(512);
    let cd = ctx.push_blob(repo, &config).await?;
    let ld = ctx.push_blob(repo, &layer).await?;
    Ok(image_manifest((&cd, config.len()), &[(&ld, layer.len())]))
}

/// Chunked upload of `bytes` in `chunk`-sized PATCHes, then PUT; returns the digest.
async fn chunked_upload(
    ctx: &Ctx,
    repo: &str,
    bytes: &[u8],
    chunk: usize,
) -> Result<Digest, Outcome> {
    let digest = Digest::of(bytes);
    let mut location = ctx.start_upload(repo).await?;
    let mut offset = 0;
    for part in bytes.chunks(chunk.max(1)) {
        let resp = patch(ctx, &location, offset, part).await?;
        resp.expect_status(&[202])?;
        offset += part.len();
        ensure_eq(
            "Range after PATCH",
            resp.require_header("Range")?,
            format!("0-{}", offset - 1).as_str(),
        )?;
        location = ctx.url(resp.require_header("Location")?);
    }
    complete(ctx, &location, &digest, &[])
        .await?
        .expect_status(&[201])?;
    ctx.cleanup_blob(repo, digest.as_str());
    Ok(digest)
}

/// The push checks.
pub fn checks() -> Vec<Check> {
    let mut checks = blob_checks();
    checks.extend(manifest_checks());
    checks
}

fn blob_checks() -> Vec<Check> {
    vec![
        Check::new(
            "push.blob.post-put",
            Workflow::Push,
            Level::Must,
            "POST then PUT ?digest= stores a blob (201, Location, digest)",
            "end-4a/end-6 MUST: POST returns 202 + Location; PUT <location>?digest= returns 201 with Location",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(2000);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                let resp = complete(&ctx, &location, &digest, &bytes).await?;
                resp.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                resp.require_header("Location")?;
                ensure_eq("Docker-Content-Digest", resp.require_header("Docker-Content-Digest")?, digest.as_str())?;
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.commit-location-is-readable",
            Workflow::Push,
            Level::Must,
            "The Location of a committed blob serves the blob",
            "end-6 MUST: the 201 Location names the stored blob",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(300);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                let resp = complete(&ctx, &location, &digest, &bytes).await?;
                resp.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                let blob = ctx.get(resp.require_header("Location")?, "blob_get").await?;
                blob.expect_status(&[200])?;
                ensure(blob.body.as_ref() == bytes.as_slice(), || "Location serves other bytes".to_owned())
            },
        ),
        Check::new(
            "push.blob.monolithic-post",
            Workflow::Push,
            Level::Should,
            "A single POST ?digest= with the body stores the blob",
            "end-4b SHOULD: POST /v2/<name>/blobs/uploads/?digest= with the blob returns 201 (202 means: continue as a session)",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(1500);
                let digest = Digest::of(&bytes);
                let resp = ctx
                    .send(
                        Request::new(Method::POST, with_query(&format!("/v2/{repo}/blobs/uploads/"), "digest", digest.as_str()))
                            .op("upload_start")
                            .header("Content-Type", "application/octet-stream")
                            .body(bytes.clone()),
                    )
                    .await?;
                match resp.status {
                    201 => {
                        ctx.cleanup_blob(&repo, digest.as_str());
                        resp.require_header("Location")?;
                        expect_blob(&ctx, &repo, &digest, &bytes).await
                    }
                    202 => {
                        ctx.note("registry answered 202: monolithic POST not supported, finished with PUT");
                        let location = ctx.url(resp.require_header("Location")?);
                        complete(&ctx, &location, &digest, &bytes).await?.expect_status(&[201])?;
                        ctx.cleanup_blob(&repo, digest.as_str());
                        expect_blob(&ctx, &repo, &digest, &bytes).await
                    }
                    _ => Err(fail(format!("expected 201 or 202, got {}", resp.status))),
                }
            },
        ),
        Check::new(
            "push.blob.post-is-202-with-location",
            Workflow::Push,
            Level::Must,
            "POST without a digest opens a session: 202 with Location",
            "end-4a MUST: 202 Accepted with a Location header",
            |ctx| async move {
                let repo = ctx.repo();
                let resp = ctx
                    .send(Request::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")).op("upload_start"))
                    .await?;
                resp.expect_status(&[202])?;
                resp.require_header("Location")?;
                Ok(())
            },
        ),
        Check::new(
            "push.blob.sessions-have-distinct-locations",
            Workflow::Push,
            Level::Must,
            "Two POSTs open two distinct upload sessions",
            "end-4a MUST: each upload has its own Location",
            |ctx| async move {
                let repo = ctx.repo();
                let a = ctx.start_upload(&repo).await?;
                let b = ctx.start_upload(&repo).await?;
                ensure(a != b, || format!("both POSTs returned Location {a}"))
            },
        ),
        Check::new(
            "push.blob.chunked-patch-sequence",
            Workflow::Push,
            Level::Must,
            "A blob uploaded in three PATCHes with Content-Range, then PUT, reads back intact",
            "end-5 MUST: each PATCH returns 202 with Location and Range 0-<last byte>; end-6 PUT commits",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(3 * 1024 + 17);
                let digest = chunked_upload(&ctx, &repo, &bytes, 1024 + 8).await?;
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.streamed-patch",
            Workflow::Push,
            Level::Must,
            "A single PATCH without Content-Range (streamed) then PUT stores the blob",
            "end-5 MUST: a streamed PATCH (no Content-Range) appends the body",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(5000);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::PATCH, location.as_str())
                            .op("upload_chunk")
                            .header("Content-Type", "application/octet-stream")
                            .body(bytes.clone()),
                    )
                    .await?;
                resp.expect_status(&[202])?;
                ensure_eq("Range", resp.require_header("Range")?, "0-4999")?;
                let next = ctx.url(resp.require_header("Location")?);
                complete(&ctx, &next, &digest, &[]).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.put-with-final-chunk",
            Workflow::Push,
            Level::Must,
            "A PATCH followed by a PUT carrying the last bytes stores the whole blob",
            "end-6 MUST: the closing PUT may carry the final chunk",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(2048);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                let resp = patch(&ctx, &location, 0, &bytes[..1000]).await?;
                resp.expect_status(&[202])?;
                let next = ctx.url(resp.require_header("Location")?);
                complete(&ctx, &next, &digest, &bytes[1000..]).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.chunk-out-of-order-is-416",
            Workflow::Push,
            Level::Must,
            "A PATCH whose Content-Range skips ahead is 416",
            "end-5 MUST: a chunk that does not start where the upload ends gets 416",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(200);
                let location = ctx.start_upload(&repo).await?;
                let first = patch(&ctx, &location, 0, &bytes[..100]).await?;
                first.expect_status(&[202])?;
                let next = ctx.url(first.require_header("Location")?);
                let resp = patch(&ctx, &next, 150, &bytes[100..]).await?;
                resp.expect_status(&[416])?;
                Ok(())
            },
        ),
        Check::new(
            "push.blob.upload-status-is-204-with-range",
            Workflow::Push,
            Level::Must,
            "GET on an upload reports 204, Location and the bytes received",
            "end-13 MUST: 204 No Content with Location and Range: 0-<last byte>",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(640);
                let location = ctx.start_upload(&repo).await?;
                let resp = patch(&ctx, &location, 0, &bytes).await?;
                resp.expect_status(&[202])?;
                let next = ctx.url(resp.require_header("Location")?);
                let status = ctx.get(&next, "upload_status").await?;
                status.expect_status(&[204])?;
                status.require_header("Location")?;
                ensure_eq("Range", status.require_header("Range")?, "0-639")
            },
        ),
        Check::new(
            "push.blob.resume-after-status",
            Workflow::Push,
            Level::Must,
            "An upload resumes from the offset the status endpoint reports",
            "end-13 MUST: the client resumes from <last byte>+1 of the reported Range",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(900);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                patch(&ctx, &location, 0, &bytes[..400]).await?.expect_status(&[202])?;
                let status = ctx.get(&location, "upload_status").await?;
                status.expect_status(&[204])?;
                let range = status.require_header("Range")?;
                let last: usize = range
                    .strip_prefix("0-")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| fail(format!("Range {range:?} is not 0-<n>")))?;
                let resume_at = last + 1;
                ensure_eq("resume offset", &resume_at, &400usize)?;
                let next = ctx.url(status.require_header("Location")?);
                let resp = patch(&ctx, &next, resume_at, &bytes[resume_at..]).await?;
                resp.expect_status(&[202])?;
                let next = ctx.url(resp.require_header("Location")?);
                complete(&ctx, &next, &digest, &[]).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.unknown-upload-is-404",
            Workflow::Push,
            Level::Must,
            "Status of an upload that never existed is 404 BLOB_UPLOAD_UNKNOWN",
            "end-13 MUST: 404 BLOB_UPLOAD_UNKNOWN for an unknown session",
            |ctx| async move {
                let repo = ctx.repo();
                // a real session makes sure the repository exists
                ctx.start_upload(&repo).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/blobs/uploads/0bogus0-upload-0id"), "upload_status")
                    .await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["BLOB_UPLOAD_UNKNOWN"])
            },
        ),
        Check::new(
            "push.blob.digest-mismatch-is-400",
            Workflow::Push,
            Level::Must,
            "Closing an upload with the wrong digest is 400 DIGEST_INVALID",
            "end-6 MUST: 400 DIGEST_INVALID when the digest does not match the uploaded bytes",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(100);
                let wrong = Digest::of(b"something else entirely");
                let location = ctx.start_upload(&repo).await?;
                let resp = complete(&ctx, &location, &wrong, &bytes).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])?;
                let blob = ctx.head(&format!("/v2/{repo}/blobs/{}", wrong.as_str()), "blob_head").await?;
                ensure_eq("HEAD of the wrongly claimed digest", &blob.status, &404u16)
            },
        ),
        Check::new(
            "push.blob.put-without-digest-is-400",
            Workflow::Push,
            Level::Must,
            "Closing an upload without ?digest= is refused with 400",
            "end-6 MUST: the digest parameter is required; 400 DIGEST_INVALID (or BLOB_UPLOAD_INVALID)",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::PUT, location.as_str())
                            .op("upload_complete")
                            .header("Content-Type", "application/octet-stream")
                            .body(ctx.random_bytes(10)),
                    )
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID", "BLOB_UPLOAD_INVALID"])
            },
        ),
        Check::new(
            "push.blob.malformed-digest-is-400",
            Workflow::Push,
            Level::Must,
            "Closing an upload with a malformed digest is 400 DIGEST_INVALID",
            "end-6 MUST: 400 DIGEST_INVALID for a digest that breaks the grammar",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::PUT, with_query(&location, "digest", "sha256:not-hex"))
                            .op("upload_complete")
                            .header("Content-Type", "application/octet-stream")
                            .body(ctx.random_bytes(10)),
                    )
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "push.blob.first-chunk-not-at-zero-is-416",
            Workflow::Push,
            Level::Must,
            "A first PATCH whose Content-Range does not start at 0 is 416",
            "end-5 MUST: a chunk must start where the upload ends (0 for a new session)",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                let resp = patch(&ctx, &location, 10, &ctx.random_bytes(10)).await?;
                resp.expect_status(&[416])?;
                Ok(())
            },
        ),
        Check::new(
            "push.blob.patch-after-commit-is-404",
            Workflow::Push,
            Level::Must,
            "A committed upload session is gone: PATCH to it is 404",
            "end-5 MUST: 404 BLOB_UPLOAD_UNKNOWN for a finished session",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(50);
                let digest = Digest::of(&bytes);
                let location = ctx.start_upload(&repo).await?;
                complete(&ctx, &location, &digest, &bytes).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                let resp = patch(&ctx, &location, 50, b"more").await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["BLOB_UPLOAD_UNKNOWN"])
            },
        ),
        Check::new(
            "push.blob.empty-blob",
            Workflow::Push,
            Level::Must,
            "A zero-length blob can be pushed and read back",
            "end-6 MUST: any content, including empty, is stored under its digest",
            |ctx| async move {
                let repo = ctx.repo();
                let digest = ctx.push_blob(&repo, &[]).await?;
                let resp = ctx.head(&format!("/v2/{repo}/blobs/{}", digest.as_str()), "blob_head").await?;
                resp.expect_status(&[200])?;
                ensure_eq("Content-Length", resp.require_header("Content-Length")?, "0")
            },
        ),
        Check::new(
            "push.blob.idempotent-repush",
            Workflow::Push,
            Level::Must,
            "Pushing the same blob twice succeeds both times",
            "end-6 MUST: content-addressed storage accepts existing content again",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(256);
                let first = ctx.push_blob(&repo, &bytes).await?;
                let second = ctx.push_blob(&repo, &bytes).await?;
                ensure_eq("digest", &first, &second)?;
                expect_blob(&ctx, &repo, &first, &bytes).await
            },
        ),
        Check::new(
            "push.blob.mount-from-other-repository",
            Workflow::Push,
            Level::Must,
            "POST ?mount=&from= links a blob from another repository (201) or falls back (202)",
            "end-11 MUST: 201 with Location when mounted; 202 means an ordinary upload was opened",
            |ctx| async move {
                let source = ctx.crossmount_repo();
                let bytes = ctx.random_bytes(700);
                let digest = ctx.push_blob(&source, &bytes).await?;
                let target = ctx.repo();
                let url = with_query(
                    &with_query(&format!("/v2/{target}/blobs/uploads/"), "mount", digest.as_str()),
                    "from",
                    &source,
                );
                let resp = ctx.send(Request::new(Method::POST, url).op("upload_start")).await?;
                resp.expect_status(&[201, 202])?;
                resp.require_header("Location")?;
                if resp.status == 202 {
                    ctx.note("registry fell back to an upload (202): cross-repository mount not done");
                    return Err(unsupported("cross-repository mount not supported (202 fallback)"));
                }
                ctx.cleanup_blob(&target, digest.as_str());
                expect_blob(&ctx, &target, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.mount-unknown-falls-back-to-202",
            Workflow::Push,
            Level::Must,
            "Mounting a blob the source lacks opens an ordinary upload (202)",
            "end-11 MUST: when the mount cannot be done the registry answers 202 with an upload Location",
            |ctx| async move {
                let source = ctx.crossmount_repo();
                ctx.push_blob(&source, &ctx.random_bytes(10)).await?;
                let absent = Digest::of(&ctx.random_bytes(33));
                let target = ctx.repo();
                let url = with_query(
                    &with_query(&format!("/v2/{target}/blobs/uploads/"), "mount", absent.as_str()),
                    "from",
                    &source,
                );
                let resp = ctx.send(Request::new(Method::POST, url).op("upload_start")).await?;
                resp.expect_status(&[202])?;
                let location = ctx.url(resp.require_header("Location")?);
                // the fallback session must be usable
                let bytes = ctx.random_bytes(64);
                let digest = Digest::of(&bytes);
                complete(&ctx, &location, &digest, &bytes).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&target, digest.as_str());
                Ok(())
            },
        ),
        Check::new(
            "push.blob.mount-anonymous",
            Workflow::Push,
            Level::May,
            "POST ?mount= without from mounts a blob the registry already holds",
            "end-11 MAY (2026 redesign): anonymous mount; 202 fallback when not supported",
            |ctx| async move {
                let source = ctx.crossmount_repo();
                let bytes = ctx.random_bytes(400);
                let digest = ctx.push_blob(&source, &bytes).await?;
                let target = ctx.repo();
                let url = with_query(&format!("/v2/{target}/blobs/uploads/"), "mount", digest.as_str());
                let resp = ctx.send(Request::new(Method::POST, url).op("upload_start")).await?;
                resp.expect_status(&[201, 202])?;
                resp.require_header("Location")?;
                if resp.status == 202 {
                    return Err(unsupported("anonymous mount not supported (202 fallback)"));
                }
                ctx.cleanup_blob(&target, digest.as_str());
                expect_blob(&ctx, &target, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.sha512-upload",
            Workflow::Push,
            Level::May,
            "A chunked upload closed with a sha512 digest is stored under it",
            "end-6 MAY (2026 redesign): sha512 digests on upload",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(3000);
                let digest = Digest::of_with(Algorithm::Sha512, &bytes);
                let location = ctx.start_upload(&repo).await?;
                let resp = patch(&ctx, &location, 0, &bytes).await?;
                resp.expect_status(&[202])?;
                let next = ctx.url(resp.require_header("Location")?);
                let put = complete(&ctx, &next, &digest, &[]).await?;
                if put.status == 400 {
                    return Err(unsupported("sha512 digest refused"));
                }
                put.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                ensure_eq("Docker-Content-Digest", put.require_header("Docker-Content-Digest")?, digest.as_str())?;
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.digest-algorithm-sha512",
            Workflow::Push,
            Level::May,
            "POST ?digest-algorithm=sha512 opens a sha512 session",
            "end-4c MAY (next spec release): the registry hashes the upload with the requested algorithm",
            |ctx| async move {
                let repo = ctx.repo();
                let url = format!("/v2/{repo}/blobs/uploads/?digest-algorithm=sha512");
                let resp = ctx.send(Request::new(Method::POST, url).op("upload_start")).await?;
                if resp.status == 400 {
                    return Err(unsupported("digest-algorithm=sha512 refused"));
                }
                resp.expect_status(&[202])?;
                let location = ctx.url(resp.require_header("Location")?);
                let bytes = ctx.random_bytes(100);
                let digest = Digest::of_with(Algorithm::Sha512, &bytes);
                complete(&ctx, &location, &digest, &bytes).await?.expect_status(&[201])?;
                ctx.cleanup_blob(&repo, digest.as_str());
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.upload-cancel",
            Workflow::Push,
            Level::May,
            "DELETE on an upload cancels it; its status is then 404",
            "end-14 MAY (next spec release): DELETE <upload location> returns 204 and forgets the session",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                patch(&ctx, &location, 0, &ctx.random_bytes(10)).await?.expect_status(&[202])?;
                let resp = ctx.delete(&location, "upload_cancel").await?;
                if resp.status == 405 {
                    return Err(unsupported("upload cancel not supported (405)"));
                }
                resp.expect_status(&[204])?;
                let status = ctx.get(&location, "upload_status").await?;
                status.expect_status(&[404])?;
                Ok(())
            },
        ),
        Check::new(
            "push.blob.large-chunks-over-5mib",
            Workflow::Push,
            Level::Must,
            "A 12 MiB blob in 6 MiB chunks (S3-part sized) is stored intact",
            "end-5 MUST: chunk sizes of object-storage multipart uploads (>= 5 MiB, OCI-Chunk-Min-Length)",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(12 * 1024 * 1024 + 11);
                let probe = ctx
                    .send(Request::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")).op("upload_start"))
                    .await?;
                let min = probe
                    .header("OCI-Chunk-Min-Length")
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let chunk = (6 * 1024 * 1024).max(min);
                let digest = chunked_upload(&ctx, &repo, &bytes, chunk).await?;
                let head = ctx.head(&format!("/v2/{repo}/blobs/{}", digest.as_str()), "blob_head").await?;
                head.expect_status(&[200])?;
                ensure_eq("Content-Length", head.require_header("Content-Length")?, bytes.len().to_string().as_str())?;
                expect_blob(&ctx, &repo, &digest, &bytes).await
            },
        ),
        Check::new(
            "push.blob.concurrent-uploads-one-repository",
            Workflow::Push,
            Level::Must,
            "Six uploads in parallel to one repository all land intact",
            "end-4..6 MUST: upload sessions are independent",
            |ctx| async move {
                let repo = ctx.repo();
                let blobs: Vec<Vec<u8>> = (0..6).map(|i| ctx.random_bytes(1000 + i * 4096)).collect();
                let uploads = blobs.iter().map(|b| chunked_upload(&ctx, &repo, b, 2048));
                let digests = futures::future::try_join_all(uploads).await?;
                for (digest, bytes) in digests.iter().zip(&blobs) {
                    expect_blob(&ctx, &repo, digest, bytes).await?;
                }
                Ok(())
            },
        ),
    ]
}

fn manifest_checks() -> Vec<Check> {
    vec![
        Check::new(
            "push.manifest.by-tag",
            Workflow::Push,
            Level::Must,
            "PUT of a manifest by tag is 201 with Location and its digest",
            "end-7 MUST: 201 Created, Location, Docker-Content-Digest of the bytes",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let resp = ctx.push_manifest(&repo, "v1", OCI_MANIFEST, &manifest).await?;
                resp.require_header("Location")?;
                ensure_eq("Docker-Content-Digest", resp.require_header("Docker-Content-Digest")?, Digest::of(&manifest).as_str())
            },
        ),
        Check::new(
            "push.manifest.by-digest",
            Workflow::Push,
            Level::Must,
            "PUT of a manifest by its digest is 201 and readable by digest",
            "end-7 MUST: a manifest may be pushed by digest",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let digest = Digest::of(&manifest);
                ctx.push_manifest(&repo, digest.as_str(), OCI_MANIFEST, &manifest).await?;
                let resp = ctx.get(&format!("/v2/{repo}/manifests/{}", digest.as_str()), "manifest_get").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == manifest.as_slice(), || "manifest bytes differ".to_owned())
            },
        ),
        Check::new(
            "push.manifest.location-serves-manifest",
            Workflow::Push,
            Level::Must,
            "The Location of a pushed manifest serves it",
            "end-7 MUST: Location names the stored manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let resp = ctx.push_manifest(&repo, "loc", OCI_MANIFEST, &manifest).await?;
                let got = ctx.get(resp.require_header("Location")?, "manifest_get").await?;
                got.expect_status(&[200])?;
                ensure(got.body.as_ref() == manifest.as_slice(), || "Location serves other bytes".to_owned())
            },
        ),
        Check::new(
            "push.manifest.digest-mismatch-is-400",
            Workflow::Push,
            Level::Must,
            "PUT by a digest that is not the body's is 400 DIGEST_INVALID",
            "end-7 MUST: the digest in the path must match the bytes",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let wrong = Digest::of(b"not this manifest");
                let resp = ctx.put_manifest(&repo, wrong.as_str(), OCI_MANIFEST, &manifest).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "push.manifest.invalid-json-is-400",
            Workflow::Push,
            Level::Must,
            "A manifest that is not JSON is 400 MANIFEST_INVALID",
            "end-7 MUST: 400 MANIFEST_INVALID for a malformed manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let resp = ctx.put_manifest(&repo, "bad", OCI_MANIFEST, b"{not json").await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["MANIFEST_INVALID"])
            },
        ),
        Check::new(
            "push.manifest.unknown-blob-is-400",
            Workflow::Push,
            Level::Should,
            "A manifest naming a blob the repository lacks is refused",
            "end-7 SHOULD: 400 MANIFEST_BLOB_UNKNOWN when a referenced blob is missing",
            |ctx| async move {
                let repo = ctx.repo();
                let config = ctx.random_bytes(20);
                let cd = ctx.push_blob(&repo, &config).await?;
                let missing = Digest::of(&ctx.random_bytes(40));
                let manifest = image_manifest((&cd, config.len()), &[(&missing, 40)]);
                let resp = ctx.put_manifest(&repo, "dangling", OCI_MANIFEST, &manifest).await?;
                if resp.status == 201 {
                    ctx.cleanup_manifest(&repo, Digest::of(&manifest).as_str());
                }
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["MANIFEST_BLOB_UNKNOWN"])
            },
        ),
        Check::new(
            "push.manifest.tag-query-multiple",
            Workflow::Push,
            Level::May,
            "PUT by digest with ?tag=a&tag=b tags both and answers OCI-Tag",
            "end-7b MAY (next spec release): tags from ?tag= are applied and echoed in OCI-Tag",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let digest = Digest::of(&manifest);
                let path = format!("/v2/{repo}/manifests/{}?tag=one&tag=two", digest.as_str());
                let resp = ctx
                    .send(
                        Request::new(Method::PUT, path)
                            .op("manifest_put")
                            .header("Content-Type", OCI_MANIFEST)
                            .body(manifest.clone()),
                    )
                    .await?;
                resp.expect_status(&[201])?;
                ctx.cleanup_manifest(&repo, digest.as_str());
                let tags: Vec<String> = resp
                    .header_all("OCI-Tag")
                    .iter()
                    .flat_map(|v| v.split(','))
                    .map(|t| t.trim().to_owned())
                    .collect();
                if tags.is_empty() {
                    return Err(unsupported("no OCI-Tag header: ?tag= not supported"));
                }
                for tag in ["one", "two"] {
                    ensure(tags.iter().any(|t| t == tag), || format!("OCI-Tag {tags:?} lacks {tag}"))?;
                    let got = ctx.get(&format!("/v2/{repo}/manifests/{tag}"), "manifest_get").await?;
                    got.expect_status(&[200])?;
                    ensure(got.body.as_ref() == manifest.as_slice(), || format!("tag {tag} serves other bytes"))?;
                }
                Ok(())
            },
        ),
        Check::new(
            "push.manifest.four-mib-accepted",
            Workflow::Push,
            Level::Must,
            "A manifest just under 4 MiB is accepted",
            "end-7 MUST: registries accept manifests up to 4 MiB",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = sized_manifest(&ctx, &repo, 4 * 1024 * 1024 - 64).await?;
                ctx.push_manifest(&repo, "big", OCI_MANIFEST, &manifest).await?;
                let got = ctx.get(&format!("/v2/{repo}/manifests/big"), "manifest_get").await?;
                got.expect_status(&[200])?;
                ensure_eq("manifest size", &got.body.len(), &manifest.len())
            },
        ),
        Check::new(
            "push.manifest.too-big-is-413",
            Workflow::Push,
            Level::Should,
            "A manifest over 4 MiB is refused with 413",
            "end-7 SHOULD: 413 Payload Too Large above the registry's manifest limit (at least 4 MiB)",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = sized_manifest(&ctx, &repo, 4 * 1024 * 1024 + 1024).await?;
                // the registry may answer 413 before reading the whole body
                let resp = ctx
                    .send_reading_early(
                        Request::new(Method::PUT, format!("/v2/{repo}/manifests/huge"))
                            .op("manifest_put")
                            .header("Content-Type", OCI_MANIFEST)
                            .body(manifest.clone()),
                    )
                    .await?;
                if resp.status == 201 {
                    ctx.cleanup_manifest(&repo, Digest::of(&manifest).as_str());
                    return Err(unsupported("registry accepts manifests over 4 MiB"));
                }
                resp.expect_status(&[413])?;
                Ok(())
            },
        ),
        Check::new(
            "push.manifest.image-index",
            Workflow::Push,
            Level::Must,
            "An image index over two pushed manifests is accepted",
            "end-7 MUST (image-spec image-index): index manifests are pushed like any manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let a = ctx.push_image(&repo, "amd64").await?;
                let b = ctx.push_image(&repo, "arm64").await?;
                let index = index_of(&[(&a.digest, a.manifest.len(), "amd64"), (&b.digest, b.manifest.len(), "arm64")]);
                let resp = ctx.push_manifest(&repo, "multi", OCI_INDEX, &index).await?;
                ensure_eq("Docker-Content-Digest", resp.require_header("Docker-Content-Digest")?, Digest::of(&index).as_str())
            },
        ),
        Check::new(
            "push.manifest.sparse-index",
            Workflow::Push,
            Level::May,
            "An index naming manifests the repository does not hold (sparse) is accepted",
            "end-7 MAY (2026 redesign): a registry may accept a sparse index, else 400 MANIFEST_BLOB_UNKNOWN",
            |ctx| async move {
                let repo = ctx.repo();
                let a = ctx.push_image(&repo, "amd64").await?;
                let absent = Digest::of(&ctx.random_bytes(50));
                let index = index_of(&[(&a.digest, a.manifest.len(), "amd64"), (&absent, 500, "s390x")]);
                let resp = ctx.put_manifest(&repo, "sparse", OCI_INDEX, &index).await?;
                if resp.status == 400 {
                    resp.expect_error_code(&["MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID"])?;
                    return Err(unsupported("sparse index refused"));
                }
                resp.expect_status(&[201])?;
                ctx.cleanup_manifest(&repo, Digest::of(&index).as_str());
                Ok(())
            },
        ),
        Check::new(
            "push.manifest.idempotent-repush",
            Workflow::Push,
            Level::Must,
            "Pushing the same manifest twice succeeds both times with one digest",
            "end-7 MUST: re-pushing identical content is not an error",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = prepared_manifest(&ctx, &repo).await?;
                let a = ctx.push_manifest(&repo, "same", OCI_MANIFEST, &manifest).await?;
                let b = ctx.push_manifest(&repo, "same", OCI_MANIFEST, &manifest).await?;
                ensure_eq("Docker-Content-Digest", &a.header("Docker-Content-Digest"), &b.header("Docker-Content-Digest"))
            },
        ),
        Check::new(
            "push.manifest.byte-exact-non-canonical",
            Workflow::Push,
            Level::Must,
            "A manifest with odd whitespace and key order is stored byte for byte",
            "end-3/end-7 MUST: the digest is of the exact bytes; registries must not re-serialise",
            |ctx| async move {
                let repo = ctx.repo();
                let config = ctx.random_bytes(30);
                let cd = ctx.push_blob(&repo, &config).await?;
                let manifest = format!(
                    "{{\n   \"layers\" : [ ],\n\t\"config\": {{ \"size\": {}, \"digest\": \"{}\", \"mediaType\": \"application/vnd.oci.image.config.v1+json\" }},\n  \"mediaType\":\"{OCI_MANIFEST}\", \"schemaVersion\" : 2 , \"annotations\": {{\"z\":\"1\",\"a\":\"\\u00e9\"}} }}\n",
                    config.len(),
                    cd.as_str()
                )
                .into_bytes();
                let digest = Digest::of(&manifest);
                let resp = ctx.push_manifest(&repo, "odd", OCI_MANIFEST, &manifest).await?;
                ensure_eq("Docker-Content-Digest", resp.require_header("Docker-Content-Digest")?, digest.as_str())?;
                let got = ctx.get(&format!("/v2/{repo}/manifests/{}", digest.as_str()), "manifest_get").await?;
                got.expect_status(&[200])?;
                ensure(got.body.as_ref() == manifest.as_slice(), || "manifest was re-serialised".to_owned())
            },
        ),
        Check::new(
            "push.manifest.retag-moves-tag",
            Workflow::Push,
            Level::Must,
            "Pushing another manifest under an existing tag moves the tag",
            "end-7 MUST: a tag names the most recently pushed manifest",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "moving").await?;
                let second = ctx.push_image(&repo, "moving").await?;
                let got = ctx.get(&format!("/v2/{repo}/manifests/moving"), "manifest_get").await?;
                got.expect_status(&[200])?;
                ensure_eq("Docker-Content-Digest", got.require_header("Docker-Content-Digest")?, second.digest.as_str())
            },
        ),
        Check::new(
            "push.manifest.artifact-type",
            Workflow::Push,
            Level::Must,
            "An artifact manifest (artifactType, empty config) is accepted and served intact",
            "end-7 MUST (image-spec 1.1 artifacts): artifactType and the empty descriptor are valid",
            |ctx| async move {
                let repo = ctx.repo();
                let empty = b"{}";
                let ed = ctx.push_blob(&repo, empty).await?;
                let payload = ctx.random_bytes(128);
                let pd = ctx.push_blob(&repo, &payload).await?;
                let manifest = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": "application/vnd.example.sbom.v1",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed.as_str(), "size": 2},
                    "layers": [{"mediaType": "application/vnd.example.sbom.v1+json", "digest": pd.as_str(), "size": payload.len()}]
                }))
                .map_err(|e| fail(e.to_string()))?;
                ctx.push_manifest(&repo, "sbom", OCI_MANIFEST, &manifest).await?;
                let got = ctx.get(&format!("/v2/{repo}/manifests/sbom"), "manifest_get").await?;
                got.expect_status(&[200])?;
                ensure(got.body.as_ref() == manifest.as_slice(), || "artifact manifest bytes differ".to_owned())
            },
        ),
        Check::new(
            "push.manifest.subject-gets-oci-subject",
            Workflow::Push,
            Level::Should,
            "A manifest with a subject is answered with OCI-Subject",
            "end-7 SHOULD: OCI-Subject: <subject digest> when the registry processed the subject",
            |ctx| async move {
                let repo = ctx.repo();
                let base = ctx.push_image(&repo, "base").await?;
                let empty = ctx.push_blob(&repo, b"{}").await?;
                let manifest = serde_json::to_vec(&serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "artifactType": "application/vnd.example.signature.v1",
                    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2},
                    "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2}],
                    "subject": {"mediaType": OCI_MANIFEST, "digest": base.digest.as_str(), "size": base.manifest.len()}
                }))
                .map_err(|e| fail(e.to_string()))?;
                let digest = Digest::of(&manifest);
                let resp = ctx.push_manifest(&repo, digest.as_str(), OCI_MANIFEST, &manifest).await?;
                match resp.header("OCI-Subject") {
                    Some(subject) => ensure_eq("OCI-Subject", subject, base.digest.as_str()),
                    None => Err(unsupported("no OCI-Subject: registry does not process subject (clients fall back to the tag schema)")),
                }
            },
        ),
    ]
}

/// An OCI image index over (digest, size, architecture) entries.
fn index_of(entries: &[(&Digest, usize, &str)]) -> Vec<u8> {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(d, size, arch)| {
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.as_str(), "size": size,
                "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
    )
    .unwrap_or_default()
}

/// A valid image manifest padded with an annotation to exactly `size` bytes.
async fn sized_manifest(ctx: &Ctx, repo: &str, size: usize) -> Result<Vec<u8>, Outcome> {
    let config = ctx.random_bytes(16);
    let cd = ctx.push_blob(repo, &config).await?;
    let build = |pad: usize| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.as_str(), "size": config.len()},
            "layers": [],
            "annotations": {"pad": "x".repeat(pad)}
        }))
        .unwrap_or_default()
    };
    let overhead = build(0).len();
    let manifest = build(size.saturating_sub(overhead));
    ensure_eq("padded manifest size", &manifest.len(), &size)?;
    Ok(manifest)
}
