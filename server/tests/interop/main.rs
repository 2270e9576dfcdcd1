//! Interoperability, test-vector and crash tests of the `registry` binary, run as a real
//! process on a real port: real-world manifests pushed over HTTP, `skopeo` copying a `umoci`
//! image through it, and SIGKILL in the middle of concurrent writes.
//!
//! Run with `cargo test -p quayside-server --test interop`; the skopeo test installs its
//! Debian peers through `.ci/peers` and fails if it cannot. Set `QUAYSIDE_REGISTRY_BIN` to
//! run the same tests against another executable honouring
//! `registry serve --listen ADDR --root DIR`.

mod crash;
mod harness;
mod skopeo;
mod vectors;
