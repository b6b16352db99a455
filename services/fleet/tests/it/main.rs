//! Integration tests of the fleet service: one binary for the crate. Every
//! test runs on SQLite and, when configured, on Postgres.

#![allow(clippy::unwrap_used)] // test inputs are built by the tests themselves

mod accounts;
mod baselines;
mod drift;
mod following;
mod grpc;
mod planning;
mod rollouts;
mod support;
mod tree;
