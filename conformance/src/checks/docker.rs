//! Docker media types and client behaviour: the OCI suite pushes only OCI content, yet a
//! registry that passes it can still break `docker push` (schema 2, manifest lists, the
//! Docker config type, Accept negotiation, the API version header).

use reqwest::Method;
use serde_json::json;

use quayside_spec::grammar::Digest;

use super::edge::expect_envelope;
use crate::check::{ensure, ensure_eq, fail, Check, Level, Outcome, Workflow};
use crate::http::{Request, Response};
use crate::runner::{Ctx, OCI_INDEX, OCI_MANIFEST};

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker schema 1 (deprecated) manifest.
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// What `docker push` sends as Accept on a pull.
const DOCKER_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";

/// A pushed schema 2 image.
struct DockerImage {
    manifest: Vec<u8>,
    digest: Digest,
    config: Vec<u8>,
    config_digest: Digest,
}

/// Pushes a Docker config and layer and a schema 2 manifest tagged `tag`.
async fn push_docker_image(ctx: &Ctx, repo: &str, tag: &str) -> Result<DockerImage, Outcome> {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Labels": {"t": ctx.tag("l")}},
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .map_err(|e| fail(e.to_string()))?;
    let layer = ctx.random_bytes(2048);
    let config_digest = ctx.push_blob(repo, &config).await?;
    let layer_digest = ctx.push_blob(repo, &layer).await?;
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": config_digest.as_str()},
        "layers": [{"mediaType": DOCKER_LAYER, "size": layer.len(), "digest": layer_digest.as_str()}],
    }))
    .map_err(|e| fail(e.to_string()))?;
    ctx.push_manifest(repo, tag, DOCKER_MANIFEST, &manifest)
        .await?;
    Ok(DockerImage {
        digest: Digest::of(&manifest),
        manifest,
        config,
        config_digest,
    })
}

async fn get_manifest(
    ctx: &Ctx,
    method: Method,
    repo: &str,
    reference: &str,
    accept: &str,
) -> Result<Response, Outcome> {
    let op = if method == Method::HEAD {
        "manifest_head"
    } else {
        "manifest_get"
    };
    let resp = ctx
        .send(
            Request::new(method, format!("/v2/{repo}/manifests/{reference}"))
                .op(op)
                .header("Accept", accept),
        )
        .await?;
    resp.expect_status(&[200])?;
    Ok(resp)
}

fn content_type(resp: &Response) -> Option<&str> {
    resp.header("Content-Type")
        .map(|c| c.split(';').next().unwrap_or("").trim())
}

