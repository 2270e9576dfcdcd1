//! edge checks.

use crate::check::Check;

/// The edge checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
