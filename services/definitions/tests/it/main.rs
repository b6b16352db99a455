//! Integration tests of the definitions service: one binary for the crate.

mod conformance;
mod grpc;
mod spec_invalid;
mod support;
mod templates;
