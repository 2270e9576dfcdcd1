//! `spec/schemas/`: vectors, violations, spec-lint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quayside_spec::schemas::{
    self, media_types, schema_files, schema_for_media_type, validate, validate_against,
    ValidateError, Violation,
};
use serde_json::{json, Value};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SHA256_EMPTY: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// The shared test vectors: beside the repository in every checkout (CI clones it there).
fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors"));
    assert!(
        dir.join("SOURCES.tsv").is_file(),
        "test vectors missing: expected {}/SOURCES.tsv (clone shared/ beside the repository)",
        dir.display()
    );
    dir
}

/// Media type each vector kind is linted as. Artifact configs have vendor types with no
/// schema; the legacy artifact manifest was withdrawn from image-spec before v1.1.0, so we
/// give it no schema either: both are only checked to be strict JSON (spec-lint's rule for a
/// `+json` type without a schema).
fn media_type_of_kind(kind: &str) -> &'static str {
    match kind {
        "oci-image-manifest" | "oci-artifact-manifest" => MANIFEST,
        "oci-artifact-manifest-legacy" => "application/vnd.oci.artifact.manifest.v1+json",
        "oci-image-index" => INDEX,
        "oci-image-config" => OCI_CONFIG,
        "oci-descriptor" => DESCRIPTOR,
        "docker-v2s2-manifest" => "application/vnd.docker.distribution.manifest.v2+json",
        "docker-manifest-list" => "application/vnd.docker.distribution.manifest.list.v2+json",
        "docker-image-config" => "application/vnd.docker.container.image.v1+json",
        "docker-v2s1-signed" => SCHEMA1_SIGNED,
        "docker-v2s1-unsigned" => SCHEMA1,
        "artifact-config" => "application/vnd.unknown.config.v1+json",
        other => panic!("SOURCES.tsv has a kind this test does not map: {other}"),
    }
}

/// Vectors whose label we deliberately disagree with, and why. The test checks each one
/// still behaves as listed, so the list cannot go stale.
const EXCEPTIONS: &[(&str, bool, &str)] = &[
    (
        "invalid/oci-image-manifest/imagespec_mt06_empty-layers.json",
        true,
        "accepted: image-spec's prose only says layers SHOULD have an entry (its schema's \
         minItems is stricter than the spec), and real artifacts (ORAS, go-containerregistry's \
         empty image) push \"layers\": []",
    ),
    (
        "valid/oci-image-manifest/regclient_rawOCIImage-with-extra-manifests-field.json",
        false,
        "rejected: a manifest that also carries \"manifests\" can be read as an index \
         (CVE-2021-41190); containerd refuses such documents on pull, so storing one only \
         serves content clients cannot use",
    ),
    (
        "valid/oci-image-index/regclient_rawOCIIndex-with-extra-config-layers.json",
        false,
        "rejected: an index that also carries \"config\"/\"layers\" is ambiguous \
         (CVE-2021-41190), same reasoning as the manifest case",
    ),
];

/// Invalid vectors of class `semantic` that our schemas catch anyway (digest encodings per
/// algorithm, Env entries, the ambiguity rule, Docker's required mediaType).
const SEMANTIC_CAUGHT: &[&str] = &[
    "invalid/oci-descriptor/imagespec_desc16_digest-uppercase-hex.json",
    "invalid/oci-image-manifest/harbor_sbom_digest-sha256-abc.json",
    "invalid/oci-image-config/imagespec_cfg10_env-entry-without-equals.json",
    "invalid/oci-image-manifest/regclient_rawAmbiguousOCI.json",
    "invalid/docker-v2s2-manifest/cimage_v2s2nomime.manifest.json",
];

struct Vector {
    file: String,
    kind: String,
    valid: bool,
    class: String,
}

fn vectors() -> Vec<Vector> {
    let dir = vectors_dir();
    let table = std::fs::read_to_string(dir.join("SOURCES.tsv")).expect("read SOURCES.tsv");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .expect("SOURCES.tsv header")
        .split('\t')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("SOURCES.tsv has no {name} column"))
    };
    let (file, kind, validity, class) = (
        column("file"),
        column("kind"),
        column("validity"),
        column("invalid_class"),
    );
    let rows: Vec<Vector> = lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split('\t').collect();
            Vector {
                file: cells[file].to_owned(),
                kind: cells[kind].to_owned(),
                valid: cells[validity] == "valid",
                class: cells[class].to_owned(),
            }
        })
        .collect();
    assert!(rows.len() > 200, "only {} vectors listed", rows.len());
    rows
}

