//! The client SDK: progenitor run over a normalised view of the bundled spec, written to
//! `client/src/generated.rs` so that SDK users never need progenitor.
//!
//! progenitor 0.15 cannot take our spec as it is (NOTES §4), so [`normalise`] rewrites a copy
//! of the bundle, and [`fix_up`] edits the generated syntax tree:
//!
//! * a request body offered in several media types (a manifest push) becomes one
//!   `application/octet-stream` body plus a required `Content-Type` header parameter whose
//!   schema lists the types, so the caller sends the manifest's bytes under its own type;
//! * a response offered in several media types becomes a byte stream (manifests are served
//!   byte for byte: their digest depends on it), and the `GET`/`HEAD` operations of that path
//!   gain an optional `Accept` header parameter;
//! * a single vendor `+json` response type is read as JSON (typed);
//! * redirects are dropped (reqwest follows them), and in an operation whose errors carry the
//!   error envelope, body-less error responses are dropped: they arrive as
//!   `Error::UnexpectedResponse` with their status, rather than as a body that fails to parse;
//! * properties a schema forbids (`not: {}`) are removed: a client never sends them;
//! * parameters marked `x-oci-multi-segment` are sent with raw `/` (the generated
//!   `encode_path` call for them is replaced by `quayside_client`'s
//!   `encode_multi_segment_path`), and progenitor's `api-version` request header is removed.
//!
//! Both fix-ups count what they changed and fail generation when the generated code no longer
//! has the expected shape, so a progenitor upgrade cannot silently undo them.

use crate::bundle::bundled;
use crate::{GeneratedFile, SpecInput};
use anyhow::{bail, ensure, Context, Result};
use heck::ToUpperCamelCase;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use syn::visit_mut::VisitMut;

/// Where the generated client is written, relative to the workspace root.
pub const GENERATED_PATH: &str = "client/src/generated.rs";

/// The component every octet-stream body and response points at.
const BINARY: &str = "Binary";

/// The runtime helper (in `client/src/lib.rs`) that encodes a multi-segment parameter.
const MULTI_SEGMENT_ENCODER: &str = "encode_multi_segment_path";

/// Seconds before a request times out in `Client::new` (connect and whole request); blob
/// transfers are long, and callers wanting other limits use `Client::new_with_client`.
const TIMEOUT_SECS: u64 = 600;

/// HTTP methods an OpenAPI path item may hold.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> Result<Vec<GeneratedFile>> {
    let source = generate_source(spec)?;
    Ok(vec![GeneratedFile::rust(
        GENERATED_PATH,
        &source,
        "spec/openapi.yaml and spec/schemas/ (via progenitor)",
    )?])
}

/// The generated client's source, before rustfmt and the header.
pub fn generate_source(spec: &SpecInput) -> Result<String> {
    let view = normalise(bundled(spec)?)?;
    let multi_segment = multi_segment_params(&view)?;
    let operations = operation_ids(&view);

    let openapi: openapiv3::OpenAPI = serde_json::from_value(view.clone())
        .context("the normalised spec does not parse as OpenAPI 3.0")?;
    let mut settings = progenitor::GenerationSettings::new();
    settings
        .with_interface(progenitor::InterfaceStyle::Builder)
        .with_tag(progenitor::TagStyle::Merged)
        .with_timeout(TIMEOUT_SECS);
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&openapi)
        .map_err(|e| anyhow::anyhow!("progenitor: {e}"))?;
    let mut file: syn::File =
        syn::parse2(tokens).context("progenitor's output is not a Rust file")?;
    let encoders = operations_with_path_params(&view, &multi_segment);
    fix_up(&mut file, &multi_segment, operations.len(), encoders)?;
    Ok(prettyplease::unparse(&file))
}

/// The operationIds of the document, in document order.
fn operation_ids(doc: &Value) -> Vec<String> {
    operations(doc)
        .filter_map(|(_, _, op)| op.get("operationId")?.as_str().map(str::to_string))
        .collect()
}

/// How many operations have one of `params` in their URL template.
fn operations_with_path_params(doc: &Value, params: &BTreeSet<String>) -> usize {
    operations(doc)
        .filter(|(path, _, _)| params.iter().any(|p| path.contains(&format!("{{{p}}}"))))
        .count()
}

