//! Conveyor's protobuf contracts: generated messages, gRPC clients and
//! servers, and the typed client helpers every caller shares.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use generated::conveyor::*;

pub mod client;
pub mod pipelines;

/// The encoded file descriptor set of every Conveyor contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/conveyor_descriptor.bin"));
