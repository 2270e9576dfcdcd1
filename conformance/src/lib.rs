//! The Quayside conformance suite: checks any registry against `spec/`.
