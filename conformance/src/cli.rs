//! Command-line options.
