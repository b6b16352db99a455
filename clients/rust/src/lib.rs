//! Conveyor's protobuf contracts: generated messages, gRPC clients and
//! servers, and the typed client helpers every caller shares.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub use generated::conveyor::*;

pub mod client;
pub mod pipelines;
pub mod time;

impl execution::v1::ExecutionState {
    /// Whether an execution in this state has ended: no state follows.
    pub fn is_final(self) -> bool {
        use execution::v1::ExecutionState as S;
        matches!(
            self,
            S::Succeeded | S::Failed | S::Cancelled | S::Superseded | S::RolledBack
        )
    }
}

impl execution::v1::Execution {
    /// Whether the execution has ended (an unknown state counts as not).
    pub fn has_ended(&self) -> bool {
        execution::v1::ExecutionState::try_from(self.state).is_ok_and(|s| s.is_final())
    }
}

/// The encoded file descriptor set of every Conveyor contract, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/conveyor_descriptor.bin"));
