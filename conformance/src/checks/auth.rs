//! auth checks.

use crate::check::Check;

/// The auth checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
