//! The human-readable API reference, `spec/API.md`, generated from the spec.
//!
//! It is written for a reader who never opens the YAML: the introduction and security
//! schemes, a table of contents, one section per operation (grouped by tag, in the spec's
//! order) and appendices for the error codes, media types, headers, shared responses, value
//! formats and example documents. Shared pieces (`components/responses`, `components/examples`)
//! are written out once in an appendix and linked, so the 401/403/429 answers every endpoint
//! can give do not drown the endpoint-specific ones.
//!
//! Output is plain GitHub-flavoured Markdown without HTML, so it reads the same rendered on
//! a forge and as text. Links to headings use GitHub's slug rules ([`slug`]); they are
//! written as placeholders and resolved once every heading is known.

use crate::{GeneratedFile, SpecInput};
use anyhow::Result;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

/// Where the reference is written, relative to the workspace root.
pub const OUTPUT: &str = "spec/API.md";

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> Result<Vec<GeneratedFile>> {
    let body = render(spec)?;
    Ok(vec![GeneratedFile::markdown(
        OUTPUT,
        &body,
        "spec/openapi.yaml, spec/schemas/ and spec/media-types.json",
    )])
}

/// The reference as Markdown (without the generated-file header).
pub fn render(spec: &SpecInput) -> Result<String> {
    let mut r = Renderer::new(spec);
    r.intro();
    r.security();
    r.contents();
    r.endpoints();
    r.error_codes();
    r.media_types();
    r.header_glossary();
    r.shared_responses();
    r.value_formats();
    r.example_documents();
    Ok(r.finish())
}

/// GitHub's anchor for a heading: lowercase, punctuation other than `-` and `_` dropped,
/// spaces turned into `-` (duplicates get `-1`, `-2`… from [`Renderer::heading`]).
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The keys of a path item that are operations (listed in the spec's order).
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// One operation, as found under `paths`.
struct Op<'a> {
    method: &'a str,
    path: &'a str,
    path_item: &'a Value,
    op: &'a Value,
}

impl Op<'_> {
    fn id(&self) -> &str {
        str_of(self.op, "operationId").unwrap_or("")
    }

    fn title(&self) -> String {
        match str_of(self.op, "summary") {
            Some(s) => s.trim().to_string(),
            None => format!("{} {}", self.method.to_uppercase(), self.path),
        }
    }

    fn tags(&self) -> Vec<&str> {
        self.op
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

struct Renderer<'a> {
    spec: &'a SpecInput,
    root: &'a Value,
    out: String,
    /// How many headings have produced each slug so far (GitHub numbers repeats).
    slugs: HashMap<String, usize>,
    /// Placeholder key (`kind/name`) to the slug of the heading it stands for.
    anchors: HashMap<String, String>,
    /// Every error code the spec knows, from the envelope schema and the examples.
    known_codes: BTreeSet<String>,
}

impl<'a> Renderer<'a> {
    fn new(spec: &'a SpecInput) -> Self {
        let mut r = Self {
            spec,
            root: &spec.openapi,
            out: String::new(),
            slugs: HashMap::new(),
            anchors: HashMap::new(),
            known_codes: BTreeSet::new(),
        };
        r.known_codes = r.collect_known_codes();
        r
    }

    // ---- output helpers -------------------------------------------------------------

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// A heading; `key` (such as `response/Unauthorized`) lets links point at it.
    fn heading(&mut self, level: usize, text: &str, key: Option<&str>) {
        self.blank();
        let slug = self.register_slug(text);
        if let Some(key) = key {
            self.anchors.entry(key.to_string()).or_insert(slug);
        }
        self.line(&format!("{} {text}", "#".repeat(level)));
        self.blank();
    }

    fn register_slug(&mut self, text: &str) -> String {
        let base = slug(&text.replace('`', ""));
        let n = self.slugs.entry(base.clone()).or_insert(0);
        let slug = if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        *n += 1;
        slug
    }

