//! The operations of `spec/openapi.yaml` as a typed model that the generators share.
//!
//! Every `$ref` (to `components`, or to a schema file in `spec/schemas/`) is resolved here,
//! so generators see plain operations, parameters and responses and never walk JSON.

use crate::SpecInput;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

/// The HTTP methods an OpenAPI path item can hold, in the order we emit them.
pub const METHODS: [&str; 6] = ["get", "head", "put", "post", "patch", "delete"];

/// Every operation of the spec, in document order (path by path, method by method).
#[derive(Debug, Clone, Serialize)]
pub struct ApiModel {
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// `operationId`, e.g. `blob_get`.
    pub id: String,
    /// Upper case, e.g. `GET`.
    pub method: String,
    /// The path template, e.g. `/v2/{name}/blobs/{digest}`.
    pub path: String,
    pub summary: Option<String>,
    /// Path, query and header parameters (path-item level ones merged in).
    pub params: Vec<Param>,
    pub request_body: Option<RequestBody>,
    /// Every declared status, ascending; `default` is skipped.
    pub responses: Vec<Response>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamIn {
    Path,
    Query,
    Header,
}

#[derive(Debug, Clone, Serialize)]
pub struct Param {
    /// The wire name (`digest`, `Content-Range`).
    pub name: String,
    pub location: ParamIn,
    pub required: bool,
    /// `x-oci-multi-segment: true`: the value spans several path segments.
    pub multi_segment: bool,
    /// An array parameter (`?tag=a&tag=b`): every occurrence is kept.
    pub repeatable: bool,
    /// The (item) schema, with its checks.
    pub schema: Scalar,
    /// What the dispatcher answers when the value breaks the schema.
    pub error: ErrorChoice,
}

/// The checks of a scalar schema, gathered through `$ref`s and `allOf`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scalar {
    /// The last named schema on the `$ref` chain (`Digest`), when there is one.
    pub ref_name: Option<String>,
    pub kind: ScalarKind,
    pub pattern: Option<String>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub minimum: Option<i64>,
    pub maximum: Option<i64>,
    pub enum_values: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarKind {
    #[default]
    String,
    Integer,
    Boolean,
}

/// The HTTP status and OCI error code for a parameter that breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorChoice {
    pub status: u16,
    pub code: String,
    /// The code instead when the bad value is digest-shaped (contains `:`): a manifest
    /// reference that tries to be a digest is `DIGEST_INVALID`, not `MANIFEST_INVALID`.
    pub digest_code: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestBody {
    pub required: bool,
    /// Declared media types, in document order.
    pub media_types: Vec<String>,
    /// Every media type is a byte stream (`application/octet-stream` or `format: binary`):
    /// the body is streamed to the implementation instead of collected.
    pub binary: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub status: u16,
    pub description: String,
    pub headers: Vec<Header>,
    /// Declared media types; empty for a response without body.
    pub media_types: Vec<String>,
    pub binary: bool,
    /// A body-less HEAD answer whose `media_types` are the GET's on the same path and
    /// status: HEAD answers like GET without the body, `Content-Type` included.
    pub head_of_get: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub name: String,
    pub required: bool,
    /// An array header (`OCI-Tag` once per tag): one header line per value.
    pub repeatable: bool,
    /// The (item) schema.
    pub schema: Scalar,
}

impl ApiModel {
    /// Builds the model from the spec, failing with the JSON location of anything it cannot
    /// read (a generator must never silently skip part of the spec).
    pub fn from_spec(spec: &SpecInput) -> Result<Self> {
        let resolver = Resolver { spec };
        let paths = spec
            .openapi
            .get("paths")
            .and_then(Value::as_object)
            .context("spec has no `paths`")?;
        let mut operations = Vec::new();
        for (path, item) in paths {
            let (_, item) = resolver.resolve(Doc::OpenApi, item)?;
            let shared = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                operations.push(
                    resolver
                        .operation(path, method, op, &shared)
                        .with_context(|| format!("{} {path}", method.to_uppercase()))?,
                );
            }
        }
        mirror_get_media_types(&mut operations);
        Ok(Self { operations })
    }
}