fn spec_lint(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spec-lint"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run spec-lint")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn spec_lint_agrees_with_every_vector_label_except_the_documented_exceptions() {
    let dir = vectors_dir();
    let mut wrong = Vec::new();
    for vector in vectors() {
        let output = spec_lint(
            &[
                "--media-type",
                media_type_of_kind(&vector.kind),
                &vector.file,
            ],
            &dir,
        );
        let code = output.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{}: spec-lint exited {code:?}: {}",
            vector.file,
            String::from_utf8_lossy(&output.stderr)
        );
        let passed = code == Some(0);
        let exception = EXCEPTIONS.iter().find(|(file, ..)| *file == vector.file);
        let expected = match exception {
            Some((_, passes, _)) => Some(*passes),
            None if vector.valid => Some(true),
            None if vector.class == "json" || vector.class == "schema" => Some(false),
            None if SEMANTIC_CAUGHT.contains(&vector.file.as_str()) => Some(false),
            // Other semantic errors (JWS signatures, history length, unknown layer media
            // types, which the OCI spec says must not be refused) are beyond a schema.
            None => None,
        };
        if expected.is_some_and(|expected| expected != passed) {
            wrong.push(format!(
                "{} (passed: {passed})\n{}",
                vector.file,
                stdout(&output)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "vectors spec-lint gets wrong:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn valid_manifests_and_indexes_pass_on_their_own_media_type() {
    let dir = vectors_dir();
    let own_typed: Vec<String> = vectors()
        .into_iter()
        .filter(|v| v.valid && !EXCEPTIONS.iter().any(|(file, ..)| *file == v.file))
        .filter(|v| v.kind.contains("manifest") || v.kind.contains("index"))
        .filter(|v| {
            let bytes = std::fs::read(dir.join(&v.file)).expect("read vector");
            schemas::parse_strict(&bytes)
                .ok()
                .and_then(|doc| doc.get("mediaType").cloned())
                .is_some()
        })
        .map(|v| v.file)
        .collect();
    assert!(own_typed.len() > 50, "only {} vectors", own_typed.len());
    let mut args: Vec<&str> = own_typed.iter().map(String::as_str).collect();
    args.sort_unstable();
    let output = spec_lint(&args, &dir);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}

#[test]
fn every_exception_and_caught_semantic_vector_exists() {
    let files: BTreeSet<String> = vectors().into_iter().map(|v| v.file).collect();
    for file in EXCEPTIONS
        .iter()
        .map(|(file, ..)| *file)
        .chain(SEMANTIC_CAUGHT.iter().copied())
    {
        assert!(files.contains(file), "{file} is not in SOURCES.tsv");
    }
}

/// Lints one vector from inside the vectors directory, so the snapshot shows its path.
fn lint_output(kind: &str, file: &str) -> String {
    let output = spec_lint(
        &["--media-type", media_type_of_kind(kind), file],
        &vectors_dir(),
    );
    assert_eq!(output.status.code(), Some(1), "{file} should be invalid");
    stdout(&output)
}

#[test]
fn violation_output_for_descriptor_rules() {
    let mut out = String::new();
    for name in [
        "imagespec_desc05_mediatype-bad-first-type-char.json",
        "imagespec_desc09_mediatype-subtype-too-long.json",
        "imagespec_desc16_digest-uppercase-hex.json",
        "imagespec_desc18_urls-invalid-chars.json",
        "imagespec_desc29_data-base64-missing-padding.json",
        "imagespec_desc30_negative-size.json",
    ] {
        out += &lint_output("oci-descriptor", &format!("invalid/oci-descriptor/{name}"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn violation_output_for_manifests_and_indexes() {
    let mut out = String::new();
    for (kind, file) in [
        (
            "oci-artifact-manifest",
            "invalid/oci-artifact-manifest/cimage_ociv1.artifact.json",
        ),
        (
            "oci-artifact-manifest",
            "invalid/oci-artifact-manifest/cosign_spec_bundle-manifest-truncated-digests.json",
        ),
        (
            "oci-image-manifest",
            "invalid/oci-image-manifest/imagespec_mt09_subject-not-descriptor.json",
        ),
        (
            "oci-image-index",
            "invalid/oci-image-index/imagespec_ix04_platform-architecture-missing.json",
        ),
        (
            "docker-v2s1-signed",
            "invalid/docker-v2s1-signed/cimage_v2s1-invalid-signatures.manifest.json",
        ),
        (
            "oci-image-config",
            "invalid/oci-image-config/imagespec_cfg05_env-numeric.json",
        ),
    ] {
        out += &lint_output(kind, file);
    }
    insta::assert_snapshot!(out);
}

#[test]
fn violation_output_for_documents_that_are_not_json() {
    let mut out = String::new();
    for (kind, file) in [
        (
            "oci-artifact-manifest",
            "invalid/oci-artifact-manifest/cosign_spec_attestation-example-trailing-comma.json",
        ),
        (
            "oci-image-manifest",
            "invalid/oci-image-manifest/cimage_non-json-gzip.manifest.json",
        ),
        (
            "artifact-config",
            "invalid/artifact-config/harbor_default_UnknownConfig-not-json.txt",
        ),
    ] {
        out += &lint_output(kind, file);
    }
    insta::assert_snapshot!(out);
}

// ---- spec-lint command line ----

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn minimal_manifest() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": SHA256_EMPTY, "size": 2},
        "layers": []
    })
}

#[test]
fn spec_lint_uses_the_documents_own_media_type_and_exits_0_when_all_valid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "m.json", &minimal_manifest().to_string());
    let output = spec_lint(&["m.json"], tmp.path());
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output), "");
}

