//! Tests of the API-reference and schema-type generators: snapshots on small sample specs
//! and checks of what they produce from the real spec.

mod reference;
mod types;
#[allow(dead_code)]
mod types_sample;

use std::path::PathBuf;

/// The workspace root (parent of `codegen/`).
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A sample spec root below `tests/fixtures/`.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}
