//! Integration tests of the execution service: one binary for the crate.

#![allow(clippy::unwrap_used)]

mod artifacts;
mod executions;
mod fleet_rollouts;
mod fleet_waves;
mod gates;
mod holds;
mod logs;
mod support;
mod upstream;
mod waves;
