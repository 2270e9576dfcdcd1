//! The grammar of names, tags, digests and references, shared by server, client and suite.
