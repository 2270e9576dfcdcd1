//! Tag listing, lexically ordered and paginated with `n`, `last` and `Link`.

use http::StatusCode;
use quayside_spec::grammar::Tag;
use quayside_spec::types::TagList;

use super::Registry;
use crate::error::Error;
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ErrorCode, ResponseBody};
use crate::storage::Page;

/// Characters of tags and names that may stand unencoded in a query value.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'_')
    .remove(b'-')
    .remove(b'/');

/// `Link: </path?n=<n>&last=<last>>; rel="next"` when entries follow and the client paged.
pub(super) fn next_link(
    path: &str,
    n: Option<u64>,
    page_more: bool,
    last: Option<&str>,
) -> Option<String> {
    let (Some(n), true, Some(last)) = (n, page_more, last) else {
        return None;
    };
    let last = percent_encoding::utf8_percent_encode(last, QUERY_VALUE);
    Some(format!("<{path}?n={n}&last={last}>; rel=\"next\""))
}

/// `n` as a storage page size; `n=0` is answered without asking storage.
pub(super) fn page_size(n: Option<u64>) -> Option<usize> {
    n.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

pub(super) async fn list(
    registry: &Registry,
    params: TagListParams,
) -> Result<TagListResponse, ApiError> {
    let last = params
        .last
        .as_deref()
        .map(|text| {
            text.parse::<Tag>().map_err(|err| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Unsupported,
                    format!("last must be a tag: {err}"),
                )
                .with_detail(serde_json::json!({ "parameter": "last" }))
            })
        })
        .transpose()?;
    let meta = &registry.storage.metadata;
    let page = if params.n == Some(0) {
        // Still 404 for an unknown repository, but never a Link.
        if !meta.repository_exists(&params.name).await? {
            return Err(Error::NameUnknown {
                repository: params.name,
            }
            .into());
        }
        Page {
            items: Vec::new(),
            more: false,
        }
    } else {
        meta.list_tags(&params.name, last.as_ref(), page_size(params.n))
            .await?
    };
    let path = format!("/v2/{}/tags/list", params.name);
    let link = next_link(
        &path,
        params.n,
        page.more,
        page.items.last().map(Tag::as_str),
    );
    let body = ResponseBody::json(&TagList {
        name: params.name.into(),
        tags: Some(page.items.into_iter().map(String::from).collect()),
        extra: serde_json::Map::new(),
    })?;
    Ok(TagListResponse::Ok {
        headers: TagListOkHeaders {
            link,
            content_length: None,
        },
        body,
    })
}
