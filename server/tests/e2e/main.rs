//! End-to-end and in-process tests of the generated server stubs (one test binary):
//! the route matcher, the dispatcher's enforcement of the spec, and a client talking to a
//! dropshot server built from the stubs over a minimal in-memory `RegistryApi`.

mod client;
mod dispatch;
mod grammar;
mod memory;
mod routes;
mod server;
