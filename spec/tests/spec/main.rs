//! Tests of the published spec: one test binary, one module per concern.

mod openapi;
mod schemas;
mod types;
