//! The generated schema types read every valid real-world document of their kind, and a
//! round trip through them loses no member (only `null`s, which read as `None`).

use quayside_spec::types::{
    Descriptor, DockerImageConfig, DockerManifestList, DockerManifestV2s1, DockerManifestV2s2,
    OciImageConfig, OciImageIndex, OciImageManifest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors"))
}

/// The files below `valid/<kind>/`, sorted.
fn valid_files(kind: &str) -> Vec<PathBuf> {
    let dir = vectors().join("valid").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no vectors in {}", dir.display());
    files
}

/// `value` without object members whose value is `null` (at any depth).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Every valid vector of `kinds` parses as `T` and serialises back to the same members.
fn check_kind<T: DeserializeOwned + Serialize>(kinds: &[&str]) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for kind in kinds {
        for path in valid_files(kind) {
            count += 1;
            if let Err(why) = round_trip::<T>(&path) {
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    count
}

fn round_trip<T: DeserializeOwned + Serialize>(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let original: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let typed: T = serde_json::from_slice(&bytes).map_err(|e| format!("does not parse: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if without_nulls(&back) != without_nulls(&original) {
        return Err(format!("round trip changed the document:\n{back:#}"));
    }
    Ok(())
}

#[test]
fn valid_descriptors_parse_as_descriptor() {
    assert!(check_kind::<Descriptor>(&["oci-descriptor"]) >= 10);
}

#[test]
fn valid_oci_manifests_and_artifacts_parse_as_oci_image_manifest() {
    assert!(check_kind::<OciImageManifest>(&["oci-image-manifest", "oci-artifact-manifest"]) >= 30);
}

#[test]
fn valid_oci_indexes_parse_as_oci_image_index() {
    assert!(check_kind::<OciImageIndex>(&["oci-image-index"]) >= 30);
}

#[test]
fn valid_oci_configs_parse_as_oci_image_config() {
    assert!(check_kind::<OciImageConfig>(&["oci-image-config"]) >= 10);
}

#[test]
fn valid_docker_manifests_parse_as_docker_manifest_v2s2() {
    assert!(check_kind::<DockerManifestV2s2>(&["docker-v2s2-manifest"]) >= 10);
}

#[test]
fn valid_docker_manifest_lists_parse_as_docker_manifest_list() {
    assert!(check_kind::<DockerManifestList>(&["docker-manifest-list"]) >= 5);
}

#[test]
fn valid_docker_configs_parse_as_docker_image_config() {
    assert!(check_kind::<DockerImageConfig>(&["docker-image-config"]) >= 5);
}

#[test]
fn valid_schema1_manifests_parse_as_docker_manifest_v2s1() {
    assert!(check_kind::<DockerManifestV2s1>(&["docker-v2s1-signed", "docker-v2s1-unsigned"]) >= 5);
}

#[test]
fn manifest_members_are_reachable_through_the_types() {
    let path = valid_files("oci-artifact-manifest")
        .into_iter()
        .find(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            text.contains("\"subject\"")
        })
        .expect("an artifact vector with a subject");
    let bytes = std::fs::read(&path).expect("read vector");
    let raw: Value = serde_json::from_slice(&bytes).expect("JSON");
    let manifest: OciImageManifest = serde_json::from_slice(&bytes).expect("parses");
    let subject = manifest.subject.expect("subject");
    assert_eq!(
        Some(subject.digest.as_str()),
        raw["subject"]["digest"].as_str()
    );
    assert_eq!(
        manifest.layers.len(),
        raw["layers"].as_array().map_or(0, Vec::len)
    );
    assert_eq!(Some(manifest.config.size), raw["config"]["size"].as_i64());
}

#[test]
fn a_manifest_without_config_does_not_parse() {
    let err = serde_json::from_str::<OciImageManifest>(r#"{"schemaVersion":2,"layers":[]}"#)
        .expect_err("config is required");
    assert!(err.to_string().contains("config"), "{err}");
}

#[test]
fn root_types_name_their_schema_and_the_media_types_that_use_it() {
    assert_eq!(OciImageManifest::SCHEMA, "oci-image-manifest.schema.json");
    assert_eq!(
        OciImageManifest::MEDIA_TYPES,
        &["application/vnd.oci.image.manifest.v1+json"]
    );
    let roots: [(&str, &[&str]); 8] = [
        (Descriptor::SCHEMA, Descriptor::MEDIA_TYPES),
        (OciImageManifest::SCHEMA, OciImageManifest::MEDIA_TYPES),
        (OciImageIndex::SCHEMA, OciImageIndex::MEDIA_TYPES),
        (OciImageConfig::SCHEMA, OciImageConfig::MEDIA_TYPES),
        (DockerManifestV2s2::SCHEMA, DockerManifestV2s2::MEDIA_TYPES),
        (DockerManifestList::SCHEMA, DockerManifestList::MEDIA_TYPES),
        (DockerImageConfig::SCHEMA, DockerImageConfig::MEDIA_TYPES),
        (DockerManifestV2s1::SCHEMA, DockerManifestV2s1::MEDIA_TYPES),
    ];
    for (schema, media_types) in roots {
        assert!(!media_types.is_empty(), "{schema} has no media type");
        for media_type in media_types {
            assert_eq!(
                quayside_spec::schemas::schema_for_media_type(media_type),
                Some(schema),
                "{media_type}"
            );
        }
    }
    // Signed and unsigned schema 1 share one schema, so one type.
    assert_eq!(DockerManifestV2s1::MEDIA_TYPES.len(), 2);
}

/// The member names a schema declares at `pointer` (an object schema's `properties`).
fn declared(schema_file: &str, pointer: &str) -> Vec<String> {
    let text = quayside_spec::schemas::schema_files()
        .iter()
        .find(|(name, _)| *name == schema_file)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("no embedded {schema_file}"));
    let schema: Value = serde_json::from_str(text).expect("schema is JSON");
    schema
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{schema_file}{pointer} is not an object"))
        .keys()
        .cloned()
        .collect()
}

/// A member the schema names must land in its field: finding it in `extra` means the
/// generated serde name is wrong, which a round trip alone would not notice.
fn assert_none_in_extra(extra: &serde_json::Map<String, Value>, names: &[String], at: &str) {
    let misplaced: Vec<&String> = names.iter().filter(|n| extra.contains_key(*n)).collect();
    assert!(
        misplaced.is_empty(),
        "{at}: {misplaced:?} fell into `extra`"
    );
}

#[test]
fn declared_members_of_real_documents_land_in_their_fields() {
    let descriptor = declared("descriptor.schema.json", "/properties");
    let platform = declared("defs.schema.json", "/definitions/platform/properties");
    let check_descriptor = |d: &Descriptor, at: &str| {
        assert_none_in_extra(&d.extra, &descriptor, at);
        if let Some(p) = &d.platform {
            assert_none_in_extra(&p.extra, &platform, at);
        }
    };
    for path in valid_files("oci-image-manifest") {
        let at = path.display().to_string();
        let m: OciImageManifest =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("parses");
        let names = declared("oci-image-manifest.schema.json", "/properties");
        assert_none_in_extra(&m.extra, &names, &at);
        check_descriptor(&m.config, &at);
        m.layers.iter().for_each(|l| check_descriptor(l, &at));
    }
    for path in valid_files("oci-image-index") {
        let at = path.display().to_string();
        let ix: OciImageIndex =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("parses");
        let names = declared("oci-image-index.schema.json", "/properties");
        assert_none_in_extra(&ix.extra, &names, &at);
        ix.manifests.iter().for_each(|d| check_descriptor(d, &at));
    }
    let mut runtime = declared(
        "oci-image-config.schema.json",
        "/definitions/runtimeConfig/properties",
    );
    runtime.push("Env".to_string());
    let mut configs_with_env = 0;
    for path in valid_files("oci-image-config") {
        let at = path.display().to_string();
        let c: OciImageConfig =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("parses");
        let names = declared("oci-image-config.schema.json", "/properties");
        assert_none_in_extra(&c.extra, &names, &at);
        if let Some(run) = &c.config {
            assert_none_in_extra(&run.extra, &runtime, &at);
            configs_with_env += usize::from(run.env.is_some());
        }
    }
    assert!(configs_with_env > 0, "no vector exercises config.Env");
    for path in valid_files("docker-image-config") {
        let at = path.display().to_string();
        let c: DockerImageConfig =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("parses");
        let names = declared("docker-image-config.schema.json", "/properties");
        assert_none_in_extra(&c.extra, &names, &at);
        if let Some(run) = &c.config {
            assert_none_in_extra(&run.extra, &runtime, &at);
        }
        if let Some(run) = &c.container_config {
            assert_none_in_extra(&run.extra, &runtime, &at);
        }
    }
}
