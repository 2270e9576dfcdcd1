//! `spec/schemas/`: vectors, violations, spec-lint.
