//! The metrics service's configuration (see `conveyor_platform::config`
//! for how files, `CONVEYOR_` variables and flags combine).

use std::net::SocketAddr;

use conveyor_platform::ServerConfig;
use conveyor_platform::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

use crate::store::Retention;

/// The standalone service's gRPC port; `conveyor dev` serves everything on 7700.
pub const DEFAULT_PORT: u16 = 7704;
/// The dashboard's and `/metrics`' port.
pub const DEFAULT_HTTP_PORT: u16 = 7705;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(flatten)]
    pub server: ServerConfig,
    /// Where the dashboard and Prometheus `/metrics` are served (HTTP).
    pub http_listen: SocketAddr,
    /// `postgres://user@host/db` or `sqlite://path/to/file.db`.
    pub database_url: String,
    /// Database connections in the pool.
    pub max_connections: u32,
    pub log_format: LogFormat,
    /// Redis with the event stream (`redis://host:6379/`); without it the
    /// service reads an in-process stream (only useful inside `conveyor dev`).
    pub redis_url: Option<String>,
    /// The first part of every Redis key (as the other services').
    pub queue_prefix: String,
    /// The consumer's name in the stream's consumer group. Only the replica
    /// holding the ingest lock reads, so every replica uses the same name:
    /// whichever takes over first re-reads the batch its predecessor left
    /// unacknowledged.
    pub consumer_name: String,
    /// The SMTP server email notifications go through: "smtp://host:25",
    /// "smtp://host:587?tls=required" or "smtps://user:password@host:465";
    /// none: email rules are refused.
    pub smtp_url: Option<String>,
    /// The sender of notification emails.
    pub smtp_from: String,
    /// How long records, rollups and applied event ids are kept
    /// (`CONVEYOR_RETENTION__RECORDS_DAYS` and so on).
    pub retention: Retention,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
                ..ServerConfig::default()
            },
            http_listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT)),
            database_url: "sqlite://conveyor-metrics.db".to_owned(),
            max_connections: 16,
            log_format: LogFormat::Text,
            redis_url: None,
            queue_prefix: "conveyor".to_owned(),
            consumer_name: "metrics".to_owned(),
            smtp_url: None,
            smtp_from: "Conveyor <conveyor@localhost>".to_owned(),
            retention: Retention::default(),
        }
    }
}

/// Flags that override the configuration; only those given are set.
#[derive(Debug, Default, Serialize, clap::Args)]
pub struct Flags {
    /// Address to listen on [env: CONVEYOR_LISTEN] [default: 127.0.0.1:7704]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Address of the dashboard and /metrics [env: CONVEYOR_HTTP_LISTEN] [default: 127.0.0.1:7705]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_listen: Option<SocketAddr>,
    /// Database URL [env: CONVEYOR_DATABASE_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis URL of the event stream [env: CONVEYOR_REDIS_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The consumer name in the group [env: CONVEYOR_CONSUMER_NAME] [default: metrics]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    /// SMTP server for email notifications [env: CONVEYOR_SMTP_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// Log format: text or json [env: CONVEYOR_LOG_FORMAT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}
