//! The Quayside registry server: the generated `RegistryApi` implemented over storage.
pub mod generated;
pub mod error;
pub mod storage;
