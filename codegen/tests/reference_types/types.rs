//! The schema-type generator on a small sample of schemas: the generated source is pinned
//! by a snapshot, and the rules that matter to users are asserted one by one.

use quayside_codegen::types::{generate, render};
use quayside_codegen::SpecInput;

fn sample_source() -> String {
    let spec = SpecInput::load(&super::fixture("types-sample")).expect("sample loads");
    let files = generate(&spec).expect("types generate");
    files[0].contents.clone()
}

/// The text of `pub struct <name> { … }` in `source`.
fn struct_body<'s>(source: &'s str, name: &str) -> &'s str {
    let start = source
        .find(&format!("pub struct {name} {{"))
        .unwrap_or_else(|| panic!("no struct {name} in\n{source}"));
    let end = source[start..].find("\n}").expect("struct end");
    &source[start..start + end]
}

#[test]
fn sample_schema_types_match_snapshot() {
    insta::assert_snapshot!(sample_source());
}

#[test]
fn file_roots_shared_definitions_and_inline_objects_get_predictable_names() {
    let source = sample_source();
    for name in [
        "Descriptor",
        "Platform",
        "OciImageManifest",
        "OciImageConfig",
        "OciImageConfigConfig",
        "OciImageConfigRootfs",
        "OciImageConfigHistory",
    ] {
        assert!(source.contains(&format!("pub struct {name} {{")), "{name}");
    }
    // A document that is another document plus constraints is an alias, not a copy.
    assert!(source.contains("pub type ReferrersResponse = OciImageManifest;"));
    // `defs.schema.json` has no document of its own.
    assert!(!source.contains("pub struct Defs"));
}

#[test]
fn required_members_are_plain_and_the_rest_optional() {
    let source = sample_source();
    let descriptor = struct_body(&source, "Descriptor");
    assert!(descriptor.contains("pub media_type: String,"));
    assert!(descriptor.contains("pub digest: String,"));
    assert!(descriptor.contains("pub size: i64,"));
    assert!(descriptor.contains("pub platform: Option<Platform>,"));
    assert!(descriptor.contains("pub annotations: Option<BTreeMap<String, String>>,"));
    assert!(descriptor.contains("pub urls: Option<Vec<String>>,"));
    let manifest = struct_body(&source, "OciImageManifest");
    assert!(manifest.contains("pub config: Descriptor,"));
    assert!(manifest.contains("pub layers: Vec<Descriptor>,"));
    assert!(manifest.contains("pub schema_version: i64,"));
    assert!(manifest.contains("pub subject: Option<Descriptor>,"));
}

#[test]
fn nullable_members_are_optional_even_when_required() {
    let source = sample_source();
    let config = struct_body(&source, "OciImageConfigConfig");
    assert!(config.contains("pub env: Option<Vec<String>>,"), "{config}");
    let image = struct_body(&source, "OciImageConfig");
    assert!(image.contains("pub variant: Option<String>,"));
    assert!(image.contains("pub anything: Option<serde_json::Value>,"));
}

#[test]
fn members_serde_cannot_derive_are_renamed() {
    let source = sample_source();
    let platform = struct_body(&source, "Platform");
    assert!(platform.contains("#[serde(rename = \"os.version\")]\n    #[serde(default"));
    let config = struct_body(&source, "OciImageConfigConfig");
    assert!(config.contains("#[serde(rename = \"Env\")]\n    #[serde(default"));
    assert!(config.contains("pub r#type: Option<bool>,"));
    let rootfs = struct_body(&source, "OciImageConfigRootfs");
    assert!(rootfs.contains("#[serde(rename = \"diff_ids\")]"));
    // camelCase members rely on the struct's `rename_all`.
    let descriptor = struct_body(&source, "Descriptor");
    assert!(!descriptor.contains("rename = \"mediaType\""));
}

