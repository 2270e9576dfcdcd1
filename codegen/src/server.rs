//! The server stubs: per-operation params and responses, the `RegistryApi` trait, the
//! right-to-left `/v2/...` route matcher and the dropshot catch-all dispatcher.
//!
//! Output goes to `server/src/generated/`: `operations.rs` (types), `routes.rs` (route
//! table, parameter rules, extraction) and `api.rs` (trait, dispatcher, dropshot glue).
//! They build on the hand-written, spec-independent `server/src/http/runtime.rs`
//! (imported as `crate::http::runtime`).

use crate::model::{
    status_variant, ApiModel, Operation, Param, ParamIn, Response, Scalar, ScalarKind,
};
use crate::{GeneratedFile, SpecInput};
use anyhow::{bail, Result};
use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use std::fmt::Write as _;

const FROM: &str = "spec/openapi.yaml";
const OUT: &str = "server/src/generated";

/// Headers the runtime sets itself, never through a typed field.
const RUNTIME_HEADERS: [&str; 1] = ["docker-distribution-api-version"];

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> Result<Vec<GeneratedFile>> {
    let model = ApiModel::from_spec(spec)?;
    generate_from_model(&model)
}

/// The files for an already-built model (the snapshot tests use this too).
pub fn generate_from_model(model: &ApiModel) -> Result<Vec<GeneratedFile>> {
    check_patterns(model)?;
    let file =
        |name: &str, source: String| GeneratedFile::rust(format!("{OUT}/{name}"), &source, FROM);
    Ok(vec![
        file("mod.rs", mod_rs())?,
        file("operations.rs", operations_rs(model)?)?,
        file("routes.rs", routes_rs(model)?)?,
        file("api.rs", api_rs(model))?,
    ])
}

fn mod_rs() -> String {
    "//! Server stubs generated from the spec: implement [`RegistryApi`] and serve\n\
     //! [`api_description`] with dropshot.\n\n\
     pub mod api;\npub mod operations;\npub mod routes;\n\n\
     pub use api::{api_description, dispatch, RegistryApi};\n\
     pub use operations::*;\n\
     pub use routes::{route, Route};\n\
     pub use crate::http::runtime::{\n    ApiError, ErrorCode, RequestBody, RequestMeta, ResponseBody, RouteError,\n};\n"
        .to_string()
}

fn type_name(op: &Operation) -> String {
    op.id.to_upper_camel_case()
}

/// A Rust identifier for a wire name (`Content-Range` → `content_range`).
fn field_name(name: &str) -> String {
    let snake = name.to_snake_case();
    match snake.as_str() {
        "type" | "ref" | "match" | "move" | "self" | "crate" | "loop" | "in" | "fn" | "impl" => {
            format!("r#{snake}")
        }
        _ => snake,
    }
}

/// Field names of an operation's params, disambiguated when a query and a path parameter
/// share a name.
fn param_fields(op: &Operation) -> Vec<(String, &Param)> {
    let params = visible_params(op);
    params
        .iter()
        .map(|p| {
            let base = field_name(&p.name);
            let clash = params
                .iter()
                .filter(|q| field_name(&q.name) == base)
                .count()
                > 1;
            let name = if clash {
                let place = match p.location {
                    ParamIn::Path => "path",
                    ParamIn::Query => "query",
                    ParamIn::Header => "header",
                };
                format!("{place}_{base}")
            } else {
                base
            };
            (name, *p)
        })
        .collect()
}

/// The params that become fields: a declared `Content-Type` header is covered by the
/// body's own `content_type` field.
fn visible_params(op: &Operation) -> Vec<&Param> {
    op.params
        .iter()
        .filter(|p| {
            !(op.request_body.is_some()
                && p.location == ParamIn::Header
                && p.name.eq_ignore_ascii_case("content-type"))
        })
        .collect()
}

