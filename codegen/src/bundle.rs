//! The self-contained spec: the canonical JSON Schemas hoisted into the OpenAPI components
//! (OAS 3.0 dialect), written as `spec/openapi.bundled.yaml` for tools that need one document.
//!
//! `spec/schemas/*.json` stay draft-07 (they validate documents at run time); OpenAPI 3.0
//! speaks a dialect of its own, so every schema is converted on the way in:
//!
//! * `schemas/<file>` and `#/definitions/<x>` refs become `#/components/schemas/<PascalName>`
//!   (see [`SchemaNames`] for the naming rule);
//! * `const` becomes a one-value `enum`, `type: [T, "null"]` becomes `nullable: true`,
//!   `examples` becomes `example`, numeric `exclusiveMinimum`/`exclusiveMaximum` become
//!   their OAS 3.0 boolean form, the boolean schemas `true`/`false` become `{}`/`not: {}`;
//! * `$schema`, `$id`, `$comment` and `definitions` go (the definitions are hoisted);
//! * rules OAS 3.0 cannot state (`if`/`then`/`else`, `contains`, …) are removed and quoted
//!   in the schema's `description`, so a reader of the bundle still sees every rule.
//!
//! Anything else unknown fails generation rather than being dropped.

use crate::{GeneratedFile, SpecInput};
use anyhow::{anyhow, bail, Context, Result};
use heck::ToUpperCamelCase;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Where the bundle is written, relative to the workspace root.
pub const BUNDLED_PATH: &str = "spec/openapi.bundled.yaml";

/// The prefix of an external schema ref inside `spec/openapi.yaml`.
const SCHEMAS_DIR: &str = "schemas/";

/// The canonical `$id` prefix of our schemas; refs may use it instead of a relative path.
const ID_PREFIX: &str = "https://quayside.dev/schemas/";

/// Schema Object keywords OAS 3.0 shares with JSON Schema, copied as they are.
const PASS_THROUGH: &[&str] = &[
    "title",
    "description",
    "multipleOf",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "enum",
    "format",
    "default",
    "readOnly",
    "writeOnly",
    "example",
    "deprecated",
    "nullable",
    "discriminator",
    "xml",
    "externalDocs",
];

/// JSON Schema keywords with no OAS 3.0 equivalent: removed and quoted in `description`.
const UNSUPPORTED: &[&str] = &[
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "patternProperties",
    "dependencies",
    "additionalItems",
    "contentMediaType",
    "contentEncoding",
];

/// Annotations that mean nothing once the schema lives inside the OpenAPI document.
const DROPPED: &[&str] = &["$schema", "$id", "$comment", "definitions"];

/// `spec/openapi.yaml` with every schema in `spec/schemas/` hoisted into
/// `components/schemas`, in the OAS 3.0 dialect. Shared by the bundle file and the client
/// generator, so both see the same document.
pub fn bundled(spec: &SpecInput) -> Result<Value> {
    let mut doc = spec.openapi.clone();
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.0.") {
        bail!("spec/openapi.yaml declares openapi {version:?}; the bundle is OAS 3.0.x");
    }
    let handwritten: Vec<String> = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let names = SchemaNames::new(&spec.schemas, &handwritten)?;

    rewrite_external_refs(&mut doc, &names, "spec/openapi.yaml")?;

    let mut hoisted = Map::new();
    for (file, schema) in &spec.schemas {
        if let Some(name) = names.roots.get(file) {
            let converted = convert(schema, file, &names)
                .with_context(|| format!("converting spec/schemas/{file}"))?;
            hoisted.insert(name.clone(), converted);
        }
        if let Some(defs) = schema.get("definitions").and_then(Value::as_object) {
            for (def, body) in defs {
                let name = names.definition(file, def)?;
                let converted = convert(body, file, &names).with_context(|| {
                    format!("converting spec/schemas/{file}#/definitions/{def}")
                })?;
                hoisted.insert(name.to_string(), converted);
            }
        }
    }

    let root = doc
        .as_object_mut()
        .context("spec/openapi.yaml is not a mapping")?;
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .context("components is not a mapping")?;
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .context("components/schemas is not a mapping")?;
    schemas.extend(hoisted);

    let dangling = dangling_refs(&doc);
    if !dangling.is_empty() {
        bail!(
            "the bundle has refs that point nowhere: {}",
            dangling.join(", ")
        );
    }
    Ok(doc)
}

