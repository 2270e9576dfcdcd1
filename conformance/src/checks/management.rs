//! management checks.

use crate::check::Check;

/// The management checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
