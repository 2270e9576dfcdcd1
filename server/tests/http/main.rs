//! Integration tests of the registry over real HTTP: every operation of the spec and every
//! error path, against filesystem storage in a temporary directory (and memory storage
//! where it costs nothing). One binary, one module per concern.

mod base;
mod binary;
mod blobs;
mod common;
mod manifests;
mod paths;
mod referrers;
mod stalled;
mod tags;
mod uploads;
