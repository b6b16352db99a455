//! `conveyor fleet freeze ...`: change freezes on OU subtrees, and
//! break-glass overrides.

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Subcommand};
use conveyor_api::common::v1::Principal;
use conveyor_api::fleet::v1 as pb;
use serde_json::{Value, json};

use super::{Client, Context, all_pages, me, ou_name, parse_span, parse_time, resource, timestamp};
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum FreezeCommand {
    /// Freeze production stages and rollouts below an OU for a while.
    Add(AddArgs),
    /// List current and future freezes (every OU's unless --ou).
    List(ListArgs),
    /// Remove a freeze window.
    Remove(NameArgs),
    /// Break-glass: let a pipeline or rollout through an active freeze.
    Override(OverrideArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("until").required(true).args(["end", "lasts"])))]
pub struct AddArgs {
    /// The OU frozen, with everything below it.
    #[arg(long)]
    ou: String,
    /// Why changes are frozen, shown on held stages and rollouts.
    #[arg(long)]
    reason: String,
    /// When the freeze begins: an RFC 3339 time or `now`.
    #[arg(long, default_value = "now", value_parser = parse_time)]
    start: DateTime<Utc>,
    /// When the freeze ends: an RFC 3339 time.
    #[arg(long, value_parser = parse_time)]
    end: Option<DateTime<Utc>>,
    /// Instead of --end: how long the freeze lasts from its start, e.g. 2h.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_span)]
    lasts: Option<std::time::Duration>,
    /// The window's id [default: generated].
    #[arg(long)]
    id: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only the windows on this OU.
    #[arg(long)]
    ou: Option<String>,
    /// Also the windows of the OU's ancestors, which apply to it too.
    #[arg(long)]
    inherited: bool,
    /// Also windows that have ended.
    #[arg(long)]
    ended: bool,
}

#[derive(Args)]
pub struct NameArgs {
    /// `OU/ID` or `organizationalUnits/OU/freezeWindows/ID`.
    name: String,
}

#[derive(Args)]
pub struct OverrideArgs {
    /// `OU/ID` or `organizationalUnits/OU/freezeWindows/ID`.
    name: String,
    /// Why the freeze must be broken.
    #[arg(long)]
    reason: String,
    /// Who breaks it.
    #[arg(long)]
    principal: String,
    /// The pipeline allowed through [default: with no --rollout, everything].
    #[arg(long)]
    pipeline: Option<String>,
    /// The rollout allowed through.
    #[arg(long)]
    rollout: Option<String>,
    /// When the override stops applying: an RFC 3339 time [default: the window's end].
    #[arg(long, value_parser = parse_time)]
    expires: Option<DateTime<Utc>>,
}

/// `prod/holidays` or the full name → `organizationalUnits/prod/freezeWindows/holidays`.
fn freeze_name(s: &str) -> anyhow::Result<String> {
    if s.starts_with("organizationalUnits/") && s.contains("/freezeWindows/") {
        return Ok(s.to_owned());
    }
    match s.rsplit_once('/') {
        Some((ou, id)) if !ou.is_empty() && !id.is_empty() => {
            Ok(format!("{}/freezeWindows/{id}", ou_name(ou)))
        }
        _ => anyhow::bail!("{s:?} is not a freeze window: give OU/ID, e.g. prod/holidays"),
    }
}

