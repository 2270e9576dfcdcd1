//! The server stubs: per-operation params and responses, the `RegistryApi` trait, the
//! right-to-left `/v2/...` route matcher and the dropshot catch-all dispatcher.

use crate::{GeneratedFile, SpecInput};

/// The files this generator owns.
pub fn generate(spec: &SpecInput) -> anyhow::Result<Vec<GeneratedFile>> {
    let _ = spec;
    Ok(Vec::new())
}
