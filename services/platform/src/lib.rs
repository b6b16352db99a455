//! What every Conveyor service stands on: configuration, telemetry, the
//! database, and gRPC server assembly.

pub mod config;
pub mod database;
pub mod errors;
pub mod events;
pub mod queue;
pub mod server;
pub mod signing;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use server::{ServerConfig, shutdown_signal};
