//! The ergonomic layer over the generated client: references, a registry handle with auth,
//! OCI image layouts on disk, and image copy between any two of them.

pub mod auth;
pub mod copy;
pub mod layout;
pub mod reference;
pub mod registry;

use reqwest::StatusCode;

/// Everything that can go wrong talking to a registry or a layout; messages say which
/// repository, digest or file is involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Grammar(#[from] quayside_spec::grammar::GrammarError),
    #[error("{what}: registry answered {status}: {body}")]
    Status {
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("not authorized by {0}: check --username/--password or `dist login`")]
    Unauthorized(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("internal lock poisoned")]
    Poisoned,
}
