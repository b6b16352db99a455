//! Schema migrations. A released migration is never edited: add a new file.

use sea_orm_migration::prelude::*;

mod m20261126_000001_create_pipelines;
mod m20261204_000002_pipeline_upstreams;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_pipelines::Migration),
            Box::new(m20261204_000002_pipeline_upstreams::Migration),
        ]
    }
}
