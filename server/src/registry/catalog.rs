//! The repository catalog (`/v2/_catalog`), paginated like tags.

use quayside_spec::grammar::RepoName;
use quayside_spec::types::Catalog;

use super::tags::{next_link, page_size};
use super::Registry;
use crate::generated::operations::*;
use crate::http::runtime::{ApiError, ResponseBody};
use crate::storage::Page;

pub(super) async fn list(
    registry: &Registry,
    params: CatalogListParams,
) -> Result<CatalogListResponse, ApiError> {
    // No page ends with an invalid name, so an invalid `last` is ignored.
    let last = params
        .last
        .as_deref()
        .and_then(|text| text.parse::<RepoName>().ok());
    let page = if params.n == Some(0) {
        Page {
            items: Vec::new(),
            more: false,
        }
    } else {
        registry
            .storage
            .metadata
            .list_repositories(last.as_ref(), page_size(params.n))
            .await?
    };
    let link = next_link(
        "/v2/_catalog",
        params.n,
        page.more,
        page.items.last().map(RepoName::as_str),
    );
    let body = ResponseBody::json(&Catalog {
        repositories: page.items.into_iter().map(String::from).collect(),
        extra: serde_json::Map::new(),
    })?;
    Ok(CatalogListResponse::Ok {
        headers: CatalogListOkHeaders {
            link,
            content_length: None,
        },
        body,
    })
}
