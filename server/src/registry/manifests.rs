//! Manifests: push (validate, check references, store the exact bytes, tag and index the
//! subject in one metadata transaction), pull by tag or digest, and delete.
//!
//! Documents are parsed only to be inspected; what is stored and served is the pushed
//! bytes, so digests never change. Docker schema 1 manifests (signed and unsigned) are
//! accepted as the spec says, as legacy content: stored and served byte for byte, their
//! `fsLayers` blobs required like any other layers; signatures are not verified (the
//! digest over the raw bytes is what protects them here).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures::TryStreamExt;
use http::StatusCode;
use quayside_spec::grammar::{Algorithm, Digest, RepoName, Tag};
use quayside_spec::schemas::{self, ValidateError};
use serde_json::{json, Value};

use super::{manifest_location, supported, Registry};
use crate::error::Error;
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ErrorCode, ResponseBody};
use crate::storage::ManifestRecord;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// More `?tag=` values than this in one push get 414 (the spec asks for at least 10).
const MAX_TAGS_PER_PUSH: usize = 100;

/// Read caches for the hot pull path. Manifest bytes are content-addressed, so an entry
/// can never be stale. Resolved references (`name` + tag or digest -> record) change only
/// through this process (one process owns a storage root), so every manifest write or
/// delete here drops them all; a generation number keeps a lookup that raced with a write
/// from re-inserting what it read before the write.
#[derive(Default)]
pub(super) struct ManifestCache {
    bytes: RwLock<(HashMap<Digest, Bytes>, usize)>,
    resolved: RwLock<Resolved>,
}

#[derive(Default)]
struct Resolved {
    generation: u64,
    records: HashMap<String, Arc<ManifestRecord>>,
}

/// Total bytes of manifests kept in memory; when full the cache starts over.
const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Resolved references kept; when full the cache starts over.
const CACHE_REFERENCES: usize = 100_000;

impl ManifestCache {
    fn get(&self, digest: &Digest) -> Option<Bytes> {
        let entries = self.bytes.read().ok()?;
        entries.0.get(digest).cloned()
    }

    fn insert(&self, digest: &Digest, bytes: &Bytes) {
        if bytes.len() > CACHE_BYTES / 16 {
            return;
        }
        if let Ok(mut entries) = self.bytes.write() {
            if entries.1 + bytes.len() > CACHE_BYTES {
                entries.0.clear();
                entries.1 = 0;
            }
            if entries.0.insert(digest.clone(), bytes.clone()).is_none() {
                entries.1 += bytes.len();
            }
        }
    }

    /// The cached record for `key` and the generation to hand back to [`Self::remember`].
    fn lookup(&self, key: &str) -> (Option<Arc<ManifestRecord>>, u64) {
        match self.resolved.read() {
            Ok(resolved) => (resolved.records.get(key).cloned(), resolved.generation),
            Err(_) => (None, u64::MAX),
        }
    }

    fn remember(&self, key: String, record: &Arc<ManifestRecord>, generation: u64) {
        if let Ok(mut resolved) = self.resolved.write() {
            if resolved.generation != generation {
                return;
            }
            if resolved.records.len() >= CACHE_REFERENCES {
                resolved.records.clear();
            }
            resolved.records.insert(key, record.clone());
        }
    }

    /// Called after every manifest or tag change.
    fn invalidate(&self) {
        if let Ok(mut resolved) = self.resolved.write() {
            resolved.generation = resolved.generation.wrapping_add(1);
            resolved.records.clear();
        }
    }
}

fn invalid(reason: impl Into<String>) -> ApiError {
    Error::ManifestInvalid {
        reason: reason.into(),
    }
    .into()
}

/// The media type without parameters (`; charset=utf-8`), lowercased.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Decides the document's media type from `Content-Type` and its `mediaType` field, which
/// must agree when both are present.
fn media_type_of(content_type: Option<&str>, document: &Value) -> Result<String, ApiError> {
    let field = document.get("mediaType").and_then(Value::as_str);
    let declared = content_type.map(essence);
    let media_type = match (declared, field) {
        (Some(declared), Some(field)) if declared != field => {
            return Err(invalid(format!(
                "Content-Type {declared:?} does not match the manifest's mediaType {field:?}"
            )))
        }
        (Some(declared), _) => declared,
        (None, Some(field)) => field.to_owned(),
        (None, None) if document.get("schemaVersion") == Some(&json!(1)) => {
            // A signed schema 1 document carries its JWS in `signatures`.
            let signed = document.get("signatures").is_some();
            SCHEMA1[usize::from(signed)].to_owned()
        }
        (None, None) => {
            return Err(invalid(
                "the manifest has no mediaType field and the request no Content-Type; send the manifest's media type as Content-Type",
            ))
        }
    };
    Ok(media_type)
}

