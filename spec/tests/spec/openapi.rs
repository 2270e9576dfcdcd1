//! `spec/openapi.yaml`: validity, parsing, examples.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use jsonschema::{Draft, Retrieve, Uri, Validator};
use quayside_spec::grammar::{Digest, Reference, RepoName, Tag};
use quayside_spec::openapi::{self, MULTI_SEGMENT_EXTENSION, OPENAPI_YAML};
use quayside_spec::schemas;
use serde_json::{json, Value};

/// The contract every engineer relies on: operationId, method, path.
const CONTRACT: [(&str, &str, &str); 16] = [
    ("v2_check", "GET", "/v2/"),
    ("catalog_list", "GET", "/v2/_catalog"),
    ("blob_get", "GET", "/v2/{name}/blobs/{digest}"),
    ("blob_head", "HEAD", "/v2/{name}/blobs/{digest}"),
    ("blob_delete", "DELETE", "/v2/{name}/blobs/{digest}"),
    ("upload_start", "POST", "/v2/{name}/blobs/uploads/"),
    (
        "upload_status",
        "GET",
        "/v2/{name}/blobs/uploads/{session_id}",
    ),
    (
        "upload_chunk",
        "PATCH",
        "/v2/{name}/blobs/uploads/{session_id}",
    ),
    (
        "upload_complete",
        "PUT",
        "/v2/{name}/blobs/uploads/{session_id}",
    ),
    (
        "upload_cancel",
        "DELETE",
        "/v2/{name}/blobs/uploads/{session_id}",
    ),
    ("manifest_get", "GET", "/v2/{name}/manifests/{reference}"),
    ("manifest_head", "HEAD", "/v2/{name}/manifests/{reference}"),
    ("manifest_put", "PUT", "/v2/{name}/manifests/{reference}"),
    (
        "manifest_delete",
        "DELETE",
        "/v2/{name}/manifests/{reference}",
    ),
    ("tag_list", "GET", "/v2/{name}/tags/list"),
    ("referrer_list", "GET", "/v2/{name}/referrers/{digest}"),
];

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

const MANIFEST_MEDIA_TYPES: [&str; 6] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

const ERROR_ENVELOPE: &str = "schemas/error-envelope.schema.json";

/// Base URI of the document for JSON Schema resolution: `schemas/x.json` relative to it is
/// `https://quayside.dev/schemas/x.json`, the `$id` of each schema file.
const BASE_URI: &str = "https://quayside.dev/openapi.json";
const SCHEMA_URI_PREFIX: &str = "https://quayside.dev/schemas/";

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The document as plain JSON, for walking parts openapiv3 types do not expose generically.
fn raw() -> Value {
    serde_yaml::from_str(OPENAPI_YAML).expect("spec/openapi.yaml is YAML")
}

/// Follows a local `$ref` (`#/components/...`) inside the document; other values pass through.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => doc
            .pointer(&r[1..])
            .unwrap_or_else(|| panic!("dangling reference {r}")),
        _ => value,
    }
}

/// The raw JSON of an operation, found by method and path.
fn raw_operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    &doc["paths"][path][method.to_ascii_lowercase()]
}

// ---------------------------------------------------------------------------------------
// An independent validator and the Rust parser accept the document.

