//! The fleet service's configuration (see `conveyor_platform::config`
//! for how files, `CONVEYOR_` variables and flags combine).

use std::net::SocketAddr;

use conveyor_platform::ServerConfig;
use conveyor_platform::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

/// The standalone service's port; `conveyor dev` serves everything on 7700.
pub const DEFAULT_PORT: u16 = 7703;

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
    /// Where the execution service answers (vending and rollout executions).
    pub execution_endpoint: String,
    /// The account-fleet pipeline that provisions new accounts.
    pub vending_pipeline: String,
    /// The account-fleet pipeline that applies baseline rollouts.
    pub rollout_pipeline: String,
    /// Seconds between passes that follow vending and rollout executions.
    pub track_interval_secs: u64,
    /// Seconds between drift checks (every applied baseline's check
    /// command); 0 turns them off.
    pub drift_check_interval_secs: u64,
    /// Where drift checks unpack baseline bundles.
    pub drift_check_dir: std::path::PathBuf,
    /// Variables drift check commands get from the service's environment
    /// (e.g. the credentials they need), beyond PATH, HOME, LANG and TMPDIR.
    pub drift_check_env: Vec<String>,
    /// Redis for the event stream (`redis://host:6379/`); without it events
    /// stay in the process.
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
            database_url: "sqlite://conveyor-fleet.db".to_owned(),
            max_connections: 16,
            log_format: LogFormat::Text,
            execution_endpoint: "http://127.0.0.1:7702".to_owned(),
            vending_pipeline: "pipelines/account-vending".to_owned(),
            rollout_pipeline: "pipelines/account-fleet".to_owned(),
            track_interval_secs: 5,
            drift_check_interval_secs: 3600,
            drift_check_dir: std::env::temp_dir().join("conveyor-fleet-checks"),
            drift_check_env: Vec::new(),
            redis_url: None,
            queue_prefix: "conveyor".to_owned(),
        }
    }
}

/// Flags that override the configuration; only those given are set.
#[derive(Debug, Default, Serialize, clap::Args)]
pub struct Flags {
    /// Address to listen on [env: CONVEYOR_LISTEN] [default: 127.0.0.1:7703]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Database URL [env: CONVEYOR_DATABASE_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The execution service [env: CONVEYOR_EXECUTION_ENDPOINT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_endpoint: Option<String>,
    /// The pipeline that provisions accounts [env: CONVEYOR_VENDING_PIPELINE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vending_pipeline: Option<String>,
    /// The pipeline that applies baseline rollouts [env: CONVEYOR_ROLLOUT_PIPELINE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_pipeline: Option<String>,
    /// Redis URL for the event stream [env: CONVEYOR_REDIS_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Log format: text or json [env: CONVEYOR_LOG_FORMAT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}