/// What the registry records about a document: the content it references that must exist,
/// the child manifests that must exist, and its referrer facts.
struct Inspected {
    blobs: Vec<Digest>,
    children: Vec<Digest>,
    subject: Option<Digest>,
    artifact_type: Option<String>,
    annotations: BTreeMap<String, String>,
}

fn descriptor_digest(descriptor: &Value, at: &str) -> Result<Digest, ApiError> {
    descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{at}: descriptor has no digest")))?
        .parse::<Digest>()
        .map_err(|err| invalid(format!("{at}: {err}")))
}

fn inspect(media_type: &str, document: &Value) -> Result<Inspected, ApiError> {
    let mut inspected = Inspected {
        blobs: Vec::new(),
        children: Vec::new(),
        subject: None,
        artifact_type: document
            .get("artifactType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        annotations: document
            .get("annotations")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if let Some(subject) = document.get("subject") {
        inspected.subject = Some(descriptor_digest(subject, "/subject")?);
    }
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            if let Some(config) = document.get("config") {
                inspected.blobs.push(descriptor_digest(config, "/config")?);
                if inspected.artifact_type.is_none() {
                    inspected.artifact_type = config
                        .get("mediaType")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                }
            }
            let layers = document.get("layers").and_then(Value::as_array);
            for (i, layer) in layers.into_iter().flatten().enumerate() {
                // Non-distributable layers (with `urls`) live elsewhere by design.
                if layer.get("urls").is_some() {
                    continue;
                }
                inspected
                    .blobs
                    .push(descriptor_digest(layer, &format!("/layers/{i}"))?);
            }
        }
        OCI_INDEX | DOCKER_LIST => {
            let manifests = document.get("manifests").and_then(Value::as_array);
            for (i, child) in manifests.into_iter().flatten().enumerate() {
                inspected
                    .children
                    .push(descriptor_digest(child, &format!("/manifests/{i}"))?);
            }
        }
        t if SCHEMA1.contains(&t) => {
            let layers = document.get("fsLayers").and_then(Value::as_array);
            for (i, layer) in layers.into_iter().flatten().enumerate() {
                let at = format!("/fsLayers/{i}/blobSum");
                let digest = layer
                    .get("blobSum")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}: missing")))?
                    .parse::<Digest>()
                    .map_err(|err| invalid(format!("{at}: {err}")))?;
                // Schema 1 repeats a blob for every empty layer; ask for each once.
                if !inspected.blobs.contains(&digest) {
                    inspected.blobs.push(digest);
                }
            }
        }
        _ => {}
    }
    Ok(inspected)
}

/// Every referenced blob and child manifest must already be in the repository; the answer
/// names the first missing digest and lists them all in `detail`.
async fn check_references(
    registry: &Registry,
    name: &RepoName,
    inspected: &Inspected,
) -> Result<(), ApiError> {
    let meta = &registry.storage.metadata;
    // A blob is linked while it is made durable, so after a crash a link can outlive its
    // blob: the blob itself must be there too.
    let blobs = &registry.storage.blobs;
    let present = futures::future::try_join_all(inspected.blobs.iter().map(|digest| async move {
        if digest.algorithm().is_none() || !meta.is_linked(name, digest).await? {
            return Ok(false);
        }
        Ok::<_, Error>(blobs.stat(digest).await?.is_some())
    }))
    .await?;
    let mut missing: Vec<Digest> = (inspected.blobs.iter().zip(present))
        .filter(|(_, present)| !present)
        .map(|(digest, _)| digest.clone())
        .collect();
    for digest in &inspected.children {
        if digest.algorithm().is_none() || meta.get_manifest(name, digest).await?.is_none() {
            missing.push(digest.clone());
        }
    }
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let all: Vec<&str> = missing.iter().map(Digest::as_str).collect();
    Err(ApiError::from(Error::ManifestBlobUnknown {
        repository: name.clone(),
        digest: first.clone(),
    })
    .with_detail(json!({ "name": name.as_str(), "digest": first.as_str(), "missing": all })))
}

