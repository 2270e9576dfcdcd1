//! Validates a response against the operation it answers in `spec/openapi.yaml`.
//!
//! Three questions, each producing readable violations that cite the operation: is the
//! status declared; are the headers the spec requires present, and does every declared
//! header that is present match its schema; is the body valid against the schema of its
//! `Content-Type`. Checks never call this directly: the HTTP layer does it for every request
//! tagged with an operationId.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use openapiv3::{
    Header, OpenAPI, ParameterSchemaOrContent, ReferenceOr, Response as OaResponse, Schema,
    SchemaKind, StatusCode, Type,
};
use regex::Regex;

use quayside_spec::openapi::{document, operation};
use quayside_spec::schemas;

use crate::http::Response;

/// Headers the spec's prose makes a MUST although the OpenAPI document cannot mark response
/// headers required: (operationId, status, header).
const REQUIRED_HEADERS: &[(&str, u16, &str)] = &[
    ("blob_get", 200, "Docker-Content-Digest"),
    ("blob_head", 200, "Docker-Content-Digest"),
    ("blob_head", 200, "Content-Length"),
    ("manifest_get", 200, "Docker-Content-Digest"),
    ("manifest_get", 200, "Content-Type"),
    ("manifest_head", 200, "Docker-Content-Digest"),
    ("manifest_head", 200, "Content-Type"),
    ("manifest_put", 201, "Location"),
    ("upload_start", 202, "Location"),
    ("upload_start", 201, "Location"),
    ("upload_chunk", 202, "Location"),
    ("upload_chunk", 202, "Range"),
    ("upload_status", 204, "Location"),
    ("upload_status", 204, "Range"),
    ("upload_complete", 201, "Location"),
    ("blob_get", 206, "Content-Range"),
    ("blob_get", 307, "Location"),
    ("blob_head", 307, "Location"),
];

/// Every way `resp` breaks the spec for `operation_id` (empty when it conforms).
pub fn validate_response(operation_id: &str, method: &str, resp: &Response) -> Vec<String> {
    let Some(entry) = operation(operation_id) else {
        return vec![format!(
            "no operation {operation_id:?} in spec/openapi.yaml"
        )];
    };
    let doc = document();
    let mut out = Vec::new();
    if !entry.method.eq_ignore_ascii_case(method) {
        out.push(format!(
            "{operation_id} is {} in the spec, request was {method}",
            entry.method
        ));
    }
    let responses = &entry.operation.responses;
    let declared = responses
        .responses
        .iter()
        .find(|(code, _)| match code {
            StatusCode::Code(c) => *c == resp.status,
            StatusCode::Range(r) => *r == resp.status / 100,
        })
        .map(|(_, r)| r)
        .or(responses.default.as_ref());
    let Some(declared) = declared else {
        let listed: Vec<String> = responses.responses.keys().map(|c| c.to_string()).collect();
        out.push(format!(
            "status {} is not declared for {operation_id} (declared: {})",
            resp.status,
            listed.join(", ")
        ));
        return out;
    };
    let Some(declared) = resolve_response(doc, declared) else {
        out.push(format!("unresolvable response for {operation_id}"));
        return out;
    };
    for (op, status, name) in REQUIRED_HEADERS {
        if *op == operation_id && *status == resp.status && resp.headers.get(*name).is_none() {
            out.push(format!(
                "{operation_id} {}: required header {name} missing",
                resp.status
            ));
        }
    }
    for (name, header) in &declared.headers {
        let Some(header) = resolve_header(doc, header) else {
            continue;
        };
        let values = resp.header_all(name);
        if values.is_empty() {
            if header.required {
                out.push(format!(
                    "{operation_id} {}: required header {name} missing",
                    resp.status
                ));
            }
            continue;
        }
        if let ParameterSchemaOrContent::Schema(schema) = &header.format {
            if let Some(schema) = resolve_schema(doc, schema) {
                for value in values {
                    let digest_header = name.eq_ignore_ascii_case("Docker-Content-Digest")
                        || name.eq_ignore_ascii_case("OCI-Subject");
                    let parsed = if digest_header {
                        // the pattern is the general grammar; registered algorithms also
                        // need the right number of lowercase hex digits
                        value
                            .parse::<quayside_spec::grammar::Digest>()
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        Ok(())
                    };
                    if let Err(why) = parsed.and_then(|()| check_scalar(doc, schema, value)) {
                        out.push(format!(
                            "{operation_id} {}: header {name}: {value:?} {why}",
                            resp.status
                        ));
                    }
                }
            }
        }
    }
    if method.eq_ignore_ascii_case("HEAD") || resp.body.is_empty() || declared.content.is_empty() {
        return out;
    }
    let content_type = resp.header("Content-Type").unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((_, media)) = declared
        .content
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&essence))
    else {
        let listed: Vec<&str> = declared.content.keys().map(String::as_str).collect();
        out.push(format!(
            "{operation_id} {}: Content-Type {content_type:?} not declared (declared: {})",
            resp.status,
            listed.join(", ")
        ));
        return out;
    };
    if let Some(ReferenceOr::Reference { reference }) = &media.schema {
        if let Some(file) = reference.strip_prefix("schemas/") {
            let result = if file.contains('#') {
                schemas::validate(&essence, &resp.body).map_err(|e| e.to_string())
            } else {
                match schemas::parse_strict(&resp.body) {
                    Err(v) => Err(v.to_string()),
                    Ok(value) => schemas::validate_against(file, &value).map_err(|vs| {
                        vs.iter()
                            .take(3)
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    }),
                }
            };
            if let Err(why) = result {
                out.push(format!(
                    "{operation_id} {}: body breaks {file}: {why}",
                    resp.status
                ));
            }
        }
    }
    out
}

