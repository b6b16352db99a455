//! Integration tests of the metrics service: one binary for the crate. Every
//! test runs on SQLite with the in-process stream and, when configured, on
//! Postgres with Redis; the service answers on a real socket.

#![allow(clippy::unwrap_used)] // test inputs are built by the tests themselves

mod events;
mod history;
mod http;
mod ingest;
mod notify;
mod receivers;
mod rollups;
mod support;
