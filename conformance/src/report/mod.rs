//! Renderings of a [`RunReport`](crate::runner::RunReport): terminal progress and summary,
//! JUnit XML and JSON for CI, and one self-contained HTML page for people.

pub mod html;
pub mod json;
pub mod junit;
pub mod terminal;
