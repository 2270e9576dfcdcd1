//! Edge cases that broke real registries: awkward names, limits, byte-exact manifests,
//! header parity, concurrency, and the error envelope. Also the small helpers the
//! discovery, management, Docker and auth checks share.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use quayside_spec::grammar::Digest;

use crate::check::{
    ensure, ensure_eq, fail, unsupported, Check, CheckResult, Level, Outcome, Workflow,
};
use crate::http::{Request, Response};
use crate::runner::{image_manifest, with_query, Ctx, OCI_INDEX, OCI_MANIFEST};

/// The empty JSON object, the config of artifacts (image-spec "empty descriptor").
pub(crate) const EMPTY_JSON: &[u8] = b"{}";
/// Its media type.
pub(crate) const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// A digest no registry holds: the hash of fresh random bytes.
pub(crate) fn unknown_digest(ctx: &Ctx) -> Digest {
    Digest::of(&ctx.random_bytes(64))
}

/// Maps a DELETE answer: 202 passes, 405 (deletion disabled) is Unsupported, else Fail.
pub(crate) fn expect_deleted(resp: &Response, what: &str) -> CheckResult {
    match resp.status {
        202 => Ok(()),
        405 => Err(unsupported(format!(
            "{what}: deletion disabled (405 {:?})",
            resp.error_codes()
        ))),
        _ => {
            resp.expect_status(&[202])?;
            Ok(())
        }
    }
}

/// Every manifest media type a client may accept, for GETs that must not depend on
/// Accept negotiation (Distribution answers 404 to an OCI manifest without it).
pub(crate) const ACCEPT_ANY_MANIFEST: &str = crate::runner::CLIENT_MANIFEST_ACCEPT;

/// GET (or HEAD) of a manifest with an Accept header listing every media type.
pub(crate) async fn fetch_manifest(
    ctx: &Ctx,
    method: Method,
    repo: &str,
    reference: &str,
) -> Result<Response, Outcome> {
    let op = if method == Method::HEAD {
        "manifest_head"
    } else {
        "manifest_get"
    };
    ctx.send(
        Request::new(method, format!("/v2/{repo}/manifests/{reference}"))
            .op(op)
            .header("Accept", ACCEPT_ANY_MANIFEST),
    )
    .await
}

/// Pushes an artifact manifest (empty config and layer) with an optional subject and
/// artifactType; returns its bytes and digest.
pub(crate) async fn push_artifact(
    ctx: &Ctx,
    repo: &str,
    subject: Option<(&Digest, usize, &str)>,
    artifact_type: Option<&str>,
    annotations: Option<Value>,
) -> Result<(Vec<u8>, Digest), Outcome> {
    ctx.push_blob(repo, EMPTY_JSON).await?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": Digest::of(EMPTY_JSON).as_str(), "size": 2},
        "layers": [{"mediaType": EMPTY_MEDIA_TYPE, "digest": Digest::of(EMPTY_JSON).as_str(), "size": 2}],
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = json!(t);
    }
    if let Some((digest, size, media_type)) = subject {
        manifest["subject"] =
            json!({"mediaType": media_type, "digest": digest.as_str(), "size": size});
    }
    if let Some(a) = annotations {
        manifest["annotations"] = a;
    }
    let bytes = serde_json::to_vec(&manifest).map_err(|e| fail(e.to_string()))?;
    let digest = Digest::of(&bytes);
    ctx.push_manifest(repo, digest.as_str(), OCI_MANIFEST, &bytes)
        .await?;
    Ok((bytes, digest))
}