/// Gives body-less HEAD responses the media types of the GET on the same path and status,
/// so their `Content-Type` can be sent (RFC 9110: HEAD answers with GET's headers).
fn mirror_get_media_types(operations: &mut [Operation]) {
    let gets: Vec<(String, u16, Vec<String>, bool)> = operations
        .iter()
        .filter(|op| op.method == "GET")
        .flat_map(|op| {
            op.responses
                .iter()
                .map(|r| (op.path.clone(), r.status, r.media_types.clone(), r.binary))
        })
        .collect();
    for op in operations.iter_mut().filter(|op| op.method == "HEAD") {
        for response in op.responses.iter_mut().filter(|r| r.media_types.is_empty()) {
            let get = gets.iter().find(|(path, status, media, _)| {
                *path == op.path && *status == response.status && !media.is_empty()
            });
            if let Some((_, _, media_types, binary)) = get {
                response.media_types = media_types.clone();
                response.binary = *binary;
                response.head_of_get = true;
            }
        }
    }
}

impl Operation {
    pub fn path_params(&self) -> impl Iterator<Item = &Param> {
        self.params.iter().filter(|p| p.location == ParamIn::Path)
    }

    /// The declared statuses below 400: the ones an implementation returns as success (the
    /// errors travel as `ApiError`).
    pub fn success_responses(&self) -> impl Iterator<Item = &Response> {
        self.responses.iter().filter(|r| r.status < 400)
    }
}

/// Which document a `$ref` is relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Doc {
    OpenApi,
    Schema(String),
}

struct Resolver<'a> {
    spec: &'a SpecInput,
}