    /// Markdown from the spec, passed through; its headings take part in slug numbering.
    fn passthrough(&mut self, markdown: &str) {
        let mut in_fence = false;
        for line in markdown.trim_end().lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
            } else if !in_fence && line.starts_with('#') {
                let text = line.trim_start_matches('#').trim();
                self.register_slug(text);
            }
        }
        self.blank();
        self.line(markdown.trim_end());
        self.blank();
    }

    /// A link placeholder, resolved in [`Self::finish`].
    fn link(text: &str, key: &str) -> String {
        format!("[{text}](#\u{1}{key}\u{1})")
    }

    fn finish(self) -> String {
        let mut out = String::with_capacity(self.out.len());
        let mut rest = self.out.as_str();
        while let Some(start) = rest.find('\u{1}') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after.find('\u{1}').unwrap_or(after.len());
            let key = &after[..end];
            match self.anchors.get(key) {
                Some(slug) => out.push_str(slug),
                None => out.push_str(&slug(key.rsplit('/').next().unwrap_or(key))),
            }
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push_str(rest);
        let trimmed = out.trim_end();
        format!("{trimmed}\n")
    }

    // ---- spec access ----------------------------------------------------------------

    /// Follows local `#/…` references; external ones (schema files) are left as they are.
    fn resolve(&self, mut value: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match local_ref(value) {
                Some(pointer) => match self.root.pointer(pointer) {
                    Some(target) => value = target,
                    None => return value,
                },
                None => return value,
            }
        }
        value
    }

    fn operations(&self) -> Vec<Op<'a>> {
        let mut ops = Vec::new();
        let Some(paths) = self.root.get("paths").and_then(Value::as_object) else {
            return ops;
        };
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if METHODS.contains(&method.as_str()) {
                    ops.push(Op {
                        method,
                        path,
                        path_item: item,
                        op,
                    });
                }
            }
        }
        ops
    }

    fn components(&self, kind: &str) -> Option<&'a Map<String, Value>> {
        self.root
            .get("components")
            .and_then(|c| c.get(kind))
            .and_then(Value::as_object)
    }

    /// The groups operations are listed under: the spec's tags in their order, then any
    /// tag only used by operations, then `Other` for untagged operations.
    fn groups(&self) -> Vec<(String, Option<&'a str>, Vec<Op<'a>>)> {
        let ops = self.operations();
        let mut names: Vec<(String, Option<&'a str>)> = self
            .root
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| {
                        let name = str_of(t, "name")?;
                        Some((name.to_string(), str_of(t, "description")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for op in &ops {
            for tag in op.tags() {
                if !names.iter().any(|(n, _)| n == tag) {
                    names.push((tag.to_string(), None));
                }
            }
        }
        let mut groups: Vec<(String, Option<&'a str>, Vec<Op<'a>>)> =
            names.into_iter().map(|(n, d)| (n, d, Vec::new())).collect();
        let mut other = Vec::new();
        for op in ops {
            let first = op.tags().first().map(|t| t.to_string());
            match first.and_then(|t| groups.iter_mut().find(|(n, _, _)| *n == t)) {
                Some(group) => group.2.push(op),
                None => other.push(op),
            }
        }
        if !other.is_empty() {
            groups.push(("Other".to_string(), None, other));
        }
        groups.retain(|(_, _, ops)| !ops.is_empty());
        groups
    }

    // ---- sections -------------------------------------------------------------------

    fn intro(&mut self) {
        let info = self.root.get("info").unwrap_or(&Value::Null);
        let title = str_of(info, "title").unwrap_or("API reference").to_string();
        self.heading(1, &title, None);
        let mut facts = Vec::new();
        if let Some(v) = str_of(info, "version") {
            facts.push(format!("Version `{v}`"));
        }
        if let Some(openapi) = str_of(self.root, "openapi") {
            facts.push(format!(
                "generated from [`openapi.yaml`](openapi.yaml) (OpenAPI {openapi})"
            ));
        }
        if let Some(license) = info.get("license").and_then(|l| str_of(l, "name")) {
            facts.push(format!("license {license}"));
        }
        if !facts.is_empty() {
            self.line(&format!("{}.", capitalise(&facts.join(", "))));
            self.blank();
        }
        if let Some(servers) = self.root.get("servers").and_then(Value::as_array) {
            for server in servers {
                if let Some(url) = str_of(server, "url") {
                    let desc = str_of(server, "description")
                        .map(|d| format!(" — {}", one_line(d)))
                        .unwrap_or_default();
                    self.line(&format!("Base URL: `{url}`{desc}"));
                }
            }
            self.blank();
        }
        if let Some(desc) = str_of(info, "description") {
            self.passthrough(desc);
        }
    }

    fn security(&mut self) {
        let Some(schemes) = self.components("securitySchemes") else {
            return;
        };
        self.heading(2, "Security schemes", None);
        if let Some(reqs) = self.root.get("security").and_then(Value::as_array) {
            let options: Vec<String> = reqs.iter().map(security_requirement).collect();
            self.line(&format!(
                "Every operation accepts any of: {}.",
                options.join("; ")
            ));
            self.blank();
        }
        for (name, scheme) in schemes {
            let scheme = self.resolve(scheme);
            self.heading(3, &format!("`{name}`"), Some(&format!("security/{name}")));
            let mut kind = format!("Type `{}`", str_of(scheme, "type").unwrap_or("?"));
            if let Some(s) = str_of(scheme, "scheme") {
                let _ = write!(kind, ", scheme `{s}`");
            }
            if let Some(f) = str_of(scheme, "bearerFormat") {
                let _ = write!(kind, ", token format {f}");
            }
            self.line(&format!("{kind}."));
            if let Some(desc) = str_of(scheme, "description") {
                self.passthrough(desc);
            }
        }
    }

    fn contents(&mut self) {
        self.heading(2, "Endpoints", Some("endpoints"));
        self.line("| Method | Path | Operation | Summary |");
        self.line("|---|---|---|---|");
        let mut rows = Vec::new();
        for (_, _, ops) in self.groups() {
            for op in ops {
                rows.push(format!(
                    "| {} | `{}` | `{}` | {} |",
                    op.method.to_uppercase(),
                    op.path,
                    op.id(),
                    Self::link(&cell(&op.title()), &format!("op/{}", op.id()))
                ));
            }
        }
        for row in rows {
            self.line(&row);
        }
        self.blank();
        self.line(&format!(
            "Appendices: {}, {}, {}, {}, {}, {}.",
            Self::link("error codes", "appendix/errors"),
            Self::link("media types", "appendix/media-types"),
            Self::link("headers", "appendix/headers"),
            Self::link("shared responses", "appendix/responses"),
            Self::link("value formats", "appendix/formats"),
            Self::link("example documents", "appendix/examples"),
        ));
    }

    fn endpoints(&mut self) {
        for (name, desc, ops) in self.groups() {
            self.heading(2, &format!("{name} endpoints"), None);
            if let Some(desc) = desc {
                self.passthrough(desc);
            }
            for op in &ops {
                self.operation(op);
            }
        }
    }

    fn operation(&mut self, op: &Op<'a>) {
        let id = op.id().to_string();
        self.heading(3, &op.title(), Some(&format!("op/{id}")));
        self.line(&format!(
            "`{} {}` (operation `{id}`)",
            op.method.to_uppercase(),
            op.path
        ));
        self.blank();
        if op.op.get("deprecated").and_then(Value::as_bool) == Some(true) {
            self.line("**Deprecated.**");
            self.blank();
        }
        if let Some(desc) = str_of(op.op, "description") {
            self.passthrough(desc);
        }
        if let Some(reqs) = op.op.get("security").and_then(Value::as_array) {
            let options: Vec<String> = reqs.iter().map(security_requirement).collect();
            self.line(&format!("**Authentication:** {}.", options.join("; ")));
            self.blank();
        }
        self.parameters(op);
        if let Some(body) = op.op.get("requestBody") {
            let body = self.resolve(body);
            let required = body.get("required").and_then(Value::as_bool) == Some(true);
            let several = body
                .get("content")
                .and_then(Value::as_object)
                .is_some_and(|c| c.len() > 1);
            self.line(&format!(
                "**Request body** ({}){}:",
                if required { "required" } else { "optional" },
                if several {
                    ", one of these, named by `Content-Type`"
                } else {
                    ""
                }
            ));
            self.blank();
            if let Some(desc) = str_of(body, "description") {
                self.passthrough(desc);
            }
            self.content(body.get("content"));
        }
        self.responses(op);
    }

    fn parameters(&mut self, op: &Op<'a>) {
        let mut params: Vec<&'a Value> = Vec::new();
        for source in [op.path_item, op.op] {
            for p in source
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let p = self.resolve(p);
                let key = (str_of(p, "name"), str_of(p, "in"));
                params.retain(|q| (str_of(q, "name"), str_of(q, "in")) != key);
                params.push(p);
            }
        }
        if params.is_empty() {
            return;
        }
        self.line("**Parameters:**");
        self.blank();
        self.line("| Name | In | Required | Type | Description | Example |");
        self.line("|---|---|---|---|---|---|");
        for p in params {
            let name = str_of(p, "name").unwrap_or("?");
            let location = str_of(p, "in").unwrap_or("?");
            let required = p.get("required").and_then(Value::as_bool) == Some(true);
            let mut ty = p
                .get("schema")
                .map(|s| self.type_text(s))
                .unwrap_or_default();
            if p.get("x-oci-multi-segment").and_then(Value::as_bool) == Some(true) {
                ty.push_str("; spans several path segments (its `/` is not encoded)");
            }
            if p.get("explode").and_then(Value::as_bool) == Some(true)
                && p.get("schema")
                    .map(|s| str_of(self.resolve(s), "type") == Some("array"))
                    .unwrap_or(false)
            {
                let _ = write!(ty, "; repeat as `{name}=…&{name}=…`");
            }
            let desc = str_of(p, "description").map(one_line).unwrap_or_default();
            let example = param_examples(p);
            let row = format!(
                "| `{name}` | {location} | {} | {} | {} | {} |",
                if required { "yes" } else { "no" },
                cell(&ty),
                cell(&desc),
                cell(&example)
            );
            self.line(&row);
        }
        self.blank();
    }

    /// A short description of a schema: a link for named and external schemas, otherwise
    /// its type and constraints.
    fn type_text(&self, schema: &'a Value) -> String {
        if let Some(r) = str_of(schema, "$ref") {
            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                let target = self.resolve(schema);
                let base = plain_type(target);
                return format!(
                    "{base} ({})",
                    Self::link(&format!("`{name}`"), &format!("schema/{name}"))
                );
            }
            if !r.starts_with('#') {
                let file = r.split('#').next().unwrap_or(r);
                let label = file.rsplit('/').next().unwrap_or(file);
                return format!("[`{label}`]({file})");
            }
            return self.type_text(self.resolve(schema));
        }
        if str_of(schema, "type") == Some("array") {
            let items = schema
                .get("items")
                .map(|i| self.type_text(i))
                .unwrap_or_else(|| "values".to_string());
            return format!("array of {items}");
        }
        let mut text = plain_type(schema);
        let constraints = constraints(schema);
        if !constraints.is_empty() {
            let _ = write!(text, ", {}", constraints.join(", "));
        }
        text
    }

    /// The media types of a request or response body, with schema, and their examples.
    fn content(&mut self, content: Option<&'a Value>) {
        let Some(content) = content.and_then(Value::as_object) else {
            return;
        };
        for (media_type, media) in content {
            let schema = media
                .get("schema")
                .map(|s| self.body_schema_text(s))
                .unwrap_or_else(|| "any content".to_string());
            self.line(&format!("- `{media_type}`: {schema}"));
        }
        self.blank();
        let mut linked = Vec::new();
        for (media_type, media) in content {
            linked.extend(self.examples_of(media_type, media));
        }
        if !linked.is_empty() {
            self.line(&format!("Examples: {}.", linked.join("; ")));
            self.blank();
        }
    }

    fn body_schema_text(&self, schema: &'a Value) -> String {
        let target = self.resolve(schema);
        if str_of(target, "format") == Some("binary") {
            return "raw bytes".to_string();
        }
        match str_of(schema, "$ref") {
            Some(r) if !r.starts_with('#') => {
                let file = r.split('#').next().unwrap_or(r);
                let label = file.rsplit('/').next().unwrap_or(file);
                let title = self
                    .spec
                    .schemas
                    .get(label)
                    .and_then(|s| str_of(s, "title"))
                    .map(|t| format!(" — {}", one_line(t)))
                    .unwrap_or_default();
                format!("schema [`{label}`]({file}){title}")
            }
            _ => {
                let mut text = self.type_text(schema);
                if let Some(desc) = str_of(target, "description") {
                    let _ = write!(text, " — {}", one_line(desc));
                }
                text
            }
        }
    }

    /// Inline examples are shown in full; those from `components/examples` are returned
    /// as links to the appendix that shows each once.
    fn examples_of(&mut self, media_type: &str, media: &'a Value) -> Vec<String> {
        if let Some(example) = media.get("example") {
            self.line(&format!("Example (`{media_type}`):"));
            self.blank();
            self.example_block(media_type, example);
        }
        let Some(examples) = media.get("examples").and_then(Value::as_object) else {
            return Vec::new();
        };
        let mut linked = Vec::new();
        for (name, example) in examples {
            if let Some(key) = str_of(example, "$ref").and_then(|r| {
                r.strip_prefix("#/components/examples/")
                    .map(|k| k.to_string())
            }) {
                let target = self.resolve(example);
                let summary = str_of(target, "summary")
                    .map(one_line)
                    .unwrap_or(key.clone());
                linked.push(Self::link(&summary, &format!("example/{key}")));
                continue;
            }
            let example = self.resolve(example);
            let summary = str_of(example, "summary")
                .map(|s| format!(": {}", one_line(s)))
                .unwrap_or_default();
            self.line(&format!("Example `{name}` (`{media_type}`){summary}"));
            self.blank();
            if let Some(value) = example.get("value") {
                self.example_block(media_type, value);
            } else if let Some(url) = str_of(example, "externalValue") {
                self.line(&format!("See <{url}>."));
                self.blank();
            }
        }
        linked
    }

    fn example_block(&mut self, media_type: &str, value: &Value) {
        let (lang, text) = match value {
            Value::String(s) if !media_type.contains("json") => ("text", s.clone()),
            other => (
                "json",
                serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
            ),
        };
        self.line(&format!("```{lang}"));
        self.line(&text);
        self.line("```");
        self.blank();
    }

    fn responses(&mut self, op: &Op<'a>) {
        let Some(responses) = op.op.get("responses").and_then(Value::as_object) else {
            return;
        };
        self.line("**Responses:**");
        self.blank();
        self.line("| Status | Meaning | Error codes |");
        self.line("|---|---|---|");
        let mut inline = Vec::new();
        for (status, response) in responses {
            let target = self.resolve(response);
            let desc = str_of(target, "description").unwrap_or("");
            let meaning = match str_of(response, "$ref")
                .and_then(|r| r.strip_prefix("#/components/responses/"))
            {
                Some(name) => format!(
                    "{} Details: {}.",
                    first_sentence(desc),
                    Self::link(&format!("`{name}`"), &format!("response/{name}"))
                ),
                None => {
                    inline.push((status.as_str(), target));
                    first_sentence(desc)
                }
            };
            let codes = self.codes_of(target);
            let codes = if codes.is_empty() {
                "—".to_string()
            } else {
                codes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let row = format!("| {} | {} | {codes} |", status_text(status), cell(&meaning));
            self.line(&row);
        }
        self.blank();
        for (status, response) in inline {
            self.line(&format!("**{}**", status_text(status)));
            self.blank();
            self.response_detail(response, op.method == "head");
        }
    }

    /// Description, headers, body and examples of one response.
    fn response_detail(&mut self, response: &'a Value, head: bool) {
        if let Some(desc) = str_of(response, "description") {
            self.passthrough(desc);
        }
        self.headers_table(response.get("headers"));
        match response.get("content") {
            Some(content) if content.as_object().is_some_and(|c| !c.is_empty()) => {
                let several = content.as_object().is_some_and(|c| c.len() > 1);
                self.line(if several {
                    "Body, one of these (its `Content-Type` says which):"
                } else {
                    "Body:"
                });
                self.blank();
                self.content(Some(content));
            }
            _ => {
                self.line(if head {
                    "No body (a response to `HEAD`)."
                } else {
                    "No body."
                });
                self.blank();
            }
        }
    }

    fn headers_table(&mut self, headers: Option<&'a Value>) {
        let Some(headers) = headers.and_then(Value::as_object) else {
            return;
        };
        if headers.is_empty() {
            return;
        }
        self.line("| Header | Type | Description |");
        self.line("|---|---|---|");
        for (name, header) in headers {
            let target = self.resolve(header);
            let ty = target
                .get("schema")
                .map(|s| self.type_text(s))
                .unwrap_or_default();
            let mut desc = str_of(target, "description")
                .map(one_line)
                .unwrap_or_default();
            if target.get("required").and_then(Value::as_bool) == Some(true) {
                desc = format!("Always sent. {desc}");
            }
            let row = format!("| `{name}` | {} | {} |", cell(&ty), cell(&desc));
            self.line(&row);
        }
        self.blank();
    }

    // ---- error codes ----------------------------------------------------------------

    /// Codes declared by the error-envelope schema (any string `enum` or `const` in it)
    /// together with every code used in an example.
    fn collect_known_codes(&self) -> BTreeSet<String> {
        let mut codes = BTreeSet::new();
        if let Some(schema) = self.spec.schemas.get(ENVELOPE_SCHEMA) {
            collect_enum_strings(schema, &mut codes);
        }
        collect_example_codes(self.root, &mut codes);
        codes
    }

    /// The codes a response can carry: named in its description or used in its examples.
    fn codes_of(&self, response: &'a Value) -> Vec<String> {
        let mut found = BTreeSet::new();
        if let Some(desc) = str_of(response, "description") {
            for token in backticked(desc) {
                if self.known_codes.contains(token) {
                    found.insert(token.to_string());
                }
            }
        }
        if let Some(content) = response.get("content") {
            let mut in_examples = BTreeSet::new();
            collect_example_codes(content, &mut in_examples);
            for ex in content
                .as_object()
                .into_iter()
                .flat_map(|c| c.values())
                .filter_map(|m| m.get("examples").and_then(Value::as_object))
                .flat_map(|e| e.values())
            {
                collect_example_codes(self.resolve(ex), &mut in_examples);
            }
            found.extend(in_examples);
        }
        // Keep the order in which the spec's own list names them.
        let order: Vec<&String> = self.known_codes.iter().collect();
        let mut list: Vec<String> = found.into_iter().collect();
        list.sort_by_key(|c| order.iter().position(|o| *o == c).unwrap_or(usize::MAX));
        list
    }

    fn error_codes(&mut self) {
        self.heading(2, "Appendix: error codes", Some("appendix/errors"));
        self.line(
            "Every error response with a body carries the envelope \
             `{\"errors\":[{\"code\",\"message\",\"detail\"}]}` \
             (schema [`error-envelope.schema.json`](schemas/error-envelope.schema.json)). \
             `message` is for people, `detail` is free-form. The table lists where this \
             spec uses each code; clients must tolerate codes they do not know.",
        );
        self.blank();
        // code -> (statuses, operations) where the spec uses it.
        let mut usage: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
        for op in self.operations() {
            let Some(responses) = op.op.get("responses").and_then(Value::as_object) else {
                continue;
            };
            for (status, response) in responses {
                for code in self.codes_of(self.resolve(response)) {
                    let entry = usage.entry(code).or_default();
                    entry.0.insert(status.clone());
                    if !entry.1.iter().any(|i| i == op.id()) {
                        entry.1.push(op.id().to_string());
                    }
                }
            }
        }
        let meanings = self.code_meanings();
        let total_ops = self.operations().len();
        self.line("| Code | HTTP status | Meaning | Used by |");
        self.line("|---|---|---|---|");
        let codes: Vec<String> = self.known_codes.iter().cloned().collect();
        for code in codes {
            let (statuses, ops) = usage.get(&code).cloned().unwrap_or_default();
            let statuses = if statuses.is_empty() {
                "—".to_string()
            } else {
                statuses.into_iter().collect::<Vec<_>>().join(", ")
            };
            let ops = if ops.is_empty() {
                "—".to_string()
            } else if ops.len() == total_ops {
                "every endpoint".to_string()
            } else {
                ops.iter()
                    .map(|o| Self::link(&format!("`{o}`"), &format!("op/{o}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let meaning = meanings.get(&code).cloned().unwrap_or_default();
            let row = format!("| `{code}` | {statuses} | {} | {ops} |", cell(&meaning));
            self.line(&row);
        }
        self.blank();
    }

    /// What each code means: a description the envelope schema gives it (a `oneOf` of
    /// `const`s with descriptions, or an `x-enum-descriptions` map/array), or else the
    /// `message` the spec's examples use with it.
    fn code_meanings(&self) -> BTreeMap<String, String> {
        let mut meanings = BTreeMap::new();
        collect_example_messages(self.root, &mut meanings);
        let mut explained: Vec<(String, Vec<String>)> = Vec::new();
        let mut responses: Vec<&'a Value> = Vec::new();
        responses.extend(
            self.components("responses")
                .into_iter()
                .flat_map(|r| r.values()),
        );
        for op in self.operations() {
            responses.extend(
                op.op
                    .get("responses")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|r| r.values())
                    .filter(|r| local_ref(r).is_none()),
            );
        }
        for response in responses {
            let Some(desc) = str_of(response, "description") else {
                continue;
            };
            for (code, text) in code_explanations(desc, &self.known_codes) {
                let text = text.trim_end_matches('.').to_string();
                let lower = text.to_lowercase();
                match explained.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, texts)) => {
                        let seen = texts.iter().any(|t| {
                            let t = t.to_lowercase();
                            t.starts_with(&lower) || lower.starts_with(&t)
                        });
                        if !seen {
                            texts.push(text);
                        }
                    }
                    None => explained.push((code, vec![text])),
                }
            }
        }
        for (code, texts) in explained {
            let joined = texts
                .iter()
                .enumerate()
                .map(|(i, t)| if i == 0 { t.clone() } else { decapitalise(t) })
                .collect::<Vec<_>>()
                .join("; ");
            meanings.insert(
                code,
                format!("{}.", capitalise(joined.trim_end_matches('.'))),
            );
        }
        if let Some(schema) = self.spec.schemas.get(ENVELOPE_SCHEMA) {
            collect_schema_meanings(schema, &mut meanings);
        }
        meanings
    }

    // ---- appendices -----------------------------------------------------------------

    fn media_types(&mut self) {
        self.heading(2, "Appendix: media types", Some("appendix/media-types"));
        let Some(table) = self.spec.media_types.as_ref().and_then(Value::as_array) else {
            self.line("The spec does not list media types (`spec/media-types.json` is missing).");
            self.blank();
            return;
        };
        self.line(
            "The media types a registry meets, from [`media-types.json`](media-types.json). \
             Registries store and serve every type byte for byte; the schema is what \
             Quayside checks a document of that type against.",
        );
        self.blank();
        self.line("| Media type | Kind | Schema | Description |");
        self.line("|---|---|---|---|");
        let mut rows = Vec::new();
        for entry in table {
            let media_type = str_of(entry, "mediaType").unwrap_or("?");
            let kind = str_of(entry, "kind").unwrap_or("");
            let schema = match str_of(entry, "schema") {
                Some(file) => format!("[`{file}`](schemas/{file})"),
                None => "—".to_string(),
            };
            let desc = str_of(entry, "description")
                .map(one_line)
                .unwrap_or_default();
            rows.push(format!(
                "| `{media_type}` | {kind} | {schema} | {} |",
                cell(&desc)
            ));
        }
        for row in rows {
            self.line(&row);
        }
        self.blank();
    }

    fn header_glossary(&mut self) {
        self.heading(2, "Appendix: headers", Some("appendix/headers"));
        let Some(headers) = self.components("headers") else {
            return;
        };
        let wire_names = self.header_wire_names();
        self.line("The response headers this API defines.");
        self.blank();
        self.line("| Header | Type | Meaning | Example |");
        self.line("|---|---|---|---|");
        let mut uses: HashMap<String, usize> = HashMap::new();
        for key in headers.keys() {
            let name = wire_names.get(key.as_str()).cloned().unwrap_or(key.clone());
            *uses.entry(name).or_default() += 1;
        }
        for (key, header) in headers {
            let header = self.resolve(header);
            let wire = wire_names.get(key.as_str()).cloned().unwrap_or(key.clone());
            // `Location` means different things on different responses: name which.
            let name = if uses.get(&wire).copied().unwrap_or(0) > 1 {
                format!("{wire}` (`{key}`)")
            } else {
                format!("{wire}`")
            };
            let ty = header
                .get("schema")
                .map(|s| self.type_text(s))
                .unwrap_or_default();
            let desc = str_of(header, "description")
                .map(one_line)
                .unwrap_or_default();
            let example = header
                .get("example")
                .or_else(|| header.get("schema").and_then(|s| s.get("example")))
                .map(example_inline)
                .unwrap_or_else(|| "—".to_string());
            let row = format!(
                "| `{name} | {} | {} | {} |",
                cell(&ty),
                cell(&desc),
                cell(&example)
            );
            self.line(&row);
        }
        self.blank();
    }

    /// The name a `components/headers` entry is sent under: the key of the first response
    /// header that references it (the component key itself cannot contain the dashes).
    fn header_wire_names(&self) -> HashMap<&'a str, String> {
        let mut names = HashMap::new();
        let mut visit = |headers: &'a Value| {
            for (name, h) in headers.as_object().into_iter().flatten() {
                if let Some(key) =
                    str_of(h, "$ref").and_then(|r| r.strip_prefix("#/components/headers/"))
                {
                    names.entry(key).or_insert_with(|| name.clone());
                }
            }
        };
        for op in self.operations() {
            for response in op
                .op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|r| r.values())
            {
                if let Some(h) = response.get("headers") {
                    visit(h);
                }
            }
        }
        for response in self
            .components("responses")
            .into_iter()
            .flat_map(|r| r.values())
        {
            if let Some(h) = response.get("headers") {
                visit(h);
            }
        }
        names
    }

    fn shared_responses(&mut self) {
        let Some(responses) = self.components("responses") else {
            return;
        };
        self.heading(2, "Appendix: shared responses", Some("appendix/responses"));
        self.line("Responses that several endpoints give, written out once.");
        for (name, response) in responses {
            let response = self.resolve(response);
            self.heading(3, &format!("`{name}`"), Some(&format!("response/{name}")));
            let head =
                response.get("content").is_none() && name.to_ascii_lowercase().starts_with("head");
            self.response_detail(response, head);
            let codes = self.codes_of(response);
            if !codes.is_empty() {
                let list: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
                self.line(&format!("Error codes: {}.", list.join(", ")));
                self.blank();
            }
        }
    }

    fn value_formats(&mut self) {
        let Some(schemas) = self.components("schemas") else {
            return;
        };
        self.heading(2, "Appendix: value formats", Some("appendix/formats"));
        self.line("The named formats of parameters and headers.");
        for (name, schema) in schemas {
            let schema = self.resolve(schema);
            self.heading(3, &format!("`{name}`"), Some(&format!("schema/{name}")));
            if let Some(desc) = str_of(schema, "description") {
                self.passthrough(desc);
            }
            let mut facts = vec![format!("Type: {}", plain_type(schema))];
            facts.extend(constraints_long(schema));
            if let Some(example) = schema.get("example") {
                facts.push(format!("Example: {}", example_inline(example)));
            }
            for fact in facts {
                self.line(&format!("- {fact}"));
            }
            if let Some(pattern) = str_of(schema, "pattern") {
                self.blank();
                self.line("Pattern:");
                self.blank();
                self.line("```text");
                self.line(pattern);
                self.line("```");
            }
            self.blank();
        }
    }

    fn example_documents(&mut self) {
        let Some(examples) = self.components("examples") else {
            return;
        };
        self.heading(2, "Appendix: example documents", Some("appendix/examples"));
        self.line("Examples that several endpoints refer to.");
        for (name, example) in examples {
            let example = self.resolve(example);
            let title = str_of(example, "summary")
                .map(one_line)
                .unwrap_or(name.clone());
            self.heading(3, &title, Some(&format!("example/{name}")));
            if let Some(desc) = str_of(example, "description") {
                self.passthrough(desc);
            }
            if let Some(value) = example.get("value") {
                let media = str_of(value, "mediaType").unwrap_or("application/json");
                self.example_block(media, value);
            }
        }
    }
}

