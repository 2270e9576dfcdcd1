//! Content management: deleting manifests, tags and blobs, and what remains afterwards.
//! A registry with deletion disabled answers 405, which these checks report as
//! Unsupported rather than failed.

use reqwest::Method;
use serde_json::json;

use super::edge::{expect_deleted, fetch_manifest, push_artifact, unknown_digest};
use crate::check::{ensure, ensure_eq, fail, unsupported, Check, Level, Workflow};
use crate::http::Request;
use crate::runner::OCI_MANIFEST;

/// The management checks.
pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "management.manifest.delete-by-digest",
            Workflow::Management,
            Level::Must,
            "DELETE of a manifest by digest is 202, then GET and HEAD are 404 MANIFEST_UNKNOWN",
            "end-9 MUST: 202 on delete; a deleted manifest is gone",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "t").await?;
                let path = format!("/v2/{repo}/manifests/{}", image.digest);
                expect_deleted(&ctx.delete(&path, "manifest_delete").await?, "manifest delete")?;
                let resp = fetch_manifest(&ctx, Method::GET, &repo, image.digest.as_str()).await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["MANIFEST_UNKNOWN"])?;
                fetch_manifest(&ctx, Method::HEAD, &repo, image.digest.as_str()).await?.expect_status(&[404])?;
                Ok(())
            },
        ),
        Check::new(
            "management.manifest.delete-removes-tag",
            Workflow::Management,
            Level::Must,
            "after deleting a manifest by digest its tag no longer resolves",
            "end-9 MUST: deleting a manifest removes the tags pointing at it",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "gone").await?;
                ctx.push_image(&repo, "kept").await?;
                let path = format!("/v2/{repo}/manifests/{}", image.digest);
                expect_deleted(&ctx.delete(&path, "manifest_delete").await?, "manifest delete")?;
                fetch_manifest(&ctx, Method::GET, &repo, "gone").await?.expect_status(&[404])?;
                let resp = ctx.get(&format!("/v2/{repo}/tags/list"), "tag_list").await?;
                resp.expect_status(&[200])?;
                ensure_eq("tags", &resp.json()?["tags"], &json!(["kept"]))
            },
        ),
        Check::new(
            "management.tag.delete-untags",
            Workflow::Management,
            Level::Must,
            "DELETE by tag is 202 and removes only the tag (or 400/405 UNSUPPORTED when disabled)",
            "end-9 MUST: 202 on tag delete; if tag deletion is disabled, 400 or 405 with UNSUPPORTED",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "a").await?;
                let resp = ctx.delete(&format!("/v2/{repo}/manifests/a"), "manifest_delete").await?;
                if matches!(resp.status, 400 | 405) && resp.error_codes().iter().any(|c| c == "UNSUPPORTED") {
                    return Err(unsupported("tag deletion disabled"));
                }
                ensure(resp.status == 202, || {
                    format!("tag delete answered {} {:?}: expected 202, or 400/405 UNSUPPORTED", resp.status, resp.error_codes())
                })?;
                fetch_manifest(&ctx, Method::GET, &repo, "a").await?.expect_status(&[404])?;
                fetch_manifest(&ctx, Method::GET, &repo, image.digest.as_str()).await?.expect_status(&[200])?;
                Ok(())
            },
        ),
        Check::new(
            "management.tag.delete-keeps-other-tags",
            Workflow::Management,
            Level::Must,
            "untagging one of two tags of a manifest leaves the other",
            "end-9: a tag delete removes only that tag",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "one").await?;
                ctx.push_manifest(&repo, "two", OCI_MANIFEST, &image.manifest).await?;
                let resp = ctx.delete(&format!("/v2/{repo}/manifests/one"), "manifest_delete").await?;
                if resp.status != 202 {
                    return Err(unsupported(format!("tag deletion answered {} {:?}", resp.status, resp.error_codes())));
                }
                let resp = ctx.get(&format!("/v2/{repo}/tags/list"), "tag_list").await?;
                resp.expect_status(&[200])?;
                ensure_eq("tags", &resp.json()?["tags"], &json!(["two"]))
            },
        ),
        Check::new(
            "management.manifest.delete-unknown-404",
            Workflow::Management,
            Level::Must,
            "DELETE of a manifest that does not exist is 404 MANIFEST_UNKNOWN",
            "end-9: 404 for an unknown manifest",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let resp = ctx.delete(&format!("/v2/{repo}/manifests/{}", unknown_digest(&ctx)), "manifest_delete").await?;
                if resp.status == 405 {
                    return Err(unsupported("deletion disabled"));
                }
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["MANIFEST_UNKNOWN"])
            },
        ),
        Check::new(
            "management.manifest.delete-twice-404",
            Workflow::Management,
            Level::Must,
            "a second DELETE of the same manifest is 404",
            "end-9: the manifest is gone after the first delete",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "x").await?;
                let path = format!("/v2/{repo}/manifests/{}", image.digest);
                expect_deleted(&ctx.delete(&path, "manifest_delete").await?, "first delete")?;
                ctx.delete(&path, "manifest_delete").await?.expect_status(&[404])?;
                Ok(())
            },
        ),
        Check::new(
            "management.blob.delete",
            Workflow::Management,
            Level::Must,
            "DELETE of a blob is 202, then HEAD and GET are 404 BLOB_UNKNOWN",
            "end-10 MUST: 202 on delete; a deleted blob is gone",
            |ctx| async move {
                let repo = ctx.repo();
                let digest = ctx.push_blob(&repo, &ctx.random_bytes(700)).await?;
                let path = format!("/v2/{repo}/blobs/{digest}");
                expect_deleted(&ctx.delete(&path, "blob_delete").await?, "blob delete")?;
                ctx.head(&path, "blob_head").await?.expect_status(&[404])?;
                let resp = ctx.get(&path, "blob_get").await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["BLOB_UNKNOWN"])
            },
        ),
        Check::new(
            "management.blob.delete-unknown-404",
            Workflow::Management,
            Level::Must,
            "DELETE of a blob that does not exist is 404 BLOB_UNKNOWN",
            "end-10: 404 for an unknown blob",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(10)).await?;
                let resp = ctx.delete(&format!("/v2/{repo}/blobs/{}", unknown_digest(&ctx)), "blob_delete").await?;
                if resp.status == 405 {
                    return Err(unsupported("deletion disabled"));
                }
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["BLOB_UNKNOWN"])
            },
        ),
        Check::new(
            "management.blob.delete-bad-digest-400",
            Workflow::Management,
            Level::Must,
            "DELETE of a blob under a malformed digest is 400 DIGEST_INVALID",
            "end-10 + error codes: DIGEST_INVALID for a digest that does not parse",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_blob(&repo, &ctx.random_bytes(10)).await?;
                let resp = ctx.send(Request::new(Method::DELETE, format!("/v2/{repo}/blobs/sha256:zz"))).await?;
                resp.expect_status(&[400])?;
                resp.expect_error_code(&["DIGEST_INVALID"])
            },
        ),
        Check::new(
            "management.blob.repush-after-delete",
            Workflow::Management,
            Level::Must,
            "a deleted blob can be uploaded again and read back",
            "end-10 then end-6: deletion does not poison the digest",
            |ctx| async move {
                let repo = ctx.repo();
                let bytes = ctx.random_bytes(900);
                let digest = ctx.push_blob(&repo, &bytes).await?;
                let path = format!("/v2/{repo}/blobs/{digest}");
                expect_deleted(&ctx.delete(&path, "blob_delete").await?, "blob delete")?;
                ctx.push_blob(&repo, &bytes).await?;
                let resp = ctx.get(&path, "blob_get").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == bytes.as_slice(), || "re-pushed blob reads back other bytes".to_owned())
            },
        ),
        Check::new(
            "management.manifest.delete-keeps-other-repo",
            Workflow::Management,
            Level::Must,
            "deleting a manifest in one repository leaves the same manifest in another",
            "end-9: deletion is scoped to the repository",
            |ctx| async move {
                let (a, b) = (ctx.repo(), ctx.repo());
                let image = ctx.push_image(&a, "x").await?;
                let config = ctx.get(&format!("/v2/{a}/blobs/{}", image.config_digest), "blob_get").await?;
                ctx.push_blob(&b, &config.body).await?;
                ctx.push_blob(&b, &image.layer).await?;
                ctx.push_manifest(&b, "x", OCI_MANIFEST, &image.manifest).await?;
                expect_deleted(&ctx.delete(&format!("/v2/{a}/manifests/{}", image.digest), "manifest_delete").await?, "delete in a")?;
                fetch_manifest(&ctx, Method::GET, &b, image.digest.as_str()).await?.expect_status(&[200])?;
                Ok(())
            },
        ),
        Check::new(
            "management.referrer.delete-removes-from-list",
            Workflow::Management,
            Level::Must,
            "deleting a referrer removes it from its subject's referrers",
            "end-9 + end-12a MUST: referrers list only existing manifests",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "s").await?;
                let subject = (&image.digest, image.manifest.len(), OCI_MANIFEST);
                let (_, gone) = push_artifact(&ctx, &repo, Some(subject), Some("application/x.a"), None).await?;
                let (_, kept) = push_artifact(&ctx, &repo, Some(subject), Some("application/x.b"), None).await?;
                expect_deleted(&ctx.delete(&format!("/v2/{repo}/manifests/{gone}"), "manifest_delete").await?, "referrer delete")?;
                let resp = ctx.get(&format!("/v2/{repo}/referrers/{}", image.digest), "referrer_list").await?;
                resp.expect_status(&[200])?;
                let digests: Vec<String> = resp.json()?["manifests"].as_array().map(|a| a.iter().filter_map(|d| d["digest"].as_str().map(str::to_owned)).collect()).unwrap_or_default();
                ensure_eq("referrers", &digests, &vec![kept.to_string()])
            },
        ),
        Check::new(
            "management.subject.delete-then-referrers",
            Workflow::Management,
            Level::Must,
            "after deleting a subject, its referrers query still answers 200 with an index",
            "end-9 + end-12a MUST: referrers never 404 for a subject that is absent",
            |ctx| async move {
                let repo = ctx.repo();
                let image = ctx.push_image(&repo, "s").await?;
                let subject = (&image.digest, image.manifest.len(), OCI_MANIFEST);
                push_artifact(&ctx, &repo, Some(subject), Some("application/x.a"), None).await?;
                expect_deleted(&ctx.delete(&format!("/v2/{repo}/manifests/{}", image.digest), "manifest_delete").await?, "subject delete")?;
                let resp = ctx.get(&format!("/v2/{repo}/referrers/{}", image.digest), "referrer_list").await?;
                resp.expect_status(&[200])?;
                let body = resp.json()?;
                ensure(body["manifests"].is_array(), || fail(format!("no manifests array: {body}")).reason().to_owned())
            },
        ),
    ]
}