/// The Docker checks.
pub fn checks() -> Vec<Check> {
    vec![
        Check::new(
            "docker.schema2.push-pull",
            Workflow::Docker,
            Level::Must,
            "a schema 2 manifest pushes (201) and pulls back byte for byte with its media type",
            "end-7/end-3 MUST: manifests of any accepted media type are stored and served verbatim",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "latest").await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, "latest", DOCKER_MANIFEST).await?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "schema 2 manifest came back changed".to_owned())?;
                ensure_eq("Content-Type", &content_type(&resp), &Some(DOCKER_MANIFEST))?;
                ensure_eq("Docker-Content-Digest", &resp.header("Docker-Content-Digest"), &Some(image.digest.as_str()))
            },
        ),
        Check::new(
            "docker.schema2.put-digest-header",
            Workflow::Docker,
            Level::Must,
            "PUT of a schema 2 manifest answers its sha256 in Docker-Content-Digest",
            "end-7 MUST: 201 with Docker-Content-Digest (docker push prints it)",
            |ctx| async move {
                let repo = ctx.repo();
                let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
                let cd = ctx.push_blob(&repo, config).await?;
                let manifest = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                    "config": {"mediaType": DOCKER_CONFIG, "size": config.len(), "digest": cd.as_str()},
                    "layers": [],
                })).map_err(|e| fail(e.to_string()))?;
                let resp = ctx.push_manifest(&repo, "t", DOCKER_MANIFEST, &manifest).await?;
                ensure_eq("Docker-Content-Digest", &resp.header("Docker-Content-Digest"), &Some(Digest::of(&manifest).as_str()))
            },
        ),
        Check::new(
            "docker.schema2.head-content-type",
            Workflow::Docker,
            Level::Must,
            "HEAD of a schema 2 manifest answers its media type, length and digest",
            "end-3 MUST: HEAD gives what docker pull uses to decide",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "latest").await?;
                let resp = get_manifest(&ctx, Method::HEAD, &repo, "latest", DOCKER_ACCEPT).await?;
                ensure_eq("Content-Type", &content_type(&resp), &Some(DOCKER_MANIFEST))?;
                ensure_eq("Content-Length", &resp.header("Content-Length"), &Some(image.manifest.len().to_string().as_str()))?;
                ensure_eq("Docker-Content-Digest", &resp.header("Docker-Content-Digest"), &Some(image.digest.as_str()))
            },
        ),
        Check::new(
            "docker.schema2.docker-accept-header",
            Workflow::Docker,
            Level::Must,
            "GET with the Accept list docker sends returns the schema 2 manifest unchanged",
            "end-3 MUST: a manifest whose type is in Accept is served as is",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "v1").await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, "v1", DOCKER_ACCEPT).await?;
                ensure_eq("Content-Type", &content_type(&resp), &Some(DOCKER_MANIFEST))?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest changed".to_owned())
            },
        ),
        Check::new(
            "docker.schema2.by-digest",
            Workflow::Docker,
            Level::Must,
            "a schema 2 manifest pulls by digest (docker pull name@sha256:…)",
            "end-3 MUST: a manifest is addressable by its digest",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "v1").await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, image.digest.as_str(), DOCKER_MANIFEST).await?;
                ensure(resp.body.as_ref() == image.manifest.as_slice(), || "manifest changed".to_owned())
            },
        ),
        Check::new(
            "docker.config.pull",
            Workflow::Docker,
            Level::Must,
            "the Docker config blob reads back byte for byte with its digest",
            "end-2 MUST: blobs are content-addressed whatever their media type",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "v1").await?;
                let resp = ctx.get(&format!("/v2/{repo}/blobs/{}", image.config_digest), "blob_get").await?;
                resp.expect_status(&[200])?;
                ensure(resp.body.as_ref() == image.config.as_slice(), || "config blob changed".to_owned())?;
                ensure_eq("Docker-Content-Digest", &resp.header("Docker-Content-Digest"), &Some(image.config_digest.as_str()))
            },
        ),
        Check::new(
            "docker.list.push-pull",
            Workflow::Docker,
            Level::Must,
            "a Docker manifest list pushes and pulls back with its media type",
            "end-7/end-3 MUST: multi-arch lists are stored and served verbatim",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "amd64").await?;
                let list = serde_json::to_vec_pretty(&json!({
                    "schemaVersion": 2, "mediaType": DOCKER_LIST,
                    "manifests": [{"mediaType": DOCKER_MANIFEST, "size": image.manifest.len(), "digest": image.digest.as_str(),
                                   "platform": {"architecture": "amd64", "os": "linux"}}],
                })).map_err(|e| fail(e.to_string()))?;
                ctx.push_manifest(&repo, "multi", DOCKER_LIST, &list).await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, "multi", DOCKER_ACCEPT).await?;
                ensure_eq("Content-Type", &content_type(&resp), &Some(DOCKER_LIST))?;
                ensure(resp.body.as_ref() == list.as_slice(), || "manifest list changed".to_owned())?;
                let resp = get_manifest(&ctx, Method::HEAD, &repo, "multi", DOCKER_LIST).await?;
                ensure_eq("HEAD Content-Type", &content_type(&resp), &Some(DOCKER_LIST))
            },
        ),
        Check::new(
            "docker.tag.retag-oci-to-docker",
            Workflow::Docker,
            Level::Must,
            "a tag moved from an OCI manifest to a schema 2 manifest serves the new one",
            "end-7 MUST: PUT by tag replaces what the tag points at",
            |ctx| async move {
                let repo = ctx.repo();
                ctx.push_image(&repo, "moving").await?;
                let image = push_docker_image(&ctx, &repo, "moving").await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, "moving", DOCKER_ACCEPT).await?;
                ensure_eq("Docker-Content-Digest", &resp.header("Docker-Content-Digest"), &Some(image.digest.as_str()))
            },
        ),
        Check::new(
            "docker.index.oci-index-of-docker",
            Workflow::Docker,
            Level::Must,
            "an OCI index listing a schema 2 manifest is accepted and served",
            "end-7 MUST: indexes may mix Docker and OCI children (buildx pushes these)",
            |ctx| async move {
                let repo = ctx.repo();
                let image = push_docker_image(&ctx, &repo, "child").await?;
                let index = serde_json::to_vec(&json!({
                    "schemaVersion": 2, "mediaType": OCI_INDEX,
                    "manifests": [{"mediaType": DOCKER_MANIFEST, "size": image.manifest.len(), "digest": image.digest.as_str(),
                                   "platform": {"architecture": "amd64", "os": "linux"}}],
                })).map_err(|e| fail(e.to_string()))?;
                ctx.push_manifest(&repo, "idx", OCI_INDEX, &index).await?;
                let resp = get_manifest(&ctx, Method::GET, &repo, "idx", &format!("{OCI_INDEX}, {OCI_MANIFEST}")).await?;
                ensure_eq("Content-Type", &content_type(&resp), &Some(OCI_INDEX))?;
                ensure(resp.body.as_ref() == index.as_slice(), || "index changed".to_owned())
            },
        ),
        Check::new(
            "docker.header.api-version",
            Workflow::Docker,
            Level::Should,
            "GET /v2/ answers Docker-Distribution-API-Version: registry/2.0",
            "Docker registry API SHOULD: clients look for the version header on /v2/",
            |ctx| async move {
                let resp = ctx.get("/v2/", "v2_check").await?;
                resp.expect_status(&[200])?;
                ensure_eq("Docker-Distribution-API-Version", &resp.header("Docker-Distribution-API-Version"), &Some("registry/2.0"))
            },
        ),
        Check::new(
            "docker.header.api-version-on-errors",
            Workflow::Docker,
            Level::Should,
            "a 404 also carries Docker-Distribution-API-Version",
            "Docker registry API SHOULD: the version header is on every /v2 response",
            |ctx| async move {
                let resp = super::edge::fetch_manifest(&ctx, Method::GET, &ctx.repo(), "nope").await?;
                resp.expect_status(&[404])?;
                ensure_eq("Docker-Distribution-API-Version", &resp.header("Docker-Distribution-API-Version"), &Some("registry/2.0"))
            },
        ),
        Check::new(
            "docker.schema1.refused-or-served",
            Workflow::Docker,
            Level::Must,
            "an unsigned schema 1 manifest is either refused with a 4xx envelope or served verbatim",
            "Docker schema 1 is deprecated: MAY be refused, MUST NOT break (5xx) or be altered",
            |ctx| async move {
                let repo = ctx.repo();
                let layer = ctx.random_bytes(100);
                let ld = ctx.push_blob(&repo, &layer).await?;
                let manifest = serde_json::to_vec_pretty(&json!({
                    "schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64",
                    "fsLayers": [{"blobSum": ld.as_str()}],
                    "history": [{"v1Compatibility": "{\"id\":\"a\"}"}],
                })).map_err(|e| fail(e.to_string()))?;
                let resp = ctx.put_manifest(&repo, "old", DOCKER_SCHEMA1, &manifest).await?;
                if resp.status == 201 {
                    let digest = Digest::of(&manifest);
                    ctx.cleanup_manifest(&repo, digest.as_str());
                    ctx.note("schema 1 accepted");
                    let get = ctx.send(Request::new(Method::GET, format!("/v2/{repo}/manifests/{digest}")).header("Accept", DOCKER_SCHEMA1)).await?;
                    get.expect_status(&[200])?;
                    return ensure(get.body.as_ref() == manifest.as_slice(), || "schema 1 manifest served altered".to_owned());
                }
                ctx.note(format!("schema 1 refused with {} {:?}", resp.status, resp.error_codes()));
                expect_envelope(&resp, "schema 1 refusal")
            },
        ),
    ]
}
