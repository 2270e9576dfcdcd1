//! The Quayside registry server: the generated `RegistryApi` implemented over storage.
pub mod config;
pub mod error;
pub mod generated;
pub mod http;
pub mod registry;
pub mod storage;