/// The error envelope's schema file.
const ENVELOPE_SCHEMA: &str = "error-envelope.schema.json";

fn str_of<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

/// The JSON pointer of a local `$ref` (`#/components/...`).
fn local_ref(value: &Value) -> Option<&str> {
    str_of(value, "$ref").and_then(|r| r.strip_prefix('#'))
}

/// Multi-line prose as one line, for table cells and list items.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text safe inside a table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Lowercases a leading capital that starts an ordinary word (not `OCI` or `HTTP`).
fn decapitalise(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_string(),
    }
}

/// The first sentence of a description (up to a full stop followed by a space).
fn first_sentence(text: &str) -> String {
    let text = one_line(text);
    let mut in_code = false;
    for (i, c) in text.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code && text[i + 1..].starts_with(' ') => {
                return text[..=i].to_string();
            }
            _ => {}
        }
    }
    text
}

/// What a response description says each code means: the parenthesis right after a
/// code (`` `BLOB_UNKNOWN` (this repository does not hold the blob) ``), the text after
/// `` Code: `X`: ``, or, when the description names a single code, its first sentence.
fn code_explanations(desc: &str, known: &BTreeSet<String>) -> Vec<(String, String)> {
    let desc = one_line(desc);
    let mut out = Vec::new();
    let mut mentioned = Vec::new();
    let mut rest = desc.as_str();
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        let token = &after[..end];
        rest = &after[end + 1..];
        if !known.contains(token) {
            continue;
        }
        mentioned.push(token.to_string());
        if let Some(paren) = rest.strip_prefix(" (") {
            let mut depth = 1;
            let close = paren.char_indices().find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            });
            if let Some((i, _)) = close {
                out.push((token.to_string(), paren[..i].to_string()));
            }
        } else if let Some(text) = rest.strip_prefix(": ") {
            out.push((token.to_string(), first_sentence(text)));
        }
    }
    mentioned.dedup();
    if out.is_empty() && mentioned.len() == 1 {
        let first = first_sentence(&desc);
        if !first.starts_with("Code") && !first.contains(&format!("`{}`", mentioned[0])) {
            out.push((mentioned.remove(0), first));
        }
    }
    out
}

