pub mod demo;
pub mod dev;
pub mod fleet;
pub mod holds;
pub mod metrics;
pub mod notify;
pub mod pipeline;
mod provenance;
pub mod run;

use crate::output::OutputFormat;

/// What every command gets from the global flags.
pub struct Context {
    pub endpoint: String,
    pub output: OutputFormat,
}
