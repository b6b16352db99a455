//! Schema migrations. A released migration is never edited: add a new file.

use sea_orm_migration::prelude::*;

mod m20261127_000001_create_fleet;
mod m20261127_000002_add_vending_pipeline;
mod m20261204_000003_add_auto_rollout;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_fleet::Migration),
            Box::new(m20261127_000002_add_vending_pipeline::Migration),
            Box::new(m20261204_000003_add_auto_rollout::Migration),
        ]
    }
}
