//! Test databases for every service's integration tests (feature
//! `testing`): SQLite always, and Postgres when `CONVEYOR_TEST_DATABASE_URL`
//! is set, each test in its own fresh database. In CI (`CI` set) a missing
//! Postgres URL is an error, never a silent skip.

use sea_orm::{ConnectionTrait, Database};

/// A database for one test.
pub struct Backend {
    /// "sqlite" or "postgres".
    pub name: &'static str,
    /// The URL of the service the backends were made for.
    pub url: String,
    /// The server-level URL to drop a Postgres test database through.
    admin_url: Option<String>,
    dir: Option<tempfile::TempDir>,
}

impl Backend {
    /// The URL for `service`: its own SQLite file (its own migrations
    /// table); on Postgres services share the database, each in its schema.
    pub fn url_for(&self, service: &str) -> String {
        match &self.dir {
            Some(dir) => format!(
                "sqlite://{}",
                dir.path().join(format!("{service}.db")).display()
            ),
            None => self.url.clone(),
        }
    }

    /// Drops the test's Postgres database (CI also drops leftovers by prefix).
    pub async fn cleanup(self) {
        let (Some(admin_url), Some((_, name))) = (self.admin_url, self.url.rsplit_once('/')) else {
            return;
        };
        if let Ok(admin) = Database::connect(&admin_url).await {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// SQLite always; Postgres when configured. `service` names the SQLite file.
///
/// # Panics
/// When the Postgres server cannot be reached or in CI without one: a test
/// helper that must fail loudly.
#[allow(clippy::expect_used, clippy::panic)]
pub async fn backends(service: &str) -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sqlite = Backend {
        name: "sqlite",
        url: String::new(),
        admin_url: None,
        dir: Some(dir),
    };
    sqlite.url = sqlite.url_for(service);
    let mut all = vec![sqlite];
    match std::env::var("CONVEYOR_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            let (base, db) = url.rsplit_once('/').expect("postgres URL with a database");
            let name = format!(
                "{}_{}",
                db.split('?').next().unwrap_or(db),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let admin = Database::connect(&url)
                .await
                .expect("connect to CONVEYOR_TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.expect("close");
            all.push(Backend {
                name: "postgres",
                url: format!("{base}/{name}"),
                admin_url: Some(url),
                dir: None,
            });
        }
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!("CI must set CONVEYOR_TEST_DATABASE_URL; refusing to skip the Postgres tests")
        }
        _ => {}
    }
    all
}