/// The files this generator owns: the bundle as YAML.
pub fn generate(spec: &SpecInput) -> Result<Vec<GeneratedFile>> {
    let doc = bundled(spec)?;
    let yaml = serde_yaml::to_string(&doc).context("serialising the bundle")?;
    Ok(vec![GeneratedFile::yaml(
        BUNDLED_PATH,
        &yaml,
        "spec/openapi.yaml and spec/schemas/",
    )])
}

/// Component names of the hoisted schemas.
///
/// A file's root schema is named after the file (`oci-image-manifest.schema.json` →
/// `OciImageManifest`); a definition is named file + definition
/// (`docker-manifest-v2s2.schema.json#/definitions/descriptor` →
/// `DockerManifestV2s2Descriptor`), except in `defs.schema.json`, whose definitions keep
/// their own name (`Platform`) unless `openapi.yaml` already has a component of that name
/// (then `DefsDigest`). A file holding only definitions gets no root component.
#[derive(Debug, Default)]
pub struct SchemaNames {
    roots: BTreeMap<String, String>,
    definitions: BTreeMap<(String, String), String>,
}

impl SchemaNames {
    fn new(schemas: &BTreeMap<String, Value>, handwritten: &[String]) -> Result<Self> {
        let mut names = Self::default();
        let mut taken: BTreeMap<String, String> = handwritten
            .iter()
            .map(|n| (n.clone(), "spec/openapi.yaml".to_string()))
            .collect();
        let mut claim = |name: &str, owner: String| -> Result<()> {
            if let Some(previous) = taken.insert(name.to_string(), owner.clone()) {
                bail!("component name {name} is claimed by both {previous} and {owner}");
            }
            Ok(())
        };
        for (file, schema) in schemas {
            let base = file_base_name(file);
            if has_root_schema(schema) {
                claim(&base, file.clone())?;
                names.roots.insert(file.clone(), base.clone());
            }
            let Some(defs) = schema.get("definitions").and_then(Value::as_object) else {
                continue;
            };
            for def in defs.keys() {
                let own = def.to_upper_camel_case();
                let name = if file == "defs.schema.json" && !handwritten.contains(&own) {
                    own
                } else {
                    format!("{base}{own}")
                };
                claim(&name, format!("{file}#/definitions/{def}"))?;
                names.definitions.insert((file.clone(), def.clone()), name);
            }
        }
        Ok(names)
    }

    /// The component name of `file`'s root schema.
    pub fn root(&self, file: &str) -> Result<&str> {
        self.roots
            .get(file)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("spec/schemas/{file} does not exist or holds only definitions"))
    }

    /// The component name of `file#/definitions/def`.
    pub fn definition(&self, file: &str, def: &str) -> Result<&str> {
        self.definitions
            .get(&(file.to_string(), def.to_string()))
            .map(String::as_str)
            .ok_or_else(|| anyhow!("spec/schemas/{file} has no definition {def:?}"))
    }

    /// Resolves a JSON Schema `$ref` written inside `from` (a schema file name) to a
    /// component ref.
    fn resolve(&self, reference: &str, from: &str) -> Result<String> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let file = file.strip_prefix(ID_PREFIX).unwrap_or(file);
        let file = file.strip_prefix("./").unwrap_or(file);
        let file = if file.is_empty() { from } else { file };
        let name = match fragment {
            "" | "/" => self.root(file)?,
            _ => match fragment.strip_prefix("/definitions/") {
                Some(def) if !def.contains('/') => self.definition(file, def)?,
                _ => bail!("unsupported ref {reference:?} in {from}: only whole files and #/definitions/<name>"),
            },
        };
        Ok(format!("#/components/schemas/{name}"))
    }
}

