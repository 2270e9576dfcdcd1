//! The JSON Schemas in `spec/schemas/` and validation of documents against them.
