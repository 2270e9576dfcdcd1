//! The bundle is a valid, self-contained OAS 3.0 document that still says everything the
//! JSON Schemas say.

use quayside_codegen::bundle::{bundled, dangling_refs};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// Runs openapi-spec-validator (installed through `.ci/peers`; failing loudly when it cannot
/// be) on `doc`, written to a temporary file.
fn openapi_spec_validator(doc: &Value) -> std::process::Output {
    let peers = super::repo_root().join(".ci/peers");
    let installed = Command::new(&peers)
        .args(["pip", "openapi-spec-validator"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", peers.display()));
    assert!(
        installed.success(),
        "could not install openapi-spec-validator with .ci/peers"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("openapi.bundled.yaml");
    std::fs::write(&file, serde_yaml::to_string(doc).expect("yaml")).expect("write");
    run_validator(&file)
}

fn run_validator(file: &Path) -> std::process::Output {
    Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.0"])
        .args(["--validation-errors", "all"])
        .arg(file)
        .output()
        .expect("python3 runs")
}

/// Every object below `value` that has key `key`, as JSON pointers.
fn find_key(value: &Value, key: &str, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if map.contains_key(key) {
                out.push(at.to_string());
            }
            for (k, v) in map {
                find_key(v, key, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                find_key(v, key, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn openapi_spec_validator_accepts_the_bundle() {
    let doc = bundled(&super::repo_spec()).expect("bundles");
    let out = openapi_spec_validator(&doc);
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the bundle:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openapi_spec_validator_rejects_draft07_left_in_the_bundle() {
    // the control for the test above: a JSON Schema idiom OAS 3.0 forbids is caught
    let mut doc = bundled(&super::repo_spec()).expect("bundles");
    doc["components"]["schemas"]["Tag"]["type"] = json!(["string", "null"]);
    let out = openapi_spec_validator(&doc);
    assert!(
        !out.status.success(),
        "openapi-spec-validator accepted `type: [string, null]`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_ref_resolves_inside_the_bundle() {
    let doc = bundled(&super::repo_spec()).expect("bundles");
    assert_eq!(dangling_refs(&doc), Vec::<String>::new());
    let text = serde_json::to_string(&doc).expect("json");
    assert!(
        !text.contains("\"$ref\":\"schemas/"),
        "an external ref is left"
    );
}

#[test]
fn no_draft07_keyword_is_left() {
    let doc = bundled(&super::repo_spec()).expect("bundles");
    for key in [
        "const",
        "$schema",
        "$id",
        "definitions",
        "if",
        "then",
        "else",
    ] {
        let mut found = Vec::new();
        find_key(
            &doc["components"]["schemas"],
            key,
            "#/components/schemas",
            &mut found,
        );
        assert_eq!(found, Vec::<String>::new(), "`{key}` is left in the bundle");
    }
    let mut examples = Vec::new();
    find_key(&doc["components"]["schemas"], "examples", "", &mut examples);
    assert_eq!(
        examples,
        Vec::<String>::new(),
        "schemas use `example` in OAS 3.0"
    );
}

#[test]
fn the_bundle_parses_with_openapiv3() {
    let doc = bundled(&super::repo_spec()).expect("bundles");
    let parsed: openapiv3::OpenAPI = serde_json::from_value(doc).expect("openapiv3 parses it");
    assert!(parsed.openapi.starts_with("3.0."));
    let schemas = &parsed.components.expect("components").schemas;
    assert!(schemas.contains_key("OciImageManifest"));
}

#[test]
fn every_schema_file_becomes_a_component_that_operations_use() {
    let spec = super::repo_spec();
    let doc = bundled(&spec).expect("bundles");
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for (file, schema) in &spec.schemas {
        if schema.get("type").is_some() || schema.get("allOf").is_some() {
            let stem = file.trim_end_matches(".schema.json");
            let name = heck::ToUpperCamelCase::to_upper_camel_case(stem);
            assert!(
                schemas.contains_key(&name),
                "{file} is not hoisted as {name}"
            );
        }
    }
    let put = &doc["paths"]["/v2/{name}/manifests/{reference}"]["put"]["requestBody"]["content"];
    assert_eq!(
        put["application/vnd.oci.image.manifest.v1+json"]["schema"],
        json!({"$ref": "#/components/schemas/OciImageManifest"})
    );
    assert_eq!(
        doc["components"]["schemas"]["Descriptor"]["properties"]["platform"],
        json!({"$ref": "#/components/schemas/Platform"}),
        "a defs.schema.json definition keeps its own name"
    );
}

#[test]
fn rules_oas30_cannot_state_are_quoted_not_lost() {
    let doc = bundled(&super::repo_spec()).expect("bundles");
    let schemas = &doc["components"]["schemas"];
    let manifest = schemas["OciImageManifest"]["description"]
        .as_str()
        .expect("description");
    assert!(
        manifest.contains("not expressible in OpenAPI 3.0")
            && manifest.contains("application/vnd.oci.empty.v1+json")
            && manifest.contains("artifactType"),
        "the empty-config rule is missing: {manifest}"
    );
    assert_eq!(
        schemas["OciImageManifest"]["properties"]["schemaVersion"],
        json!({"type": "integer", "enum": [2]})
    );
    assert_eq!(
        schemas["TagList"]["properties"]["tags"]["nullable"],
        json!(true)
    );
}

#[test]
fn a_ref_to_a_missing_schema_fails_generation() {
    let mut spec = super::repo_spec();
    spec.openapi["paths"]["/v2/{name}/tags/list"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"] = json!({"$ref": "schemas/tag-lists.schema.json"});
    let err = bundled(&spec).expect_err("dangling external ref");
    assert!(
        format!("{err:#}").contains("tag-lists.schema.json"),
        "the error names the file: {err:#}"
    );
}