/// Every operation as (path, method, operation).
fn operations(doc: &Value) -> impl Iterator<Item = (&str, &str, &Value)> {
    doc.get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |method| item.get(*method).map(|op| (path.as_str(), *method, op)))
        })
}

/// Follows a local `$ref` (one level at a time) until a value that is not a ref.
fn deref<'a>(doc: &'a Value, mut value: &'a Value) -> Result<&'a Value> {
    for _ in 0..16 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .with_context(|| format!("non-local ref {reference}"))?;
        value = doc
            .pointer(pointer)
            .with_context(|| format!("dangling ref {reference}"))?;
    }
    bail!("ref chain too long")
}

/// The names (`name` as in the URL template) of every parameter marked
/// `x-oci-multi-segment: true`, wherever it is declared.
pub fn multi_segment_params(doc: &Value) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let shared = item.get("parameters").and_then(Value::as_array);
        let own = METHODS
            .iter()
            .filter_map(|m| item.get(*m)?.get("parameters")?.as_array());
        for param in shared.into_iter().chain(own).flatten() {
            let param = deref(doc, param).with_context(|| format!("parameters of {path}"))?;
            if param.get("x-oci-multi-segment") == Some(&json!(true)) {
                ensure!(
                    param.get("in") == Some(&json!("path")),
                    "{path}: x-oci-multi-segment is only meaningful on a path parameter"
                );
                let name = param
                    .get("name")
                    .and_then(Value::as_str)
                    .with_context(|| format!("{path}: a parameter without a name"))?;
                names.insert(name.to_string());
            }
        }
    }
    Ok(names)
}

/// Rewrites the bundled spec into the subset progenitor 0.15 handles (see the module docs).
pub fn normalise(mut doc: Value) -> Result<Value> {
    let mut added_schemas: Vec<(String, Value)> = Vec::new();
    let snapshot = doc.clone();
    let paths = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .context("the spec has no paths")?;
    for (path, item) in paths.iter_mut() {
        let negotiated = item
            .get("get")
            .map(|get| several_success_types(&snapshot, get))
            .transpose()?
            .unwrap_or(false);
        let item = item
            .as_object_mut()
            .with_context(|| format!("{path} is not a mapping"))?;
        for method in METHODS {
            let Some(op) = item.get_mut(*method).and_then(Value::as_object_mut) else {
                continue;
            };
            let id = op
                .get("operationId")
                .and_then(Value::as_str)
                .with_context(|| format!("{method} {path} has no operationId"))?
                .to_string();
            let at = format!("{id} ({} {path})", method.to_uppercase());
            normalise_request_body(&snapshot, op, &id, &mut added_schemas)
                .with_context(|| at.clone())?;
            normalise_responses(&snapshot, op).with_context(|| at.clone())?;
            if negotiated && (*method == "get" || *method == "head") {
                add_parameter(
                    op,
                    json!({
                        "name": "Accept",
                        "in": "header",
                        "required": false,
                        "description": "The manifest media types the caller understands, comma-separated.",
                        "schema": {"type": "string"}
                    }),
                );
            }
        }
    }
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .context("the bundle has no components/schemas")?;
    ensure!(
        schemas.contains_key(BINARY),
        "components/schemas/{BINARY} (type string, format binary) is missing"
    );
    for (name, schema) in added_schemas {
        ensure!(
            !schemas.contains_key(&name),
            "component {name} exists already; the normalised view needs that name"
        );
        schemas.insert(name, schema);
    }
    for schema in schemas.values_mut() {
        drop_forbidden_properties(schema);
    }
    let error_bodies = error_body_schemas(&doc);
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .context("the bundle has no components/schemas")?;
    for name in error_bodies {
        if let Some(schema) = schemas.get_mut(&name) {
            open_string_enums(schema);
        }
    }
    Ok(doc)
}

