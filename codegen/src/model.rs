//! The operations of `spec/openapi.yaml` as a typed model that the generators share.
