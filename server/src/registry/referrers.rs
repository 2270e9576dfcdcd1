//! The referrers API: an image index of the manifests whose `subject` is a digest, empty
//! (never 404) when nothing refers to it.

use quayside_spec::grammar::RepoName;
use serde_json::{json, Map, Value};

use super::{supported, Registry};
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ResponseBody};
use crate::storage::ManifestRecord;

fn descriptor(record: &ManifestRecord) -> Value {
    let mut map = Map::new();
    map.insert("mediaType".into(), json!(record.media_type));
    map.insert("digest".into(), json!(record.digest.as_str()));
    map.insert("size".into(), json!(record.size));
    if let Some(artifact_type) = &record.artifact_type {
        map.insert("artifactType".into(), json!(artifact_type));
    }
    if !record.annotations.is_empty() {
        map.insert("annotations".into(), json!(record.annotations));
    }
    Value::Object(map)
}

pub(super) async fn list(
    registry: &Registry,
    params: ReferrerListParams,
) -> Result<ReferrerListResponse, ApiError> {
    supported(&params.digest)?;
    let name: &RepoName = &params.name;
    let records = registry
        .storage
        .metadata
        .list_referrers(name, &params.digest, params.artifact_type.as_deref())
        .await?;
    let body = ResponseBody::json(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": records.iter().map(descriptor).collect::<Vec<_>>(),
    }))?;
    Ok(ReferrerListResponse::Ok {
        headers: ReferrerListOkHeaders {
            oci_filters_applied: params
                .artifact_type
                .as_ref()
                .map(|_| "artifactType".to_owned()),
            link: None,
            content_length: None,
        },
        body,
    })
}
