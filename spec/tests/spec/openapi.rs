//! `spec/openapi.yaml`: validity, parsing, examples.