/// Pushes a config blob and returns an image manifest over it and `layers` (not pushed).
async fn manifest_over(ctx: &Ctx, repo: &str, extra: Value) -> Result<Vec<u8>, Outcome> {
    let config = ctx.random_bytes(32);
    let config = format!("{{\"x\":\"{}\"}}", hex(&config)).into_bytes();
    let config_digest = ctx.push_blob(repo, &config).await?;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.as_str(), "size": config.len()},
        "layers": [],
    });
    if let (Some(m), Some(e)) = (manifest.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&manifest).map_err(|e| fail(e.to_string()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fails unless `resp` is a 4xx whose body is an OCI error envelope with at least one
/// `{code, message}` entry.
pub(crate) fn expect_envelope(resp: &Response, what: &str) -> CheckResult {
    ensure((400..500).contains(&resp.status), || {
        format!("{what}: expected a 4xx, got {}", resp.status)
    })?;
    let body: Value = serde_json::from_slice(&resp.body)
        .map_err(|e| fail(format!("{what}: {} body is not JSON ({e})", resp.status)))?;
    let errors = body
        .get("errors")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            fail(format!(
                "{what}: {} body has no errors array: {body}",
                resp.status
            ))
        })?;
    ensure(!errors.is_empty(), || {
        format!("{what}: errors array is empty")
    })?;
    for e in errors {
        ensure(e.get("code").and_then(Value::as_str).is_some(), || {
            format!("{what}: error entry without a string code: {e}")
        })?;
    }
    Ok(())
}

/// Pushes an image into `repo` tagged `tag` and pulls it back by tag and by digest.
async fn push_and_pull(ctx: &Ctx, repo: &str) -> CheckResult {
    let tag = ctx.tag("t");
    let image = ctx.push_image(repo, &tag).await?;
    for reference in [tag.as_str(), image.digest.as_str()] {
        let resp = ctx
            .send(
                Request::new(Method::GET, format!("/v2/{repo}/manifests/{reference}"))
                    .op("manifest_get")
                    .header("Accept", OCI_MANIFEST),
            )
            .await?;
        resp.expect_status(&[200])?;
        ensure(resp.body.as_ref() == image.manifest.as_slice(), || {
            format!("manifest {reference} in {repo} came back with other bytes")
        })?;
    }
    let resp = ctx
        .get(
            &format!("/v2/{repo}/blobs/{}", image.layer_digest),
            "blob_get",
        )
        .await?;
    resp.expect_status(&[200])?;
    ensure(resp.body.as_ref() == image.layer.as_slice(), || {
        format!("layer in {repo} came back with other bytes")
    })?;
    let resp = ctx
        .get(&format!("/v2/{repo}/tags/list"), "tag_list")
        .await?;
    resp.expect_status(&[200])?;
    let body = resp.json()?;
    ensure_eq("tags/list name", &body["name"], &json!(repo))?;
    Ok(())
}

/// Pushes `bytes` as a manifest and checks GET returns them unchanged with their digest.
async fn byte_exact(ctx: &Ctx, repo: &str, bytes: &[u8]) -> CheckResult {
    let digest = Digest::of(bytes);
    let resp = ctx
        .push_manifest(repo, digest.as_str(), OCI_MANIFEST, bytes)
        .await?;
    if let Some(d) = resp.header("Docker-Content-Digest") {
        ensure_eq("Docker-Content-Digest of the PUT", d, digest.as_str())?;
    }
    let resp = ctx
        .send(
            Request::new(Method::GET, format!("/v2/{repo}/manifests/{digest}"))
                .op("manifest_get")
                .header("Accept", OCI_MANIFEST),
        )
        .await?;
    resp.expect_status(&[200])?;
    ensure(resp.body.as_ref() == bytes, || {
        format!(
            "served bytes differ from the pushed ones ({} vs {} bytes): registries must store manifests verbatim",
            resp.body.len(),
            bytes.len()
        )
    })?;
    ensure_eq(
        "Docker-Content-Digest",
        resp.require_header("Docker-Content-Digest")?,
        digest.as_str(),
    )
}

fn name_check(id: &'static str, title: &'static str, suffix: &'static str) -> Check {
    Check::new(
        id,
        Workflow::Edge,
        Level::Must,
        title,
        "names grammar MUST: any component matching [a-z0-9]+… is valid, even a route word",
        move |ctx| async move {
            let repo = format!("{}/{suffix}", ctx.repo());
            push_and_pull(&ctx, &repo).await
        },
    )
}

