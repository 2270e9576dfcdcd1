//! Rust types for the documents in `spec/schemas/` (manifests, indexes, configs,
//! descriptors, error envelope, tag list, catalog), written to `spec/src/types.rs`.
//!
//! A small generator of our own rather than typify: typify panics on `if`/`then` (which
//! the manifest schemas use), turns `const` into a bare integer and drops members it does
//! not know. These types exist to *inspect* documents whose raw bytes are what a registry
//! stores and serves, so they must accept anything the schemas accept and keep what they
//! do not name. The rules are therefore few and predictable:
//!
//! - an object schema with `properties` becomes a struct; every struct ends with
//!   `#[serde(flatten)] extra`, the members the schema does not name;
//! - a property outside `required`, or one that may be `null`, is an `Option`;
//! - `additionalProperties: {type: string}` (annotations, labels) is a `BTreeMap<String, String>`;
//! - `$ref`s to object schemas become the named type; to scalars, the scalar;
//! - `oneOf`/`anyOf` of different types, or no type at all, is a `serde_json::Value`;
//! - validation keywords (`pattern`, `const`, `enum`, `if`/`then`, bounds) are left to the
//!   JSON Schema validator: a type never rejects a document over them.
//!
//! Names: a schema file's root is named after the file (`oci-image-manifest.schema.json`
//! → `OciImageManifest`), a definition of `defs.schema.json` after its key (`platform` →
//! `Platform`), a document's own definition after document and key (`rootfs` in
//! `oci-image-config.schema.json` → `OciImageConfigRootfs`), an inline object after its
//! parent and property (`OciImageConfig` + `config` → `OciImageConfigConfig`; array items
//! take the singular, `errors` → `ErrorEnvelopeError`).

use crate::{GeneratedFile, SpecInput};
use anyhow::{bail, Context, Result};
use heck::{ToSnakeCase, ToUpperCamelCase};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// Where the types are written, relative to the workspace root.
pub const OUTPUT: &str = "spec/src/types.rs";

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> Result<Vec<GeneratedFile>> {
    let source = render(spec)?;
    Ok(vec![GeneratedFile::rust(
        OUTPUT,
        &source,
        "spec/schemas/ and spec/media-types.json",
    )?])
}

/// The Rust source of the types (before rustfmt and the generated-file header).
pub fn render(spec: &SpecInput) -> Result<String> {
    let mut gen = Gen::new(&spec.schemas);
    for (file, schema) in &spec.schemas {
        if !file.ends_with(".schema.json") || !has_root_type(schema) {
            continue;
        }
        let name = root_name(file);
        let ty = gen
            .type_of(file, "", schema, &name)
            .with_context(|| format!("generating types for {file}"))?;
        match ty.ty {
            Ty::Named(ref target) if *target == name => {}
            other => gen.items.push(Item::Alias {
                name: name.clone(),
                doc: doc_of(schema),
                target: other.rust(),
            }),
        }
        gen.roots.insert(name, file.clone());
    }
    Ok(gen.emit(&media_types_by_schema(spec)))
}

/// The type name of a schema file's root: `docker-manifest-v2s2.schema.json` →
/// `DockerManifestV2s2`.
pub fn root_name(file: &str) -> String {
    file.trim_end_matches(".json")
        .trim_end_matches(".schema")
        .to_upper_camel_case()
}

/// Whether a schema file describes a document (not only shared `definitions`).
fn has_root_type(schema: &Value) -> bool {
    ["type", "properties", "allOf", "oneOf", "anyOf", "$ref"]
        .iter()
        .any(|k| schema.get(k).is_some())
}

#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Str,
    Int(&'static str),
    Float,
    Bool,
    /// Anything: no type, or alternatives of different types.
    Any,
    /// An object whose members the schema does not describe.
    Object,
    Vec(Box<Ty>),
    Map(Box<Ty>),
    Named(String),
}

impl Ty {
    fn rust(&self) -> String {
        match self {
            Ty::Str => "String".into(),
            Ty::Int(t) => (*t).into(),
            Ty::Float => "f64".into(),
            Ty::Bool => "bool".into(),
            Ty::Any => "serde_json::Value".into(),
            Ty::Object => "serde_json::Map<String, serde_json::Value>".into(),
            Ty::Vec(t) => format!("Vec<{}>", t.rust()),
            Ty::Map(t) => format!("BTreeMap<String, {}>", t.rust()),
            Ty::Named(n) => n.clone(),
        }
    }
}