/// The components that error responses carry as their JSON body.
fn error_body_schemas(doc: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, _, op) in operations(doc) {
        let responses = op.get("responses").and_then(Value::as_object);
        for (status, response) in responses.into_iter().flatten() {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let Ok(response) = deref(doc, response) else {
                continue;
            };
            let reference = response
                .pointer("/content/application~1json/schema/$ref")
                .and_then(Value::as_str);
            if let Some(name) = reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// Drops `enum` from string schemas: clients MUST tolerate error codes they do not know, so
/// an error body must not fail to parse over a code newer than this spec.
fn open_string_enums(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let strings = map
                .get("enum")
                .and_then(Value::as_array)
                .is_some_and(|values| values.iter().all(Value::is_string));
            if strings {
                if let Some(Value::Array(values)) = map.remove("enum") {
                    let known: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    let note = format!("Known values: {}.", known.join(", "));
                    let description = match map.get("description").and_then(Value::as_str) {
                        Some(d) => format!("{d}\n\n{note}"),
                        None => note,
                    };
                    map.insert("description".into(), json!(description));
                    map.insert("type".into(), json!("string"));
                }
            }
            map.values_mut().for_each(open_string_enums);
        }
        Value::Array(items) => items.iter_mut().for_each(open_string_enums),
        _ => {}
    }
}

