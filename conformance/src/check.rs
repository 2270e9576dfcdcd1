//! What a check is: its identity, the rule it cites, and the outcome it reaches.
//!
//! Checks are plain values built with [`Check::new`]; each module under `checks/` returns
//! its own list and `checks::all()` gathers them. A body is an async closure taking a
//! [`Ctx`](crate::runner::Ctx) and returning [`CheckResult`]: `Ok(())` is a pass, `Err`
//! carries the non-passing [`Outcome`] so that `?` stops a check at its first failure.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::runner::Ctx;

/// The workflow a check belongs to, as `--workflows` selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workflow {
    /// Reading blobs and manifests (OCI "pull").
    Pull,
    /// Uploading blobs and manifests (OCI "push").
    Push,
    /// Tag listing and referrers (OCI "content discovery").
    Discovery,
    /// Deleting content (OCI "content management").
    Management,
    /// Docker media types and Docker client behaviour.
    Docker,
    /// Edge cases that broke real registries.
    Edge,
    /// Authentication challenges and tokens.
    Auth,
}

impl Workflow {
    /// Every workflow, in report order.
    pub const ALL: [Workflow; 7] = [
        Workflow::Pull,
        Workflow::Push,
        Workflow::Discovery,
        Workflow::Management,
        Workflow::Docker,
        Workflow::Edge,
        Workflow::Auth,
    ];

    /// The lower-case name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Workflow::Pull => "pull",
            Workflow::Push => "push",
            Workflow::Discovery => "discovery",
            Workflow::Management => "management",
            Workflow::Docker => "docker",
            Workflow::Edge => "edge",
            Workflow::Auth => "auth",
        }
    }

    /// Parses a command-line name; the OCI suite's long names are accepted too.
    pub fn parse(name: &str) -> Option<Workflow> {
        match name.trim().to_ascii_lowercase().as_str() {
            "pull" => Some(Workflow::Pull),
            "push" => Some(Workflow::Push),
            "discovery" | "content-discovery" | "content_discovery" => Some(Workflow::Discovery),
            "management" | "content-management" | "content_management" => {
                Some(Workflow::Management)
            }
            "docker" => Some(Workflow::Docker),
            "edge" => Some(Workflow::Edge),
            "auth" => Some(Workflow::Auth),
            _ => None,
        }
    }
}

impl fmt::Display for Workflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How binding the rule a check tests is (RFC 2119), which decides how a failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// A failure is a conformance failure.
    Must,
    /// A failure is reported apart from MUST failures.
    Should,
    /// An optional feature: absence is `Unsupported`, never a failure.
    May,
}

impl Level {
    /// `MUST`, `SHOULD` or `MAY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    /// The registry did what the rule asks.
    Pass,
    /// The registry broke the rule; the text says expected vs got.
    Fail(String),
    /// The registry lacks an optional feature the check needs.
    Unsupported(String),
    /// The check did not apply to this configuration (e.g. no cross-mount namespace).
    Skip(String),
}

impl Outcome {
    /// `pass`, `fail`, `unsupported` or `skip`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Unsupported(_) => "unsupported",
            Outcome::Skip(_) => "skip",
        }
    }

    /// The reason text, empty for a pass.
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Unsupported(r) | Outcome::Skip(r) => r,
        }
    }

    /// True for [`Outcome::Fail`].
    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

/// What a check body returns: `Ok(())` passes, `Err(outcome)` is any other ending.
pub type CheckResult = Result<(), Outcome>;

/// A failure with this message.
pub fn fail(message: impl Into<String>) -> Outcome {
    Outcome::Fail(message.into())
}

/// An optional feature the registry lacks.
pub fn unsupported(message: impl Into<String>) -> Outcome {
    Outcome::Unsupported(message.into())
}

/// The check does not apply here.
pub fn skip(message: impl Into<String>) -> Outcome {
    Outcome::Skip(message.into())
}

/// Fails with `message` unless `condition` holds.
pub fn ensure(condition: bool, message: impl FnOnce() -> String) -> CheckResult {
    if condition {
        Ok(())
    } else {
        Err(Outcome::Fail(message()))
    }
}

/// Fails with "`what`: expected `want`, got `got`" unless the two are equal.
pub fn ensure_eq<T, U>(what: &str, got: &T, want: &U) -> CheckResult
where
    T: PartialEq<U> + fmt::Debug + ?Sized,
    U: fmt::Debug + ?Sized,
{
    if got == want {
        Ok(())
    } else {
        Err(Outcome::Fail(format!(
            "{what}: expected {want:?}, got {got:?}"
        )))
    }
}

/// A boxed check body future.
pub type BodyFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;

/// A check body: called once per run with a fresh context.
pub type Body = Arc<dyn Fn(Ctx) -> BodyFuture + Send + Sync>;

/// One conformance check.
#[derive(Clone)]
pub struct Check {
    /// Stable id, `<workflow>.<area>.<case>` (e.g. `push.blob.monolithic-post-put`).
    pub id: &'static str,
    /// Workflow it belongs to.
    pub workflow: Workflow,
    /// How binding the rule is.
    pub level: Level,
    /// One line for humans.
    pub title: &'static str,
    /// The rule it tests, citing the endpoint id or section (`end-6 MUST: …`).
    pub rule: &'static str,
    /// The test itself.
    pub body: Body,
}

impl Check {
    /// Builds a check from an async closure: `Check::new(id, wf, level, title, rule,
    /// |ctx| async move { … Ok(()) })`.
    pub fn new<F, Fut>(
        id: &'static str,
        workflow: Workflow,
        level: Level,
        title: &'static str,
        rule: &'static str,
        body: F,
    ) -> Check
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CheckResult> + Send + 'static,
    {
        Check {
            id,
            workflow,
            level,
            title,
            rule,
            body: Arc::new(move |ctx| Box::pin(body(ctx))),
        }
    }
}

impl fmt::Debug for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .field("workflow", &self.workflow)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}
