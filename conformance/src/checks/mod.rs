//! Every check, grouped by workflow; [`all`] is the registry the runner uses.
//!
//! Each module exposes `pub fn checks() -> Vec<Check>`. Ids are `<workflow>.<area>.<case>`
//! and must stay unique and stable (reports and expectation files refer to them).

pub mod auth;
pub mod discovery;
pub mod docker;
pub mod edge;
pub mod management;
pub mod pull;
pub mod push;

use crate::check::Check;

/// Every check of every module, in report order.
pub fn all() -> Vec<Check> {
    let mut checks = Vec::new();
    checks.extend(pull::checks());
    checks.extend(push::checks());
    checks.extend(discovery::checks());
    checks.extend(management::checks());
    checks.extend(docker::checks());
    checks.extend(edge::checks());
    checks.extend(auth::checks());
    checks
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn check_ids_are_unique_and_start_with_their_workflow() {
        let mut seen = HashSet::new();
        for check in super::all() {
            assert!(seen.insert(check.id), "duplicate check id {}", check.id);
            assert!(
                check
                    .id
                    .starts_with(&format!("{}.", check.workflow.as_str())),
                "{} is not under its workflow {}",
                check.id,
                check.workflow
            );
            assert!(!check.rule.is_empty(), "{} cites no rule", check.id);
        }
    }
}