/// Whether an operation's success responses offer more than one media type.
fn several_success_types(doc: &Value, op: &Value) -> Result<bool> {
    let Some(responses) = op.get("responses").and_then(Value::as_object) else {
        return Ok(false);
    };
    for (status, response) in responses {
        if status.starts_with('2') {
            let response = deref(doc, response)?;
            if content_types(response).len() > 1 {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The media types of a request body or response, in document order.
fn content_types(value: &Value) -> Vec<String> {
    value
        .get("content")
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

fn binary_content() -> Value {
    json!({ "application/octet-stream": { "schema": { "$ref": format!("#/components/schemas/{BINARY}") } } })
}

/// Several request media types → one octet-stream body and a `Content-Type` parameter.
fn normalise_request_body(
    doc: &Value,
    op: &mut Map<String, Value>,
    id: &str,
    added_schemas: &mut Vec<(String, Value)>,
) -> Result<()> {
    let Some(body) = op.get("requestBody") else {
        return Ok(());
    };
    let body = deref(doc, body)?.clone();
    let types = content_types(&body);
    match types.as_slice() {
        [] => return Ok(()),
        [one] if one == "application/octet-stream" || one == "application/json" => {
            return Ok(());
        }
        _ => {}
    }
    let schema_name = format!("{}ContentType", id.to_upper_camel_case());
    added_schemas.push((
        schema_name.clone(),
        json!({
            "type": "string",
            "description": format!("The media types `{id}` accepts as its body's `Content-Type`."),
            "enum": types,
        }),
    ));
    let mut body = body;
    body["content"] = binary_content();
    op.insert("requestBody".into(), body);
    add_parameter(
        op,
        json!({
            "name": "Content-Type",
            "in": "header",
            "required": true,
            "description": "The media type of the body.",
            "schema": {"$ref": format!("#/components/schemas/{schema_name}")}
        }),
    );
    Ok(())
}

/// One body kind for successes, one for errors (see the module docs).
fn normalise_responses(doc: &Value, op: &mut Map<String, Value>) -> Result<()> {
    let responses = op
        .get_mut("responses")
        .and_then(Value::as_object_mut)
        .context("no responses")?;
    responses.retain(|status, _| !status.starts_with('3'));

    let mut error_kinds = BTreeSet::new();
    let mut success_kinds = BTreeSet::new();
    for (status, response) in responses.iter_mut() {
        let resolved = deref(doc, response)?.clone();
        let types = content_types(&resolved);
        let kind = match types.as_slice() {
            [] => "none".to_string(),
            [one] if one == "application/json" => json_kind(&resolved, one)?,
            [one] if one.ends_with("+json") && status.starts_with('2') => {
                // a vendor JSON document: read it as JSON, typed
                let mut owned = resolved.clone();
                let media = owned["content"][one].take();
                owned["content"] = json!({ "application/json": media });
                *response = owned;
                json_kind(response, "application/json")?
            }
            _ if status.starts_with('2') => {
                let mut owned = resolved.clone();
                owned["content"] = binary_content();
                *response = owned;
                "binary".to_string()
            }
            _ => bail!("error response {status} has media types {types:?}; expected the JSON error envelope"),
        };
        if status.starts_with('2') {
            success_kinds.insert(kind);
        } else {
            error_kinds.insert((kind, status.clone()));
        }
    }
    ensure!(
        success_kinds.len() <= 1,
        "success responses of several kinds {success_kinds:?}: progenitor needs one"
    );
    let typed: BTreeSet<&String> = error_kinds
        .iter()
        .filter(|(kind, _)| kind != "none")
        .map(|(kind, _)| kind)
        .collect();
    ensure!(
        typed.len() <= 1,
        "error responses with several bodies {typed:?}: progenitor needs one"
    );
    if !typed.is_empty() {
        for (kind, status) in &error_kinds {
            if kind == "none" {
                responses.remove(status);
            }
        }
    }
    Ok(())
}

/// A JSON response's kind: its schema ref, or its inline schema as text.
fn json_kind(response: &Value, media: &str) -> Result<String> {
    let schema = response
        .pointer(&format!("/content/{}/schema", media.replace('/', "~1")))
        .with_context(|| format!("{media} without a schema"))?;
    Ok(schema.to_string())
}

/// Appends a parameter to an operation's own parameter list.
fn add_parameter(op: &mut Map<String, Value>, param: Value) {
    let params = op.entry("parameters").or_insert_with(|| json!([]));
    if let Some(list) = params.as_array_mut() {
        list.push(param);
    }
}

/// Removes, recursively, properties whose schema is `not: {}` (forbidden fields).
fn drop_forbidden_properties(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                props.retain(|_, p| p != &json!({ "not": {} }));
            }
            map.values_mut().for_each(drop_forbidden_properties);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_forbidden_properties),
        _ => {}
    }
}

/// Applies the two checked edits to progenitor's output: raw `/` for multi-segment
/// parameters, no `api-version` header.
pub fn fix_up(
    file: &mut syn::File,
    multi_segment: &BTreeSet<String>,
    operations: usize,
    encoders: usize,
) -> Result<()> {
    let mut fixer = FixUp {
        multi_segment,
        encoders_replaced: 0,
        api_version_removed: 0,
    };
    fixer.visit_file_mut(file);
    ensure!(
        fixer.api_version_removed == operations,
        "expected one api-version header per operation ({operations}), removed {}: \
         progenitor's output changed shape",
        fixer.api_version_removed
    );
    ensure!(
        fixer.encoders_replaced == encoders,
        "expected {encoders} `encode_path(&<param>.to_string())` calls for the multi-segment \
         parameters {multi_segment:?}, found {}: progenitor's output changed shape",
        fixer.encoders_replaced
    );
    Ok(())
}

struct FixUp<'a> {
    multi_segment: &'a BTreeSet<String>,
    encoders_replaced: usize,
    api_version_removed: usize,
}

impl FixUp<'_> {
    /// `encode_path(&<ident>.to_string())` with `<ident>` a multi-segment parameter.
    fn is_multi_segment_encode(&self, call: &syn::ExprCall) -> bool {
        let syn::Expr::Path(func) = &*call.func else {
            return false;
        };
        if !func.path.is_ident("encode_path") || call.args.len() != 1 {
            return false;
        }
        let Some(syn::Expr::Reference(arg)) = call.args.first() else {
            return false;
        };
        let syn::Expr::MethodCall(to_string) = &*arg.expr else {
            return false;
        };
        let syn::Expr::Path(receiver) = &*to_string.receiver else {
            return false;
        };
        to_string.method == "to_string"
            && receiver
                .path
                .get_ident()
                .is_some_and(|i| self.multi_segment.contains(&i.to_string()))
    }
}

/// Whether a statement is `header_map.append(HeaderName::from_static("api-version"), …);`.
fn is_api_version_append(stmt: &syn::Stmt) -> bool {
    let syn::Stmt::Expr(syn::Expr::MethodCall(call), Some(_)) = stmt else {
        return false;
    };
    call.method == "append"
        && call.args.first().is_some_and(|first| {
            let text = quote::ToTokens::to_token_stream(first).to_string();
            text.contains("from_static") && text.contains("\"api-version\"")
        })
}

