//! Tests of the server-stub generator: snapshots on a small sample spec, and the drift check
//! that keeps committed generated files equal to what the spec produces.

mod drift;
mod snapshots;

use std::path::PathBuf;

/// The workspace root (parent of `codegen/`).
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The sample spec's root (holds `spec/openapi.yaml`).
fn sample_root() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sample"
    ))
}
