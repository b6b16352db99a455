//! Integration tests of the definitions service: one binary for the crate.

#![allow(clippy::unwrap_used)] // test inputs are built by the tests themselves

mod conformance;
mod grpc;
mod server;
mod spec_invalid;
mod support;
mod templates;
