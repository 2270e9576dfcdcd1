//! The Quayside client SDK: the generated client plus references, auth and image copy.