pub async fn run(ctx: &Context, mut client: Client, command: FreezeCommand) -> anyhow::Result<()> {
    let window = match command {
        FreezeCommand::Add(args) => {
            let end = match (args.end, args.lasts) {
                (Some(end), _) => end,
                (None, Some(lasts)) => args.start + chrono::Duration::from_std(lasts)?,
                (None, None) => anyhow::bail!("give --end or --for"),
            };
            client
                .create_freeze_window(pb::CreateFreezeWindowRequest {
                    parent: ou_name(&args.ou),
                    freeze_window_id: args.id.unwrap_or_default(),
                    freeze_window: Some(pb::FreezeWindow {
                        reason: args.reason,
                        start_time: timestamp(args.start),
                        end_time: timestamp(end),
                        ..Default::default()
                    }),
                    principal: me(),
                    request_id: String::new(),
                })
                .await
        }
        FreezeCommand::List(args) => return list(ctx, client, args).await,
        FreezeCommand::Remove(args) => {
            let name = freeze_name(&args.name)?;
            client
                .delete_freeze_window(pb::DeleteFreezeWindowRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await
                .map_err(to_anyhow)?;
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!({"deleted": name})),
                OutputFormat::Table => println!("{name} removed"),
            }
            return Ok(());
        }
        FreezeCommand::Override(args) => {
            client
                .override_freeze_window(pb::OverrideFreezeWindowRequest {
                    name: freeze_name(&args.name)?,
                    reason: args.reason,
                    principal: Some(Principal {
                        id: args.principal,
                        groups: Vec::new(),
                    }),
                    pipeline: args
                        .pipeline
                        .map(|p| resource("pipelines", &p))
                        .unwrap_or_default(),
                    rollout: args
                        .rollout
                        .map(|r| resource("rollouts", &r))
                        .unwrap_or_default(),
                    expire_time: args.expires.and_then(timestamp),
                    request_id: String::new(),
                })
                .await
        }
    }
    .map_err(to_anyhow)?
    .into_inner();
    match ctx.output {
        OutputFormat::Json => output::print_json(&freeze_json(&window)),
        OutputFormat::Table => print_windows(std::slice::from_ref(&window)),
    }
    Ok(())
}

async fn list(ctx: &Context, client: Client, args: ListArgs) -> anyhow::Result<()> {
    let parent = args
        .ou
        .as_deref()
        .map_or_else(|| "organizationalUnits/-".to_owned(), ou_name);
    let windows = all_pages(|token| {
        let mut client = client.clone();
        let request = pb::ListFreezeWindowsRequest {
            parent: parent.clone(),
            include_inherited: args.inherited,
            include_ended: args.ended,
            page_size: 500,
            page_token: token,
        };
        async move {
            let page = client.list_freeze_windows(request).await?.into_inner();
            Ok((page.freeze_windows, page.next_page_token))
        }
    })
    .await
    .map_err(to_anyhow)?;
    match ctx.output {
        OutputFormat::Json => {
            output::print_json(&json!(windows.iter().map(freeze_json).collect::<Vec<_>>()))
        }
        OutputFormat::Table => print_windows(&windows),
    }
    Ok(())
}

/// `organizationalUnits/prod/freezeWindows/holidays` → `prod/holidays`.
fn short_name(name: &str) -> String {
    name.strip_prefix("organizationalUnits/").map_or_else(
        || name.to_owned(),
        |rest| rest.replace("/freezeWindows/", "/"),
    )
}

fn print_windows(windows: &[pb::FreezeWindow]) {
    let rows: Vec<Vec<String>> = windows
        .iter()
        .map(|w| {
            vec![
                short_name(&w.name),
                output::time(&w.start_time),
                output::time(&w.end_time),
                w.created_by
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_default(),
                w.overrides.len().to_string(),
                w.reason.clone(),
            ]
        })
        .collect();
    output::table(
        &["NAME", "START", "END", "CREATED BY", "OVERRIDES", "REASON"],
        &rows,
    );
}

pub(super) fn freeze_json(w: &pb::FreezeWindow) -> Value {
    json!({
        "name": w.name,
        "reason": w.reason,
        "startTime": output::rfc3339(&w.start_time),
        "endTime": output::rfc3339(&w.end_time),
        "createdBy": w.created_by.as_ref().map(|p| p.id.clone()),
        "overrides": w.overrides.iter().map(|o| json!({
            "principal": o.principal.as_ref().map(|p| p.id.clone()),
            "reason": o.reason,
            "pipeline": o.pipeline,
            "rollout": o.rollout,
            "createTime": output::rfc3339(&o.create_time),
            "expireTime": output::rfc3339(&o.expire_time),
        })).collect::<Vec<_>>(),
        "etag": w.etag,
        "createTime": output::rfc3339(&w.create_time),
    })
}