fn run_openapi_spec_validator(file: &Path) -> std::process::Output {
    let peers = spec_dir().join("../.ci/peers");
    let installed = Command::new(&peers)
        .args(["pip", "openapi-spec-validator"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", peers.display()));
    assert!(
        installed.success(),
        "could not install openapi-spec-validator with .ci/peers"
    );
    Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.0"])
        .args(["--validation-errors", "all"])
        .arg(file)
        .output()
        .expect("python3 runs")
}

#[test]
fn openapi_spec_validator_accepts_the_document() {
    let out = run_openapi_spec_validator(&spec_dir().join("openapi.yaml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": OK"),
        "openapi-spec-validator rejected spec/openapi.yaml:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openapi_spec_validator_rejects_an_operation_without_responses() {
    // Proves the validator really inspects the document: the same file minus one
    // operation's `responses` must fail.
    let mut doc = raw();
    let op = doc["paths"]["/v2/"]["get"]
        .as_object_mut()
        .expect("v2_check");
    op.remove("responses");
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(spec_dir().join("schemas"), dir.path().join("schemas"))
        .expect("link schemas");
    let file = dir.path().join("openapi.yaml");
    std::fs::write(&file, serde_yaml::to_string(&doc).expect("to yaml")).expect("write");
    let out = run_openapi_spec_validator(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("'responses' is a required property"),
        "openapi-spec-validator did not flag the missing responses:\n{stdout}"
    );
}

#[test]
fn document_parses_with_openapiv3_as_version_3_0_3() {
    let doc = openapi::document();
    assert_eq!(doc.openapi, "3.0.3");
    assert!(doc.info.description.as_deref().unwrap_or("").len() > 500);
}

// ---------------------------------------------------------------------------------------
// The shared contract.

#[test]
fn operations_match_the_shared_contract_exactly() {
    let actual: BTreeSet<(String, String, String)> = openapi::operations()
        .map(|op| (op.id().to_owned(), op.method.to_owned(), op.path.to_owned()))
        .collect();
    let expected: BTreeSet<(String, String, String)> = CONTRACT
        .iter()
        .map(|(id, m, p)| ((*id).to_owned(), (*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(actual, expected);
    for (id, method, path) in CONTRACT {
        let op = openapi::operation(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!((op.method, op.path), (method, path));
    }
    assert!(openapi::operation("no_such_operation").is_none());
}

#[test]
fn every_operation_has_summary_description_tag_and_responses() {
    for op in openapi::operations() {
        let o = op.operation;
        let id = op.id();
        assert!(
            !id.is_empty(),
            "{} {} lacks an operationId",
            op.method,
            op.path
        );
        assert!(
            o.summary.as_deref().is_some_and(|s| !s.is_empty()),
            "{id}: summary"
        );
        let description = o.description.as_deref().unwrap_or("");
        assert!(
            description.contains("MUST") || description.contains("SHOULD"),
            "{id}: the description states no normative rule"
        );
        assert!(
            !o.tags.is_empty(),
            "{id}: no tag to group it in the reference"
        );
        assert!(!o.responses.responses.is_empty(), "{id}: no responses");
    }
}

#[test]
fn name_parameter_is_the_only_multi_segment_one_and_is_marked() {
    let doc = raw();
    let name = &doc["components"]["parameters"]["Name"];
    assert_eq!(name[MULTI_SEGMENT_EXTENSION], json!(true));
    for op in openapi::operations() {
        let path_item = &doc["paths"][op.path];
        let op_raw = raw_operation(&doc, op.method, op.path);
        let params: Vec<&Value> = [&path_item["parameters"], &op_raw["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| deref(&doc, p))
            .collect();
        // Every `{var}` in the template is declared as a required path parameter.
        for var in op.path.split('/').filter_map(|seg| seg.strip_prefix('{')) {
            let var = var.trim_end_matches('}');
            let p = params
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == var)
                .unwrap_or_else(|| panic!("{}: path parameter {var} undeclared", op.id()));
            assert_eq!(p["required"], json!(true), "{}: {var}", op.id());
            let marked = p[MULTI_SEGMENT_EXTENSION] == json!(true);
            assert_eq!(
                marked,
                var == "name",
                "{}: {var} multi-segment mark",
                op.id()
            );
        }
    }
}

#[test]
fn parameter_schemas_are_component_references_with_the_contract_grammar() {
    let doc = raw();
    let schemas = &doc["components"]["schemas"];
    let contract = [
        (
            "RepositoryName",
            r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$",
        ),
        ("Tag", r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$"),
        ("Digest", r"^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"),
    ];
    for (schema, pattern) in contract {
        assert_eq!(schemas[schema]["pattern"], json!(pattern), "{schema}");
    }
    assert_eq!(schemas["RepositoryName"]["maxLength"], json!(255));
    // A reference is exactly a tag or a digest.
    let inner = |p: &'static str| p.trim_start_matches('^').trim_end_matches('$');
    assert_eq!(
        schemas["Reference"]["pattern"],
        json!(format!(
            "^({}|{})$",
            inner(contract[1].1),
            inner(contract[2].1)
        ))
    );
    // Code generators make one type per inline schema, so named parameters refer to
    // shared component schemas.
    for (param, schema) in [
        ("Name", "RepositoryName"),
        ("Digest", "Digest"),
        ("Reference", "Reference"),
        ("SessionId", "SessionId"),
        ("Mount", "Digest"),
        ("From", "RepositoryName"),
        ("DigestQuery", "Digest"),
        ("DigestAlgorithm", "DigestAlgorithm"),
        ("ArtifactType", "MediaType"),
        ("N", "PageSize"),
        ("Last", "PageMarker"),
    ] {
        let p = &doc["components"]["parameters"][param];
        assert_eq!(
            p["schema"]["$ref"],
            json!(format!("#/components/schemas/{schema}")),
            "parameter {param}"
        );
    }
    let tag = &doc["components"]["parameters"]["Tag"];
    assert_eq!(
        (&tag["style"], &tag["explode"]),
        (&json!("form"), &json!(true))
    );
    assert_eq!(
        tag["schema"]["items"]["$ref"],
        json!("#/components/schemas/Tag")
    );
}

#[test]
fn grammar_patterns_accept_and_reject_what_the_spec_says() {
    let doc = raw();
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "RepositoryName",
            &[
                "library/alpine",
                "a",
                "team/sub-project__x/api.v2",
                "blobs/uploads",
            ],
            &["Library/alpine", "a//b", "/a", "a/", "a_-b", "_catalog"],
        ),
        (
            "Tag",
            &["latest", "3.21", "_x", "v1.0.0-rc.1"],
            &[".hidden", "-x", "a/b", "a:b", ""],
        ),
        (
            "Digest",
            &[
                "sha256:23965c87c60b94345e97030d57b53336a9b07ee42c0aaccf6d553e4a360463b4",
                "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
            ],
            &["sha256", "SHA256:abc", "sha256:", ":abc", "sha256:ab/c"],
        ),
        (
            "Reference",
            &[
                "latest",
                "sha256:23965c87c60b94345e97030d57b53336a9b07ee42c0aaccf6d553e4a360463b4",
            ],
            &["-bad", "a/b", "Sha256:abc"],
        ),
    ];
    for (schema, good, bad) in cases {
        let validator = compile(
            &doc,
            &json!({"$ref": format!("#/components/schemas/{schema}")}),
        )
        .expect("component schema compiles");
        for value in good {
            assert!(
                validator.is_valid(&json!(value)),
                "{schema} rejects {value:?}"
            );
        }
        for value in bad {
            assert!(
                !validator.is_valid(&json!(value)),
                "{schema} accepts {value:?}"
            );
        }
    }
    let name = compile(
        &doc,
        &json!({"$ref": "#/components/schemas/RepositoryName"}),
    )
    .expect("compiles");
    assert!(name.is_valid(&json!("a".repeat(255))));
    assert!(!name.is_valid(&json!("a".repeat(256))));
}

#[test]
fn spec_patterns_agree_with_the_grammar_module() {
    let doc = raw();
    let pattern = |schema: &str| {
        compile(
            &doc,
            &json!({"$ref": format!("#/components/schemas/{schema}")}),
        )
        .expect("component schema compiles")
    };
    let samples = [
        "library/alpine",
        "a",
        "a/b/c",
        "a__b",
        "a___b",
        "a--b.c_d",
        "a-",
        "-a",
        "A",
        "a//b",
        "a/",
        "_catalog",
        "latest",
        "_x",
        ".x",
        "v1.0.0-RC.1",
        "sha256:23965c87c60b94345e97030d57b53336a9b07ee42c0aaccf6d553e4a360463b4",
        "sha256:23965C87C60B94345E97030D57B53336A9B07EE42C0AACCF6D553E4A360463B4",
        "sha256:abc",
        "sha512:abc",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "x:y:z",
        "",
    ];
    let name = pattern("RepositoryName");
    let tag = pattern("Tag");
    let digest = pattern("Digest");
    let reference = pattern("Reference");
    for sample in samples {
        let value = json!(sample);
        // Names and tags: the grammar module accepts exactly what the pattern accepts.
        let name_ok = sample.parse::<RepoName>().is_ok();
        assert_eq!(name.is_valid(&value), name_ok, "name {sample:?}");
        let tag_ok = sample.parse::<Tag>().is_ok();
        assert_eq!(tag.is_valid(&value), tag_ok, "tag {sample:?}");
        // Digests: the pattern is the general grammar; the code also checks the encoding
        // of registered algorithms, so it may only be stricter.
        if sample.parse::<Digest>().is_ok() {
            assert!(digest.is_valid(&value), "digest {sample:?}");
        }
        if sample.parse::<Reference>().is_ok() {
            assert!(reference.is_valid(&value), "reference {sample:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Responses, headers, errors.

#[test]
fn every_response_carries_the_docker_api_version_header() {
    let doc = raw();
    for op in openapi::operations() {
        for (status, response) in raw_operation(&doc, op.method, op.path)["responses"]
            .as_object()
            .expect("responses")
        {
            let response = deref(&doc, response);
            let header = deref(
                &doc,
                &response["headers"]["Docker-Distribution-API-Version"],
            );
            assert_eq!(
                header["schema"]["enum"],
                json!(["registry/2.0"]),
                "{} {status}",
                op.id()
            );
        }
    }
}

#[test]
fn every_4xx_names_its_error_codes_and_uses_the_envelope_except_on_head() {
    let doc = raw();
    for op in openapi::operations() {
        for (status, response) in raw_operation(&doc, op.method, op.path)["responses"]
            .as_object()
            .expect("responses")
        {
            if !status.starts_with('4') || (op.id() == "v2_check" && status == "404") {
                continue;
            }
            let response = deref(&doc, response);
            let what = format!("{} {status}", op.id());
            let description = response["description"].as_str().unwrap_or("");
            assert!(
                ERROR_CODES.iter().any(|code| description.contains(code)),
                "{what}: description names no error code"
            );
            if op.method == "HEAD" {
                assert!(
                    response.get("content").is_none(),
                    "{what}: HEAD with a body"
                );
            } else {
                let content = response["content"].as_object().expect("a body");
                assert_eq!(content.len(), 1, "{what}");
                assert_eq!(
                    content["application/json"]["schema"]["$ref"],
                    json!(ERROR_ENVELOPE)
                );
            }
        }
    }
}

#[test]
fn all_fourteen_error_codes_are_documented() {
    let doc = raw();
    let intro = doc["info"]["description"]
        .as_str()
        .expect("info.description");
    let responses = serde_json::to_string(&doc["components"]["responses"]).expect("json");
    for code in ERROR_CODES {
        assert!(intro.contains(code), "{code} missing from the introduction");
        assert!(responses.contains(code), "no response documents {code}");
    }
}

#[test]
fn auth_and_rate_limit_responses_exist_on_every_operation() {
    let doc = raw();
    for op in openapi::operations() {
        let responses = &raw_operation(&doc, op.method, op.path)["responses"];
        let statuses: &[&str] = if op.id() == "v2_check" {
            &["401", "429"]
        } else {
            &["401", "403", "429"]
        };
        for status in statuses {
            assert!(
                responses.get(*status).is_some(),
                "{} lacks {status}",
                op.id()
            );
        }
        let unauthorized = deref(&doc, &responses["401"]);
        assert!(
            unauthorized["headers"].get("WWW-Authenticate").is_some(),
            "{}: 401 without a challenge",
            op.id()
        );
    }
}

#[test]
fn every_protocol_header_is_used_with_a_schema() {
    let doc = raw();
    let mut used: BTreeMap<String, Value> = BTreeMap::new();
    for op in openapi::operations() {
        let op_raw = raw_operation(&doc, op.method, op.path);
        for response in op_raw["responses"].as_object().expect("responses").values() {
            let response = deref(&doc, response);
            for (name, header) in response["headers"].as_object().into_iter().flatten() {
                used.insert(name.clone(), deref(&doc, header).clone());
            }
        }
        for p in op_raw["parameters"].as_array().into_iter().flatten() {
            let p = deref(&doc, p);
            if p["in"] == "header" {
                used.insert(
                    format!("request {}", p["name"].as_str().unwrap_or("")),
                    p.clone(),
                );
            }
        }
    }
    for name in [
        "Location",
        "Range",
        "Content-Range",
        "Content-Length",
        "Docker-Content-Digest",
        "Docker-Distribution-API-Version",
        "OCI-Chunk-Min-Length",
        "OCI-Subject",
        "OCI-Filters-Applied",
        "OCI-Tag",
        "Link",
        "WWW-Authenticate",
        "request Range",
        "request Content-Range",
        "request Content-Length",
    ] {
        let header = used
            .get(name)
            .unwrap_or_else(|| panic!("header {name} is never used"));
        assert!(
            header.get("schema").is_some(),
            "header {name} has no schema"
        );
        assert!(
            header.get("description").is_some(),
            "header {name} has no description"
        );
    }
}

#[test]
fn status_codes_follow_the_protocol() {
    let expected: [(&str, &[&str]); 16] = [
        ("v2_check", &["200", "401", "404"]),
        ("catalog_list", &["200"]),
        ("blob_get", &["200", "206", "307", "404", "416"]),
        ("blob_head", &["200", "307", "404"]),
        ("blob_delete", &["202", "400", "404", "405"]),
        ("upload_start", &["201", "202", "400", "404"]),
        ("upload_status", &["204", "404"]),
        ("upload_chunk", &["202", "404", "416"]),
        ("upload_complete", &["201", "400", "404", "416"]),
        ("upload_cancel", &["204", "400", "404"]),
        ("manifest_get", &["200", "400", "404"]),
        ("manifest_head", &["200", "404"]),
        ("manifest_put", &["201", "400", "404", "413", "414"]),
        ("manifest_delete", &["202", "400", "404", "405"]),
        ("tag_list", &["200", "404"]),
        ("referrer_list", &["200", "400", "404"]),
    ];
    for (id, statuses) in expected {
        let op = openapi::operation(id).expect("operation");
        for status in statuses {
            assert!(
                op.operation
                    .responses
                    .responses
                    .contains_key(&openapiv3::StatusCode::Code(status.parse().expect("u16"))),
                "{id} does not list {status}"
            );
        }
    }
}

#[test]
fn manifest_bodies_list_every_manifest_media_type() {
    let doc = raw();
    let get = &raw_operation(&doc, "GET", "/v2/{name}/manifests/{reference}")["responses"]["200"]
        ["content"];
    let put =
        &raw_operation(&doc, "PUT", "/v2/{name}/manifests/{reference}")["requestBody"]["content"];
    for content in [get, put] {
        let types: BTreeSet<&str> = content
            .as_object()
            .expect("content")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(types, MANIFEST_MEDIA_TYPES.into_iter().collect());
        for media_type in MANIFEST_MEDIA_TYPES {
            let schema = content[media_type]["schema"]["$ref"]
                .as_str()
                .expect("$ref");
            let file = schema.split('#').next().unwrap_or(schema);
            assert!(
                file.starts_with("schemas/") && spec_dir().join(file).is_file(),
                "{media_type}: {schema} is not a schema file"
            );
        }
    }
}

#[test]
fn head_responses_have_no_body() {
    let doc = raw();
    for op in openapi::operations().filter(|op| op.method == "HEAD") {
        for (status, response) in raw_operation(&doc, op.method, op.path)["responses"]
            .as_object()
            .expect("responses")
        {
            assert!(
                deref(&doc, response).get("content").is_none(),
                "{} {status}",
                op.id()
            );
        }
    }
}

#[test]
fn basic_and_bearer_security_schemes_are_offered_and_anonymous_allowed() {
    let doc = raw();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basicAuth"]["scheme"], json!("basic"));
    assert_eq!(schemes["bearerAuth"]["scheme"], json!("bearer"));
    let security = doc["security"].as_array().expect("global security");
    assert!(
        security.contains(&json!({})),
        "anonymous access not allowed"
    );
    assert!(security.contains(&json!({"basicAuth": []})));
    assert!(security.contains(&json!({"bearerAuth": []})));
    let intro = doc["info"]["description"].as_str().expect("intro");
    assert!(intro.contains("realm") && intro.contains("scope") && intro.contains("Bearer"));
}

// ---------------------------------------------------------------------------------------
// Examples validate against their schemas.

/// Serves `https://quayside.dev/schemas/<file>` from `spec/schemas/<file>`.
struct SchemaFiles;

impl Retrieve for SchemaFiles {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let uri = uri.as_str();
        let file = uri
            .strip_prefix(SCHEMA_URI_PREFIX)
            .ok_or_else(|| format!("unexpected external schema {uri}"))?;
        let path = spec_dir().join("schemas").join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// Compiles an OpenAPI schema (inline or a `$ref`) as draft-07 JSON Schema, with the
/// document's components reachable by `#/components/...` and schema files by their
/// relative `schemas/...` path. Our OAS schemas avoid `nullable`, the one OAS 3.0 keyword
/// whose meaning JSON Schema lacks.
fn compile(doc: &Value, schema: &Value) -> Result<Validator, String> {
    let root = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": BASE_URI,
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .with_retriever(SchemaFiles)
        .build(&root)
        .map_err(|e| e.to_string())
}

/// One example found in the document, with the schema it must satisfy.
struct Example {
    pointer: String,
    schema: Value,
    value: Value,
}

/// Finds every `example` and `examples` in the document (parameters, headers, media types,
/// schemas), resolving `#/components/examples` references.
fn collect_examples(doc: &Value) -> Vec<Example> {
    let mut found = Vec::new();
    walk(doc, doc, String::new(), &mut found);
    found
}

fn walk(doc: &Value, node: &Value, pointer: String, found: &mut Vec<Example>) {
    let Some(object) = node.as_object() else {
        if let Some(items) = node.as_array() {
            for (i, item) in items.iter().enumerate() {
                walk(doc, item, format!("{pointer}/{i}"), found);
            }
        }
        return;
    };
    if pointer == "/components/examples" {
        return; // validated where they are referenced
    }
    // A parameter, header or media type object carries its schema under `schema`; a schema
    // object is its own schema.
    let schema = match object.get("schema") {
        Some(schema) => schema.clone(),
        None => {
            let mut own = object.clone();
            own.remove("example");
            Value::Object(own)
        }
    };
    if let Some(value) = object.get("example") {
        found.push(Example {
            pointer: format!("{pointer}/example"),
            schema: schema.clone(),
            value: value.clone(),
        });
    }
    // `examples` belongs to parameters, headers and media types, never to schemas.
    let examples = object.get("schema").and(object.get("examples"));
    if let Some(examples) = examples.and_then(Value::as_object) {
        for (key, example) in examples {
            let origin = example
                .get("$ref")
                .and_then(Value::as_str)
                .unwrap_or("inline");
            let value = deref(doc, example)
                .get("value")
                .unwrap_or_else(|| panic!("{pointer}/examples/{key} has no value"));
            found.push(Example {
                pointer: format!("{pointer}/examples/{key} ({origin})"),
                schema: schema.clone(),
                value: value.clone(),
            });
        }
    }
    for (key, child) in object {
        if key != "example" && key != "examples" {
            let escaped = key.replace('~', "~0").replace('/', "~1");
            walk(doc, child, format!("{pointer}/{escaped}"), found);
        }
    }
}

/// Validates one example; `Err` lists every violation with where it occurs. A schema that
/// cannot be compiled (a missing schema file, a dangling `$ref`) panics instead, so that it
/// is never mistaken for a rejected example.
fn check(doc: &Value, example: &Example) -> Result<(), String> {
    let validator = compile(doc, &example.schema)
        .unwrap_or_else(|e| panic!("{}: schema does not compile: {e}", example.pointer));
    let errors: Vec<String> = validator
        .iter_errors(&example.value)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[test]
fn inline_schemas_avoid_nullable_so_json_schema_reads_them_alike() {
    // `compile` treats OAS schemas as JSON Schema; `nullable` is the one keyword whose
    // meaning would then be lost silently.
    fn walk(node: &Value, pointer: &str) {
        match node {
            Value::Object(map) => {
                assert!(!map.contains_key("nullable"), "nullable at {pointer}");
                for (k, v) in map {
                    walk(v, &format!("{pointer}/{k}"));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{pointer}/{i}"));
                }
            }
            _ => {}
        }
    }
    walk(&raw(), "");
}

#[test]
fn every_example_validates_against_its_schema() {
    let doc = raw();
    let examples = collect_examples(&doc);
    let mut failures: Vec<String> = examples
        .iter()
        .filter_map(|ex| {
            check(&doc, ex)
                .err()
                .map(|e| format!("{}: {e}", ex.pointer))
        })
        .collect();
    // Examples whose schema is a whole schema file also pass the crate's own validator,
    // the one the server uses.
    let mut by_crate = 0;
    for ex in &examples {
        let file = ex.schema["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("schemas/"));
        if let Some(file) = file {
            by_crate += 1;
            if let Err(violations) = schemas::validate_against(file, &ex.value) {
                let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
                failures.push(format!(
                    "{} (schemas::validate_against): {}",
                    ex.pointer,
                    list.join("; ")
                ));
            }
        }
    }
    assert!(by_crate >= 20, "only {by_crate} examples use a schema file");
    assert!(
        failures.is_empty(),
        "invalid examples:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_component_example_is_referenced_and_thus_validated() {
    let doc = raw();
    let examples = collect_examples(&doc);
    for name in doc["components"]["examples"]
        .as_object()
        .expect("examples")
        .keys()
    {
        let reference = format!("(#/components/examples/{name})");
        assert!(
            examples.iter().any(|ex| ex.pointer.ends_with(&reference)),
            "components/examples/{name} is never used, so never validated"
        );
    }
}

#[test]
fn examples_cover_manifests_errors_lists_and_parameters() {
    let doc = raw();
    let pointers: Vec<String> = collect_examples(&doc)
        .into_iter()
        .map(|e| e.pointer)
        .collect();
    for needle in [
        "/components/parameters/Name/example",
        "/components/headers/Link/example",
        "/components/responses/Unauthorized/content/application~1json/example",
        "application~1vnd.oci.image.manifest.v1+json/examples/image",
        "application~1vnd.docker.distribution.manifest.v1+prettyjws/examples/signed",
        "/paths/~1v2~1{name}~1tags~1list/get/responses/200/content/application~1json/examples/page",
        "/paths/~1v2~1{name}~1referrers~1{digest}/get/responses/200",
    ] {
        assert!(
            pointers.iter().any(|p| p.contains(needle)),
            "no example found at {needle}"
        );
    }
}

#[test]
fn example_check_rejects_examples_that_break_their_schema() {
    let doc = raw();
    let cases = [
        (
            json!({"$ref": "#/components/schemas/Tag"}),
            json!("-not-a-tag"),
        ),
        (json!({"$ref": "#/components/schemas/PageSize"}), json!(-1)),
        (
            json!({"$ref": ERROR_ENVELOPE}),
            json!({"errors": [{"code": 42}]}),
        ),
        (
            json!({"$ref": "schemas/tag-list.schema.json"}),
            json!({"tags": "latest"}),
        ),
        (
            json!({"$ref": "schemas/oci-image-manifest.schema.json"}),
            json!({"schemaVersion": 2, "config": "sha256:abc"}),
        ),
        (
            // The signed schema 1 definition, reached through a fragment, needs signatures.
            json!({"$ref": "schemas/docker-manifest-v2s1.schema.json#/definitions/signed"}),
            raw()["components"]["examples"]["DockerManifestV2s1Unsigned"]["value"].clone(),
        ),
    ];
    for (schema, value) in cases {
        let example = Example {
            pointer: "test".into(),
            schema: schema.clone(),
            value,
        };
        assert!(
            check(&doc, &example).is_err(),
            "{schema} accepted {}",
            example.value
        );
    }
}
