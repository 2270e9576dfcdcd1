//! discovery checks.

use crate::check::Check;

/// The discovery checks.
pub fn checks() -> Vec<Check> {
    Vec::new()
}
