//! The Quayside conformance suite: checks any registry against `spec/`.
//!
//! [`checks::all`] lists the checks, [`runner::run`] runs a selection concurrently and
//! returns a [`runner::RunReport`], which the [`report`] modules render for terminals, CI
//! (JUnit, JSON) and people (one self-contained HTML page).

pub mod check;
pub mod checks;
pub mod cli;
pub mod http;
pub mod report;
pub mod runner;
pub mod specval;

pub use check::{Check, CheckResult, Level, Outcome, Workflow};
pub use runner::{run, Config, Ctx, RunReport};
