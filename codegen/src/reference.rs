//! The human-readable API reference, generated from the spec.

use crate::{GeneratedFile, SpecInput};

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> anyhow::Result<Vec<GeneratedFile>> {
    let _ = spec;
    Ok(Vec::new())
}
