//! Integration tests of the definitions service: one binary for the crate.

mod conformance;
mod spec_invalid;
mod templates;