/// Component schemas whose values cross the API as `quayside_spec::grammar` types: parsed
/// once at the edge (after the spec's own pattern check), never re-validated inside.
const GRAMMAR_TYPES: [(&str, &str); 5] = [
    ("RepositoryName", "grammar::RepoName"),
    ("Name", "grammar::RepoName"),
    ("Digest", "grammar::Digest"),
    ("Tag", "grammar::Tag"),
    ("Reference", "grammar::Reference"),
];

/// The grammar type for a string schema named in [`GRAMMAR_TYPES`].
fn grammar_type(schema: &Scalar) -> Option<&'static str> {
    let name = schema.ref_name.as_deref()?;
    (schema.kind == ScalarKind::String)
        .then(|| {
            GRAMMAR_TYPES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
        })
        .flatten()
}

fn scalar_type(schema: &Scalar) -> &'static str {
    if let Some(grammar) = grammar_type(schema) {
        return grammar;
    }
    match schema.kind {
        ScalarKind::String => "String",
        ScalarKind::Integer if schema.minimum.is_some_and(|m| m >= 0) => "u64",
        ScalarKind::Integer => "i64",
        ScalarKind::Boolean => "bool",
    }
}

fn param_type(p: &Param) -> String {
    let item = scalar_type(&p.schema);
    if p.repeatable {
        format!("Vec<{item}>")
    } else if p.required {
        item.to_string()
    } else {
        format!("Option<{item}>")
    }
}

fn doc(out: &mut String, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "/// {line}");
    }
}

