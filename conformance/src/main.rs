//! `conformance`: run the suite against a registry.

fn main() {}
