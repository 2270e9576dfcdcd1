//! The published Quayside specification: the registry protocol (OpenAPI 3.0.3) and the
//! JSON Schemas of manifests, indexes, configs and errors, embedded for the other crates.

pub mod grammar;
pub mod openapi;
pub mod schemas;
pub mod types;
