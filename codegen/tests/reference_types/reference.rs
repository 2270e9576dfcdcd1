//! `spec/API.md`: every link lands on a heading, every operation and code is documented,
//! and the layout on a small sample spec is pinned by a snapshot.

use quayside_codegen::reference::{render, slug};
use quayside_codegen::SpecInput;
use std::collections::{BTreeSet, HashMap};

/// The anchors GitHub gives the headings of `markdown` (numbering repeats).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut in_fence = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let base = slug(&line.trim_start_matches('#').replace('`', ""));
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of `](#…)` links.
fn internal_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](#")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(String::from)
        .collect()
}

/// The targets of relative file links such as `](schemas/x.json)`.
fn file_links(markdown: &str) -> BTreeSet<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.starts_with('#') && !t.contains("://"))
        .map(String::from)
        .collect()
}

fn real_reference() -> String {
    let spec = SpecInput::load(&super::repo_root()).expect("repo spec loads");
    render(&spec).expect("reference renders")
}

#[test]
fn every_internal_link_of_the_real_reference_lands_on_a_heading() {
    let md = real_reference();
    let anchors = anchors(&md);
    let links = internal_links(&md);
    assert!(
        links.len() > 50,
        "expected many links, found {}",
        links.len()
    );
    let broken: Vec<&String> = links.iter().filter(|l| !anchors.contains(*l)).collect();
    assert!(broken.is_empty(), "links without a heading: {broken:?}");
}

#[test]
fn every_file_link_of_the_real_reference_names_a_file_in_spec() {
    let md = real_reference();
    let spec_dir = super::repo_root().join("spec");
    let missing: Vec<String> = file_links(&md)
        .into_iter()
        .filter(|f| !spec_dir.join(f).is_file())
        .collect();
    assert!(missing.is_empty(), "links to missing files: {missing:?}");
}

#[test]
fn every_operation_of_the_real_spec_has_a_section_with_method_and_path() {
    let spec = SpecInput::load(&super::repo_root()).expect("repo spec loads");
    let md = render(&spec).expect("reference renders");
    let paths = spec.openapi["paths"].as_object().expect("paths");
    let mut count = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Some(id) = op.get("operationId").and_then(|v| v.as_str()) else {
                continue;
            };
            count += 1;
            let line = format!("`{} {path}` (operation `{id}`)", method.to_uppercase());
            assert!(md.contains(&line), "no section line {line:?}");
            let summary = op["summary"].as_str().expect("summary");
            assert!(
                md.contains(&format!("\n### {summary}\n")),
                "no heading for {id}"
            );
        }
    }
    assert_eq!(count, 16, "the contract names 16 operations");
}

#[test]
fn error_code_table_of_the_real_reference_lists_the_fourteen_codes_with_statuses() {
    let md = real_reference();
    let table = md
        .split("## Appendix: error codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("error code appendix");
    for (code, status) in [
        ("BLOB_UNKNOWN", "404"),
        ("BLOB_UPLOAD_INVALID", "416"),
        ("BLOB_UPLOAD_UNKNOWN", "404"),
        ("DIGEST_INVALID", "400"),
        ("MANIFEST_BLOB_UNKNOWN", "400"),
        ("MANIFEST_INVALID", "400"),
        ("MANIFEST_UNKNOWN", "404"),
        ("NAME_INVALID", "400"),
        ("NAME_UNKNOWN", "404"),
        ("SIZE_INVALID", "416"),
        ("UNAUTHORIZED", "401"),
        ("DENIED", "403"),
        ("UNSUPPORTED", "405"),
        ("TOOMANYREQUESTS", "429"),
    ] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| `{code}` |")))
            .unwrap_or_else(|| panic!("no row for {code}"));
        let cells: Vec<&str> = row.split(" | ").collect();
        assert!(
            cells[1].split(", ").any(|s| s == status),
            "{code} row lacks status {status}: {row}"
        );
        assert!(cells[2].len() > 10, "{code} row has no meaning: {row}");
    }
}

#[test]
fn sample_spec_reference_matches_snapshot() {
    let spec = SpecInput::load(&super::fixture("reference-sample")).expect("sample loads");
    let md = render(&spec).expect("reference renders");
    insta::assert_snapshot!(md);
}

#[test]
fn sample_spec_reference_links_resolve() {
    let spec = SpecInput::load(&super::fixture("reference-sample")).expect("sample loads");
    let md = render(&spec).expect("reference renders");
    let anchors = anchors(&md);
    for link in internal_links(&md) {
        assert!(anchors.contains(&link), "broken link #{link}");
    }
}

#[test]
fn schema_descriptions_of_codes_win_over_example_messages() {
    let spec = SpecInput::load(&super::fixture("reference-sample")).expect("sample loads");
    let md = render(&spec).expect("reference renders");
    assert!(
        md.contains("| `DENIED` | — | Access to the resource was denied. | — |"),
        "{md}"
    );
    assert!(md.contains("| `NAME_UNKNOWN` | 404 | The repository does not exist. |"));
}
