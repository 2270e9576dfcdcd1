//! The JSON Schemas in `spec/schemas/` and validation of documents against them.
//!
//! The schema files and `spec/media-types.json` are embedded at build time, so validation
//! needs neither the file system nor the network. Cross-file `$ref`s resolve against the
//! embedded copies through their `$id`s (`https://quayside.dev/schemas/<file>`).

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use jsonschema::{Registry, Resource, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Base of every schema's `$id`; a file's `$id` is this plus its file name.
pub const SCHEMA_BASE_URI: &str = "https://quayside.dev/schemas/";

/// Every schema file, by file name. Keep in step with `spec/schemas/` (a test checks).
static SCHEMA_FILES: &[(&str, &str)] = &[
    (
        "defs.schema.json",
        include_str!("../schemas/defs.schema.json"),
    ),
    (
        "descriptor.schema.json",
        include_str!("../schemas/descriptor.schema.json"),
    ),
    (
        "oci-image-manifest.schema.json",
        include_str!("../schemas/oci-image-manifest.schema.json"),
    ),
    (
        "oci-image-index.schema.json",
        include_str!("../schemas/oci-image-index.schema.json"),
    ),
    (
        "oci-image-config.schema.json",
        include_str!("../schemas/oci-image-config.schema.json"),
    ),
    (
        "oci-layout.schema.json",
        include_str!("../schemas/oci-layout.schema.json"),
    ),
    (
        "docker-manifest-v2s2.schema.json",
        include_str!("../schemas/docker-manifest-v2s2.schema.json"),
    ),
    (
        "docker-manifest-list.schema.json",
        include_str!("../schemas/docker-manifest-list.schema.json"),
    ),
    (
        "docker-image-config.schema.json",
        include_str!("../schemas/docker-image-config.schema.json"),
    ),
    (
        "docker-manifest-v2s1.schema.json",
        include_str!("../schemas/docker-manifest-v2s1.schema.json"),
    ),
    (
        "error-envelope.schema.json",
        include_str!("../schemas/error-envelope.schema.json"),
    ),
    (
        "tag-list.schema.json",
        include_str!("../schemas/tag-list.schema.json"),
    ),
    (
        "catalog.schema.json",
        include_str!("../schemas/catalog.schema.json"),
    ),
    (
        "referrers-response.schema.json",
        include_str!("../schemas/referrers-response.schema.json"),
    ),
];

const MEDIA_TYPES_JSON: &str = include_str!("../media-types.json");

/// One row of `spec/media-types.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaType {
    /// The media type, e.g. `application/vnd.oci.image.manifest.v1+json`.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Schema file that validates documents of this type; `None` for opaque blobs.
    pub schema: Option<String>,
    /// JSON pointer into `schema` when only part of the file applies (signed schema 1
    /// manifests use `/definitions/signed`); `None` means the whole file.
    #[serde(default)]
    pub pointer: Option<String>,
    /// Role of the content: `manifest`, `index`, `config`, `layer`, `descriptor`, ...
    pub kind: String,
    /// One line for humans.
    pub description: String,
}

/// One way a document breaks its schema. Serialises as `{"pointer","message"}`, ready for
/// an error envelope's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the document (`""` for the whole document).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Violation {
    /// `/pointer: message`; the document root is shown as `/` so every line reads alike.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Why [`validate`] refused a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// No schema is known for this media type (opaque blobs, vendor artifacts).
    #[error("no schema for media type {0:?}")]
    UnknownMediaType(String),
    /// The document is not strict JSON or breaks its schema: every violation found.
    #[error("{} violation(s), first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<Violation>),
}

/// (file name, embedded text) of every schema, for codegen to bundle.
pub fn schema_files() -> &'static [(&'static str, &'static str)] {
    SCHEMA_FILES
}

/// The media type table of `spec/media-types.json`.
pub fn media_types() -> &'static [MediaType] {
    static TABLE: OnceLock<Vec<MediaType>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Embedded at build time and checked by the crate's tests, so failure is a build bug.
        serde_json::from_str(MEDIA_TYPES_JSON).expect("spec/media-types.json is a valid table")
    })
}

/// Schema file name for a media type (parameters and case ignored), if documents of that
/// type have one.
pub fn schema_for_media_type(media_type: &str) -> Option<&'static str> {
    media_type_row(media_type).and_then(|row| row.schema.as_deref())
}

/// Looks a media type up as HTTP sends it: parameters (`; charset=utf-8`) ignored and
/// case-insensitive, as RFC 6838 names are.
fn media_type_row(media_type: &str) -> Option<&'static MediaType> {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    media_types()
        .iter()
        .find(|row| row.media_type.eq_ignore_ascii_case(essence))
}

