//! The dispatcher checks the spec's patterns and then parses into `quayside_spec::grammar`
//! types; this proves the two agree, so the types add no rule the spec does not state,
//! except the one the spec states in prose: registered algorithms have a fixed-length hex
//! encoding (sha256: 64, sha512: 128).

use quayside_spec::grammar::{Digest, Reference, RepoName, Tag};
use regex::Regex;
use serde_json::Value;
use std::str::FromStr;

fn schema(name: &str) -> Value {
    let doc: Value =
        serde_yaml::from_str(quayside_spec::openapi::OPENAPI_YAML).expect("spec parses");
    doc["components"]["schemas"][name].clone()
}

/// Whether `value` passes the spec's checks of component schema `name`.
fn spec_accepts(name: &str) -> impl Fn(&str) -> bool {
    let schema = schema(name);
    let pattern = schema["pattern"].as_str().expect("pattern").to_string();
    let re = Regex::new(&pattern).expect("pattern compiles");
    let max = schema["maxLength"].as_u64().map(|m| m as usize);
    move |value: &str| re.is_match(value) && max.is_none_or(|m| value.chars().count() <= m)
}

fn corpus() -> Vec<String> {
    let hex64 = "a".repeat(64);
    let hex128 = "b".repeat(128);
    let mut values: Vec<String> = [
        "a",
        "a/b",
        "a/b/c/d",
        "library/alpine",
        "a.b",
        "a_b",
        "a__b",
        "a___b",
        "a--b",
        "a-",
        "-a",
        "a/",
        "/a",
        "a//b",
        "A",
        "a/B",
        "_catalog",
        "blobs",
        "a/blobs/uploads",
        "a..b",
        "a.-b",
        "latest",
        "v1.2.3",
        "_x",
        ".x",
        "x-",
        "X_Y.z",
        "a:b",
        "sha256:",
        ":abc",
        "sha256:abc",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
        "sha256:ABC",
        "",
        " ",
        "a b",
        "é",
        "tag\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push(format!("sha256:{hex64}"));
    values.push(format!("sha256:{}", "A".repeat(64)));
    values.push(format!("sha256:{}", "a".repeat(63)));
    values.push(format!("sha512:{hex128}"));
    values.push(format!("sha512:{hex64}"));
    values.push("t".repeat(128));
    values.push("t".repeat(129));
    values.push("a".repeat(255));
    values.push("a".repeat(256));
    values.push(format!("{}/{}", "a".repeat(127), "b".repeat(127)));
    values
}

/// Digest-shaped values whose algorithm is registered: the grammar also checks the
/// encoding's length and case, which the spec's general pattern leaves to prose.
fn registered_algorithm(value: &str) -> bool {
    value.starts_with("sha256:") || value.starts_with("sha512:")
}

fn assert_agree<T: FromStr>(schema_name: &str, stricter_for_registered_digests: bool) {
    let accepts = spec_accepts(schema_name);
    for value in corpus() {
        let spec = accepts(&value);
        let grammar = value.parse::<T>().is_ok();
        if spec != grammar {
            assert!(
                stricter_for_registered_digests && spec && !grammar && registered_algorithm(&value),
                "{schema_name}: spec says {spec}, grammar says {grammar} for {value:?}"
            );
        }
    }
}

#[test]
fn repo_name_accepts_exactly_the_spec_name_pattern() {
    assert_agree::<RepoName>("RepositoryName", false);
}

#[test]
fn tag_accepts_exactly_the_spec_tag_pattern() {
    assert_agree::<Tag>("Tag", false);
}

#[test]
fn digest_accepts_the_spec_pattern_plus_registered_lengths() {
    assert_agree::<Digest>("Digest", true);
}

#[test]
fn reference_accepts_the_spec_pattern_plus_registered_lengths() {
    assert_agree::<Reference>("Reference", true);
}
