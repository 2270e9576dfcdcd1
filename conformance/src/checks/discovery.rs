//! Content discovery: tag listing with `n`/`last` pagination, the referrers API, and the
//! Docker `_catalog`.

use reqwest::Method;
use serde_json::{json, Value};

use quayside_spec::grammar::Digest;

use super::edge::{push_artifact, unknown_digest};
use crate::check::{
    ensure, ensure_eq, fail, unsupported, Check, CheckResult, Level, Outcome, Workflow,
};
use crate::http::{Request, Response};
use crate::runner::{Ctx, OCI_INDEX, OCI_MANIFEST};

/// Pushes one small image and tags it with each of `tags`; returns nothing but errors.
async fn push_tags(ctx: &Ctx, repo: &str, tags: &[&str]) -> CheckResult {
    let image = ctx.push_image(repo, tags[0]).await?;
    for tag in &tags[1..] {
        ctx.push_manifest(repo, tag, OCI_MANIFEST, &image.manifest)
            .await?;
    }
    Ok(())
}

/// The `tags` array of a tags/list response, failing readably when absent.
fn tags_of(resp: &Response) -> Result<Vec<String>, Outcome> {
    let body = resp.json()?;
    match &body["tags"] {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => Ok(a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()),
        other => Err(fail(format!("tags is not an array: {other}"))),
    }
}

/// The URL in a `Link: <url>; rel="next"` header, if present and well formed.
pub(crate) fn next_link(resp: &Response) -> Result<Option<String>, Outcome> {
    let Some(link) = resp.header("Link") else {
        return Ok(None);
    };
    let (url, params) = link
        .split_once(';')
        .ok_or_else(|| fail(format!("Link {link:?} has no parameters")))?;
    let url = url.trim();
    ensure(url.starts_with('<') && url.ends_with('>'), || {
        format!("Link {link:?}: URL is not in angle brackets")
    })?;
    ensure(params.replace(' ', "").contains("rel=\"next\""), || {
        format!("Link {link:?} lacks rel=\"next\"")
    })?;
    Ok(Some(url[1..url.len() - 1].to_owned()))
}

/// GET referrers of `subject`, treating 404 as a missing (required) API.
async fn referrers(
    ctx: &Ctx,
    repo: &str,
    subject: &Digest,
    query: &str,
) -> Result<Response, Outcome> {
    let resp = ctx
        .get(
            &format!("/v2/{repo}/referrers/{subject}{query}"),
            "referrer_list",
        )
        .await?;
    if resp.status == 404 {
        return Err(fail(format!(
            "referrers API answered 404 {:?}: it must answer 200 with an image index",
            resp.error_codes()
        )));
    }
    resp.expect_status(&[200])?;
    Ok(resp)
}

/// The `manifests` of a referrers index.
fn referrer_descriptors(resp: &Response) -> Result<Vec<Value>, Outcome> {
    let body = resp.json()?;
    ensure_eq("referrers mediaType", &body["mediaType"], &json!(OCI_INDEX))?;
    body["manifests"]
        .as_array()
        .cloned()
        .ok_or_else(|| fail(format!("referrers index has no manifests array: {body}")))
}

fn find<'a>(descriptors: &'a [Value], digest: &Digest) -> Result<&'a Value, Outcome> {
    descriptors
        .iter()
        .find(|d| d["digest"] == json!(digest.as_str()))
        .ok_or_else(|| fail(format!("referrers do not list {digest}: {descriptors:?}")))
}

/// Pushes an image as subject; returns its (digest, size).
async fn subject(ctx: &Ctx, repo: &str) -> Result<(Digest, usize), Outcome> {
    let image = ctx.push_image(repo, &ctx.tag("subject")).await?;
    Ok((image.digest, image.manifest.len()))
}

fn tag_check(
    id: &'static str,
    level: Level,
    title: &'static str,
    rule: &'static str,
    query: &'static str,
    expected: &'static [&'static str],
) -> Check {
    Check::new(
        id,
        Workflow::Discovery,
        level,
        title,
        rule,
        move |ctx| async move {
            let repo = ctx.repo();
            // eight tags pushed out of order: a registry listing in storage order is very
            // unlikely to come out sorted by chance (1 in 40320)
            push_tags(&ctx, &repo, &["h", "a", "f", "c", "e", "b", "g", "d"]).await?;
            let resp = ctx
                .get(&format!("/v2/{repo}/tags/list{query}"), "tag_list")
                .await?;
            resp.expect_status(&[200])?;
            ensure_eq(
                &format!("tags for {query:?}"),
                &tags_of(&resp)?,
                &expected.to_vec(),
            )
        },
    )
}

