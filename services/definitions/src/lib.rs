//! Conveyor's definitions service: pipelines as code, immutable revisions,
//! templates, and DPRA conformance.

pub mod conformance;
pub mod spec;
pub mod templates;
