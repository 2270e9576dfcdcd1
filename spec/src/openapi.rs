//! The HTTP protocol document, `spec/openapi.yaml`.
