//! Schema migrations. A released migration is never edited: add a new file.

use sea_orm_migration::prelude::*;

mod m20261203_000001_create_metrics;
mod m20261203_000002_create_notifications;
mod m20261204_000003_create_rollups;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261203_000001_create_metrics::Migration),
            Box::new(m20261203_000002_create_notifications::Migration),
            Box::new(m20261204_000003_create_rollups::Migration),
        ]
    }
}