/// `oci-image-manifest.schema.json` → `OciImageManifest`.
fn file_base_name(file: &str) -> String {
    let stem = file.strip_suffix(".json").unwrap_or(file);
    let stem = stem.strip_suffix(".schema").unwrap_or(stem);
    stem.to_upper_camel_case()
}

/// Whether a schema file says anything besides metadata and definitions.
fn has_root_schema(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map
            .keys()
            .any(|k| !DROPPED.contains(&k.as_str()) && k != "title" && k != "description"),
        _ => true,
    }
}

/// Replaces every `schemas/<file>` ref in the OpenAPI document with its component ref.
fn rewrite_external_refs(value: &mut Value, names: &SchemaNames, at: &str) -> Result<()> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref") {
                if !reference.starts_with('#') {
                    let relative = reference.strip_prefix(SCHEMAS_DIR).ok_or_else(|| {
                        anyhow!("{at}: external ref {reference:?} is not below {SCHEMAS_DIR}")
                    })?;
                    let resolved = names
                        .resolve(relative, "spec/openapi.yaml")
                        .with_context(|| format!("{at}: resolving {reference:?}"))?;
                    *reference = resolved;
                }
            }
            for (key, child) in map.iter_mut() {
                rewrite_external_refs(child, names, &format!("{at}/{key}"))?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                rewrite_external_refs(child, names, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Converts one draft-07 schema (found in `file`) to an OAS 3.0 Schema Object.
fn convert(schema: &Value, file: &str, names: &SchemaNames) -> Result<Value> {
    let map = match schema {
        Value::Bool(true) => return Ok(json!({})),
        Value::Bool(false) => return Ok(json!({ "not": {} })),
        Value::Object(map) => map,
        other => bail!("{other} is not a schema"),
    };
    if let Some(reference) = map.get("$ref") {
        // draft-07 ignores a ref's siblings, and so does OAS 3.0
        let reference = reference.as_str().context("$ref is not a string")?;
        return Ok(json!({ "$ref": names.resolve(reference, file)? }));
    }

    let mut out = Map::new();
    let mut notes: Vec<String> = Vec::new();
    let mut unsupported = Map::new();
    for (key, value) in map {
        let key = key.as_str();
        match key {
            _ if DROPPED.contains(&key) => {}
            _ if UNSUPPORTED.contains(&key) => {
                unsupported.insert(key.to_string(), value.clone());
            }
            _ if PASS_THROUGH.contains(&key) || key.starts_with("x-") => {
                out.insert(key.to_string(), value.clone());
            }
            "type" => convert_type(value, &mut out)?,
            "const" => {
                out.insert("enum".into(), json!([value]));
                if !map.contains_key("type") {
                    if let Some(kind) = json_type(value) {
                        out.insert("type".into(), json!(kind));
                    }
                }
            }
            "examples" => {
                if !map.contains_key("example") {
                    if let Some(first) = value.as_array().and_then(|a| a.first()) {
                        out.insert("example".into(), first.clone());
                    }
                }
            }
            "exclusiveMinimum" | "exclusiveMaximum" => {
                let bound = if key == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                if value.is_boolean() {
                    out.insert(key.to_string(), value.clone());
                } else {
                    out.insert(bound.into(), value.clone());
                    out.insert(key.to_string(), json!(true));
                }
            }
            "required" => {
                if value.as_array().is_some_and(|a| !a.is_empty()) {
                    out.insert(key.to_string(), value.clone());
                }
            }
            "properties" => {
                let props = value.as_object().context("properties is not a mapping")?;
                let mut converted = Map::new();
                for (name, prop) in props {
                    let prop =
                        convert(prop, file, names).with_context(|| format!("property {name:?}"))?;
                    converted.insert(name.clone(), prop);
                }
                out.insert(key.to_string(), Value::Object(converted));
            }
            "items" => {
                if value.is_array() {
                    bail!("tuple-form `items` has no OAS 3.0 equivalent");
                }
                out.insert(key.to_string(), convert(value, file, names)?);
            }
            "not" => {
                out.insert(key.to_string(), convert(value, file, names)?);
            }
            "additionalProperties" => {
                let converted = if value.is_boolean() {
                    value.clone()
                } else {
                    convert(value, file, names)?
                };
                out.insert(key.to_string(), converted);
            }
            "allOf" | "anyOf" | "oneOf" => {
                let members = value
                    .as_array()
                    .with_context(|| format!("{key} is not a list"))?;
                let mut kept = Vec::new();
                for member in members {
                    let member = convert(member, file, names)?;
                    // a member left with nothing but notes (an `if`/`then` pair) adds no
                    // constraint here: its notes move up to this schema
                    match member.as_object() {
                        Some(m) if m.keys().all(|k| k == "description") && key == "allOf" => {
                            if let Some(Value::String(d)) = m.get("description") {
                                notes.push(d.clone());
                            }
                        }
                        _ => kept.push(member),
                    }
                }
                if !kept.is_empty() {
                    out.insert(key.to_string(), Value::Array(kept));
                }
            }
            other => bail!("JSON Schema keyword {other:?} is not handled by the bundler"),
        }
    }
    if !unsupported.is_empty() {
        // quoted together: `if`, `then` and `else` only mean something side by side
        notes.push(format!("`{}`", Value::Object(unsupported)));
    }
    if !notes.is_empty() {
        let rules = notes
            .iter()
            .map(|n| n.strip_prefix(NOTE_PREFIX).unwrap_or(n))
            .collect::<Vec<_>>()
            .join("; ");
        let note = format!("{NOTE_PREFIX}{rules}");
        let description = match out.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing}\n\n{note}"),
            None => note,
        };
        out.insert("description".into(), json!(description));
    }
    Ok(Value::Object(out))
}