#[test]
fn every_struct_keeps_unknown_members() {
    let source = sample_source();
    let structs = source.matches("pub struct ").count();
    let flattened = source.matches("#[serde(flatten)]").count();
    assert_eq!(structs, flattened);
    // A schema member called `extra` does not collide with the catch-all.
    let history = struct_body(&source, "OciImageConfigHistory");
    assert!(history.contains("pub extra: Option<f64>,"));
    assert!(history.contains("pub unknown_members: serde_json::Map"));
}

#[test]
fn a_ref_to_a_missing_schema_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec_dir = tmp.path().join("spec");
    std::fs::create_dir_all(spec_dir.join("schemas")).expect("mkdir");
    std::fs::write(spec_dir.join("openapi.yaml"), "openapi: 3.0.3\npaths: {}\n").expect("write");
    std::fs::write(
        spec_dir.join("schemas/tag-list.schema.json"),
        r#"{"type":"object","properties":{"name":{"$ref":"nowhere.schema.json#/definitions/x"}}}"#,
    )
    .expect("write");
    let spec = SpecInput::load(tmp.path()).expect("loads");
    let err = format!("{:#}", render(&spec).expect_err("dangling $ref"));
    assert!(err.contains("tag-list.schema.json"), "{err}");
    assert!(err.contains("nowhere.schema.json"), "{err}");
}

/// `types_sample.rs` is the generator's output on the sample, compiled into this test
/// binary so that the behaviour of generated types can be tested.
#[test]
fn compiled_sample_types_are_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference_types/types_sample.rs"
    );
    let committed = std::fs::read_to_string(path).expect("types_sample.rs exists");
    assert!(
        committed == sample_source(),
        "tests/reference_types/types_sample.rs is stale: regenerate it with \
         `UPDATE_TYPES_SAMPLE=1 cargo test -p quayside-codegen --test reference_types`"
    );
}

#[test]
#[ignore = "writes tests/reference_types/types_sample.rs; run with UPDATE_TYPES_SAMPLE=1"]
fn update_compiled_sample_types() {
    if std::env::var_os("UPDATE_TYPES_SAMPLE").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/reference_types/types_sample.rs"
        );
        std::fs::write(path, sample_source()).expect("write types_sample.rs");
    }
}

mod generated_behaviour {
    use crate::types_sample::{OciImageConfig, OciImageManifest, ReferrersResponse};
    use serde_json::json;

    fn manifest_json() -> serde_json::Value {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": "sha256:aa", "size": 7, "x-vendor": true},
            "layers": [],
            "annotations": {"a": "b"},
            "futureMember": [1, 2]
        })
    }

    #[test]
    fn unknown_members_survive_a_round_trip() {
        let value = manifest_json();
        let manifest: OciImageManifest = serde_json::from_value(value.clone()).expect("parses");
        assert_eq!(manifest.extra["futureMember"], json!([1, 2]));
        assert_eq!(manifest.config.extra["x-vendor"], json!(true));
        assert_eq!(serde_json::to_value(&manifest).expect("serialises"), value);
    }

    #[test]
    fn missing_required_member_is_rejected() {
        let mut value = manifest_json();
        value.as_object_mut().expect("object").remove("config");
        let err = serde_json::from_value::<OciImageManifest>(value).expect_err("no config");
        assert!(err.to_string().contains("config"), "{err}");
    }

    #[test]
    fn null_for_a_nullable_member_reads_as_none() {
        let config: OciImageConfig = serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:bb"]},
            "config": {"Env": null, "User": "root"}
        }))
        .expect("parses");
        let run = config.config.expect("config present");
        assert_eq!(run.env, None);
        assert_eq!(run.user.as_deref(), Some("root"));
        assert_eq!(config.rootfs.diff_ids, vec!["sha256:bb".to_string()]);
    }

    #[test]
    fn restating_alias_is_the_same_type() {
        let parsed: ReferrersResponse =
            serde_json::from_value(manifest_json()).expect("parses as the aliased type");
        let _: &OciImageManifest = &parsed;
    }
}
