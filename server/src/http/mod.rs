//! The HTTP layer under the generated server code (`server/src/generated/`): hand-written
//! and independent of the spec, so it lives here rather than being copied out by the
//! codegen. Storage is never touched from here.

pub mod runtime;