/// A schema's Rust type and whether `null` is allowed.
struct Typed {
    ty: Ty,
    nullable: bool,
}

impl Typed {
    fn of(ty: Ty) -> Self {
        Self {
            ty,
            nullable: false,
        }
    }
}

struct Field {
    json: String,
    ident: String,
    ty: Ty,
    optional: bool,
    doc: Option<String>,
}

enum Item {
    Struct {
        name: String,
        doc: Option<String>,
        fields: Vec<Field>,
    },
    Alias {
        name: String,
        doc: Option<String>,
        target: String,
    },
}

struct Gen<'a> {
    schemas: &'a BTreeMap<String, Value>,
    items: Vec<Item>,
    /// Struct name of each object schema already generated, by (file, JSON pointer).
    by_location: HashMap<(String, String), String>,
    names: BTreeSet<String>,
    /// Root type name to its schema file.
    roots: BTreeMap<String, String>,
    /// Where the next inline struct comes from, its doc when the schema has none.
    origin: Option<String>,
}

impl<'a> Gen<'a> {
    fn new(schemas: &'a BTreeMap<String, Value>) -> Self {
        Self {
            schemas,
            items: Vec::new(),
            by_location: HashMap::new(),
            names: BTreeSet::new(),
            roots: BTreeMap::new(),
            origin: None,
        }
    }

    /// Follows a `$ref` (relative file name, `$id` URL or local `#/…`) from `file`.
    fn resolve(&self, file: &str, reference: &str) -> Result<(String, String, &'a Value)> {
        let (target_file, pointer) = match reference.split_once('#') {
            Some((f, p)) => (f, p),
            None => (reference, ""),
        };
        let target_file = if target_file.is_empty() {
            file.to_string()
        } else {
            target_file
                .rsplit('/')
                .next()
                .unwrap_or(target_file)
                .to_string()
        };
        let Some(doc) = self.schemas.get(&target_file) else {
            bail!("{file}: $ref {reference:?} names a schema file that does not exist");
        };
        let Some(value) = doc.pointer(pointer) else {
            bail!("{file}: $ref {reference:?} points at nothing");
        };
        Ok((target_file, pointer.to_string(), value))
    }