/// The text of a `#[doc = "…"]` attribute.
fn doc_text(attr: &syn::Attribute) -> Option<String> {
    let syn::Meta::NameValue(pair) = &attr.meta else {
        return None;
    };
    let syn::Expr::Lit(syn::ExprLit {
        lit: syn::Lit::Str(text),
        ..
    }) = &pair.value
    else {
        return None;
    };
    pair.path.is_ident("doc").then(|| text.value())
}

/// Splits multi-line doc attributes into one per line, so that they print as `///` lines:
/// prettyplease prints a multi-line one as an indented `/** */` block, whose indentation
/// rustdoc would read as code blocks (and run as doctests).
fn split_doc_lines(attrs: &mut Vec<syn::Attribute>) {
    if !attrs
        .iter()
        .any(|a| doc_text(a).is_some_and(|t| t.contains('\n')))
    {
        return;
    }
    let mut out = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let Some(text) = doc_text(&attr).filter(|t| t.contains('\n')) else {
            out.push(attr);
            continue;
        };
        for line in text.trim_end().lines() {
            let line = if line.is_empty() {
                String::new()
            } else {
                format!(" {line}")
            };
            let mut one = attr.clone();
            if let syn::Meta::NameValue(pair) = &mut one.meta {
                let lit = syn::LitStr::new(&line, proc_macro2::Span::call_site());
                pair.value = syn::parse_quote!(#lit);
            }
            out.push(one);
        }
    }
    *attrs = out;
}

/// The attributes of an item, for the item kinds progenitor emits.
fn item_attrs(item: &mut syn::Item) -> Option<&mut Vec<syn::Attribute>> {
    use syn::Item;
    Some(match item {
        Item::Const(i) => &mut i.attrs,
        Item::Enum(i) => &mut i.attrs,
        Item::Fn(i) => &mut i.attrs,
        Item::Impl(i) => &mut i.attrs,
        Item::Mod(i) => &mut i.attrs,
        Item::Struct(i) => &mut i.attrs,
        Item::Trait(i) => &mut i.attrs,
        Item::Type(i) => &mut i.attrs,
        Item::Use(i) => &mut i.attrs,
        Item::Static(i) => &mut i.attrs,
        Item::Union(i) => &mut i.attrs,
        Item::Macro(i) => &mut i.attrs,
        _ => return None,
    })
}