/// The texts between backticks.
fn backticked(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

fn status_text(status: &str) -> String {
    let reason = status
        .parse::<u16>()
        .ok()
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .and_then(|s| s.canonical_reason());
    match reason {
        Some(reason) => format!("{status} {reason}"),
        None if status == "default" => "other".to_string(),
        None => status.to_string(),
    }
}

/// `{}` reads as "anonymous"; otherwise the schemes that must all be satisfied.
fn security_requirement(req: &Value) -> String {
    match req.as_object() {
        Some(map) if map.is_empty() => "anonymous access".to_string(),
        Some(map) => map
            .keys()
            .map(|k| Renderer::link(&format!("`{k}`"), &format!("security/{k}")))
            .collect::<Vec<_>>()
            .join(" and "),
        None => "?".to_string(),
    }
}

fn plain_type(schema: &Value) -> String {
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    };
    let mut text = match str_of(schema, "format") {
        Some("binary") => "bytes".to_string(),
        Some(format) => format!("{ty} ({format})"),
        None => ty,
    };
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        text.push_str(" or null");
    }
    text
}

/// Constraints short enough for a table cell (patterns go in full: they are the contract).
fn constraints(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match schema
        .get("enum")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => out.push(format!("always {}", example_inline(only))),
        Some(values) => {
            let list: Vec<String> = values.iter().map(example_inline).collect();
            out.push(format!("one of {}", list.join(", ")));
        }
        None => {}
    }
    if let Some(c) = schema.get("const") {
        out.push(format!("always {}", example_inline(c)));
    }
    out.extend(bounds(schema));
    if let Some(p) = str_of(schema, "pattern") {
        out.push(format!("matching `{p}`"));
    }
    out
}