#[test]
fn spec_lint_prints_file_pointer_message_and_exits_1_if_any_file_is_invalid() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "good.json", &minimal_manifest().to_string());
    let mut bad = minimal_manifest();
    bad["config"]["size"] = json!(-1);
    write(tmp.path(), "bad.json", &bad.to_string());
    let output = spec_lint(&["good.json", "bad.json"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "bad.json: /config/size: -1 is less than the minimum of 0\n"
    );
}

#[test]
fn spec_lint_reports_a_root_violation_with_a_slash_pointer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "d.json", r#"{"digest":"sha256:x","size":1}"#);
    let output = spec_lint(&["--media-type", DESCRIPTOR, "d.json"], tmp.path());
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    assert!(
        out.lines()
            .any(|line| line == "d.json: /: \"mediaType\" is a required property"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|line| line.starts_with("d.json: /digest: ")),
        "{out}"
    );
}

#[test]
fn spec_lint_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "m.json", &minimal_manifest().to_string());
    write(tmp.path(), "no-type.json", r#"{"schemaVersion":2}"#);
    for args in [
        vec![],
        vec!["--bogus", "m.json"],
        vec!["missing.json"],
        vec!["no-type.json"],
        vec![
            "--media-type",
            "application/vnd.oci.image.layer.v1.tar",
            "m.json",
        ],
        vec!["--media-type", "not a type", "m.json"],
    ] {
        let output = spec_lint(&args, tmp.path());
        assert_eq!(output.status.code(), Some(2), "spec-lint {args:?}");
        assert!(!output.stderr.is_empty(), "spec-lint {args:?} says why");
    }
}

#[test]
fn spec_lint_checks_only_json_syntax_for_a_json_type_without_schema() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write(tmp.path(), "ok.json", r#"{"anything": [1, 2]}"#);
    write(tmp.path(), "bad.json", r#"{"anything": [1, 2],}"#);
    let media_type = "application/vnd.cncf.helm.config.v1+json";
    let ok = spec_lint(&["--media-type", media_type, "ok.json"], tmp.path());
    assert_eq!(ok.status.code(), Some(0));
    let bad = spec_lint(&["--media-type", media_type, "bad.json"], tmp.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stdout(&bad).starts_with("bad.json: /: not JSON: trailing comma at line 1 column 21"),
        "{}",
        stdout(&bad)
    );
}

// ---- validate(): the tricky rules ----

fn violations(media_type: &str, doc: &Value) -> Vec<Violation> {
    match validate(media_type, doc.to_string().as_bytes()) {
        Ok(()) => Vec::new(),
        Err(ValidateError::Invalid(violations)) => violations,
        Err(other) => panic!("unexpected {other:?}"),
    }
}

fn pointers(media_type: &str, doc: &Value) -> Vec<String> {
    violations(media_type, doc)
        .into_iter()
        .map(|v| v.pointer)
        .collect()
}

fn empty_config_manifest() -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": EMPTY, "digest": SHA256_EMPTY, "size": 2},
        "layers": [{"mediaType": "application/vnd.example.sbom+json", "digest": SHA256_EMPTY, "size": 2}]
    })
}

