//! The definitions service's configuration (see `conveyor_platform::config`
//! for how files, `CONVEYOR_` variables and flags combine).

use std::net::SocketAddr;

use conveyor_platform::ServerConfig;
use conveyor_platform::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

/// The standalone service's port; `conveyor dev` serves everything on 7700.
pub const DEFAULT_PORT: u16 = 7701;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(flatten)]
    pub server: ServerConfig,
    /// `postgres://user@host/db` or `sqlite://path/to/file.db`.
    pub database_url: String,
    /// Database connections in the pool.
    pub max_connections: u32,
    pub log_format: LogFormat,
    /// Redis for the event stream (`redis://host:6379/`); without it no
    /// events are published.
    pub redis_url: Option<String>,
    /// The first part of every Redis key (as the other services').
    pub queue_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
                ..ServerConfig::default()
            },
            database_url: "sqlite://conveyor-definitions.db".to_owned(),
            max_connections: 16,
            log_format: LogFormat::Text,
            redis_url: None,
            queue_prefix: "conveyor".to_owned(),
        }
    }
}

/// Flags that override the configuration; only those given are set.
#[derive(Debug, Default, Serialize, clap::Args)]
pub struct Flags {
    /// Address to listen on [env: CONVEYOR_LISTEN] [default: 127.0.0.1:7701]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Database URL [env: CONVEYOR_DATABASE_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis URL for the event stream [env: CONVEYOR_REDIS_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Log format: text or json [env: CONVEYOR_LOG_FORMAT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}