fn resolve_response<'a>(
    doc: &'a OpenAPI,
    r: &'a ReferenceOr<OaResponse>,
) -> Option<&'a OaResponse> {
    match r {
        ReferenceOr::Item(item) => Some(item),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/responses/")?;
            match doc.components.as_ref()?.responses.get(name)? {
                ReferenceOr::Item(item) => Some(item),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

fn resolve_header<'a>(doc: &'a OpenAPI, r: &'a ReferenceOr<Header>) -> Option<&'a Header> {
    match r {
        ReferenceOr::Item(item) => Some(item),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/headers/")?;
            match doc.components.as_ref()?.headers.get(name)? {
                ReferenceOr::Item(item) => Some(item),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

fn resolve_schema<'a>(doc: &'a OpenAPI, r: &'a ReferenceOr<Schema>) -> Option<&'a Schema> {
    match r {
        ReferenceOr::Item(item) => Some(item),
        ReferenceOr::Reference { reference } => schema_by_ref(doc, reference),
    }
}

fn schema_by_ref<'a>(doc: &'a OpenAPI, reference: &str) -> Option<&'a Schema> {
    let name = reference.strip_prefix("#/components/schemas/")?;
    match doc.components.as_ref()?.schemas.get(name)? {
        ReferenceOr::Item(item) => Some(item),
        ReferenceOr::Reference { reference } => schema_by_ref(doc, reference),
    }
}

/// Checks a header value against a string, integer or array-of-string schema.
fn check_scalar(doc: &OpenAPI, schema: &Schema, value: &str) -> Result<(), String> {
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(s)) => {
            let allowed: Vec<&str> = s.enumeration.iter().flatten().map(String::as_str).collect();
            if !allowed.is_empty() && !allowed.contains(&value) {
                return Err(format!("is not one of {allowed:?}"));
            }
            if let Some(pattern) = &s.pattern {
                if !matches_pattern(pattern, value) {
                    return Err(format!("does not match {pattern}"));
                }
            }
            Ok(())
        }
        SchemaKind::Type(Type::Integer(i)) => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| "is not an integer".to_owned())?;
            match i.minimum {
                Some(min) if n < min => Err(format!("is below {min}")),
                _ => Ok(()),
            }
        }
        SchemaKind::Type(Type::Array(a)) => {
            let Some(items) = &a.items else { return Ok(()) };
            let item = match items {
                ReferenceOr::Item(item) => Some(&**item),
                ReferenceOr::Reference { reference } => schema_by_ref(doc, reference),
            };
            let Some(item) = item else { return Ok(()) };
            value
                .split(',')
                .try_for_each(|part| check_scalar(doc, item, part.trim()))
        }
        _ => Ok(()),
    }
}

fn matches_pattern(pattern: &str, value: &str) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let Ok(mut cache) = cache.lock() else {
        return true;
    };
    let regex = cache
        .entry(pattern.to_owned())
        .or_insert_with(|| Regex::new(pattern).ok());
    // a pattern the regex crate cannot compile is the spec's problem, not the registry's
    regex.as_ref().is_none_or(|r| r.is_match(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                *k,
                HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        Response {
            status,
            headers: map,
            body: Bytes::from(body.to_owned()),
            url: "http://r.test/".to_owned(),
        }
    }

    #[test]
    fn undeclared_status_is_a_violation() {
        let v = validate_response("blob_get", "GET", &response(418, &[], ""));
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("status 418 is not declared for blob_get"),
            "{v:?}"
        );
    }

    #[test]
    fn missing_digest_header_on_blob_get_is_a_violation() {
        let v = validate_response("blob_get", "GET", &response(200, &[], "abc"));
        assert!(
            v.iter()
                .any(|m| m.contains("Docker-Content-Digest missing")),
            "{v:?}"
        );
    }

    #[test]
    fn malformed_digest_header_is_a_violation() {
        let v = validate_response(
            "blob_head",
            "HEAD",
            &response(
                200,
                &[
                    ("Docker-Content-Digest", "sha256:nothex"),
                    ("Content-Length", "3"),
                ],
                "",
            ),
        );
        assert!(
            v.iter().any(|m| m.contains("header Docker-Content-Digest")),
            "{v:?}"
        );
    }

    #[test]
    fn error_envelope_body_is_checked_against_its_schema() {
        let good = r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#;
        let v = validate_response(
            "blob_get",
            "GET",
            &response(404, &[("Content-Type", "application/json")], good),
        );
        assert!(v.is_empty(), "{v:?}");
        let v = validate_response(
            "blob_get",
            "GET",
            &response(
                404,
                &[("Content-Type", "application/json")],
                r#"{"oops":1}"#,
            ),
        );
        assert!(v.iter().any(|m| m.contains("error-envelope")), "{v:?}");
    }

    #[test]
    fn undeclared_content_type_is_a_violation() {
        let v = validate_response(
            "blob_get",
            "GET",
            &response(404, &[("Content-Type", "text/html")], "<html>"),
        );
        assert!(v.iter().any(|m| m.contains("not declared")), "{v:?}");
    }
}
