//! The HTTP protocol document, `spec/openapi.yaml`.
//!
//! The YAML is embedded so that codegen, server and client all read the very bytes that
//! were tested, with no path juggling at run time.

use std::sync::OnceLock;

use openapiv3::{OpenAPI, Operation, PathItem};

/// The OpenAPI 3.0.3 document, exactly as committed.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// Vendor extension on a path parameter whose value spans several segments (`a/b/c`):
/// routers must match it from the right and clients must not percent-encode its `/`.
pub const MULTI_SEGMENT_EXTENSION: &str = "x-oci-multi-segment";

/// The parsed document, parsed once.
///
/// # Panics
/// If the embedded YAML does not parse; the crate's tests rule that out.
pub fn document() -> &'static OpenAPI {
    static DOCUMENT: OnceLock<OpenAPI> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_yaml::from_str(OPENAPI_YAML).unwrap_or_else(|e| {
            panic!("spec/openapi.yaml is not a valid OpenAPI 3.0 document: {e}")
        })
    })
}

/// One operation of the document with where it lives.
#[derive(Debug, Clone, Copy)]
pub struct OperationEntry {
    /// Upper-case HTTP method (`GET`, `HEAD`, …).
    pub method: &'static str,
    /// The path template, e.g. `/v2/{name}/blobs/{digest}`.
    pub path: &'static str,
    /// The path item, which holds the parameters shared by its operations.
    pub path_item: &'static PathItem,
    /// The operation itself.
    pub operation: &'static Operation,
}

impl OperationEntry {
    /// The `operationId`; every operation has one (a tested invariant), else `""`.
    pub fn id(&self) -> &'static str {
        self.operation.operation_id.as_deref().unwrap_or("")
    }
}

/// Every operation, in document order.
pub fn operations() -> impl Iterator<Item = OperationEntry> {
    document().paths.iter().flat_map(|(path, item)| {
        item.as_item().into_iter().flat_map(move |path_item| {
            path_item
                .iter()
                .map(move |(method, operation)| OperationEntry {
                    method: upper_method(method),
                    path: path.as_str(),
                    path_item,
                    operation,
                })
        })
    })
}

/// The operation with this `operationId`, if any.
pub fn operation(id: &str) -> Option<OperationEntry> {
    operations().find(|entry| entry.id() == id)
}

/// openapiv3 yields lower-case method names; HTTP code wants them upper-case.
fn upper_method(method: &str) -> &'static str {
    match method {
        "get" => "GET",
        "put" => "PUT",
        "post" => "POST",
        "delete" => "DELETE",
        "options" => "OPTIONS",
        "head" => "HEAD",
        "patch" => "PATCH",
        "trace" => "TRACE",
        _ => "UNKNOWN",
    }
}
