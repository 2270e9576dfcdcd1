//! docker checks.

use crate::check::Check;

/// The docker checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
