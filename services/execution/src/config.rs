//! The execution service's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;

use conveyor_platform::ServerConfig;
use conveyor_platform::telemetry::LogFormat;
use serde::{Deserialize, Serialize};

pub const DEFAULT_PORT: u16 = 7702;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    #[serde(flatten)]
    pub server: ServerConfig,
    pub database_url: String,
    pub max_connections: u32,
    pub log_format: LogFormat,
    /// Where the definitions service answers.
    pub definitions_endpoint: String,
    /// Where the fleet service answers (`fromFleet` stages resolve their
    /// waves there); without it such stages wait and say why.
    pub fleet_endpoint: Option<String>,
    /// Seconds a claimed attempt stays leased without a heartbeat.
    pub lease_secs: u64,
    /// Seconds between passes that re-dispatch attempts whose lease expired.
    pub reconcile_interval_secs: u64,
    /// Seconds a queued attempt may wait unclaimed before it is dispatched again.
    pub redispatch_secs: u64,
    /// Bytes of output kept per action attempt.
    pub log_limit_bytes: i64,
    /// Redis for dispatches and events (`redis://host:6379/`); without it
    /// they stay in process and workers poll with ClaimTask.
    pub redis_url: Option<String>,
    /// The first part of every Redis key.
    pub queue_prefix: String,
    /// Where artifacts are stored: a directory, `file:///dir`, or
    /// `s3://bucket/prefix` (with the `s3` feature; credentials from the
    /// usual AWS_* variables).
    pub artifact_store: String,
    /// The control plane's ed25519 signing key (PKCS#8 PEM); created on
    /// first start when missing, with its public key in `<file>.pub`.
    pub signing_key_file: PathBuf,
    /// Public keys (SPKI PEM files) whose artifact signatures are still
    /// accepted besides the signing key's, e.g. the key before a rotation.
    pub trusted_key_files: Vec<PathBuf>,
    /// The largest artifact accepted, in bytes.
    pub max_artifact_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
                ..ServerConfig::default()
            },
            database_url: "sqlite://conveyor-execution.db".to_owned(),
            max_connections: 16,
            log_format: LogFormat::Text,
            definitions_endpoint: "http://127.0.0.1:7701".to_owned(),
            fleet_endpoint: None,
            lease_secs: 30,
            reconcile_interval_secs: 5,
            redispatch_secs: 30,
            log_limit_bytes: 1 << 20,
            redis_url: None,
            queue_prefix: "conveyor".to_owned(),
            artifact_store: "conveyor-artifacts".to_owned(),
            signing_key_file: PathBuf::from("conveyor-signing-key.pem"),
            trusted_key_files: Vec::new(),
            max_artifact_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Default, Serialize, clap::Args)]
pub struct Flags {
    /// Address to listen on [env: CONVEYOR_LISTEN] [default: 127.0.0.1:7702]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Database URL [env: CONVEYOR_DATABASE_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The definitions service [env: CONVEYOR_DEFINITIONS_ENDPOINT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definitions_endpoint: Option<String>,
    /// The fleet service [env: CONVEYOR_FLEET_ENDPOINT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_endpoint: Option<String>,
    /// Redis URL for dispatches and events [env: CONVEYOR_REDIS_URL]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Artifact store: a directory, file:///dir or s3://bucket/prefix [env: CONVEYOR_ARTIFACT_STORE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<String>,
    /// The ed25519 artifact signing key, PKCS#8 PEM [env: CONVEYOR_SIGNING_KEY_FILE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// Log format: text or json [env: CONVEYOR_LOG_FORMAT]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<String>,
}