pub(super) async fn put(
    registry: &Registry,
    params: ManifestPutParams,
) -> Result<ManifestPutResponse, ApiError> {
    if params.tag.len() > MAX_TAGS_PER_PUSH {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::Unsupported,
            format!(
                "at most {MAX_TAGS_PER_PUSH} tag parameters are accepted in one push; push the others separately"
            ),
        ));
    }
    let bytes = params.body;
    let document = schemas::parse_strict(&bytes).map_err(|v| invalid(v.to_string()))?;
    let media_type = media_type_of(params.content_type.as_deref(), &document)?;
    schemas::validate(&media_type, &bytes).map_err(|err| match err {
        ValidateError::UnknownMediaType(t) => invalid(format!(
            "{t:?} is not a manifest media type this registry accepts"
        )),
        ValidateError::Invalid(violations) => {
            let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
            invalid(list.first().cloned().unwrap_or_default())
                .with_detail(json!({ "violations": list }))
        }
    })?;

    let algorithm = match params.reference.as_digest() {
        Some(digest) => supported(digest)?,
        None => Algorithm::Sha256,
    };
    let digest = Digest::of_with(algorithm, &bytes);
    if let Some(expected) = params.reference.as_digest() {
        if *expected != digest {
            return Err(Error::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            }
            .into());
        }
    }

    let inspected = inspect(&media_type, &document)?;
    check_references(registry, &params.name, &inspected).await?;

    let mut tags: Vec<Tag> = params.reference.as_tag().cloned().into_iter().collect();
    for tag in &params.tag {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let mut references = inspected.blobs;
    references.extend(inspected.children);
    let record = ManifestRecord {
        digest: digest.clone(),
        media_type,
        size: bytes.len() as u64,
        subject: inspected.subject,
        artifact_type: inspected.artifact_type,
        annotations: inspected.annotations,
        references,
    };
    let storage = &registry.storage;
    storage.blobs.put(&digest, bytes.clone()).await?;
    let stored = storage
        .metadata
        .put_manifest(&params.name, &record, &tags)
        .await;
    registry.manifests.invalidate();
    stored?;
    registry.manifests.insert(&digest, &bytes);

    Ok(ManifestPutResponse::Created {
        headers: ManifestPutCreatedHeaders {
            location: Some(manifest_location(&params.name, &digest)),
            docker_content_digest: Some(digest),
            content_length: Some(0),
            oci_subject: record.subject,
            oci_tag: params.tag,
        },
    })
}

/// The record a reference names in the repository, or 404 MANIFEST_UNKNOWN.
async fn resolve(
    registry: &Registry,
    name: &RepoName,
    reference: &quayside_spec::grammar::Reference,
) -> Result<Arc<ManifestRecord>, ApiError> {
    if let Some(digest) = reference.as_digest() {
        supported(digest)?;
    }
    let key = format!("{name} {reference}");
    let (cached, generation) = registry.manifests.lookup(&key);
    if let Some(record) = cached {
        return Ok(record);
    }
    let meta = &registry.storage.metadata;
    let unknown = || Error::ManifestUnknown {
        repository: name.clone(),
        reference: reference.to_string(),
    };
    let digest = match (reference.as_digest(), reference.as_tag()) {
        (Some(digest), _) => digest.clone(),
        (None, Some(tag)) => meta.resolve_tag(name, tag).await?.ok_or_else(unknown)?,
        (None, None) => return Err(unknown().into()),
    };
    let record = Arc::new(
        meta.get_manifest(name, &digest)
            .await?
            .ok_or_else(unknown)?,
    );
    registry.manifests.remember(key, &record, generation);
    Ok(record)
}