#[test]
fn empty_config_without_artifact_type_is_invalid() {
    let found = violations(MANIFEST, &empty_config_manifest());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].pointer, "");
    assert!(found[0].message.contains("artifactType"), "{found:?}");
}

#[test]
fn empty_config_with_artifact_type_is_valid() {
    let mut doc = empty_config_manifest();
    doc["artifactType"] = json!("application/vnd.example.sbom");
    assert_eq!(violations(MANIFEST, &doc), vec![]);
}

#[test]
fn image_config_without_artifact_type_is_valid() {
    assert_eq!(violations(MANIFEST, &minimal_manifest()), vec![]);
}

fn descriptor_with_digest(digest: &str) -> Value {
    json!({"mediaType": "application/octet-stream", "digest": digest, "size": 0})
}

#[test]
fn sha512_digest_needs_exactly_128_lowercase_hex() {
    let hex128 = "ab".repeat(64);
    assert_eq!(
        pointers(
            DESCRIPTOR,
            &descriptor_with_digest(&format!("sha512:{hex128}"))
        ),
        Vec::<String>::new()
    );
    for bad in [
        format!("sha512:{}", &hex128[1..]),
        format!("sha512:{hex128}0"),
        format!("sha512:{}", hex128.to_uppercase()),
        format!("sha512:{}", "ab".repeat(32)),
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_digest(&bad)),
            vec!["/digest"],
            "{bad}"
        );
    }
}

#[test]
fn sha256_digest_needs_exactly_64_lowercase_hex() {
    assert_eq!(
        pointers(DESCRIPTOR, &descriptor_with_digest(SHA256_EMPTY)),
        Vec::<String>::new()
    );
    for bad in [
        &SHA256_EMPTY[..70],
        &SHA256_EMPTY.to_uppercase().replace("SHA256", "sha256"),
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_digest(bad)),
            vec!["/digest"],
            "{bad}"
        );
    }
}

#[test]
fn unregistered_digest_algorithms_follow_only_the_general_grammar() {
    for ok in [
        "blake3:AbC_-=",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8",
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_digest(ok)),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for bad in [
        "sha256",
        ":abc",
        "SHA256:abc",
        "sha256:",
        "sha256+-x:abc",
        "a:b/c",
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_digest(bad)),
            vec!["/digest"],
            "{bad}"
        );
    }
}

fn descriptor_with_media_type(media_type: &str) -> Value {
    json!({"mediaType": media_type, "digest": SHA256_EMPTY, "size": 2})
}

#[test]
fn media_type_type_and_subtype_are_each_1_to_127_restricted_chars() {
    let (a127, a128) = ("a".repeat(127), "a".repeat(128));
    for ok in [
        format!("{a127}/{a127}"),
        "application/vnd.example+json".to_owned(),
        "a/b".to_owned(),
        "x-foo/a!#$&^_.+-z".to_owned(),
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_media_type(&ok)),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for bad in [
        format!("{a128}/json"),
        format!("application/{a128}"),
        "application".to_owned(),
        "application/".to_owned(),
        "/json".to_owned(),
        ".application/json".to_owned(),
        "application/+json".to_owned(),
        "application/json; charset=utf-8".to_owned(),
        "application/json/x".to_owned(),
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_media_type(&bad)),
            vec!["/mediaType"],
            "{bad}"
        );
    }
}

#[test]
fn size_is_a_non_negative_int64() {
    let with_size = |size: Value| json!({"mediaType": "a/b", "digest": SHA256_EMPTY, "size": size});
    assert_eq!(
        pointers(DESCRIPTOR, &with_size(json!(9_223_372_036_854_775_807_u64))),
        Vec::<String>::new()
    );
    for bad in [
        json!(9_223_372_036_854_775_808_u64),
        json!(-1),
        json!(1.5),
        json!("2"),
    ] {
        assert_eq!(
            pointers(DESCRIPTOR, &with_size(bad.clone())),
            vec!["/size"],
            "{bad}"
        );
    }
}

