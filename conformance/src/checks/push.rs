//! push checks.

use crate::check::Check;

/// The push checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