/// Parses strict JSON (RFC 8259, UTF-8): no trailing commas, comments or invalid UTF-8.
/// Duplicate keys are accepted, the last one winning, as serde does.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, Violation> {
    let text = std::str::from_utf8(bytes).map_err(|err| Violation {
        pointer: String::new(),
        message: format!("not UTF-8: invalid byte at offset {}", err.valid_up_to()),
    })?;
    serde_json::from_str(text).map_err(|err| Violation {
        pointer: String::new(),
        message: format!("not JSON: {err}"),
    })
}

/// Validates `bytes` as a document of `media_type` (a `Content-Type` value will do:
/// parameters and case are ignored), reporting every violation.
pub fn validate(media_type: &str, bytes: &[u8]) -> Result<(), ValidateError> {
    let row = media_type_row(media_type)
        .filter(|row| row.schema.is_some())
        .ok_or_else(|| ValidateError::UnknownMediaType(media_type.to_owned()))?;
    let value = parse_strict(bytes).map_err(|violation| ValidateError::Invalid(vec![violation]))?;
    let key = validator_key(
        row.schema.as_deref().unwrap_or_default(),
        row.pointer.as_deref(),
    );
    check(&key, &value).map_err(ValidateError::Invalid)
}

/// Validates an already-parsed value against one schema file (e.g. an OpenAPI example).
pub fn validate_against(schema_file: &str, value: &Value) -> Result<(), Vec<Violation>> {
    check(&validator_key(schema_file, None), value)
}

fn validator_key(file: &str, pointer: Option<&str>) -> String {
    match pointer {
        Some(pointer) => format!("{file}#{pointer}"),
        None => file.to_owned(),
    }
}

fn check(key: &str, value: &Value) -> Result<(), Vec<Violation>> {
    let validator = validators().get(key).ok_or_else(|| {
        vec![Violation {
            pointer: String::new(),
            message: format!("no schema named {key:?}"),
        }]
    })?;
    let violations: Vec<Violation> = validator
        .iter_errors(value)
        .map(|err| Violation {
            pointer: err.instance_path().as_str().to_owned(),
            message: err.to_string(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// Compiled validators, by schema file name and by `file#pointer` for partial schemas.
fn validators() -> &'static HashMap<String, Validator> {
    static VALIDATORS: OnceLock<HashMap<String, Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        // Embedded schemas are tested to compile, so a failure here is a build bug.
        compile_all().unwrap_or_else(|err| panic!("embedded JSON Schemas do not compile: {err}"))
    })
}

fn compile_all() -> Result<HashMap<String, Validator>, String> {
    let mut resources = Vec::with_capacity(SCHEMA_FILES.len());
    for (file, text) in SCHEMA_FILES {
        let value: Value = serde_json::from_str(text).map_err(|err| format!("{file}: {err}"))?;
        resources.push((
            format!("{SCHEMA_BASE_URI}{file}"),
            Resource::from_contents(value),
        ));
    }
    let registry = Registry::new()
        .extend(resources)
        .and_then(|builder| builder.prepare())
        .map_err(|err| err.to_string())?;
    let compile = |schema: Value| {
        jsonschema::draft7::options()
            .with_registry(&registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|err| err.to_string())
    };
    let mut out = HashMap::new();
    for (file, _) in SCHEMA_FILES {
        let schema = serde_json::json!({ "$ref": format!("{SCHEMA_BASE_URI}{file}") });
        out.insert(
            (*file).to_owned(),
            compile(schema).map_err(|err| format!("{file}: {err}"))?,
        );
    }
    for row in media_types() {
        if let (Some(file), Some(pointer)) = (&row.schema, &row.pointer) {
            let schema =
                serde_json::json!({ "$ref": format!("{SCHEMA_BASE_URI}{file}#{pointer}") });
            let key = validator_key(file, Some(pointer));
            out.insert(
                key.clone(),
                compile(schema).map_err(|err| format!("{key}: {err}"))?,
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_compiles_and_every_table_schema_exists() {
        assert_eq!(validators().len(), SCHEMA_FILES.len() + 1);
        for row in media_types() {
            if let Some(file) = &row.schema {
                assert!(
                    SCHEMA_FILES.iter().any(|(name, _)| name == file),
                    "{file} not embedded"
                );
            }
        }
    }

    #[test]
    fn violation_serialises_as_pointer_and_message() {
        let violation = Violation {
            pointer: "/size".into(),
            message: "-1 is less than the minimum of 0".into(),
        };
        assert_eq!(
            serde_json::to_value(&violation).ok(),
            Some(
                serde_json::json!({"pointer": "/size", "message": "-1 is less than the minimum of 0"})
            )
        );
    }

    #[test]
    fn root_violation_displays_as_slash() {
        let violation = Violation {
            pointer: String::new(),
            message: "boom".into(),
        };
        assert_eq!(violation.to_string(), "/: boom");
    }
}