fn operations_rs(model: &ApiModel) -> Result<String> {
    let mut out = String::from(
        "//! One params struct and one response enum per operation of the spec.\n\n\
         use crate::http::runtime::{ApiError, RequestBody, ResponseBody, ResponseBuilder};\n\
         use bytes::Bytes;\n\
         use dropshot::Body;\n\
         use http::Response;\n\n",
    );
    // The operation enum.
    out.push_str("/// Every operation of the spec, by `operationId`.\n");
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum Operation {\n");
    for op in &model.operations {
        doc(&mut out, &format!("`{} {}`", op.method, op.path));
        let _ = writeln!(out, "{},", type_name(op));
    }
    out.push_str("}\n\nimpl Operation {\n");
    let _ = writeln!(
        out,
        "/// Every operation, in spec order.\npub const ALL: [Operation; {}] = [{}];\n",
        model.operations.len(),
        model
            .operations
            .iter()
            .map(|op| format!("Self::{}", type_name(op)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (fn_name, what, get) in [
        ("id", "The `operationId`.", 0),
        ("method", "The HTTP method.", 1),
        ("path", "The path template.", 2),
    ] {
        let _ = writeln!(
            out,
            "/// {what}\npub fn {fn_name}(self) -> &'static str {{ match self {{"
        );
        for op in &model.operations {
            let value = [&op.id, &op.method, &op.path][get];
            let _ = writeln!(out, "Self::{} => {value:?},", type_name(op));
        }
        out.push_str("} }\n\n");
    }
    out.push_str(
        "/// Whether the operation only reads (GET, HEAD): the usual split between pull and\n\
         /// push access.\npub fn is_read_only(self) -> bool {\nmatches!(self.method(), \"GET\" | \"HEAD\")\n}\n}\n\n",
    );

    for op in &model.operations {
        params_struct(&mut out, op);
        response_enum(&mut out, op)?;
    }
    if out.contains("grammar::") {
        out = out.replacen(
            "use bytes::Bytes;\n",
            "use bytes::Bytes;\nuse quayside_spec::grammar;\n",
            1,
        );
    }
    Ok(out)
}

fn params_struct(out: &mut String, op: &Operation) {
    let name = type_name(op);
    doc(
        out,
        &format!(
            "Parameters of `{}` (`{} {}`){}",
            op.id,
            op.method,
            op.path,
            op.summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
    );
    let _ = writeln!(out, "#[derive(Debug)]\npub struct {name}Params {{");
    for (field, p) in param_fields(op) {
        let place = match p.location {
            ParamIn::Path => "Path",
            ParamIn::Query => "Query",
            ParamIn::Header => "Header",
        };
        let mut text = format!("{place} parameter `{}`", p.name);
        if p.multi_segment {
            text.push_str(" (may contain `/`)");
        }
        if p.repeatable {
            text.push_str(", every occurrence in order");
        }
        if let Some(pattern) = &p.schema.pattern {
            let _ = write!(text, "; checked against `{pattern}`");
        }
        doc(out, &text);
        let _ = writeln!(out, "pub {field}: {},", param_type(p));
    }
    if let Some(body) = &op.request_body {
        doc(
            out,
            "The request's `Content-Type`, already checked against the declared media types.",
        );
        out.push_str("pub content_type: Option<String>,\n");
        if body.binary {
            doc(out, "The body, streamed as it arrives.");
            out.push_str("pub body: RequestBody,\n");
        } else {
            doc(
                out,
                "The body, collected up to `RegistryApi::max_buffered_body` (413 above).",
            );
            out.push_str("pub body: Bytes,\n");
        }
    }
    out.push_str("}\n\n");
}

/// Response headers that become typed fields of a variant.
fn typed_headers(response: &Response) -> Vec<&crate::model::Header> {
    response
        .headers
        .iter()
        .filter(|h| {
            let lower = h.name.to_ascii_lowercase();
            !RUNTIME_HEADERS.contains(&lower.as_str())
                && (lower != "content-type" || response.media_types.is_empty())
        })
        .collect()
}

/// A variant carries its own `content_type` when the spec allows several (or a family).
fn variant_picks_content_type(response: &Response) -> bool {
    response.media_types.len() > 1 || response.media_types.iter().any(|m| m.contains('*'))
}

fn response_enum(out: &mut String, op: &Operation) -> Result<()> {
    let name = type_name(op);
    let successes: Vec<&Response> = op.success_responses().collect();
    // Header structs first.
    for response in &successes {
        let headers = typed_headers(response);
        if headers.is_empty() {
            continue;
        }
        let variant = status_variant(response.status);
        let all_optional = headers.iter().all(|h| !h.required || h.repeatable);
        doc(
            out,
            &format!("Headers of `{}` {} ({}).", op.id, response.status, variant),
        );
        let derive = if all_optional {
            "Debug, Clone, Default"
        } else {
            "Debug, Clone"
        };
        let _ = writeln!(
            out,
            "#[derive({derive})]\npub struct {name}{variant}Headers {{"
        );
        for header in headers {
            // Header integers are lengths and counts: never negative.
            let item = match header.schema.kind {
                ScalarKind::Integer => "u64",
                _ => scalar_type(&header.schema),
            };
            let ty = if header.repeatable {
                format!("Vec<{item}>")
            } else if header.required {
                item.to_string()
            } else {
                format!("Option<{item}>")
            };
            doc(
                out,
                &format!(
                    "`{}`{}",
                    header.name,
                    if header.required { " (required)" } else { "" }
                ),
            );
            let _ = writeln!(out, "pub {}: {ty},", field_name(&header.name));
        }
        out.push_str("}\n\n");
    }
    doc(
        out,
        &format!(
            "The success answers of `{}`; errors are `ApiError`s.",
            op.id
        ),
    );
    let _ = writeln!(out, "#[derive(Debug)]\npub enum {name}Response {{");
    for response in &successes {
        let variant = status_variant(response.status);
        doc(
            out,
            &format!("{}: {}", response.status, response.description.trim()),
        );
        let mut fields = Vec::new();
        if !typed_headers(response).is_empty() {
            fields.push(format!("headers: {name}{variant}Headers"));
        }
        if !response.media_types.is_empty() {
            if variant_picks_content_type(response) {
                fields.push(format!(
                    "/// One of: {}\ncontent_type: String",
                    response.media_types.join(", ")
                ));
            }
            if !response.head_of_get {
                fields.push("body: ResponseBody".to_string());
            }
        }
        if fields.is_empty() {
            let _ = writeln!(out, "{variant},");
        } else {
            let _ = writeln!(out, "{variant} {{ {} }},", fields.join(", "));
        }
    }
    out.push_str("}\n\n");
    // Rendering.
    let _ = writeln!(
        out,
        "impl {name}Response {{\n/// The HTTP answer, headers and body as declared.\n\
         pub fn into_response(self) -> Result<Response<Body>, ApiError> {{\nmatch self {{"
    );
    if successes.is_empty() {
        out.push_str("}\n}\n}\n\n");
        return Ok(());
    }
    for response in &successes {
        let variant = status_variant(response.status);
        let headers = typed_headers(response);
        let typed = !response.media_types.is_empty();
        let has_body = typed && !response.head_of_get;
        let picks = variant_picks_content_type(response);
        let mut pattern = Vec::new();
        if !headers.is_empty() {
            pattern.push("headers");
        }
        if typed && picks {
            pattern.push("content_type");
        }
        if has_body {
            pattern.push("body");
        }
        if pattern.is_empty() {
            let _ = writeln!(out, "Self::{variant} => {{");
        } else {
            let _ = writeln!(out, "Self::{variant} {{ {} }} => {{", pattern.join(", "));
        }
        let mutable = if headers.iter().any(|h| h.repeatable) {
            "mut "
        } else {
            ""
        };
        let _ = write!(
            out,
            "let {mutable}builder = ResponseBuilder::new({})",
            response.status
        );
        for header in headers.iter().filter(|h| !h.repeatable) {
            let wire = header.name.to_ascii_lowercase();
            let field = field_name(&header.name);
            if header.required {
                let _ = write!(out, ".header({wire:?}, headers.{field})");
            } else {
                let _ = write!(out, ".header_opt({wire:?}, headers.{field})");
            }
        }
        out.push_str(";\n");
        for header in headers.iter().filter(|h| h.repeatable) {
            let wire = header.name.to_ascii_lowercase();
            let field = field_name(&header.name);
            let _ = writeln!(
                out,
                "for value in headers.{field} {{ builder = builder.header({wire:?}, value); }}"
            );
        }
        let content_type = if !typed {
            "None".to_string()
        } else if picks {
            "Some(&content_type)".to_string()
        } else {
            format!("Some({:?})", response.media_types[0])
        };
        let body = if has_body {
            "body"
        } else {
            "ResponseBody::Empty"
        };
        let _ = writeln!(out, "builder.body({content_type}, {body})\n}}");
    }
    out.push_str("}\n}\n}\n\n");
    Ok(())
}

/// A path template as runtime segments.
fn segments(op: &Operation) -> String {
    let parts: Vec<String> = op
        .path
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(var) => {
                    let multi = op.path_params().any(|p| p.name == var && p.multi_segment);
                    if multi {
                        format!("Segment::Multi({var:?})")
                    } else {
                        format!("Segment::Var({var:?})")
                    }
                }
                None => format!("Segment::Lit({seg:?})"),
            },
        )
        .collect();
    format!("&[{}]", parts.join(", "))
}

fn rule_name(op: &Operation, p: &Param) -> String {
    let place = match p.location {
        ParamIn::Path => "PATH",
        ParamIn::Query => "QUERY",
        ParamIn::Header => "HEADER",
    };
    format!(
        "{}_{place}_{}",
        op.id.to_shouty_snake_case(),
        p.name.to_shouty_snake_case()
    )
}

fn rule_literal(p: &Param) -> String {
    let s = &p.schema;
    let opt_str = |v: &Option<String>| match v {
        Some(v) => format!("Some({v:?})"),
        None => "None".into(),
    };
    let opt_num = |v: Option<u64>| match v {
        Some(v) => format!("Some({v})"),
        None => "None".into(),
    };
    let opt_int = |v: Option<i64>| match v {
        Some(v) => format!("Some({v})"),
        None => "None".into(),
    };
    let allowed = s
        .enum_values
        .as_ref()
        .map(|values| {
            values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "ParamRule {{ name: {:?}, pattern: {}, min_length: {}, max_length: {}, minimum: {}, maximum: {}, allowed: &[{allowed}], status: {}, code: ErrorCode::{}, digest_code: {}, compiled: OnceLock::new() }}",
        p.name,
        opt_str(&s.pattern.as_deref().map(rust_pattern)),
        opt_num(s.min_length),
        opt_num(s.max_length),
        opt_int(s.minimum),
        opt_int(s.maximum),
        p.error.status,
        error_code_variant(&p.error.code),
        match &p.error.digest_code {
            Some(code) => format!("Some(ErrorCode::{})", error_code_variant(code)),
            None => "None".into(),
        },
    )
}

/// A JSON Schema (ECMA-262) pattern in the `regex` crate's dialect: `\d`, `\w` and `\s`
/// are ASCII in ECMA-262 but Unicode-aware in `regex`, so they are spelt out. Both dialects
/// search (a pattern without `^`/`$` matches anywhere), so anchors carry over unchanged.
pub fn rust_pattern(ecma: &str) -> String {
    let mut out = String::with_capacity(ecma.len());
    let mut chars = ecma.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[A-Za-z0-9_]"),
            Some('W') => out.push_str("[^A-Za-z0-9_]"),
            Some('s') => out.push_str("[\\t\\n\\x0B\\x0C\\r ]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Fails generation on a pattern the `regex` crate cannot compile: at run time such a rule
/// would reject every value.
fn check_patterns(model: &ApiModel) -> Result<()> {
    for op in &model.operations {
        for p in &op.params {
            if let Some(pattern) = &p.schema.pattern {
                if let Err(err) = regex::Regex::new(&rust_pattern(pattern)) {
                    bail!(
                        "{}: parameter `{}` has a pattern `regex` cannot compile: {err}",
                        op.id,
                        p.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// `DIGEST_INVALID` → `DigestInvalid`, the runtime's `ErrorCode` variant.
fn error_code_variant(code: &str) -> String {
    match code {
        "TOOMANYREQUESTS" => "TooManyRequests".into(),
        other => other.to_ascii_lowercase().to_upper_camel_case(),
    }
}

const ERROR_CODES: [&str; 14] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

/// The conversion of a raw `&str` named `raw` through a rule.
fn convert(rule: &str, schema: &Scalar, raw: &str) -> String {
    if grammar_type(schema).is_some() {
        return format!("{rule}.parse({raw})");
    }
    match schema.kind {
        ScalarKind::String => format!("{rule}.text({raw})"),
        ScalarKind::Integer => format!("{rule}.integer::<{}>({raw})", scalar_type(schema)),
        ScalarKind::Boolean => format!("{rule}.boolean({raw})"),
    }
}

fn routes_rs(model: &ApiModel) -> Result<String> {
    let mut out = String::from(
        "//! The route table of the spec, the checks of every parameter, and the extraction of\n\
         //! typed params from a request.\n\n\
         use super::operations::*;\n\
         use crate::http::runtime::*;\n\
         use http::Method;\n\
         use std::sync::OnceLock;\n\n",
    );
    for op in &model.operations {
        for p in &op.params {
            if !ERROR_CODES.contains(&p.error.code.as_str()) {
                bail!(
                    "{}: parameter `{}` names unknown error code {}",
                    op.id,
                    p.name,
                    p.error.code
                );
            }
        }
    }
    // Templates: the ones without a multi-segment name first (exact), then by the length of
    // the fixed tail, longest first, so the most specific shape is tried first.
    let mut templates: Vec<(&str, Vec<&Operation>)> = Vec::new();
    for op in &model.operations {
        match templates.iter_mut().find(|(path, _)| *path == op.path) {
            Some((_, ops)) => ops.push(op),
            None => templates.push((&op.path, vec![op])),
        }
    }
    let specificity = |ops: &Vec<&Operation>| {
        let op = ops[0];
        let multi = op.path_params().any(|p| p.multi_segment);
        (multi, std::cmp::Reverse(op.path.split('/').count()))
    };
    templates.sort_by_key(|(_, ops)| specificity(ops));
    // The repository-name rule the matcher checks while choosing a split.
    let multi: Vec<(&Operation, &Param)> = model
        .operations
        .iter()
        .flat_map(|op| {
            op.path_params()
                .filter(|p| p.multi_segment)
                .map(move |p| (op, p))
        })
        .collect();
    if let Some((_, first)) = multi.first() {
        if multi.iter().any(|(_, p)| {
            p.schema.pattern != first.schema.pattern
                || p.schema.max_length != first.schema.max_length
        }) {
            bail!(
                "multi-segment path parameters must share one schema (the route matcher checks it)"
            );
        }
        let _ = writeln!(
            out,
            "/// The repository-name rule, checked while choosing how to split a path.\n\
             static NAME_RULE: ParamRule = {};\n",
            rule_literal(first)
        );
    }
    let _ = writeln!(
        out,
        "/// Every path template of the spec, most specific first.\n\
         static ROUTES: [RouteTemplate<Operation>; {}] = [",
        templates.len()
    );
    for (path, ops) in &templates {
        let methods = ops
            .iter()
            .map(|op| format!("({:?}, Operation::{})", op.method, type_name(op)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "RouteTemplate {{ path: {path:?}, segments: {}, methods: &[{methods}] }},",
            segments(ops[0])
        );
    }
    out.push_str("];\n\n");
    out.push_str(
        "/// A request matched to an operation, with its path variables percent-decoded.\n\
         #[derive(Debug, Clone, PartialEq, Eq)]\n\
         pub struct Route {\npub operation: Operation,\n/// The path template that matched.\npub template: &'static str,\n\
         pub vars: Vec<(&'static str, String)>,\n}\n\n\
         impl Route {\n/// The path variable `name`.\npub fn var(&self, name: &str) -> Option<&str> {\n\
         self.vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())\n}\n",
    );
    if let Some((_, first)) = multi.first() {
        let _ = writeln!(
            out,
            "\n/// The repository name (the multi-segment `{0}`), for paths that have one: what\n\
             /// authorisation scopes are about.\npub fn repository(&self) -> Option<&str> {{\nself.var({0:?})\n}}",
            first.name
        );
    }
    out.push_str("}\n\n");
    let name_check = if multi.is_empty() {
        "|_: &str| true"
    } else {
        "|name: &str| NAME_RULE.accepts(name)"
    };
    let _ = writeln!(
        out,
        "/// Matches a request line to an operation, from the right of the path (see\n\
         /// `runtime::match_path`). `/v2` is taken as `/v2/`. Errors say which answer to give:\n\
         /// 404 (no such path), 400 (no valid repository name in it) or 405 (other methods).\n\
         pub fn route(method: &Method, raw_path: &str) -> Result<Route, RouteError> {{\n\
         let raw_path = if raw_path == \"/v2\" {{ \"/v2/\" }} else {{ raw_path }};\n\
         let matched = match_path(&ROUTES, raw_path, {name_check})?;\n\
         let operation = pick_method(&matched, method)?;\n\
         Ok(Route {{ operation, template: matched.template, vars: matched.vars }})\n}}\n"
    );
    // Rules and extraction, per operation.
    for op in &model.operations {
        for p in &op.params {
            let _ = writeln!(
                out,
                "static {}: ParamRule = {};",
                rule_name(op, p),
                rule_literal(p)
            );
        }
        extract_fn(&mut out, op);
    }
    Ok(out)
}

fn extract_fn(out: &mut String, op: &Operation) {
    let name = type_name(op);
    let body = op.request_body.as_ref();
    let (body_arg, limit_arg) = match body {
        Some(b) if !b.binary => ("body", "limit"),
        Some(_) => ("body", "_limit"),
        None => ("_body", "_limit"),
    };
    let fields = param_fields(op);
    let query_arg = if fields.iter().any(|(_, p)| p.location == ParamIn::Query) {
        "query"
    } else {
        "_query"
    };
    let route_arg = if op.path_params().next().is_some() {
        "route"
    } else {
        "_route"
    };
    let meta_arg = if body.is_some() || fields.iter().any(|(_, p)| p.location == ParamIn::Header) {
        "meta"
    } else {
        "_meta"
    };
    let _ = writeln!(
        out,
        "impl {name}Params {{\n\
         /// Checks every parameter against the spec, then takes the body.\n\
         pub async fn extract({meta_arg}: &RequestMeta, {route_arg}: &Route, {query_arg}: &[(String, String)], \
         {body_arg}: RequestBody, {limit_arg}: usize) -> Result<Self, ApiError> {{"
    );
    for (field, p) in &fields {
        let rule = rule_name(op, p);
        let raw = match p.location {
            ParamIn::Path => format!("route.var({:?})", p.name),
            ParamIn::Query if p.repeatable => String::new(),
            ParamIn::Query => format!("query_first(query, {:?})", p.name),
            ParamIn::Header => format!(
                "meta.header_param({:?}).as_deref()",
                p.name.to_ascii_lowercase()
            ),
        };
        let conv = convert(&rule, &p.schema, "raw");
        if p.repeatable {
            let source = match p.location {
                ParamIn::Header => format!(
                    "meta.headers.get_all({:?}).iter().filter_map(|v| v.to_str().ok())",
                    p.name.to_ascii_lowercase()
                ),
                _ => format!("query_all(query, {:?}).into_iter()", p.name),
            };
            let _ = writeln!(
                out,
                "let {field} = {source}.map(|raw| {conv}).collect::<Result<Vec<_>, _>>()?;"
            );
        } else if p.required {
            let _ = writeln!(
                out,
                "let {field} = {conv_req}?;",
                conv_req = convert(
                    &rule,
                    &p.schema,
                    &format!("{raw}.ok_or_else(|| {rule}.missing())?")
                )
            );
        } else {
            let _ = writeln!(out, "let {field} = {raw}.map(|raw| {conv}).transpose()?;");
        }
    }
    let mut names: Vec<String> = fields.iter().map(|(f, _)| f.clone()).collect();
    if let Some(b) = body {
        let declared = b
            .media_types
            .iter()
            .map(|m| format!("{m:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "let content_type = check_content_type(meta, &[{declared}])?;"
        );
        if !b.binary {
            out.push_str("check_declared_length(meta, limit)?;\nlet body = body.collect_limited(limit).await?;\n");
        }
        names.push("content_type".into());
        names.push("body".into());
    }
    let _ = writeln!(out, "Ok(Self {{ {} }})\n}}\n}}\n", names.join(", "));
}

fn api_rs(model: &ApiModel) -> String {
    let mut out = String::from(
        "//! The `RegistryApi` trait (one method per `operationId`), the dispatcher that checks a\n\
         //! request against the spec before calling it, and the dropshot catch-all endpoints.\n\n\
         use super::operations::*;\n\
         use super::routes::{route, Route};\n\
         use crate::http::runtime::*;\n\
         use dropshot::{ApiDescription, ApiDescriptionRegisterError, ApiEndpoint, ApiEndpointVersions, Body, HttpError, Path, RawRequest, RequestContext};\n\
         use http::Response;\n\
         use std::future::Future;\n\
         use std::net::SocketAddr;\n\
         use std::sync::Arc;\n\n",
    );
    out.push_str(
        "/// The registry, as the spec describes it: one method per operation, typed params in,\n\
         /// typed success or `ApiError` out. Every parameter has been checked against the spec\n\
         /// before a method is called.\n\
         pub trait RegistryApi: Send + Sync + 'static {\n\
         /// Runs after routing and before parameter checks, for every request: the place for\n\
         /// authentication and authorisation (answer 401 with `WWW-Authenticate` via\n\
         /// `ApiError::with_header`). The default lets everything through.\n\
         fn authorize(&self, _meta: &RequestMeta, _route: &Route) -> impl Future<Output = Result<(), ApiError>> + Send {\n\
         async { Ok(()) }\n}\n\n\
         /// The largest non-streamed request body (a manifest) accepted for `operation`;\n\
         /// larger ones get 413. The spec requires 4 MiB manifests to be accepted.\n\
         fn max_buffered_body(&self, _operation: Operation) -> usize {\nDEFAULT_MAX_BUFFERED_BODY\n}\n\n",
    );
    for op in &model.operations {
        let name = type_name(op);
        doc(
            &mut out,
            &format!(
                "`{} {}`{}",
                op.method,
                op.path,
                op.summary
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            ),
        );
        let _ = writeln!(
            out,
            "fn {}(&self, meta: &RequestMeta, params: {name}Params) -> impl Future<Output = Result<{name}Response, ApiError>> + Send;\n",
            op.id
        );
    }
    out.push_str("}\n\n");
    out.push_str(
        "/// Answers one request: route, authorize, check parameters, call the implementation,\n\
         /// render. Every answer (errors included) carries `Docker-Distribution-API-Version`;\n\
         /// every error is in the OCI envelope. Usable without a server, for in-process tests.\n\
         pub async fn dispatch<T: RegistryApi>(api: &T, request: http::Request<Body>, remote_addr: Option<SocketAddr>) -> Response<Body> {\n\
         let (parts, body) = request.into_parts();\n\
         let meta = RequestMeta { method: parts.method, uri: parts.uri, headers: parts.headers, remote_addr };\n\
         let result = match route(&meta.method, meta.uri.path()) {\n\
         Ok(route) => handle(api, &meta, &route, RequestBody::from_http(body)).await,\n\
         Err(err) => Err(err.into_api_error()),\n};\n\
         finish(result.unwrap_or_else(ApiError::into_response))\n}\n\n\
         async fn handle<T: RegistryApi>(api: &T, meta: &RequestMeta, route: &Route, body: RequestBody) -> Result<Response<Body>, ApiError> {\n\
         api.authorize(meta, route).await?;\n\
         let query = parse_query(meta.uri.query());\n\
         let limit = api.max_buffered_body(route.operation);\n\
         match route.operation {\n",
    );
    for op in &model.operations {
        let name = type_name(op);
        let _ = writeln!(
            out,
            "Operation::{name} => {{\n\
             let params = {name}Params::extract(meta, route, &query, body, limit).await?;\n\
             api.{}(meta, params).await?.into_response()\n}}",
            op.id
        );
    }
    out.push_str("}\n}\n\n");
    out.push_str(
        "/// The path variable of the catch-all endpoint; dropshot requires it to be consumed,\n\
         /// but routing uses the raw path (dropshot decodes `%2F` and collapses `//`).\n\
         #[derive(serde::Deserialize, schemars::JsonSchema)]\n\
         struct CatchAll {\n#[allow(dead_code)]\npath: Vec<String>,\n}\n\n\
         async fn catch_all<T: RegistryApi>(rqctx: RequestContext<Arc<T>>, _path: Path<CatchAll>, raw: RawRequest) -> Result<Response<Body>, HttpError> {\n\
         let remote = rqctx.request.remote_addr();\n\
         Ok(dispatch(rqctx.context().as_ref(), raw.into_inner(), Some(remote)).await)\n}\n\n\
         /// Registers one catch-all endpoint for every path, for the methods of the spec and\n\
         /// OPTIONS and TRACE, all answered by [`dispatch`]: paths and methods outside the spec\n\
         /// get its error envelope (404, 405) too, not dropshot's own body. They are\n\
         /// unpublished, since the spec, not dropshot, describes the API.\n\
         pub fn api_description<T: RegistryApi>() -> Result<ApiDescription<Arc<T>>, ApiDescriptionRegisterError> {\n\
         let mut api = ApiDescription::new();\n\
         for method in [http::Method::GET, http::Method::HEAD, http::Method::PUT, http::Method::POST, http::Method::PATCH, http::Method::DELETE, http::Method::OPTIONS, http::Method::TRACE] {\n\
         let lower = method.as_str().to_ascii_lowercase();\n\
         api.register(ApiEndpoint::new(format!(\"any_{lower}\"), catch_all::<T>, method, \"application/octet-stream\", \"/{path:.*}\", ApiEndpointVersions::All).visible(false))?;\n\
         }\n\
         Ok(api)\n}\n",
    );
    out
}