/// Opens the description note that quotes rules OAS 3.0 cannot state.
const NOTE_PREFIX: &str = "Also checked by the JSON Schema, not expressible in OpenAPI 3.0: ";

/// `type` in OAS 3.0: one type name, with `nullable` standing in for `"null"`.
fn convert_type(value: &Value, out: &mut Map<String, Value>) -> Result<()> {
    let types: Vec<&str> = match value {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts
            .iter()
            .map(|t| t.as_str().context("a type is not a string"))
            .collect::<Result<_>>()?,
        other => bail!("type {other} is neither a name nor a list"),
    };
    let nullable = types.contains(&"null");
    let rest: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match rest.as_slice() {
        [one] => {
            out.insert("type".into(), json!(one));
        }
        [] => bail!("a schema of type null alone has no OAS 3.0 equivalent"),
        several => bail!("type {several:?}: OAS 3.0 allows one type (plus nullable)"),
    }
    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    Ok(())
}

/// The OAS type of a `const` value, so a single-value `enum` stays typed.
fn json_type(value: &Value) -> Option<&'static str> {
    Some(match value {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => return None,
    })
}

/// Every internal `$ref` of `doc` that does not resolve, and every ref that is not internal.
pub fn dangling_refs(doc: &Value) -> Vec<String> {
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    refs.into_iter()
        .filter(|r| {
            r.strip_prefix('#')
                .is_none_or(|pointer| doc.pointer(pointer).is_none())
        })
        .collect()
}