impl<'a> Resolver<'a> {
    /// Follows `$ref`s until a non-reference value; returns it and the document it lives in.
    fn resolve(&self, mut doc: Doc, mut value: &'a Value) -> Result<(Doc, &'a Value)> {
        for _ in 0..32 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok((doc, value));
            };
            (doc, value) = self.lookup(&doc, reference)?;
        }
        bail!("`$ref` chain too long (a cycle?)")
    }

    fn lookup(&self, doc: &Doc, reference: &str) -> Result<(Doc, &'a Value)> {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if file.is_empty() {
            doc.clone()
        } else {
            let name = file.rsplit('/').next().unwrap_or(file).to_string();
            if !self.spec.schemas.contains_key(&name) {
                bail!("`$ref: {reference}` names a schema file not in spec/schemas/");
            }
            Doc::Schema(name)
        };
        let root = match &target {
            Doc::OpenApi => &self.spec.openapi,
            Doc::Schema(name) => &self.spec.schemas[name],
        };
        let value = root
            .pointer(pointer)
            .ok_or_else(|| anyhow!("`$ref: {reference}` does not resolve"))?;
        Ok((target, value))
    }

    fn operation(
        &self,
        path: &str,
        method: &str,
        op: &'a Value,
        shared: &[Value],
    ) -> Result<Operation> {
        let id = op
            .get("operationId")
            .and_then(Value::as_str)
            .context("operation has no operationId")?
            .to_string();
        // Operation-level parameters override path-level ones of the same name and place.
        let mut params: Vec<Param> = Vec::new();
        let own = op.get("parameters").and_then(Value::as_array);
        for raw in shared.iter().chain(own.into_iter().flatten()) {
            let param = self.param(raw)?;
            params.retain(|p| !(p.name == param.name && p.location == param.location));
            params.push(param);
        }
        for name in template_vars(path) {
            if !params
                .iter()
                .any(|p| p.location == ParamIn::Path && p.name == name)
            {
                bail!("path variable `{name}` has no parameter");
            }
        }
        let request_body = match op.get("requestBody") {
            Some(raw) => Some(self.request_body(raw)?),
            None => None,
        };
        let mut responses = Vec::new();
        if let Some(map) = op.get("responses").and_then(Value::as_object) {
            for (status, raw) in map {
                let Ok(status) = status.parse::<u16>() else {
                    continue; // `default` and `4XX` ranges carry no typed variant
                };
                responses.push(
                    self.response(status, raw)
                        .with_context(|| format!("response {status}"))?,
                );
            }
        }
        responses.sort_by_key(|r| r.status);
        Ok(Operation {
            id,
            method: method.to_uppercase(),
            path: path.to_string(),
            summary: op
                .get("summary")
                .and_then(Value::as_str)
                .map(str::to_string),
            params,
            request_body,
            responses,
        })
    }

    fn param(&self, raw: &'a Value) -> Result<Param> {
        let (doc, raw) = self.resolve(Doc::OpenApi, raw)?;
        let name = raw
            .get("name")
            .and_then(Value::as_str)
            .context("parameter without name")?
            .to_string();
        let location = match raw.get("in").and_then(Value::as_str) {
            Some("path") => ParamIn::Path,
            Some("query") => ParamIn::Query,
            Some("header") => ParamIn::Header,
            other => bail!("parameter `{name}`: unsupported location {other:?}"),
        };
        let schema_value = raw
            .get("schema")
            .with_context(|| format!("parameter `{name}` has no schema"))?;
        let (rdoc, resolved) = self.resolve(doc.clone(), schema_value)?;
        let repeatable = resolved.get("type").and_then(Value::as_str) == Some("array");
        let (idoc, item) = if repeatable {
            let items = resolved
                .get("items")
                .with_context(|| format!("array parameter `{name}` has no items"))?;
            (rdoc, items)
        } else {
            (doc, schema_value)
        };
        let schema = self
            .scalar(idoc, item)
            .with_context(|| format!("parameter `{name}`"))?;
        let error = error_choice(&name, location, &schema, raw);
        Ok(Param {
            required: location == ParamIn::Path || flag(raw, "required"),
            multi_segment: flag(raw, "x-oci-multi-segment"),
            repeatable,
            name,
            location,
            schema,
            error,
        })
    }

    /// Gathers the checks of a scalar schema; the outermost declaration of each wins, so an
    /// operation can narrow a shared schema.
    fn scalar(&self, doc: Doc, value: &'a Value) -> Result<Scalar> {
        let mut out = Scalar::default();
        let mut kind = None;
        self.collect_scalar(doc, value, &mut out, &mut kind, 0)?;
        out.kind = match kind.as_deref() {
            None | Some("string") => ScalarKind::String,
            Some("integer") => ScalarKind::Integer,
            Some("boolean") => ScalarKind::Boolean,
            Some(other) => bail!("unsupported parameter/header type `{other}`"),
        };
        Ok(out)
    }

    fn collect_scalar(
        &self,
        doc: Doc,
        value: &'a Value,
        out: &mut Scalar,
        kind: &mut Option<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            bail!("schema nesting too deep (a cycle?)");
        }
        if let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            if out.ref_name.is_none() {
                out.ref_name = reference
                    .rsplit('/')
                    .next()
                    .map(|last| last.trim_end_matches(".json").to_string());
            }
            let (doc, target) = self.lookup(&doc, reference)?;
            return self.collect_scalar(doc, target, out, kind, depth + 1);
        }
        if kind.is_none() {
            *kind = value
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        out.pattern = out.pattern.take().or_else(|| text("pattern"));
        out.max_length = out.max_length.or_else(|| number("maxLength"));
        out.min_length = out.min_length.or_else(|| number("minLength"));
        out.minimum = out
            .minimum
            .or_else(|| value.get("minimum").and_then(Value::as_i64));
        out.maximum = out
            .maximum
            .or_else(|| value.get("maximum").and_then(Value::as_i64));
        if out.enum_values.is_none() {
            out.enum_values = value.get("enum").and_then(Value::as_array).map(|values| {
                values
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect()
            });
        }
        for part in value
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.collect_scalar(doc.clone(), part, out, kind, depth + 1)?;
        }
        Ok(())
    }

    fn request_body(&self, raw: &'a Value) -> Result<RequestBody> {
        let (doc, raw) = self.resolve(Doc::OpenApi, raw)?;
        let (media_types, binary) = self.content(doc, raw)?;
        if media_types.is_empty() {
            bail!("request body declares no media type");
        }
        Ok(RequestBody {
            required: flag(raw, "required"),
            media_types,
            binary,
        })
    }

    fn response(&self, status: u16, raw: &'a Value) -> Result<Response> {
        let (doc, raw) = self.resolve(Doc::OpenApi, raw)?;
        let mut headers = Vec::new();
        if let Some(map) = raw.get("headers").and_then(Value::as_object) {
            for (name, header) in map {
                let (hdoc, header) = self.resolve(doc.clone(), header)?;
                let mut repeatable = false;
                let schema = match header.get("schema") {
                    Some(schema) => {
                        let (rdoc, resolved) = self.resolve(hdoc.clone(), schema)?;
                        repeatable = resolved.get("type").and_then(Value::as_str) == Some("array");
                        let (idoc, item) = match resolved.get("items") {
                            Some(items) if repeatable => (rdoc, items),
                            _ => (hdoc, schema),
                        };
                        self.scalar(idoc, item)
                            .with_context(|| format!("header `{name}`"))?
                    }
                    None => Scalar::default(),
                };
                headers.push(Header {
                    name: name.clone(),
                    required: flag(header, "required"),
                    repeatable,
                    schema,
                });
            }
        }
        let (media_types, binary) = self.content(doc, raw)?;
        Ok(Response {
            status,
            description: raw
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            headers,
            media_types,
            binary,
            head_of_get: false,
        })
    }

    /// The media types of a `content` map, and whether all of them are byte streams.
    fn content(&self, doc: Doc, raw: &'a Value) -> Result<(Vec<String>, bool)> {
        let Some(content) = raw.get("content").and_then(Value::as_object) else {
            return Ok((Vec::new(), false));
        };
        let mut binary = !content.is_empty();
        for (media_type, entry) in content {
            // A schema file in spec/schemas describes a JSON document, never a byte stream,
            // so only local schemas are looked into.
            let external = |schema: &Value| {
                schema
                    .get("$ref")
                    .and_then(Value::as_str)
                    .is_some_and(|r| !r.starts_with('#'))
            };
            let format = match entry.get("schema") {
                Some(schema) if !external(schema) => self
                    .resolve(doc.clone(), schema)?
                    .1
                    .get("format")
                    .and_then(Value::as_str),
                _ => None,
            };
            binary &= media_type == "application/octet-stream" || format == Some("binary");
        }
        Ok((content.keys().cloned().collect(), binary))
    }
}

fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The `{variables}` of a path template, in order.
pub fn template_vars(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The answer to a parameter that breaks its schema: `x-oci-error-status` /
/// `x-oci-error-code` on the parameter when the spec says, otherwise the status and code
/// the spec's shared error responses give for that grammar (`BadName`, `BadReference`,
/// `PaginationInvalid`, `ChunkOutOfOrder`, `RangeNotSatisfiable`, `UploadNotFound`).
fn error_choice(name: &str, location: ParamIn, schema: &Scalar, raw: &Value) -> ErrorChoice {
    let lower = name.to_ascii_lowercase();
    let grammar = schema
        .ref_name
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let path = location == ParamIn::Path;
    let mut digest_code = None;
    let (status, code) = if grammar == "name" || lower == "name" || lower == "from" {
        (400, "NAME_INVALID")
    } else if lower.contains("session") || lower.contains("uuid") {
        (404, "BLOB_UPLOAD_UNKNOWN")
    } else if lower == "content-range" {
        (416, "BLOB_UPLOAD_INVALID")
    } else if lower == "range" {
        (416, "SIZE_INVALID")
    } else if grammar.contains("digest") || lower.starts_with("digest") || lower == "mount" {
        (400, "DIGEST_INVALID")
    } else if path {
        digest_code = Some("DIGEST_INVALID".to_string());
        (400, "MANIFEST_INVALID")
    } else {
        (400, "UNSUPPORTED")
    };
    ErrorChoice {
        status: raw
            .get("x-oci-error-status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(status),
        code: raw
            .get("x-oci-error-code")
            .and_then(Value::as_str)
            .unwrap_or(code)
            .to_string(),
        digest_code: digest_code.filter(|_| raw.get("x-oci-error-code").is_none()),
    }
}

/// The name Rust code uses for a status: the variant of a response enum.
pub fn status_variant(status: u16) -> String {
    match status {
        200 => "Ok".into(),
        201 => "Created".into(),
        202 => "Accepted".into(),
        204 => "NoContent".into(),
        206 => "PartialContent".into(),
        301 => "MovedPermanently".into(),
        302 => "Found".into(),
        303 => "SeeOther".into(),
        307 => "TemporaryRedirect".into(),
        308 => "PermanentRedirect".into(),
        other => format!("Status{other}"),
    }
}