#[test]
fn descriptor_data_must_be_padded_base64_and_urls_absolute_uris() {
    let mut doc = descriptor_with_media_type("a/b");
    doc["data"] = json!("e30=");
    doc["urls"] = json!(["https://mirror.example.com/blobs/x"]);
    assert_eq!(pointers(DESCRIPTOR, &doc), Vec::<String>::new());
    doc["data"] = json!("e30");
    doc["urls"] = json!(["not a uri"]);
    assert_eq!(pointers(DESCRIPTOR, &doc), vec!["/data", "/urls/0"]);
}

#[test]
fn unknown_fields_and_unknown_media_types_are_accepted() {
    let mut doc = minimal_manifest();
    doc["layers"] = json!([descriptor_with_media_type(
        "application/vnd.example.layer.v1.tar+unknown"
    )]);
    doc["layers"][0]["newField"] = json!(null);
    doc["futureField"] = json!({"anything": [1]});
    assert_eq!(violations(MANIFEST, &doc), vec![]);
}

#[test]
fn annotations_map_strings_to_strings() {
    let mut doc = minimal_manifest();
    doc["annotations"] = json!({"ok": "", "count": 3});
    assert_eq!(pointers(MANIFEST, &doc), vec!["/annotations/count"]);
}

#[test]
fn manifest_carrying_manifests_and_index_carrying_layers_are_rejected() {
    let mut manifest = minimal_manifest();
    manifest["manifests"] = json!([]);
    assert_eq!(pointers(MANIFEST, &manifest), vec!["/manifests"]);
    let index = json!({"schemaVersion": 2, "manifests": [], "layers": [], "config": {}});
    let mut found = pointers(INDEX, &index);
    found.sort();
    assert_eq!(found, vec!["/config", "/layers"]);
}

#[test]
fn document_whose_media_type_field_disagrees_is_invalid() {
    assert_eq!(
        pointers(
            INDEX,
            &json!({"schemaVersion": 2, "mediaType": MANIFEST, "manifests": []})
        ),
        vec!["/mediaType"]
    );
}

#[test]
fn index_platform_is_optional_but_needs_architecture_and_os() {
    let mut entry = descriptor_with_media_type(MANIFEST);
    let index = |entry: &Value| json!({"schemaVersion": 2, "manifests": [entry]});
    assert_eq!(pointers(INDEX, &index(&entry)), Vec::<String>::new());
    entry["platform"] = json!({"os": "linux"});
    assert_eq!(
        pointers(INDEX, &index(&entry)),
        vec!["/manifests/0/platform"]
    );
}

#[test]
fn every_violation_is_reported_not_just_the_first() {
    let doc = json!({
        "schemaVersion": 3,
        "config": {"mediaType": "bad", "digest": "sha256:00", "size": -1},
        "layers": [{"size": "1"}]
    });
    let mut found = pointers(MANIFEST, &doc);
    found.sort();
    found.dedup();
    assert_eq!(
        found,
        vec![
            "/config/digest",
            "/config/mediaType",
            "/config/size",
            "/layers/0",
            "/layers/0/size",
            "/schemaVersion"
        ]
    );
}

#[test]
fn strict_json_rejects_trailing_commas_and_non_utf8_with_their_position() {
    let trailing = validate(MANIFEST, b"{\n  \"schemaVersion\": 2,\n}");
    let Err(ValidateError::Invalid(found)) = trailing else {
        panic!("{trailing:?}")
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pointer, "");
    assert!(found[0].message.contains("line 3 column 1"), "{found:?}");

    let latin1 = validate(MANIFEST, b"{\"annotations\": {\"a\": \"caf\xe9\"}}");
    let Err(ValidateError::Invalid(found)) = latin1 else {
        panic!("{latin1:?}")
    };
    assert_eq!(found[0].message, "not UTF-8: invalid byte at offset 26");
}

#[test]
fn strict_json_rejects_comments_and_a_byte_order_mark() {
    let manifest = minimal_manifest().to_string();
    assert_eq!(validate(MANIFEST, manifest.as_bytes()), Ok(()));
    for bad in [
        format!("\u{feff}{manifest}"),
        format!("// a comment\n{manifest}"),
        format!("{manifest} {{}}"),
    ] {
        let result = validate(MANIFEST, bad.as_bytes());
        assert!(
            matches!(&result, Err(ValidateError::Invalid(found)) if found.len() == 1 && found[0].message.starts_with("not JSON: ")),
            "{bad:?}: {result:?}"
        );
    }
}