fn constraints_long(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let list: Vec<String> = values.iter().map(example_inline).collect();
        out.push(format!("One of {}", list.join(", ")));
    }
    out.extend(bounds(schema).into_iter().map(|b| capitalise(&b)));
    out
}

fn bounds(schema: &Value) -> Vec<String> {
    let num = |k: &str| schema.get(k).and_then(Value::as_i64);
    let mut out = Vec::new();
    match (num("minLength"), num("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("{a} to {b} characters")),
        (Some(a), None) => out.push(format!("at least {a} characters")),
        (None, Some(b)) => out.push(format!("at most {b} characters")),
        (None, None) => {}
    }
    match (num("minimum"), num("maximum")) {
        (Some(a), Some(b)) => out.push(format!("from {a} to {b}")),
        (Some(a), None) => out.push(format!("at least {a}")),
        (None, Some(b)) => out.push(format!("at most {b}")),
        (None, None) => {}
    }
    out
}

/// A value as inline code: strings bare, anything else as compact JSON.
fn example_inline(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        Value::Array(items) => items
            .iter()
            .map(example_inline)
            .collect::<Vec<_>>()
            .join(", "),
        other => format!("`{other}`"),
    }
}

/// A parameter's examples: `example`, or each of `examples` with its summary.
fn param_examples(param: &Value) -> String {
    if let Some(example) = param.get("example") {
        return example_inline(example);
    }
    let Some(examples) = param.get("examples").and_then(Value::as_object) else {
        return param
            .get("schema")
            .and_then(|s| s.get("example"))
            .map(example_inline)
            .unwrap_or_default();
    };
    examples
        .values()
        .filter_map(|e| {
            let value = example_inline(e.get("value")?);
            Some(match str_of(e, "summary") {
                Some(s) => format!("{value} ({})", s.to_lowercase()),
                None => value,
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn collect_enum_strings(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("enum", Value::Array(values)) => {
                        out.extend(values.iter().filter_map(Value::as_str).map(String::from));
                    }
                    ("const", Value::String(s)) => {
                        out.insert(s.clone());
                    }
                    _ => collect_enum_strings(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_enum_strings(i, out)),
        _ => {}
    }
}

/// Every `errors[].code` in a tree of examples.
fn collect_example_codes(value: &Value, out: &mut BTreeSet<String>) {
    walk_errors(value, &mut |code, _| {
        out.insert(code.to_string());
    });
}

fn collect_example_messages(value: &Value, out: &mut BTreeMap<String, String>) {
    walk_errors(value, &mut |code, message| {
        if let Some(m) = message {
            out.entry(code.to_string())
                .or_insert_with(|| capitalise(m) + ".");
        }
    });
}

/// Calls `f(code, message)` for every error object inside an `errors` array.
fn walk_errors(value: &Value, f: &mut dyn FnMut(&str, Option<&str>)) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(errors)) = map.get("errors") {
                for e in errors {
                    if let Some(code) = str_of(e, "code") {
                        f(code, str_of(e, "message"));
                    }
                }
            }
            for v in map.values() {
                walk_errors(v, f);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk_errors(i, f)),
        _ => {}
    }
}

/// Per-code descriptions in the envelope schema, in whichever of the usual shapes.
fn collect_schema_meanings(schema: &Value, out: &mut BTreeMap<String, String>) {
    match schema {
        Value::Object(map) => {
            if let (Some(Value::String(code)), Some(Value::String(desc))) =
                (map.get("const"), map.get("description"))
            {
                out.insert(code.clone(), one_line(desc));
            }
            if let (Some(Value::Array(codes)), Some(descs)) = (
                map.get("enum"),
                map.get("x-enum-descriptions")
                    .or_else(|| map.get("x-enumDescriptions"))
                    .or_else(|| map.get("enumDescriptions")),
            ) {
                for (i, code) in codes.iter().filter_map(Value::as_str).enumerate() {
                    let desc = match descs {
                        Value::Object(m) => m.get(code).and_then(Value::as_str),
                        Value::Array(a) => a.get(i).and_then(Value::as_str),
                        _ => None,
                    };
                    if let Some(desc) = desc {
                        out.insert(code.to_string(), one_line(desc));
                    }
                }
            }
            for v in map.values() {
                collect_schema_meanings(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_schema_meanings(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_github_rules() {
        assert_eq!(slug("Fetch a blob"), "fetch-a-blob");
        assert_eq!(slug("`basicAuth`"), "basicauth");
        assert_eq!(
            slug("Start a blob upload, push a blob in one request, or mount one"),
            "start-a-blob-upload-push-a-blob-in-one-request-or-mount-one"
        );
        assert_eq!(
            slug("Authentication: the token challenge flow"),
            "authentication-the-token-challenge-flow"
        );
    }

    #[test]
    fn first_sentence_stops_at_full_stop_outside_code() {
        assert_eq!(
            first_sentence("Code: `NAME_UNKNOWN`: gone. More."),
            "Code: `NAME_UNKNOWN`: gone."
        );
        assert_eq!(
            first_sentence("Uses `a. b` here. Then"),
            "Uses `a. b` here."
        );
        assert_eq!(first_sentence("No stop"), "No stop");
    }

    #[test]
    fn decapitalise_keeps_acronyms() {
        assert_eq!(decapitalise("The registry"), "the registry");
        assert_eq!(decapitalise("OCI-Tag headers"), "OCI-Tag headers");
    }

    #[test]
    fn code_explanations_read_parentheses_and_single_codes() {
        let known: BTreeSet<String> = ["BLOB_UNKNOWN", "NAME_UNKNOWN", "DENIED"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            code_explanations(
                "Codes: `BLOB_UNKNOWN` (no blob (here)), `NAME_UNKNOWN` (no repo).",
                &known
            ),
            vec![
                ("BLOB_UNKNOWN".to_string(), "no blob (here)".to_string()),
                ("NAME_UNKNOWN".to_string(), "no repo".to_string()),
            ]
        );
        assert_eq!(
            code_explanations("May not do this. Code: `DENIED`.", &known),
            vec![("DENIED".to_string(), "May not do this.".to_string())]
        );
        assert_eq!(
            code_explanations("Code: `NAME_UNKNOWN`: gone. More.", &known),
            vec![("NAME_UNKNOWN".to_string(), "gone.".to_string())]
        );
        assert!(code_explanations("Not allowed (`DENIED`).", &known).is_empty());
    }

    #[test]
    fn table_cells_escape_pipes_and_newlines() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