pub(super) async fn get(
    registry: &Registry,
    params: ManifestGetParams,
) -> Result<ManifestGetResponse, ApiError> {
    let record = resolve(registry, &params.name, &params.reference).await?;
    let bytes = match registry.manifests.get(&record.digest) {
        Some(bytes) => bytes,
        None => {
            let read = registry.storage.blobs.read(&record.digest, None).await?;
            let chunks: Vec<Bytes> = read.body.try_collect().await?;
            let bytes = Bytes::from(chunks.concat());
            registry.manifests.insert(&record.digest, &bytes);
            bytes
        }
    };
    Ok(ManifestGetResponse::Ok {
        headers: ManifestGetOkHeaders {
            docker_content_digest: Some(record.digest.clone()),
            content_length: Some(bytes.len() as u64),
        },
        content_type: record.media_type.clone(),
        body: ResponseBody::Bytes(bytes),
    })
}

pub(super) async fn head(
    registry: &Registry,
    params: ManifestHeadParams,
) -> Result<ManifestHeadResponse, ApiError> {
    let record = resolve(registry, &params.name, &params.reference).await?;
    Ok(ManifestHeadResponse::Ok {
        headers: ManifestHeadOkHeaders {
            docker_content_digest: Some(record.digest.clone()),
            content_length: Some(record.size),
        },
        content_type: record.media_type.clone(),
    })
}

/// By digest: the manifest, its tags and its referrer entry. By tag: only the tag.
pub(super) async fn delete(
    registry: &Registry,
    params: ManifestDeleteParams,
) -> Result<ManifestDeleteResponse, ApiError> {
    registry.check_delete_enabled()?;
    let meta = &registry.storage.metadata;
    let deleted = match (params.reference.as_digest(), params.reference.as_tag()) {
        (Some(digest), _) => {
            supported(digest)?;
            meta.delete_manifest(&params.name, digest).await.map(drop)
        }
        (None, Some(tag)) => meta.delete_tag(&params.name, tag).await,
        (None, None) => {
            return Err(Error::ManifestUnknown {
                repository: params.name,
                reference: params.reference.to_string(),
            }
            .into())
        }
    };
    registry.manifests.invalidate();
    deleted?;
    Ok(ManifestDeleteResponse::Accepted {
        headers: ManifestDeleteAcceptedHeaders {
            content_length: Some(0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_and_media_type_field_must_agree() {
        let doc = json!({ "mediaType": OCI_MANIFEST });
        assert_eq!(media_type_of(None, &doc).unwrap(), OCI_MANIFEST);
        assert_eq!(
            media_type_of(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                &doc
            )
            .unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(Some(DOCKER_MANIFEST), &doc).unwrap_err().code,
            ErrorCode::ManifestInvalid
        );
        assert!(media_type_of(None, &json!({ "schemaVersion": 2 })).is_err());
    }

    #[test]
    fn schema1_without_content_type_is_signed_only_when_it_has_signatures() {
        let unsigned = media_type_of(None, &json!({ "schemaVersion": 1 })).unwrap();
        assert_eq!(unsigned, SCHEMA1[0]);
        let signed = media_type_of(None, &json!({ "schemaVersion": 1, "signatures": [] })).unwrap();
        assert_eq!(signed, SCHEMA1[1]);
    }

    #[test]
    fn schema1_layers_must_exist_once_each() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let doc = json!({ "schemaVersion": 1, "fsLayers": [
            { "blobSum": a.as_str() }, { "blobSum": b.as_str() }, { "blobSum": a.as_str() }
        ]});
        let inspected = inspect(SCHEMA1[0], &doc).unwrap();
        assert_eq!(inspected.blobs, vec![a, b]);
    }

    #[test]
    fn inspect_skips_foreign_layers_and_falls_back_to_config_type() {
        let config = Digest::of(b"c");
        let layer = Digest::of(b"l");
        let foreign = Digest::of(b"f");
        let doc = json!({
            "config": { "mediaType": "application/vnd.example+json", "digest": config.as_str(), "size": 1 },
            "layers": [
                { "digest": layer.as_str() },
                { "digest": foreign.as_str(), "urls": ["https://example.com/f"] }
            ]
        });
        let inspected = inspect(OCI_MANIFEST, &doc).unwrap();
        assert_eq!(inspected.blobs, vec![config, layer]);
        assert_eq!(
            inspected.artifact_type.as_deref(),
            Some("application/vnd.example+json")
        );
    }
}