#[test]
fn duplicate_keys_are_accepted_with_the_last_value() {
    let doc = br#"{"schemaVersion": 1, "schemaVersion": 2, "config": {"mediaType": "a/b", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}, "layers": []}"#;
    assert_eq!(validate(MANIFEST, doc), Ok(()));
}

#[test]
fn content_type_parameters_and_case_are_ignored_in_lookup() {
    let content_type = "Application/VND.OCI.Image.Manifest.v1+JSON; charset=utf-8";
    assert_eq!(
        schema_for_media_type(content_type),
        Some("oci-image-manifest.schema.json")
    );
    let manifest = minimal_manifest().to_string();
    assert_eq!(validate(content_type, manifest.as_bytes()), Ok(()));
    assert_eq!(
        validate(content_type, b"{}").map_err(|err| matches!(err, ValidateError::Invalid(_))),
        Err(true)
    );
}

#[test]
fn media_types_without_a_schema_are_unknown() {
    for media_type in [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.example+json",
        EMPTY,
    ] {
        assert_eq!(
            validate(media_type, b"{}"),
            Err(ValidateError::UnknownMediaType(media_type.to_owned()))
        );
    }
}

#[test]
fn signed_schema1_needs_a_signature_and_unsigned_does_not() {
    let unsigned = json!({
        "schemaVersion": 1, "name": "library/x", "tag": "latest", "architecture": "amd64",
        "fsLayers": [{"blobSum": SHA256_EMPTY}],
        "history": [{"v1Compatibility": "{}"}]
    });
    assert_eq!(pointers(SCHEMA1, &unsigned), Vec::<String>::new());
    assert_eq!(pointers(SCHEMA1_SIGNED, &unsigned), vec![""]);
    let mut signed = unsigned.clone();
    signed["signatures"] =
        json!([{"header": {"alg": "ES256", "jwk": {}}, "signature": "c2ln", "protected": "cHJv"}]);
    assert_eq!(pointers(SCHEMA1_SIGNED, &signed), Vec::<String>::new());
    signed["signatures"] = json!([]);
    assert_eq!(pointers(SCHEMA1_SIGNED, &signed), vec!["/signatures"]);
}

#[test]
fn oci_config_env_entries_need_an_equals_sign_but_may_be_null() {
    let mut config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Env": null, "Cmd": null, "Entrypoint": null}
    });
    assert_eq!(pointers(OCI_CONFIG, &config), Vec::<String>::new());
    config["config"]["Env"] = json!(["PATH=/bin", "EMPTY=", "NOVALUE"]);
    assert_eq!(pointers(OCI_CONFIG, &config), vec!["/config/Env/2"]);
}

#[test]
fn docker_config_accepts_the_legacy_windows_rootfs_type_but_oci_does_not() {
    let config = json!({
        "architecture": "amd64", "os": "windows",
        "rootfs": {"type": "layers+base", "base_layer": "x", "diff_ids": [SHA256_EMPTY]}
    });
    let docker = "application/vnd.docker.container.image.v1+json";
    assert_eq!(pointers(docker, &config), Vec::<String>::new());
    assert_eq!(pointers(OCI_CONFIG, &config), vec!["/rootfs/type"]);
    let mut bogus = config.clone();
    bogus["rootfs"]["type"] = json!("tarballs");
    assert_eq!(pointers(docker, &bogus), vec!["/rootfs/type"]);
}

// ---- validate_against(): protocol bodies ----

#[test]
fn error_envelope_accepts_only_the_spec_codes() {
    let ok = json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "no such manifest", "detail": {"tag": "x"}}]});
    assert_eq!(validate_against("error-envelope.schema.json", &ok), Ok(()));
    let bad = json!({"errors": [{"code": "NOT_A_CODE"}]});
    let found = validate_against("error-envelope.schema.json", &bad).expect_err("unknown code");
    assert_eq!(found[0].pointer, "/errors/0/code");
    assert!(validate_against("error-envelope.schema.json", &json!({"errors": []})).is_err());
}