    /// The Rust type of `schema` (at `pointer` in `file`); `hint` names a struct it needs.
    fn type_of(
        &mut self,
        file: &str,
        pointer: &str,
        schema: &'a Value,
        hint: &str,
    ) -> Result<Typed> {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (target_file, target_ptr, target) = self.resolve(file, reference)?;
            let key = target_ptr.rsplit('/').next().unwrap_or(hint);
            let name = if target_ptr.is_empty() {
                root_name(&target_file)
            } else if self.schemas.get(&target_file).is_some_and(has_root_type) {
                // A document's own definition: prefixed, so that two documents may both
                // define `rootfs` and neither name depends on which was generated first.
                format!("{}{}", root_name(&target_file), key.to_upper_camel_case())
            } else {
                key.to_upper_camel_case()
            };
            return self.type_of(&target_file, &target_ptr, target, &name);
        }
        let nullable_flag = schema.get("nullable").and_then(Value::as_bool) == Some(true);
        if let Some(part) = self.restated(file, pointer, schema)? {
            return self.type_of(file, &part.0, part.1, hint);
        }
        if is_struct(schema) {
            let name = self.struct_for(file, pointer, schema, hint)?;
            return Ok(Typed {
                ty: Ty::Named(name),
                nullable: nullable_flag || self.allows_null(file, schema, 0),
            });
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            // `allOf` without properties of its own: the one part that has a type wins.
            for (i, part) in parts.iter().enumerate() {
                let ptr = format!("{pointer}/allOf/{i}");
                let typed = self.type_of(file, &ptr, part, hint)?;
                if typed.ty != Ty::Any {
                    return Ok(typed);
                }
            }
            return Ok(Typed::of(Ty::Any));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(variants) = schema.get(key).and_then(Value::as_array) {
                let mut nullable = nullable_flag;
                let mut types = Vec::new();
                for (i, variant) in variants.iter().enumerate() {
                    if variant.get("type").and_then(Value::as_str) == Some("null") {
                        nullable = true;
                        continue;
                    }
                    let ptr = format!("{pointer}/{key}/{i}");
                    let typed = self.type_of(file, &ptr, variant, hint)?;
                    nullable |= typed.nullable;
                    types.push(typed.ty);
                }
                types.dedup();
                let ty = match types.as_slice() {
                    [one] => one.clone(),
                    _ => Ty::Any,
                };
                return Ok(Typed { ty, nullable });
            }
        }
        let (type_name, nullable) = match schema.get("type") {
            Some(Value::String(t)) => (Some(t.as_str()), nullable_flag),
            Some(Value::Array(types)) => {
                let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                let nullable = names.contains(&"null") || nullable_flag;
                let rest: Vec<&str> = names.into_iter().filter(|t| *t != "null").collect();
                match rest.as_slice() {
                    [one] => (Some(*one), nullable),
                    _ => {
                        return Ok(Typed {
                            ty: Ty::Any,
                            nullable,
                        })
                    }
                }
            }
            _ => (None, nullable_flag),
        };
        let ty = match type_name {
            Some("string") => Ty::Str,
            Some("integer") => Ty::Int(int_type(schema)),
            Some("number") => Ty::Float,
            Some("boolean") => Ty::Bool,
            Some("array") => match schema.get("items") {
                Some(items) if items.is_object() => {
                    let item_hint = singular(hint);
                    let typed =
                        self.type_of(file, &format!("{pointer}/items"), items, &item_hint)?;
                    Ty::Vec(Box::new(typed.ty))
                }
                _ => Ty::Vec(Box::new(Ty::Any)),
            },
            Some("object") => self.map_type(file, pointer, schema, hint)?,
            Some(_) => Ty::Any,
            None => match schema.get("const").or_else(|| {
                schema
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|v| v.first())
            }) {
                Some(Value::String(_)) => Ty::Str,
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ty::Int("i64"),
                Some(Value::Number(_)) => Ty::Float,
                Some(Value::Bool(_)) => Ty::Bool,
                _ => Ty::Any,
            },
        };
        Ok(Typed { ty, nullable })
    }

    /// An object schema without `properties`: a map when its values are described,
    /// otherwise an untyped JSON object.
    fn map_type(&mut self, file: &str, pointer: &str, schema: &'a Value, hint: &str) -> Result<Ty> {
        let pattern_values = schema
            .get("patternProperties")
            .and_then(Value::as_object)
            .filter(|p| p.len() == 1)
            .and_then(|p| p.iter().next());
        let values = match (schema.get("additionalProperties"), pattern_values) {
            (Some(v @ Value::Object(_)), _) => Some((format!("{pointer}/additionalProperties"), v)),
            (_, Some((key, v))) => Some((
                format!("{pointer}/patternProperties/{}", escape_pointer(key)),
                v,
            )),
            _ => None,
        };
        match values {
            Some((ptr, v)) => {
                let value_hint = format!("{hint}Value");
                let typed = self.type_of(file, &ptr, v, &value_hint)?;
                Ok(Ty::Map(Box::new(typed.ty)))
            }
            None => Ok(Ty::Object),
        }
    }

    /// For `allOf: [{$ref: X}, {…}]` whose other parts name no member `X` lacks (they
    /// only tighten it, as the referrers response does with the image index): `X`'s part,
    /// so that the type is `X` itself rather than a copy.
    fn restated(
        &self,
        file: &str,
        pointer: &str,
        schema: &'a Value,
    ) -> Result<Option<(String, &'a Value)>> {
        let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
            return Ok(None);
        };
        let refs: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].get("$ref").is_some())
            .collect();
        let [base] = refs.as_slice() else {
            return Ok(None);
        };
        let mut base_props = Vec::new();
        let mut required = BTreeSet::new();
        let base_ptr = format!("{pointer}/allOf/{base}");
        self.gather(
            file,
            &base_ptr,
            &parts[*base],
            &mut base_props,
            &mut required,
            0,
        )?;
        let known: BTreeSet<&str> = base_props.iter().map(|p| p.3.as_str()).collect();
        let mut others = Vec::new();
        for key in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|p| p.keys())
        {
            others.push((String::new(), String::new(), &Value::Null, key.clone()));
        }
        for (i, part) in parts.iter().enumerate().filter(|(i, _)| i != base) {
            let ptr = format!("{pointer}/allOf/{i}");
            self.gather(file, &ptr, part, &mut others, &mut required, 0)?;
        }
        if others.iter().all(|p| known.contains(p.3.as_str())) {
            Ok(Some((base_ptr, &parts[*base])))
        } else {
            Ok(None)
        }
    }

    /// Whether an object schema admits `null` (`type: [object, null]`, directly or in
    /// every typed part of an `allOf`).
    fn allows_null(&self, file: &str, schema: &'a Value, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return match self.resolve(file, reference) {
                Ok((f, _, target)) => self.allows_null(&f, target, depth + 1),
                Err(_) => false,
            };
        }
        match schema.get("type") {
            Some(Value::Array(types)) => return types.iter().any(|t| t == "null"),
            Some(Value::String(t)) => return t == "null",
            _ => {}
        }
        let typed_parts: Vec<bool> = schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("type").is_some() || p.get("$ref").is_some())
            .map(|p| self.allows_null(file, p, depth + 1))
            .collect();
        !typed_parts.is_empty() && typed_parts.iter().all(|n| *n)
    }

    /// The struct for an object schema, generated on first use.
    fn struct_for(
        &mut self,
        file: &str,
        pointer: &str,
        schema: &'a Value,
        hint: &str,
    ) -> Result<String> {
        let location = (file.to_string(), pointer.to_string());
        if let Some(name) = self.by_location.get(&location) {
            return Ok(name.clone());
        }
        // A definition may be reached from several documents: name where it lives.
        let origin = if pointer.contains("/definitions/") || pointer.contains("/$defs/") {
            self.origin = None;
            Some(format!("Defined at `{file}#{pointer}`."))
        } else {
            self.origin.take()
        };
        let name = self.unique_name(hint, file);
        self.by_location.insert(location, name.clone());
        self.names.insert(name.clone());
        let index = self.items.len();
        self.items.push(Item::Alias {
            name: name.clone(),
            doc: None,
            target: String::new(),
        });

        // Properties and `required` of the schema and of its `allOf` parts, in order.
        let mut props: Vec<(String, String, &'a Value, String)> = Vec::new();
        let mut required = BTreeSet::new();
        self.gather(file, pointer, schema, &mut props, &mut required, 0)?;

        let mut fields: Vec<Field> = Vec::new();
        for (prop_file, prop_ptr, prop, json) in props {
            let field_hint = format!("{name}{}", json.to_upper_camel_case());
            self.origin = Some(format!("The `{json}` member of [`{name}`]."));
            let typed = self.type_of(&prop_file, &prop_ptr, prop, &field_hint);
            self.origin = None;
            let typed = typed?;
            let doc = self.doc_through_ref(&prop_file, prop);
            let field = Field {
                ident: field_ident(&json),
                optional: typed.nullable || !required.contains(&json),
                ty: typed.ty,
                doc,
                json,
            };
            match fields.iter_mut().find(|f| f.json == field.json) {
                Some(existing) => {
                    existing.optional &= field.optional;
                }
                None => fields.push(field),
            }
        }
        self.items[index] = Item::Struct {
            name: name.clone(),
            doc: doc_of(schema).or(origin),
            fields,
        };
        Ok(name)
    }

    fn gather(
        &self,
        file: &str,
        pointer: &str,
        schema: &'a Value,
        props: &mut Vec<(String, String, &'a Value, String)>,
        required: &mut BTreeSet<String>,
        depth: usize,
    ) -> Result<()> {
        if depth > 16 {
            bail!("{file}{pointer}: allOf/$ref nested too deeply");
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let (f, p, target) = self.resolve(file, reference)?;
            return self.gather(&f, &p, target, props, required, depth + 1);
        }
        if let Some(map) = schema.get("properties").and_then(Value::as_object) {
            for (key, prop) in map {
                // `false` forbids the member (`manifests` in an image manifest).
                if prop == &Value::Bool(false) {
                    continue;
                }
                let ptr = format!("{pointer}/properties/{}", escape_pointer(key));
                props.push((file.to_string(), ptr, prop, key.clone()));
            }
        }
        if let Some(list) = schema.get("required").and_then(Value::as_array) {
            required.extend(list.iter().filter_map(Value::as_str).map(String::from));
        }
        if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
            for (i, part) in parts.iter().enumerate() {
                let ptr = format!("{pointer}/allOf/{i}");
                self.gather(file, &ptr, part, props, required, depth + 1)?;
            }
        }
        Ok(())
    }

    /// A property's own description, or that of the definition it references.
    fn doc_through_ref(&self, file: &str, prop: &'a Value) -> Option<String> {
        doc_of(prop).or_else(|| {
            let reference = prop.get("$ref")?.as_str()?;
            let (_, pointer, target) = self.resolve(file, reference).ok()?;
            // A whole document's description says what the document is, not the field.
            if pointer.is_empty() {
                return None;
            }
            doc_of(target)
        })
    }

    fn unique_name(&self, hint: &str, file: &str) -> String {
        let hint = if hint.is_empty() { "Object" } else { hint };
        if !self.names.contains(hint) {
            return hint.to_string();
        }
        let prefixed = format!("{}{hint}", root_name(file));
        if !self.names.contains(&prefixed) {
            return prefixed;
        }
        (2..)
            .map(|n| format!("{prefixed}{n}"))
            .find(|n| !self.names.contains(n))
            .unwrap_or_else(|| prefixed.clone())
    }

    fn emit(&self, media_types: &BTreeMap<String, Vec<String>>) -> String {
        let mut out = String::new();
        out.push_str(
            "//! Types for the documents of `spec/schemas/`, for inspecting manifests, \
             indexes, configs\n\
             //! and API bodies. Store and serve the raw bytes: a round trip through these \
             types may\n\
             //! reorder members, and so change a document's digest.\n\
             //!\n\
             //! Every struct keeps the members its schema does not name in `extra`, and \
             checks no\n\
             //! patterns or constants: validate with [`crate::schemas`] first when that \
             matters.\n\n\
             use serde::{Deserialize, Serialize};\n\
             use std::collections::BTreeMap;\n\n",
        );
        for item in &self.items {
            match item {
                Item::Struct { name, doc, fields } => {
                    self.emit_struct(&mut out, name, doc.as_deref(), fields, media_types)
                }
                Item::Alias { name, doc, target } => {
                    write_doc(&mut out, doc.as_deref(), "");
                    let _ = writeln!(out, "pub type {name} = {target};\n");
                }
            }
        }
        out
    }

    fn emit_struct(
        &self,
        out: &mut String,
        name: &str,
        doc: Option<&str>,
        fields: &[Field],
        media_types: &BTreeMap<String, Vec<String>>,
    ) {
        let root_file = self.roots.get(name);
        let mut doc = doc.map(str::to_string);
        if let Some(file) = root_file {
            let line = format!("Schema: `spec/schemas/{file}`.");
            doc = Some(match doc {
                Some(d) => format!("{d}\n\n{line}"),
                None => line,
            });
        }
        write_doc(out, doc.as_deref(), "");
        out.push_str("#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\n");
        out.push_str("#[serde(rename_all = \"camelCase\")]\n");
        let _ = writeln!(out, "pub struct {name} {{");
        for field in fields {
            write_doc(out, field.doc.as_deref(), "    ");
            if serde_camel(field.ident.trim_start_matches("r#")) != field.json {
                let _ = writeln!(out, "    #[serde(rename = {:?})]", field.json);
            }
            if field.optional {
                out.push_str("    #[serde(default, skip_serializing_if = \"Option::is_none\")]\n");
            }
            let ty = if field.optional {
                format!("Option<{}>", field.ty.rust())
            } else {
                field.ty.rust()
            };
            let _ = writeln!(out, "    pub {}: {ty},", field.ident);
        }
        let extra = if fields.iter().any(|f| f.ident == "extra") {
            "unknown_members"
        } else {
            "extra"
        };
        out.push_str(
            "    /// Members the schema does not name, kept so that nothing is lost on \
             inspection.\n",
        );
        out.push_str("    #[serde(flatten)]\n");
        let _ = writeln!(
            out,
            "    pub {extra}: serde_json::Map<String, serde_json::Value>,"
        );
        out.push_str("}\n\n");
        if let Some(file) = root_file {
            let types = media_types.get(file).cloned().unwrap_or_default();
            let list = types
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "impl {name} {{\n\
                 /// The schema file this type is generated from.\n\
                 pub const SCHEMA: &'static str = {file:?};\n\
                 /// The media types whose documents have this shape \
                 (from `spec/media-types.json`).\n\
                 pub const MEDIA_TYPES: &'static [&'static str] = &[{list}];\n\
                 }}\n"
            );
        }
    }
}

