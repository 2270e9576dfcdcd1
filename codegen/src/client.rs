//! The client SDK: progenitor run over a normalised view of the bundled spec.

use crate::{GeneratedFile, SpecInput};

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> anyhow::Result<Vec<GeneratedFile>> {
    let _ = spec;
    Ok(Vec::new())
}