/// The discovery checks.
pub fn checks() -> Vec<Check> {
    vec![
        tag_check(
            "discovery.tags.lexical-order",
            Level::Must,
            "tags/list returns every tag in lexical order",
            "end-8a MUST: the tag list is in lexical order",
            "",
            &["a", "b", "c", "d", "e", "f", "g", "h"],
        ),
        tag_check(
            "discovery.tags.n-limits",
            Level::Must,
            "?n=2 returns the first two tags",
            "end-8b MUST: at most n tags, lexically first",
            "?n=2",
            &["a", "b"],
        ),
        tag_check(
            "discovery.tags.last-continues",
            Level::Must,
            "?last=b returns the tags after b",
            "end-8b MUST: the list starts after `last`",
            "?last=b",
            &["c", "d", "e", "f", "g", "h"],
        ),
        tag_check(
            "discovery.tags.n-and-last",
            Level::Must,
            "?n=1&last=b returns exactly c",
            "end-8b MUST: n and last combine",
            "?n=1&last=b",
            &["c"],
        ),
        tag_check(
            "discovery.tags.last-beyond-end",
            Level::Must,
            "?last=z returns an empty list",
            "end-8b MUST: nothing sorts after the last tag",
            "?last=z",
            &[],
        ),
        tag_check(
            "discovery.tags.n-larger-than-count",
            Level::Must,
            "?n=100 returns all eight tags",
            "end-8b MUST: n is an upper bound",
            "?n=100",
            &["a", "b", "c", "d", "e", "f", "g", "h"],
        ),
        tag_check(
            "discovery.tags.n-zero-empty",
            Level::Must,
            "?n=0 returns an empty list",
            "end-8b MUST (v1.1): n=0 answers an empty list",
            "?n=0",
            &[],
        ),
        Check::new(
            "discovery.tags.link-walks-all",
            Workflow::Discovery,
            Level::Must,
            "following Link rel=next with n=1 visits every tag once, in order",
            "end-8b MUST: a Link header points at the next page while more tags remain",
            |ctx| async move {
                let repo = ctx.repo();
                push_tags(&ctx, &repo, &["d", "a", "c", "b"]).await?;
                let mut url = format!("/v2/{repo}/tags/list?n=1");
                let mut seen = Vec::new();
                for _ in 0..6 {
                    let resp = ctx.get(&url, "tag_list").await?;
                    resp.expect_status(&[200])?;
                    let page = tags_of(&resp)?;
                    ensure(page.len() <= 1, || format!("n=1 page has {page:?}"))?;
                    seen.extend(page);
                    match next_link(&resp)? {
                        Some(next) => url = next,
                        None => break,
                    }
                }
                ensure_eq("tags seen through Link", &seen, &vec!["a", "b", "c", "d"])
            },
        ),
        Check::new(
            "discovery.tags.link-format",
            Workflow::Discovery,
            Level::Must,
            "the Link header is `<url>; rel=\"next\"` with a /v2/ URL carrying n and last",
            "end-8b MUST: RFC 8288 Link with rel=\"next\"",
            |ctx| async move {
                let repo = ctx.repo();
                push_tags(&ctx, &repo, &["a", "b", "c"]).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/tags/list?n=2"), "tag_list")
                    .await?;
                resp.expect_status(&[200])?;
                let next =
                    next_link(&resp)?.ok_or_else(|| fail("no Link header on a partial page"))?;
                let path = next.split_once("://").map_or(next.as_str(), |(_, rest)| {
                    rest.find('/').map_or("", |i| &rest[i..])
                });
                ensure(path.starts_with(&format!("/v2/{repo}/tags/list?")), || {
                    format!("Link URL {next:?} is not this repository's tags/list")
                })?;
                ensure(path.contains("n=2") && path.contains("last=b"), || {
                    format!("Link URL {next:?} lacks n=2 and last=b")
                })
            },
        ),
        Check::new(
            "discovery.tags.no-link-on-last-page",
            Workflow::Discovery,
            Level::Must,
            "a page that holds the remaining tags has no Link header",
            "end-8b: Link only while more results remain",
            |ctx| async move {
                let repo = ctx.repo();
                push_tags(&ctx, &repo, &["a", "b"]).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/tags/list?n=5"), "tag_list")
                    .await?;
                resp.expect_status(&[200])?;
                ensure_eq("Link", &resp.header("Link"), &None::<&str>)
            },
        ),
        Check::new(
            "discovery.tags.unknown-repo-404",
            Workflow::Discovery,
            Level::Must,
            "tags/list of a repository never pushed to is 404 NAME_UNKNOWN",
            "end-8a: 404 NAME_UNKNOWN for an unknown repository",
            |ctx| async move {
                let resp = ctx
                    .get(&format!("/v2/{}/tags/list", ctx.repo()), "tag_list")
                    .await?;
                resp.expect_status(&[404])?;
                resp.expect_error_code(&["NAME_UNKNOWN"])
            },
        ),
        Check::new(
            "discovery.tags.name-field",
            Workflow::Discovery,
            Level::Must,
            "tags/list names the repository in `name`",
            "end-8a MUST: body {name, tags}",
            |ctx| async move {
                let repo = ctx.repo();
                push_tags(&ctx, &repo, &["only"]).await?;
                let resp = ctx
                    .get(&format!("/v2/{repo}/tags/list"), "tag_list")
                    .await?;
                resp.expect_status(&[200])?;
                ensure_eq("name", &resp.json()?["name"], &json!(repo))
            },
        ),
        Check::new(
            "discovery.referrers.unknown-subject-empty",
            Workflow::Discovery,
            Level::Must,
            "referrers of an unknown subject is 200 with an empty image index",
            "end-12a MUST: never 404 for an unknown subject; an empty index",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let resp = referrers(&ctx, &repo, &unknown_digest(&ctx), "").await?;
                ensure_eq(
                    "manifests",
                    &referrer_descriptors(&resp)?,
                    &Vec::<Value>::new(),
                )
            },
        ),
        Check::new(
            "discovery.referrers.content-type",
            Workflow::Discovery,
            Level::Must,
            "referrers answers Content-Type application/vnd.oci.image.index.v1+json",
            "end-12a MUST: the response is an image index",
            |ctx| async move {
                let repo = ctx.repo();
                let (digest, _) = subject(&ctx, &repo).await?;
                let resp = referrers(&ctx, &repo, &digest, "").await?;
                ensure_eq(
                    "Content-Type",
                    &resp
                        .header("Content-Type")
                        .map(|c| c.split(';').next().unwrap_or("").trim()),
                    &Some(OCI_INDEX),
                )
            },
        ),
        Check::new(
            "discovery.referrers.lists-referrer",
            Workflow::Discovery,
            Level::Must,
            "a manifest with a subject is listed with its digest, size, mediaType and artifactType",
            "end-12a MUST: descriptors of every manifest whose subject is the digest",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                let (bytes, digest) = push_artifact(
                    &ctx,
                    &repo,
                    Some((&sd, ss, OCI_MANIFEST)),
                    Some("application/x.sbom"),
                    None,
                )
                .await?;
                let resp = referrers(&ctx, &repo, &sd, "").await?;
                let list = referrer_descriptors(&resp)?;
                let d = find(&list, &digest)?;
                ensure_eq("size", &d["size"], &json!(bytes.len()))?;
                ensure_eq("mediaType", &d["mediaType"], &json!(OCI_MANIFEST))?;
                ensure_eq(
                    "artifactType",
                    &d["artifactType"],
                    &json!("application/x.sbom"),
                )
            },
        ),
        Check::new(
            "discovery.referrers.annotations-carried",
            Workflow::Discovery,
            Level::Must,
            "a referrer's annotations appear in its descriptor",
            "end-12a MUST: descriptors include the manifest's annotations",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                let annotations = json!({"org.example.k": "v", "org.opencontainers.image.created": "2026-01-01T00:00:00Z"});
                let (_, digest) = push_artifact(
                    &ctx,
                    &repo,
                    Some((&sd, ss, OCI_MANIFEST)),
                    Some("application/x.sig"),
                    Some(annotations.clone()),
                )
                .await?;
                let resp = referrers(&ctx, &repo, &sd, "").await?;
                let list = referrer_descriptors(&resp)?;
                ensure_eq(
                    "annotations",
                    &find(&list, &digest)?["annotations"],
                    &annotations,
                )
            },
        ),
        Check::new(
            "discovery.referrers.artifact-type-from-config",
            Workflow::Discovery,
            Level::Must,
            "a referrer without artifactType is listed with its config mediaType as artifactType",
            "end-12a MUST: artifactType falls back to config.mediaType",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                let config = br#"{"kind":"test"}"#;
                let cd = ctx.push_blob(&repo, config).await?;
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/x.custom.config", "digest": cd.as_str(), "size": config.len()},
                    "layers": [],
                    "subject": {"mediaType": OCI_MANIFEST, "digest": sd.as_str(), "size": ss},
                })).map_err(|e| fail(e.to_string()))?;
                let digest = Digest::of(&manifest);
                ctx.push_manifest(&repo, digest.as_str(), OCI_MANIFEST, &manifest)
                    .await?;
                let resp = referrers(&ctx, &repo, &sd, "").await?;
                let list = referrer_descriptors(&resp)?;
                ensure_eq(
                    "artifactType",
                    &find(&list, &digest)?["artifactType"],
                    &json!("application/x.custom.config"),
                )
            },
        ),
        Check::new(
            "discovery.referrers.artifact-type-filter",
            Workflow::Discovery,
            Level::Should,
            "?artifactType= keeps only matching referrers and says so in OCI-Filters-Applied",
            "end-12b SHOULD filter; MUST send OCI-Filters-Applied: artifactType when it did",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                let (_, keep) = push_artifact(
                    &ctx,
                    &repo,
                    Some((&sd, ss, OCI_MANIFEST)),
                    Some("application/x.keep"),
                    None,
                )
                .await?;
                let (_, drop) = push_artifact(
                    &ctx,
                    &repo,
                    Some((&sd, ss, OCI_MANIFEST)),
                    Some("application/x.drop"),
                    None,
                )
                .await?;
                let resp = referrers(&ctx, &repo, &sd, "?artifactType=application/x.keep").await?;
                let list = referrer_descriptors(&resp)?;
                find(&list, &keep)?;
                let filtered = resp
                    .header("OCI-Filters-Applied")
                    .is_some_and(|h| h.split(',').any(|f| f.trim() == "artifactType"));
                let dropped = !list.iter().any(|d| d["digest"] == json!(drop.as_str()));
                match (filtered, dropped) {
                    (true, true) => Ok(()),
                    (false, false) => Err(unsupported("artifactType filtering not applied (no OCI-Filters-Applied, both listed)")),
                    (true, false) => Err(fail("OCI-Filters-Applied: artifactType sent but the other artifactType is listed")),
                    (false, true) => Err(fail("filtered the list without OCI-Filters-Applied: artifactType")),
                }
            },
        ),
        Check::new(
            "discovery.referrers.index-subject",
            Workflow::Discovery,
            Level::Must,
            "an image index with a subject is listed as a referrer",
            "end-12a MUST: indexes with a subject are referrers too",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                let index = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/x.bundle",
                    "manifests": [{"mediaType": OCI_MANIFEST, "digest": sd.as_str(), "size": ss}],
                    "subject": {"mediaType": OCI_MANIFEST, "digest": sd.as_str(), "size": ss},
                })).map_err(|e| fail(e.to_string()))?;
                let digest = Digest::of(&index);
                ctx.push_manifest(&repo, digest.as_str(), OCI_INDEX, &index)
                    .await?;
                let resp = referrers(&ctx, &repo, &sd, "").await?;
                let list = referrer_descriptors(&resp)?;
                let d = find(&list, &digest)?;
                ensure_eq("mediaType", &d["mediaType"], &json!(OCI_INDEX))?;
                ensure_eq(
                    "artifactType",
                    &d["artifactType"],
                    &json!("application/x.bundle"),
                )
            },
        ),
        Check::new(
            "discovery.referrers.oci-subject-header",
            Workflow::Discovery,
            Level::Must,
            "PUT of a manifest with a subject answers OCI-Subject with the subject digest",
            "end-7 MUST: registries supporting referrers send OCI-Subject",
            |ctx| async move {
                let repo = ctx.repo();
                let (sd, ss) = subject(&ctx, &repo).await?;
                ctx.push_blob(&repo, super::edge::EMPTY_JSON).await?;
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/x.t",
                    "config": {"mediaType": super::edge::EMPTY_MEDIA_TYPE, "digest": Digest::of(super::edge::EMPTY_JSON).as_str(), "size": 2},
                    "layers": [],
                    "subject": {"mediaType": OCI_MANIFEST, "digest": sd.as_str(), "size": ss},
                })).map_err(|e| fail(e.to_string()))?;
                let resp = ctx
                    .push_manifest(
                        &repo,
                        Digest::of(&manifest).as_str(),
                        OCI_MANIFEST,
                        &manifest,
                    )
                    .await?;
                ensure_eq(
                    "OCI-Subject",
                    &resp.header("OCI-Subject"),
                    &Some(sd.as_str()),
                )
            },
        ),
        Check::new(
            "discovery.referrers.dangling-subject-listed",
            Workflow::Discovery,
            Level::Must,
            "a referrer pushed before its subject is listed for that subject",
            "end-12a MUST: referrers are indexed even when the subject is absent",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let missing = unknown_digest(&ctx);
                let (_, digest) = push_artifact(
                    &ctx,
                    &repo,
                    Some((&missing, 123, OCI_MANIFEST)),
                    Some("application/x.early"),
                    None,
                )
                .await?;
                let resp = referrers(&ctx, &repo, &missing, "").await?;
                find(&referrer_descriptors(&resp)?, &digest).map(|_| ())
            },
        ),
        Check::new(
            "discovery.referrers.bad-digest-400",
            Workflow::Discovery,
            Level::Must,
            "referrers of a malformed digest is 400",
            "end-12a: 400 when the digest is invalid",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let resp = ctx
                    .get(
                        &format!("/v2/{repo}/referrers/sha256:nothex"),
                        "referrer_list",
                    )
                    .await?;
                resp.expect_status(&[400])?;
                Ok(())
            },
        ),
        Check::new(
            "discovery.catalog.lists-repo",
            Workflow::Discovery,
            Level::May,
            "_catalog lists a repository that was pushed to",
            "Docker _catalog (not OCI): MAY; 404 is reported unsupported",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "x").await?;
                let before = &repo[..repo.len() - 1];
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/_catalog?n=5&last={before}"))
                            .op("catalog_list"),
                    )
                    .await?;
                catalog_supported(&resp)?;
                let repos = resp.json()?["repositories"].clone();
                ensure(
                    repos.as_array().is_some_and(|a| a.contains(&json!(repo))),
                    || format!("_catalog after {before:?} lacks {repo}: {repos}"),
                )
            },
        ),
        Check::new(
            "discovery.catalog.pagination",
            Workflow::Discovery,
            Level::May,
            "_catalog?n=1 returns one repository and a Link to the next",
            "Docker _catalog: n/last pagination with Link",
            |ctx| async move {
                let base = ctx.repo();
                for suffix in ["a", "b"] {
                    ctx.push_image(&format!("{base}/{suffix}"), "x").await?;
                }
                let resp = ctx
                    .send(
                        Request::new(Method::GET, format!("/v2/_catalog?n=1&last={base}"))
                            .op("catalog_list"),
                    )
                    .await?;
                catalog_supported(&resp)?;
                ensure_eq(
                    "repositories",
                    &resp.json()?["repositories"],
                    &json!([format!("{base}/a")]),
                )?;
                let next =
                    next_link(&resp)?.ok_or_else(|| fail("no Link on a partial _catalog page"))?;
                let resp = ctx
                    .send(Request::new(Method::GET, next).op("catalog_list"))
                    .await?;
                resp.expect_status(&[200])?;
                ensure_eq(
                    "second page",
                    &resp.json()?["repositories"],
                    &json!([format!("{base}/b")]),
                )
            },
        ),
    ]
}

fn catalog_supported(resp: &Response) -> CheckResult {
    if resp.status == 404 || resp.status == 405 {
        return Err(unsupported(format!("_catalog answered {}", resp.status)));
    }
    resp.expect_status(&[200])?;
    Ok(())
}