/// Whether a schema is an object with members of its own (directly or through `allOf`).
fn is_struct(schema: &Value) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|parts| parts.iter().any(is_struct))
}

fn int_type(schema: &Value) -> &'static str {
    match schema.get("format").and_then(Value::as_str) {
        Some("int32") => "i32",
        Some("uint32") => "u32",
        Some("uint64") => "u64",
        _ => "i64",
    }
}

/// `history` → `History`, `layers` → `Layer`, `manifests` → `Manifest`.
fn singular(name: &str) -> String {
    match name.strip_suffix("ies") {
        Some(stem) if !stem.is_empty() => format!("{stem}y"),
        _ => match name.strip_suffix('s') {
            Some(stem) if stem.len() > 2 && !stem.ends_with(['s', 'u']) => stem.to_string(),
            _ => name.to_string(),
        },
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A Rust field name for a JSON member: snake case, raw identifiers for keywords.
fn field_ident(json: &str) -> String {
    let mut ident = json.to_snake_case();
    if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_digit()) {
        ident = format!("field_{ident}");
    }
    if RUST_KEYWORDS.contains(&ident.as_str()) {
        ident = format!("r#{ident}");
    }
    ident
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv",
    "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// What serde's `rename_all = "camelCase"` makes of a snake-case field name.
fn serde_camel(field: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for (i, c) in field.chars().enumerate() {
        if c == '_' {
            upper = i > 0;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `title` and `description`, as a doc comment's summary line and body.
fn doc_of(schema: &Value) -> Option<String> {
    let text = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_str)
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty())
    };
    match (text("title"), text("description")) {
        (Some(title), Some(desc)) => Some(format!("{title}.\n\n{desc}")),
        (title, desc) => desc.or(title),
    }
}

/// Writes a doc comment, wrapping prose at 92 columns (rustfmt leaves comments alone).
fn write_doc(out: &mut String, doc: Option<&str>, indent: &str) {
    let Some(doc) = doc else { return };
    let width = 92usize.saturating_sub(indent.len() + 4).max(40);
    for line in doc.lines() {
        let line = escape_html(line);
        let mut current = String::new();
        for word in line.split_whitespace() {
            if !current.is_empty() && current.len() + 1 + word.len() > width {
                let _ = writeln!(out, "{indent}/// {current}");
                current.clear();
            }
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        if current.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {current}");
        }
    }
}

/// Escapes `<` outside code spans, so that `GET /v2/<name>/…` is not read as an HTML tag
/// by rustdoc.
fn escape_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        match c {
            '`' => in_code = !in_code,
            '<' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `spec/media-types.json` inverted: schema file → the media types it describes.
fn media_types_by_schema(spec: &SpecInput) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in spec
        .media_types
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(schema), Some(media_type)) = (
            entry.get("schema").and_then(Value::as_str),
            entry.get("mediaType").and_then(Value::as_str),
        ) {
            map.entry(schema.to_string())
                .or_default()
                .push(media_type.to_string());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_names_follow_the_file_name() {
        assert_eq!(
            root_name("oci-image-manifest.schema.json"),
            "OciImageManifest"
        );
        assert_eq!(
            root_name("docker-manifest-v2s2.schema.json"),
            "DockerManifestV2s2"
        );
        assert_eq!(root_name("descriptor.schema.json"), "Descriptor");
    }

    #[test]
    fn serde_camel_matches_serde_rename_rule() {
        assert_eq!(serde_camel("media_type"), "mediaType");
        assert_eq!(serde_camel("v1_compatibility"), "v1Compatibility");
        assert_eq!(serde_camel("os"), "os");
        // Names serde would not produce need an explicit rename.
        assert_ne!(serde_camel(&field_ident("os.version")), "os.version");
        assert_ne!(serde_camel(&field_ident("Env")), "Env");
        assert_ne!(serde_camel(&field_ident("diff_ids")), "diff_ids");
    }

    #[test]
    fn field_idents_escape_keywords_and_digits() {
        assert_eq!(field_ident("type"), "r#type");
        assert_eq!(field_ident("os.features"), "os_features");
        assert_eq!(field_ident("ExposedPorts"), "exposed_ports");
        assert_eq!(field_ident("1x"), "field_1x");
    }

    #[test]
    fn doc_text_escapes_angle_brackets_outside_code() {
        assert_eq!(
            escape_html("GET /v2/<name> `a<b`"),
            "GET /v2/\\<name> `a<b`"
        );
    }

    #[test]
    fn singular_of_array_properties() {
        assert_eq!(singular("layers"), "layer");
        assert_eq!(singular("history"), "history");
        assert_eq!(singular("fsLayers"), "fsLayer");
        assert_eq!(singular("entries"), "entry");
        assert_eq!(singular("status"), "status");
    }
}
