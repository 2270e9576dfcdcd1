//! Tests of the bundled spec (`spec/openapi.bundled.yaml`) and of the client generator, run on
//! the repository's own spec.

mod bundle;
mod client;

use quayside_codegen::SpecInput;
use std::path::PathBuf;

/// The workspace root (parent of `codegen/`).
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The repository's spec, read from disk.
fn repo_spec() -> SpecInput {
    SpecInput::load(&repo_root()).expect("spec/ loads")
}
