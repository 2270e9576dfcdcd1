//! The Quayside registry server: the generated `RegistryApi` implemented over storage.