impl VisitMut for FixUp<'_> {
    fn visit_file_mut(&mut self, file: &mut syn::File) {
        split_doc_lines(&mut file.attrs);
        syn::visit_mut::visit_file_mut(self, file);
    }

    fn visit_item_mut(&mut self, item: &mut syn::Item) {
        if let Some(attrs) = item_attrs(item) {
            split_doc_lines(attrs);
        }
        syn::visit_mut::visit_item_mut(self, item);
    }

    fn visit_impl_item_fn_mut(&mut self, item: &mut syn::ImplItemFn) {
        split_doc_lines(&mut item.attrs);
        syn::visit_mut::visit_impl_item_fn_mut(self, item);
    }

    fn visit_field_mut(&mut self, field: &mut syn::Field) {
        split_doc_lines(&mut field.attrs);
        syn::visit_mut::visit_field_mut(self, field);
    }

    fn visit_variant_mut(&mut self, variant: &mut syn::Variant) {
        split_doc_lines(&mut variant.attrs);
        syn::visit_mut::visit_variant_mut(self, variant);
    }

    fn visit_block_mut(&mut self, block: &mut syn::Block) {
        let before = block.stmts.len();
        block.stmts.retain(|s| !is_api_version_append(s));
        self.api_version_removed += before - block.stmts.len();
        syn::visit_mut::visit_block_mut(self, block);
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        // progenitor builds URLs with `format!`, whose arguments syn keeps as raw tokens:
        // parse them as expressions, visit, and put them back
        if mac.path.is_ident("format") {
            use syn::punctuated::Punctuated;
            let parser = Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
            if let Ok(mut args) = mac.parse_body_with(parser) {
                args.iter_mut().for_each(|arg| self.visit_expr_mut(arg));
                mac.tokens = quote::ToTokens::into_token_stream(args);
            }
        }
        syn::visit_mut::visit_macro_mut(self, mac);
    }

    fn visit_expr_call_mut(&mut self, call: &mut syn::ExprCall) {
        if self.is_multi_segment_encode(call) {
            let encoder = syn::Ident::new(MULTI_SEGMENT_ENCODER, proc_macro2::Span::call_site());
            *call.func = syn::parse_quote!(crate::#encoder);
            self.encoders_replaced += 1;
        }
        syn::visit_mut::visit_expr_call_mut(self, call);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        json!({
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1"},
            "paths": {
                "/v2/{name}/manifests/{reference}": {
                    "parameters": [
                        {"$ref": "#/components/parameters/Name"},
                        {"name": "reference", "in": "path", "required": true, "schema": {"type": "string"}}
                    ],
                    "get": {
                        "operationId": "manifest_get",
                        "responses": {
                            "200": {"description": "ok", "content": {
                                "application/vnd.oci.image.manifest.v1+json": {"schema": {"type": "object"}},
                                "application/vnd.oci.image.index.v1+json": {"schema": {"type": "object"}}
                            }},
                            "307": {"description": "elsewhere"},
                            "404": {"$ref": "#/components/responses/NotFound"},
                            "405": {"description": "no body"}
                        }
                    },
                    "put": {
                        "operationId": "manifest_put",
                        "requestBody": {"required": true, "content": {
                            "application/vnd.oci.image.manifest.v1+json": {"schema": {"type": "object"}},
                            "application/vnd.oci.image.index.v1+json": {"schema": {"type": "object"}}
                        }},
                        "responses": {"201": {"description": "stored"}}
                    }
                },
                "/v2/{name}/referrers/{digest}": {
                    "get": {
                        "operationId": "referrer_list",
                        "responses": {"200": {"description": "ok", "content": {
                            "application/vnd.oci.image.index.v1+json": {"schema": {"$ref": "#/components/schemas/Index"}}
                        }}}
                    }
                }
            },
            "components": {
                "schemas": {
                    "Binary": {"type": "string", "format": "binary"},
                    "Index": {"type": "object", "properties": {"config": {"not": {}}, "manifests": {"type": "array"}}},
                    "Envelope": {"type": "object"}
                },
                "parameters": {
                    "Name": {"name": "name", "in": "path", "required": true, "x-oci-multi-segment": true, "schema": {"type": "string"}}
                },
                "responses": {
                    "NotFound": {"description": "nf", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
                }
            }
        })
    }

    #[test]
    fn several_request_types_become_octet_stream_and_a_content_type_parameter() {
        let view = normalise(sample()).expect("normalises");
        let put = &view["paths"]["/v2/{name}/manifests/{reference}"]["put"];
        assert_eq!(
            put["requestBody"]["content"],
            json!({"application/octet-stream": {"schema": {"$ref": "#/components/schemas/Binary"}}})
        );
        assert_eq!(put["parameters"][0]["name"], "Content-Type");
        assert_eq!(put["parameters"][0]["required"], true);
        assert_eq!(
            view["components"]["schemas"]["ManifestPutContentType"]["enum"],
            json!([
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.index.v1+json"
            ])
        );
    }

    #[test]
    fn negotiated_responses_become_bytes_with_an_accept_parameter() {
        let view = normalise(sample()).expect("normalises");
        let get = &view["paths"]["/v2/{name}/manifests/{reference}"]["get"];
        assert_eq!(
            get["responses"]["200"]["content"],
            json!({"application/octet-stream": {"schema": {"$ref": "#/components/schemas/Binary"}}})
        );
        assert_eq!(get["parameters"][0]["name"], "Accept");
        let statuses: Vec<&String> = get["responses"].as_object().expect("map").keys().collect();
        assert_eq!(
            statuses,
            ["200", "404"],
            "redirect and body-less error dropped"
        );
        assert!(
            view["paths"]["/v2/{name}/manifests/{reference}"]["put"]["parameters"]
                .as_array()
                .expect("list")
                .iter()
                .all(|p| p["name"] != "Accept")
        );
    }

    #[test]
    fn vendor_json_response_is_read_as_json_and_forbidden_fields_vanish() {
        let view = normalise(sample()).expect("normalises");
        let content =
            &view["paths"]["/v2/{name}/referrers/{digest}"]["get"]["responses"]["200"]["content"];
        assert_eq!(
            content,
            &json!({"application/json": {"schema": {"$ref": "#/components/schemas/Index"}}})
        );
        assert_eq!(
            view["components"]["schemas"]["Index"]["properties"],
            json!({"manifests": {"type": "array"}})
        );
    }

    #[test]
    fn error_bodies_accept_codes_this_spec_does_not_list() {
        let mut doc = sample();
        doc["components"]["schemas"]["Envelope"] = json!({
            "type": "object",
            "properties": {"code": {"enum": ["BLOB_UNKNOWN", "DENIED"]}}
        });
        let view = normalise(doc).expect("normalises");
        let code = &view["components"]["schemas"]["Envelope"]["properties"]["code"];
        assert_eq!(code.get("enum"), None);
        assert_eq!(code["type"], "string");
        assert_eq!(code["description"], "Known values: BLOB_UNKNOWN, DENIED.");
    }

    #[test]
    fn multi_segment_parameters_are_found_through_refs() {
        let names = multi_segment_params(&sample()).expect("finds");
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["name"]);
    }

    #[test]
    fn mixed_success_kinds_fail_generation() {
        let mut doc = sample();
        doc["paths"]["/v2/{name}/referrers/{digest}"]["get"]["responses"]["204"] =
            json!({"description": "nothing"});
        let err = normalise(doc).expect_err("mixed kinds");
        assert!(format!("{err:#}").contains("several kinds"), "{err:#}");
    }

    fn sample_code() -> syn::File {
        syn::parse_quote! {
            fn send(name: String, digest: String) {
                let mut header_map = HeaderMap::new();
                header_map.append(
                    ::reqwest::header::HeaderName::from_static("api-version"),
                    ::reqwest::header::HeaderValue::from_static(Client::api_version()),
                );
                header_map.append("Range", value);
                let url = format!("{}/v2/{}/blobs/{}", base, encode_path(&name.to_string()), encode_path(&digest.to_string()));
                let nested = format!("{}", encode_path(&name.to_string()));
            }
        }
    }

    #[test]
    fn fix_up_encodes_only_multi_segment_params_raw_and_drops_api_version() {
        let mut file = sample_code();
        let names: BTreeSet<String> = ["name".to_string()].into();
        fix_up(&mut file, &names, 1, 2).expect("fixes");
        // macro arguments come back with token spacing: compare without whitespace
        let text: String = prettyplease::unparse(&file)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        assert_eq!(
            text.matches("crate::encode_multi_segment_path(&name.to_string())")
                .count(),
            2,
            "{text}"
        );
        assert!(text.contains(",encode_path(&digest.to_string())"), "{text}");
        assert!(!text.contains("api-version"), "{text}");
        assert!(
            text.contains("header_map.append(\"Range\",value)"),
            "{text}"
        );
    }

    #[test]
    fn multi_line_docs_become_line_comments() {
        let mut file: syn::File = syn::parse_quote! {
            #[doc = "Delete a blob\n\n    Indented text.\n"]
            pub fn f() {}
        };
        fix_up(&mut file, &BTreeSet::new(), 0, 0).expect("fixes");
        assert_eq!(
            prettyplease::unparse(&file),
            "/// Delete a blob\n///\n///     Indented text.\npub fn f() {}\n"
        );
    }

    #[test]
    fn fix_up_fails_when_the_expected_code_is_missing() {
        let mut file = sample_code();
        let names: BTreeSet<String> = ["repository".to_string()].into();
        assert!(
            fix_up(&mut file, &names, 1, 2).is_err(),
            "no encode_path for `repository`"
        );
        let mut file = sample_code();
        let names: BTreeSet<String> = ["name".to_string()].into();
        assert!(
            fix_up(&mut file, &names, 2, 2).is_err(),
            "one api-version, two operations"
        );
    }
}