#[test]
fn tag_list_and_catalog_follow_the_name_and_tag_grammar() {
    let ok = json!({"name": "library/alpine", "tags": ["3.19", "latest", "_x"]});
    assert_eq!(validate_against("tag-list.schema.json", &ok), Ok(()));
    let bad = json!({"name": "Library/Alpine", "tags": [".hidden"]});
    let found: Vec<String> = validate_against("tag-list.schema.json", &bad)
        .expect_err("bad grammar")
        .into_iter()
        .map(|v| v.pointer)
        .collect();
    assert_eq!(found, vec!["/name", "/tags/0"]);
    // Distribution 2.8 answers so once the last tagged manifest is deleted.
    let untagged = json!({"name": "library/alpine", "tags": null});
    assert_eq!(validate_against("tag-list.schema.json", &untagged), Ok(()));
    let long_name = "a".repeat(256);
    assert!(
        validate_against("catalog.schema.json", &json!({"repositories": [long_name]})).is_err()
    );
    assert_eq!(
        validate_against(
            "catalog.schema.json",
            &json!({"repositories": ["a/b-c", "d__e"]})
        ),
        Ok(())
    );
}

#[test]
fn referrers_response_needs_media_type_and_artifact_type_on_every_entry() {
    let entry = descriptor_with_media_type(MANIFEST);
    let doc = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]});
    let found =
        validate_against("referrers-response.schema.json", &doc).expect_err("no artifactType");
    assert_eq!(
        found.iter().map(|v| v.pointer.as_str()).collect::<Vec<_>>(),
        vec!["/manifests/0"]
    );
    let mut doc = doc;
    doc["manifests"][0]["artifactType"] = json!("application/vnd.example.sbom");
    assert_eq!(
        validate_against("referrers-response.schema.json", &doc),
        Ok(())
    );
}

#[test]
fn validate_against_an_unknown_schema_file_is_an_error() {
    assert!(validate_against("nope.schema.json", &json!({})).is_err());
}

// ---- the embedded table and files ----

#[test]
fn embedded_schema_files_match_the_schemas_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("read spec/schemas")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".schema.json"))
        .collect();
    let embedded: BTreeSet<String> = schema_files()
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    assert_eq!(on_disk, embedded);
    for (name, text) in schema_files() {
        let disk = std::fs::read_to_string(dir.join(name)).expect("read schema");
        assert_eq!(&disk, text, "{name}");
        let schema: Value = serde_json::from_str(text).expect("schema is JSON");
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "{name}"
        );
        assert_eq!(
            schema["$id"],
            format!("{}{name}", schemas::SCHEMA_BASE_URI),
            "{name}"
        );
    }
}

#[test]
fn media_type_table_covers_the_oci_and_docker_types() {
    let table = media_types();
    let types: BTreeSet<&str> = table.iter().map(|row| row.media_type.as_str()).collect();
    assert_eq!(types.len(), table.len(), "duplicate media types");
    for (media_type, schema) in [
        (DESCRIPTOR, Some("descriptor.schema.json")),
        (MANIFEST, Some("oci-image-manifest.schema.json")),
        (INDEX, Some("oci-image-index.schema.json")),
        (OCI_CONFIG, Some("oci-image-config.schema.json")),
        (
            "application/vnd.oci.layout.header.v1+json",
            Some("oci-layout.schema.json"),
        ),
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            Some("docker-manifest-v2s2.schema.json"),
        ),
        (
            "application/vnd.docker.distribution.manifest.list.v2+json",
            Some("docker-manifest-list.schema.json"),
        ),
        (
            "application/vnd.docker.container.image.v1+json",
            Some("docker-image-config.schema.json"),
        ),
        (SCHEMA1, Some("docker-manifest-v2s1.schema.json")),
        (SCHEMA1_SIGNED, Some("docker-manifest-v2s1.schema.json")),
        (EMPTY, None),
        ("application/vnd.oci.image.layer.v1.tar+zstd", None),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            None,
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            None,
        ),
    ] {
        assert!(types.contains(media_type), "{media_type} missing");
        assert_eq!(schema_for_media_type(media_type), schema, "{media_type}");
    }
    for kind in [
        "manifest",
        "index",
        "config",
        "layer",
        "descriptor",
        "error",
        "layout",
        "empty",
    ] {
        assert!(table.iter().any(|row| row.kind == kind), "no {kind} row");
    }
    // Every table media type is itself a valid media type.
    for row in table {
        assert_eq!(
            pointers(DESCRIPTOR, &descriptor_with_media_type(&row.media_type)),
            Vec::<String>::new()
        );
    }
}