/// Every `$ref` value in `value`, in document order.
pub fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> SchemaNames {
        let schemas: BTreeMap<String, Value> = [
            (
                "defs.schema.json".to_string(),
                json!({"definitions": {"digest": {"type": "string"}, "platform": {"type": "object"}}}),
            ),
            (
                "thing.schema.json".to_string(),
                json!({"type": "object", "definitions": {"part": {"type": "string"}}}),
            ),
        ]
        .into_iter()
        .collect();
        SchemaNames::new(&schemas, &["Digest".to_string()]).expect("names")
    }

    #[test]
    fn defs_keep_their_name_unless_openapi_already_uses_it() {
        let names = names();
        assert_eq!(
            names.definition("defs.schema.json", "platform").ok(),
            Some("Platform")
        );
        assert_eq!(
            names.definition("defs.schema.json", "digest").ok(),
            Some("DefsDigest")
        );
        assert_eq!(
            names.definition("thing.schema.json", "part").ok(),
            Some("ThingPart")
        );
        assert_eq!(names.root("thing.schema.json").ok(), Some("Thing"));
        assert!(
            names.root("defs.schema.json").is_err(),
            "defs has no root schema"
        );
    }

    #[test]
    fn refs_resolve_relative_to_their_file() {
        let names = names();
        let resolve = |r: &str| names.resolve(r, "thing.schema.json").ok();
        assert_eq!(resolve("#").as_deref(), Some("#/components/schemas/Thing"));
        assert_eq!(
            resolve("#/definitions/part").as_deref(),
            Some("#/components/schemas/ThingPart")
        );
        assert_eq!(
            resolve("defs.schema.json#/definitions/platform").as_deref(),
            Some("#/components/schemas/Platform")
        );
        assert_eq!(
            resolve("https://quayside.dev/schemas/thing.schema.json").as_deref(),
            Some("#/components/schemas/Thing")
        );
        assert_eq!(resolve("#/properties/x"), None);
        assert_eq!(resolve("missing.schema.json"), None);
    }

    #[test]
    fn draft07_keywords_become_oas30() {
        let names = names();
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://quayside.dev/schemas/thing.schema.json",
            "type": ["object", "null"],
            "required": [],
            "examples": [{"a": 1}, {"a": 2}],
            "properties": {
                "version": {"type": "integer", "const": 2},
                "kind": {"const": "layers"},
                "gone": false,
                "anything": true,
                "size": {"type": "integer", "exclusiveMinimum": 0},
                "part": {"$ref": "#/definitions/part", "description": "ignored by draft-07"}
            },
            "definitions": {"part": {"type": "string"}}
        });
        let out = convert(&schema, "thing.schema.json", &names).expect("converts");
        assert_eq!(
            out,
            json!({
                "type": "object",
                "nullable": true,
                "example": {"a": 1},
                "properties": {
                    "version": {"type": "integer", "enum": [2]},
                    "kind": {"enum": ["layers"], "type": "string"},
                    "gone": {"not": {}},
                    "anything": {},
                    "size": {"type": "integer", "minimum": 0, "exclusiveMinimum": true},
                    "part": {"$ref": "#/components/schemas/ThingPart"}
                }
            })
        );
    }

    #[test]
    fn conditional_rules_are_quoted_in_the_description() {
        let names = names();
        let schema = json!({
            "type": "string",
            "description": "A digest.",
            "allOf": [
                {"if": {"pattern": "^sha256:"}, "then": {"pattern": "^sha256:[a-f0-9]{64}$"}},
                {"minLength": 3}
            ]
        });
        let out = convert(&schema, "thing.schema.json", &names).expect("converts");
        assert_eq!(out["allOf"], json!([{"minLength": 3}]));
        let description = out["description"].as_str().expect("description");
        assert!(description.starts_with("A digest.\n\n"), "{description}");
        assert!(
            description.ends_with(
                r#"OpenAPI 3.0: `{"if":{"pattern":"^sha256:"},"then":{"pattern":"^sha256:[a-f0-9]{64}$"}}`"#
            ),
            "{description}"
        );
    }

    #[test]
    fn unknown_keywords_and_multi_types_fail_generation() {
        let names = names();
        for schema in [
            json!({"type": "string", "unevaluatedProperties": false}),
            json!({"type": ["string", "integer"]}),
            json!({"type": "null"}),
            json!({"items": [{"type": "string"}]}),
        ] {
            assert!(
                convert(&schema, "thing.schema.json", &names).is_err(),
                "{schema}"
            );
        }
    }

    #[test]
    fn dangling_refs_are_reported() {
        let doc = json!({
            "components": {"schemas": {"A": {"type": "string"}}},
            "x": [{"$ref": "#/components/schemas/A"}, {"$ref": "#/components/schemas/B"}],
            "y": {"$ref": "schemas/a.json"}
        });
        assert_eq!(
            dangling_refs(&doc),
            vec![
                "#/components/schemas/B".to_string(),
                "schemas/a.json".to_string()
            ]
        );
    }
}
