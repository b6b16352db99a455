//! `conveyor fleet ...`: accounts, organizational units, baselines, rollouts,
//! drift and freeze windows, over `conveyor.fleet.v1.FleetService`.
//!
//! Names may be given short (`prod`, `shop@3`) or in full
//! (`organizationalUnits/prod`, `baselines/shop/versions/3`).

mod accounts;
pub(crate) mod baselines;
mod freezes;
mod ous;
mod rollouts;

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use conveyor_api::common::v1::{Principal, Tier};
use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use prost_types::{Duration as PbDuration, Timestamp};
use tonic::Status;
use tonic::transport::Channel;

use super::Context;

type Client = FleetServiceClient<Channel>;

/// Baseline versions carry their files (at most 4 MiB); leave room for the rest.
const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Subcommand)]
pub enum FleetCommand {
    /// Vend, inspect, move, suspend, reactivate and close accounts.
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// Manage the tree of organizational units.
    #[command(subcommand)]
    Ou(ous::OuCommand),
    /// Create, inspect and assign versioned baselines.
    #[command(subcommand)]
    Baseline(baselines::BaselineCommand),
    /// Plan, start and follow baseline rollouts.
    #[command(subcommand)]
    Rollout(rollouts::RolloutCommand),
    /// List active accounts whose applied baseline is not their desired one.
    Drift(accounts::DriftArgs),
    /// Freeze changes below an OU, and break the glass.
    #[command(subcommand)]
    Freeze(freezes::FreezeCommand),
}

pub async fn run(ctx: &Context, command: FleetCommand) -> anyhow::Result<ExitCode> {
    let channel = conveyor_api::client::channel(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?;
    let client = FleetServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    match command {
        FleetCommand::Account(cmd) => accounts::run(ctx, client, cmd).await?,
        FleetCommand::Ou(cmd) => ous::run(ctx, client, cmd).await?,
        FleetCommand::Baseline(cmd) => baselines::run(ctx, client, cmd).await?,
        FleetCommand::Rollout(cmd) => rollouts::run(ctx, client, cmd).await?,
        FleetCommand::Drift(args) => accounts::drift(ctx, client, args).await?,
        FleetCommand::Freeze(cmd) => freezes::run(ctx, client, cmd).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Every page of a list: `page(token)` returns the items and the next token.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, Status>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = page(token).await?;
        all.extend(items);
        if next.is_empty() {
            return Ok(all);
        }
        token = next;
    }
}

/// `prod` or `organizationalUnits/prod` → `organizationalUnits/prod`.
fn resource(collection: &str, name: &str) -> String {
    match name.strip_prefix(collection) {
        Some(rest) if rest.starts_with('/') => name.to_owned(),
        _ => format!("{collection}/{name}"),
    }
}

fn ou_name(name: &str) -> String {
    resource("organizationalUnits", name)
}

/// `""` stays empty (the server's default, usually the root).
fn optional_ou(name: Option<&str>) -> String {
    name.map(ou_name).unwrap_or_default()
}

/// `NAME@VERSION` → `baselines/NAME/versions/VERSION`; a full name is kept.
fn version_name(s: &str) -> anyhow::Result<String> {
    if s.starts_with("baselines/") && s.contains("/versions/") {
        return Ok(s.to_owned());
    }
    match s.split_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => Ok(format!(
            "{}/versions/{version}",
            resource("baselines", name)
        )),
        _ => anyhow::bail!("{s:?} is not a baseline version: give NAME@VERSION, e.g. base@3"),
    }
}

/// `baselines/base/versions/3` → `base@3`, for tables.
fn short_version(name: &str) -> String {
    name.strip_prefix("baselines/")
        .and_then(|rest| rest.split_once("/versions/"))
        .map_or_else(|| name.to_owned(), |(b, v)| format!("{b}@{v}"))
}

/// The last segment of a resource name, for tables.
fn id(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Who is calling: `$USER`, as the other commands record it.
fn me() -> Option<Principal> {
    Some(Principal {
        id: std::env::var("USER").unwrap_or_default(),
        groups: Vec::new(),
    })
}

const TIERS: [&str; 6] = [
    "sandbox",
    "development",
    "beta",
    "gamma",
    "production",
    "tooling",
];

/// `production` → `Tier::Production`.
fn parse_tier(s: &str) -> Result<Tier, String> {
    TIERS
        .contains(&s)
        .then(|| Tier::from_str_name(&enum_const("TIER_", s)))
        .flatten()
        .ok_or_else(|| format!("unknown tier {s:?}; one of {}", TIERS.join(", ")))
}

fn tier_label(t: i32) -> String {
    Tier::try_from(t).map_or_else(|_| t.to_string(), |t| label("TIER_", t.as_str_name()))
}

/// `version-mismatch` → `PREFIX_VERSION_MISMATCH`.
fn enum_const(prefix: &str, s: &str) -> String {
    format!("{prefix}{}", s.to_uppercase().replace('-', "_"))
}

/// `PREFIX_VERSION_MISMATCH` → `version-mismatch`.
fn label(prefix: &str, str_name: &str) -> String {
    str_name
        .trim_start_matches(prefix)
        .to_lowercase()
        .replace('_', "-")
}

/// `team=payments` → (`team`, `payments`).
fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// `30m`, `2h`, `1h 30m`.
fn parse_span(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration like 30m or 2h: {e}"))
}

fn parse_duration(s: &str) -> Result<PbDuration, String> {
    parse_span(s).map(conveyor_api::time::duration)
}

/// RFC 3339 (`2026-12-24T00:00:00Z`) or `now`.
fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if s == "now" {
        return Ok(chrono::Utc::now());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-24T00:00:00Z: {e}"))
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Some(conveyor_api::time::timestamp(t))
}

fn duration_text(d: &Option<PbDuration>) -> String {
    d.as_ref()
        .and_then(conveyor_api::time::from_duration)
        .map(|d| humantime::format_duration(d).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ou_name("prod"), "organizationalUnits/prod");
        assert_eq!(
            ou_name("organizationalUnits/prod"),
            "organizationalUnits/prod"
        );
        assert_eq!(
            version_name("base@3").ok().as_deref(),
            Some("baselines/base/versions/3")
        );
        assert_eq!(
            version_name("baselines/base/versions/3").ok().as_deref(),
            Some("baselines/base/versions/3")
        );
        assert!(version_name("base").is_err());
        assert_eq!(short_version("baselines/base/versions/3"), "base@3");
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_tier("production"), Ok(Tier::Production));
        assert!(parse_tier("prod").is_err_and(|e| e.contains("production")));
        assert!(parse_tier("unspecified").is_err());
        assert_eq!(tier_label(Tier::Gamma as i32), "gamma");
        assert_eq!(parse_tag("team=a=b"), Ok(("team".into(), "a=b".into())));
        assert!(parse_tag("team").is_err());
        assert_eq!(parse_duration("30m").map(|d| d.seconds), Ok(1800));
        assert!(parse_time("2026-12-24T00:00:00Z").is_ok());
        assert!(parse_time("tomorrow").is_err());
    }
}
