//! pull checks.

use crate::check::Check;

/// The pull checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
