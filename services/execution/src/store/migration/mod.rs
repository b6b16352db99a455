//! Schema migrations. A released migration is never edited: add a new file.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_executions;
mod m20261127_000002_create_artifacts;
mod m20261127_000003_create_data_points;
mod m20261127_000004_add_approval_deadline;
mod m20261127_000005_add_parameters;
mod m20261203_000006_add_commits_and_tier;
mod m20261204_000007_add_traceparent;
mod m20261204_000008_add_upstream;
mod m20261204_000009_add_redeploy_of;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_executions::Migration),
            Box::new(m20261127_000002_create_artifacts::Migration),
            Box::new(m20261127_000003_create_data_points::Migration),
            Box::new(m20261127_000004_add_approval_deadline::Migration),
            Box::new(m20261127_000005_add_parameters::Migration),
            Box::new(m20261203_000006_add_commits_and_tier::Migration),
            Box::new(m20261204_000007_add_traceparent::Migration),
            Box::new(m20261204_000008_add_upstream::Migration),
            Box::new(m20261204_000009_add_redeploy_of::Migration),
        ]
    }
}
