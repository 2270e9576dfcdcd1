//! The client generator on the repository's spec: names go out with raw `/`, nothing else
//! does, and no `api-version` header is built.

use quayside_codegen::client::generate_source;

/// Operations whose URL has `{name}`.
fn operations_with_a_name(spec: &quayside_codegen::SpecInput) -> usize {
    let paths = spec.openapi["paths"].as_object().expect("paths");
    paths
        .iter()
        .filter(|(path, _)| path.contains("{name}"))
        .map(|(_, item)| {
            ["get", "put", "post", "delete", "head", "patch"]
                .iter()
                .filter(|m| item.get(**m).is_some())
                .count()
        })
        .sum()
}

/// The source without whitespace, so macro arguments compare regardless of spacing.
fn squeezed(source: &str) -> String {
    source.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn every_name_is_sent_raw_and_every_other_parameter_encoded() {
    let spec = super::repo_spec();
    let source = squeezed(&generate_source(&spec).expect("generates"));
    assert_eq!(
        source
            .matches("crate::encode_multi_segment_path(&name.to_string())")
            .count(),
        operations_with_a_name(&spec)
    );
    assert!(!source.contains("encode_path(&name.to_string())"));
    for other in ["digest", "reference", "session_id"] {
        assert!(
            source.contains(&format!(",encode_path(&{other}.to_string())")),
            "{other} is not percent-encoded"
        );
    }
    assert!(!source.contains("api-version"));
}

#[test]
fn without_the_marker_the_name_is_percent_encoded() {
    let mut spec = super::repo_spec();
    spec.openapi["components"]["parameters"]["Name"]
        .as_object_mut()
        .expect("Name parameter")
        .remove("x-oci-multi-segment");
    let source = squeezed(&generate_source(&spec).expect("generates"));
    assert!(!source.contains("encode_multi_segment_path"));
    assert!(source.contains("encode_path(&name.to_string())"));
}

#[test]
fn manifest_push_takes_its_media_type_as_a_content_type_parameter() {
    let source = squeezed(&generate_source(&super::repo_spec()).expect("generates"));
    assert!(source.contains("pubenumManifestPutContentType"));
    assert!(source
        .contains(r#"header_map.append("Content-Type",content_type.to_string().try_into()?)"#));
    assert!(source
        .contains(r#"#[serde(rename="application/vnd.docker.distribution.manifest.v2+json")]"#));
}