/// The edge-case checks.
pub fn checks() -> Vec<Check> {
    vec![
        name_check(
            "edge.name.many-components",
            "a name with ten components works",
            "a/b/c/d/e/f/g/h/i",
        ),
        name_check("edge.name.component-blobs", "a name containing `blobs` works", "a/blobs/b"),
        name_check(
            "edge.name.component-manifests",
            "a name containing `manifests` works",
            "manifests/x",
        ),
        name_check(
            "edge.name.component-tags-list",
            "a name containing `tags/list` works",
            "tags/list/y",
        ),
        name_check("edge.name.component-uploads", "a name containing `uploads` works", "blobs/uploads"),
        name_check(
            "edge.name.component-referrers",
            "a name containing `referrers` works",
            "referrers/r",
        ),
        name_check(
            "edge.name.separators",
            "name components with `.`, `_`, `__` and `-` separators work",
            "a.b_c__d--e",
        ),
        Check::new(
            "edge.name.uppercase-invalid",
            Workflow::Edge,
            Level::Must,
            "an upper-case name is refused with 400 NAME_INVALID",
            "names grammar + error codes: NAME_INVALID for an invalid repository name",
            |ctx| async move {
                let repo = format!("{}/Upper", ctx.repo());
                let resp = ctx
                    .send(Request::new(Method::POST, format!("/v2/{repo}/blobs/uploads/")))
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["NAME_INVALID"])
            },
        ),
        Check::new(
            "edge.tag.overlong-refused",
            Workflow::Edge,
            Level::Must,
            "a 129-character tag is refused with 400 and an error envelope",
            "end-7 tag grammar MUST: tags are at most 128 characters",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = manifest_over(&ctx, &repo, json!({})).await?;
                let tag = format!("t{}", "a".repeat(128));
                let resp = ctx.put_manifest(&repo, &tag, OCI_MANIFEST, &manifest).await?;
                if resp.status == 201 {
                    ctx.cleanup_manifest(&repo, Digest::of(&manifest).as_str());
                }
                resp.expect_status(&[400])?;
                expect_envelope(&resp, "overlong tag")
            },
        ),
        Check::new(
            "edge.tag.max-length-accepted",
            Workflow::Edge,
            Level::Must,
            "a 128-character tag is accepted and listed",
            "end-7 tag grammar: [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = manifest_over(&ctx, &repo, json!({})).await?;
                let tag = format!("T_{}", "a.-".repeat(42));
                ensure_eq("tag length", &tag.len(), &128)?;
                ctx.push_manifest(&repo, &tag, OCI_MANIFEST, &manifest).await?;
                let resp = ctx.get(&format!("/v2/{repo}/tags/list"), "tag_list").await?;
                resp.expect_status(&[200])?;
                ensure_eq("tags", &resp.json()?["tags"], &json!([tag]))
            },
        ),
        Check::new(
            "edge.digest.malformed-blob-get",
            Workflow::Edge,
            Level::Must,
            "GET of a blob with a malformed digest is 400 DIGEST_INVALID (or 404), never 5xx",
            "end-2 + error codes: DIGEST_INVALID when a digest does not parse",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(16)).await?;
                let resp = ctx
                    .send(Request::new(Method::GET, format!("/v2/{repo}/blobs/sha256:nothex")))
                    .await?;
                resp.expect_status(&[400, 404])?;
                expect_envelope(&resp, "malformed digest")
            },
        ),
        Check::new(
            "edge.digest.malformed-upload-put",
            Workflow::Edge,
            Level::Must,
            "completing an upload with a malformed digest is 400 DIGEST_INVALID",
            "end-6 MUST: 400 DIGEST_INVALID when the digest parameter is invalid",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                let resp = ctx
                    .send(
                        Request::new(Method::PUT, with_query(&location, "digest", "sha256:xyz"))
                            .header("Content-Type", "application/octet-stream")
                            .body(ctx.random_bytes(16)),
                    )
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "edge.digest.malformed-manifest-get",
            Workflow::Edge,
            Level::Must,
            "GET of a manifest under a malformed digest is 400 DIGEST_INVALID (or 404), never 5xx",
            "end-3 + error codes: a reference that is not a tag must be a valid digest",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let resp = ctx
                    .send(Request::new(Method::GET, format!("/v2/{repo}/manifests/sha256:nothex")).header("Accept", ACCEPT_ANY_MANIFEST))
                    .await?;
                resp.expect_status(&[400, 404])?;
                expect_envelope(&resp, "malformed manifest digest")
            },
        ),
        Check::new(
            "edge.digest.malformed-manifest-put",
            Workflow::Edge,
            Level::Must,
            "PUT of a manifest under a malformed digest is 400 (DIGEST_INVALID or MANIFEST_INVALID)",
            "end-7 MUST: 400 for an invalid reference",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = manifest_over(&ctx, &repo, json!({})).await?;
                let resp = ctx.put_manifest(&repo, "sha256:nothex", OCI_MANIFEST, &manifest).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID", "MANIFEST_INVALID", "TAG_INVALID"])
            },
        ),
        Check::new(
            "edge.digest.mismatch-upload-put",
            Workflow::Edge,
            Level::Must,
            "completing an upload with another blob's digest is 400 DIGEST_INVALID",
            "end-6 MUST: the digest must match the uploaded content",
            |ctx| async move {
                let repo = ctx.repo();
                let location = ctx.start_upload(&repo).await?;
                let wrong = unknown_digest(&ctx);
                let resp = ctx
                    .send(
                        Request::new(Method::PUT, with_query(&location, "digest", wrong.as_str()))
                            .op("upload_complete")
                            .header("Content-Type", "application/octet-stream")
                            .body(ctx.random_bytes(16)),
                    )
                    .await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "edge.manifest.digest-mismatch-put",
            Workflow::Edge,
            Level::Must,
            "PUT of a manifest under a digest it does not hash to is 400 DIGEST_INVALID",
            "end-7 MUST: a digest reference must match the manifest bytes",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = manifest_over(&ctx, &repo, json!({})).await?;
                let wrong = unknown_digest(&ctx);
                let resp = ctx.put_manifest(&repo, wrong.as_str(), OCI_MANIFEST, &manifest).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "edge.error.envelope-everywhere",
            Workflow::Edge,
            Level::Must,
            "every 4xx (unknown blob, manifest, upload, repository) carries the error envelope",
            "error codes MUST: a 4xx body is {\"errors\":[{code,message,detail}]}",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(8)).await?;
                let missing = unknown_digest(&ctx);
                let paths = [
                    format!("/v2/{repo}/blobs/{missing}"),
                    format!("/v2/{repo}/manifests/{missing}"),
                    format!("/v2/{repo}/manifests/nosuchtag"),
                    format!("/v2/{repo}/blobs/uploads/00000000-dead-beef-0000-000000000000"),
                    format!("/v2/{}/tags/list", ctx.repo()),
                ];
                for path in paths {
                    let resp = ctx.send(Request::new(Method::GET, path.clone())).await?;
                    expect_envelope(&resp, &path)?;
                }
                Ok(())
            },
        ),
        Check::new(
            "edge.manifest.over-limit-413",
            Workflow::Edge,
            Level::Should,
            "a manifest over 4 MiB is refused with 413",
            "end-7 SHOULD: registries that limit manifest size answer 413 above the limit (4 MiB)",
            |ctx| async move {
                let repo = ctx.repo();
                let mut manifest = manifest_over(&ctx, &repo, json!({"annotations": {"pad": ""}})).await?;
                pad_to(&mut manifest, 4 * 1024 * 1024 + 1)?;
                // a registry may answer 413 before reading the body and close: listen for it
                let resp = ctx
                    .send_reading_early(
                        Request::new(Method::PUT, format!("/v2/{repo}/manifests/big"))
                            .op("manifest_put")
                            .header("Content-Type", OCI_MANIFEST)
                            .body(manifest.clone()),
                    )
                    .await?;
                if resp.status == 201 {
                    ctx.cleanup_manifest(&repo, Digest::of(&manifest).as_str());
                }
                resp.expect_status(&[413])?;
                Ok(())
            },
        ),
        Check::new(
            "edge.manifest.at-limit-accepted",
            Workflow::Edge,
            Level::Must,
            "a manifest of exactly 4 MiB is accepted and served verbatim",
            "end-7 MUST: registries accept manifests up to 4 MiB",
            |ctx| async move {
                let repo = ctx.repo();
                let mut manifest = manifest_over(&ctx, &repo, json!({"annotations": {"pad": ""}})).await?;
                pad_to(&mut manifest, 4 * 1024 * 1024)?;
                byte_exact(&ctx, &repo, &manifest).await
            },
        ),
        Check::new(
            "edge.parity.manifest-head-get",
            Workflow::Edge,
            Level::Must,
            "HEAD and GET of a manifest agree on Content-Type, Content-Length and digest",
            "end-3 MUST: HEAD answers as GET would, without the body",
            |ctx| async move {
                let repo = ctx.repo();
                let tag = ctx.tag("p");
                let image = ctx.push_image(&repo, &tag).await?;
                let path = format!("/v2/{repo}/manifests/{tag}");
                let get = ctx
                    .send(Request::new(Method::GET, path.clone()).op("manifest_get").header("Accept", OCI_MANIFEST))
                    .await?;
                let head = ctx
                    .send(Request::new(Method::HEAD, path).op("manifest_head").header("Accept", OCI_MANIFEST))
                    .await?;
                get.expect_status(&[200])?;
                head.expect_status(&[200])?;
                for h in ["Content-Type", "Content-Length", "Docker-Content-Digest"] {
                    ensure_eq(h, &head.header(h), &get.header(h))?;
                }
                ensure_eq("Content-Length", &get.header("Content-Length"), &Some(image.manifest.len().to_string().as_str()))?;
                ensure(head.body.is_empty(), || "HEAD returned a body".to_owned())
            },
        ),
        Check::new(
            "edge.parity.blob-head-get",
            Workflow::Edge,
            Level::Must,
            "HEAD and GET of a blob agree on Content-Length and Docker-Content-Digest",
            "end-2 MUST: HEAD answers as GET would, without the body",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(3000);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let path = format!("/v2/{repo}/blobs/{digest}");
                let get = ctx.get(&path, "blob_get").await?;
                let head = ctx.head(&path, "blob_head").await?;
                get.expect_status(&[200])?;
                head.expect_status(&[200])?;
                for h in ["Content-Length", "Docker-Content-Digest"] {
                    ensure_eq(h, &head.header(h), &get.header(h))?;
                }
                ensure_eq("Content-Length", &head.header("Content-Length"), &Some("3000"))?;
                ensure_eq("Docker-Content-Digest", &head.header("Docker-Content-Digest"), &Some(digest.as_str()))
            },
        ),
        Check::new(
            "edge.digest-header.manifest-by-tag",
            Workflow::Edge,
            Level::Must,
            "GET by tag answers Docker-Content-Digest equal to the sha256 of the body",
            "end-3 MUST (spec main): Docker-Content-Digest is the canonical digest of the manifest",
            |ctx| async move {
                let repo = ctx.repo();
                let tag = ctx.tag("d");
                let image = ctx.push_image(&repo, &tag).await?;
                let resp = ctx
                    .send(Request::new(Method::GET, format!("/v2/{repo}/manifests/{tag}")).op("manifest_get").header("Accept", OCI_MANIFEST))
                    .await?;
                resp.expect_status(&[200])?;
                ensure_eq("Docker-Content-Digest", resp.require_header("Docker-Content-Digest")?, Digest::of(&resp.body).as_str())?;
                ensure_eq("digest", &Digest::of(&resp.body), &image.digest)
            },
        ),
        Check::new(
            "edge.manifest.byte-exact-whitespace",
            Workflow::Edge,
            Level::Must,
            "a pretty-printed manifest comes back byte for byte",
            "end-3 MUST: the digest covers the exact bytes pushed",
            |ctx| async move {
                let repo = ctx.repo();
                let m: Value = serde_json::from_slice(&manifest_over(&ctx, &repo, json!({})).await?)
                    .map_err(|e| fail(e.to_string()))?;
                let mut bytes = serde_json::to_vec_pretty(&m).map_err(|e| fail(e.to_string()))?;
                bytes.extend_from_slice(b"\n\n  \t\n");
                byte_exact(&ctx, &repo, &bytes).await
            },
        ),
        Check::new(
            "edge.manifest.byte-exact-key-order",
            Workflow::Edge,
            Level::Must,
            "a manifest with unusual key order comes back byte for byte",
            "end-3 MUST: the digest covers the exact bytes pushed",
            |ctx| async move {
                let repo = ctx.repo();
                let m: Value = serde_json::from_slice(&manifest_over(&ctx, &repo, json!({})).await?)
                    .map_err(|e| fail(e.to_string()))?;
                let bytes = format!(
                    "{{\"layers\":[],\"config\":{{\"size\":{},\"digest\":\"{}\",\"mediaType\":\"{}\"}},\"mediaType\":\"{OCI_MANIFEST}\",\"schemaVersion\":2}}",
                    m["config"]["size"], m["config"]["digest"].as_str().unwrap_or_default(), m["config"]["mediaType"].as_str().unwrap_or_default()
                );
                byte_exact(&ctx, &repo, bytes.as_bytes()).await
            },
        ),
        Check::new(
            "edge.manifest.byte-exact-unicode-escapes",
            Workflow::Edge,
            Level::Must,
            "a manifest with \\u escapes and raw UTF-8 comes back byte for byte",
            "end-3 MUST: the digest covers the exact bytes pushed",
            |ctx| async move {
                let repo = ctx.repo();
                let base = manifest_over(&ctx, &repo, json!({"annotations": {"k": "PLACEHOLDER"}})).await?;
                let text = String::from_utf8(base).map_err(|e| fail(e.to_string()))?;
                let bytes = text.replace("PLACEHOLDER", "caf\\u00e9 \\u003c\\/ \u{e9}t\u{e9} \u{1F980}");
                byte_exact(&ctx, &repo, bytes.as_bytes()).await
            },
        ),
        Check::new(
            "edge.push.repush-blob-idempotent",
            Workflow::Edge,
            Level::Must,
            "uploading an existing blob again succeeds with 201",
            "end-6 MUST: a completed upload is 201, whether or not the content existed",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(512);
                let first = ctx.push_blob(&repo, &bytes).await?;
                let second = ctx.push_blob(&repo, &bytes).await?;
                ensure_eq("digest", &second, &first)
            },
        ),
        Check::new(
            "edge.push.repush-manifest-idempotent",
            Workflow::Edge,
            Level::Must,
            "pushing the same manifest twice is 201 both times with the same digest",
            "end-7 MUST: PUT of a manifest is 201 with its digest",
            |ctx| async move {
                let repo = ctx.repo();
                let manifest = manifest_over(&ctx, &repo, json!({})).await?;
                let a = ctx.push_manifest(&repo, "same", OCI_MANIFEST, &manifest).await?;
                let b = ctx.push_manifest(&repo, "same", OCI_MANIFEST, &manifest).await?;
                ensure_eq("Docker-Content-Digest", &b.header("Docker-Content-Digest"), &a.header("Docker-Content-Digest"))?;
                ensure_eq("digest", &a.header("Docker-Content-Digest"), &Some(Digest::of(&manifest).as_str()))
            },
        ),
        Check::new(
            "edge.push.concurrent-uploads-one-repo",
            Workflow::Edge,
            Level::Must,
            "eight simultaneous uploads to one repository all complete and read back",
            "end-4a/end-6 MUST: upload sessions are independent",
            |ctx| async move {
                let repo = ctx.repo();
                let blobs: Vec<Vec<u8>> = (0..8).map(|i| ctx.random_bytes(10_000 + i)).collect();
                let results = join_all(blobs.iter().map(|b| ctx.push_blob(&repo, b))).await;
                for (blob, result) in blobs.iter().zip(results) {
                    let digest = result?;
                    let resp = ctx.get(&format!("/v2/{repo}/blobs/{digest}"), "blob_get").await?;
                    resp.expect_status(&[200])?;
                    ensure(resp.body.as_ref() == blob.as_slice(), || format!("{digest} read back other bytes"))?;
                }
                Ok(())
            },
        ),
        Check::new(
            "edge.manifest.missing-layer-blob-unknown",
            Workflow::Edge,
            Level::Must,
            "a manifest naming a layer that was never pushed is 400 MANIFEST_BLOB_UNKNOWN",
            "end-7 MUST: MANIFEST_BLOB_UNKNOWN when a referenced blob is missing",
            |ctx| async move {
                let repo = ctx.repo();
                let config = format!("{{\"c\":\"{}\"}}", ctx.tag("c")).into_bytes();
                let config_digest = ctx.push_blob(&repo, &config).await?;
                let missing = unknown_digest(&ctx);
                let manifest = image_manifest((&config_digest, config.len()), &[(&missing, 64)]);
                let resp = ctx.put_manifest(&repo, "x", OCI_MANIFEST, &manifest).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["MANIFEST_BLOB_UNKNOWN"])
            },
        ),
        Check::new(
            "edge.manifest.garbage-invalid",
            Workflow::Edge,
            Level::Must,
            "a manifest body that is not JSON is 400 MANIFEST_INVALID",
            "end-7 MUST: MANIFEST_INVALID for a manifest that fails to parse",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(8)).await?;
                let resp = ctx.put_manifest(&repo, "x", OCI_MANIFEST, b"{not json").await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["MANIFEST_INVALID"])
            },
        ),
        Check::new(
            "edge.subject.dangling-accepted",
            Workflow::Edge,
            Level::Must,
            "a manifest whose subject does not exist (yet) is accepted",
            "end-7 MUST: registries accept a subject that is not in the repository",
            |ctx| async move {
                let repo = ctx.repo();
                let missing = unknown_digest(&ctx);
                push_artifact(&ctx, &repo, Some((&missing, 100, OCI_MANIFEST)), Some("application/x.test"), None).await?;
                Ok(())
            },
        ),
        Check::new(
            "edge.index.dangling-child-handled",
            Workflow::Edge,
            Level::Must,
            "an index naming a manifest that is absent is 201 or 400 MANIFEST_BLOB_UNKNOWN, never 5xx",
            "end-7 MAY/MUST: a registry may require children; if it refuses, with MANIFEST_BLOB_UNKNOWN",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(8)).await?;
                let missing = unknown_digest(&ctx);
                let index = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_INDEX,
                    "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing.as_str(), "size": 100}],
                })).map_err(|e| fail(e.to_string()))?;
                let resp = ctx.put_manifest(&repo, "idx", OCI_INDEX, &index).await?;
                match resp.status {
                    201 => {
                        ctx.cleanup_manifest(&repo, Digest::of(&index).as_str());
                        Ok(())
                    }
                    _ => {
                        resp.expect_status(&[400])?;
                        resp.expect_error_code(&["MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID"])
                    }
                }
            },
        ),
    ]
}

/// Grows the `pad` annotation so the manifest is exactly `size` bytes.
fn pad_to(manifest: &mut Vec<u8>, size: usize) -> CheckResult {
    let marker = b"\"pad\":\"\"";
    let at = manifest
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or_else(|| fail("pad annotation missing"))?;
    let missing = size
        .checked_sub(manifest.len())
        .ok_or_else(|| fail("manifest already too big"))?;
    let insert_at = at + marker.len() - 1;
    manifest.splice(insert_at..insert_at, std::iter::repeat_n(b'a', missing));
    ensure_eq("padded size", &manifest.len(), &size)
}
