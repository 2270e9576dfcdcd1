//! Interoperability, test-vector and crash tests of the `registry` binary, run as a real
//! process on a real port: real-world manifests pushed over HTTP, `skopeo` copying a `umoci`
//! image through it, and SIGKILL in the middle of concurrent writes.
//!
//! Set `QUAYSIDE_REGISTRY_BIN` to run the same tests against another executable that
//! honours the `registry serve --listen ADDR --root DIR` contract.

mod crash;
mod harness;
mod skopeo;
mod vectors;
