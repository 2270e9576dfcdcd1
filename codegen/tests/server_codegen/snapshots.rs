//! The generator's output on `tests/fixtures/sample`, snapshot by snapshot, so a change in
//! generated code shows up in review as a diff of readable Rust.

use quayside_codegen::model::{ApiModel, ParamIn};
use quayside_codegen::{server, SpecInput};

fn sample_model() -> ApiModel {
    let spec = SpecInput::load(&super::sample_root()).expect("sample spec loads");
    ApiModel::from_spec(&spec).expect("sample spec models")
}

fn generated(file: &str) -> String {
    let files = server::generate_from_model(&sample_model()).expect("generation succeeds");
    let wanted = format!("server/src/generated/{file}");
    files
        .into_iter()
        .find(|f| f.path.to_str() == Some(wanted.as_str()))
        .unwrap_or_else(|| panic!("{wanted} was not generated"))
        .contents
}

#[test]
fn model_resolves_refs_patterns_and_error_choices() {
    insta::assert_yaml_snapshot!(sample_model());
}

#[test]
fn model_reads_name_as_multi_segment_and_tag_as_repeatable() {
    let model = sample_model();
    let put = model
        .operations
        .iter()
        .find(|op| op.id == "manifest_put")
        .expect("manifest_put");
    let name = put.params.iter().find(|p| p.name == "name").expect("name");
    assert!(name.multi_segment && name.required && name.location == ParamIn::Path);
    assert_eq!(name.schema.max_length, Some(255));
    assert_eq!(name.error.code, "NAME_INVALID");
    let tag = put.params.iter().find(|p| p.name == "tag").expect("tag");
    assert!(tag.repeatable && !tag.required && tag.location == ParamIn::Query);
    assert_eq!(
        tag.schema.pattern.as_deref(),
        Some("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
    );
    let body = put.request_body.as_ref().expect("body");
    assert!(!body.binary);
    assert_eq!(body.media_types.len(), 2);
}

#[test]
fn model_takes_error_overrides_from_the_spec() {
    let model = sample_model();
    let chunk = model
        .operations
        .iter()
        .find(|op| op.id == "upload_chunk")
        .expect("upload_chunk");
    let range = chunk
        .params
        .iter()
        .find(|p| p.name == "Content-Range")
        .expect("Content-Range");
    assert_eq!(
        (range.error.status, range.error.code.as_str()),
        (416, "BLOB_UPLOAD_INVALID")
    );
    assert!(chunk.request_body.as_ref().is_some_and(|b| b.binary));
}

#[test]
fn operations_snapshot() {
    insta::assert_snapshot!(generated("operations.rs"));
}

#[test]
fn routes_snapshot() {
    insta::assert_snapshot!(generated("routes.rs"));
}

#[test]
fn api_snapshot() {
    insta::assert_snapshot!(generated("api.rs"));
}

#[test]
fn a_parameter_with_an_unknown_error_code_fails_generation() {
    let mut model = sample_model();
    model.operations[1].params[0].error.code = "NOT_A_CODE".into();
    let err = server::generate_from_model(&model).expect_err("must fail");
    assert!(err.to_string().contains("NOT_A_CODE"), "{err}");
}

#[test]
fn a_path_variable_without_a_parameter_fails_modelling() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("spec")).expect("mkdir");
    std::fs::write(
        root.path().join("spec/openapi.yaml"),
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /v2/{name}/tags/list:\n    get:\n      operationId: tag_list\n      responses: {'200': {description: ok}}\n",
    )
    .expect("write");
    let spec = SpecInput::load(root.path()).expect("loads");
    let err = ApiModel::from_spec(&spec).expect_err("must fail");
    assert!(
        format!("{err:#}").contains("`name` has no parameter"),
        "{err:#}"
    );
}

#[test]
fn ecma_shorthand_classes_become_ascii_classes() {
    assert_eq!(server::rust_pattern(r"^\d+-\d*$"), "^[0-9]+-[0-9]*$");
    assert_eq!(
        server::rust_pattern(r"^\w\W\D$"),
        "^[A-Za-z0-9_][^A-Za-z0-9_][^0-9]$"
    );
    // Other escapes pass through untouched.
    assert_eq!(server::rust_pattern(r"a\/b\.c\\d"), r"a\/b\.c\\d");
}

#[test]
fn a_pattern_the_regex_crate_cannot_compile_fails_generation() {
    let mut model = sample_model();
    model.operations[1].params[1].schema.pattern = Some("(unclosed".into());
    let err = server::generate_from_model(&model).expect_err("must fail");
    assert!(err.to_string().contains("cannot compile"), "{err}");
}

#[test]
fn head_takes_the_media_types_of_get_without_a_body() {
    let model = sample_model();
    let head = model
        .operations
        .iter()
        .find(|op| op.id == "blob_head")
        .expect("blob_head");
    let ok = head
        .responses
        .iter()
        .find(|r| r.status == 200)
        .expect("200");
    assert!(ok.head_of_get);
    assert_eq!(ok.media_types, ["application/octet-stream"]);
    let source = generated("operations.rs");
    assert!(
        source.contains("Ok { headers: BlobHeadOkHeaders },"),
        "no body field on HEAD"
    );
}
