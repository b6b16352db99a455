//! `conveyor fleet baseline ...`: versioned bundles of files with apply and
//! check commands, assigned to OUs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use conveyor_api::fleet::v1 as pb;
use prost_types::Duration as PbDuration;
use serde_json::{Value, json};

use super::{Client, Context, all_pages, ou_name, parse_duration, resource, version_name};
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum BaselineCommand {
    /// Create the next version of a baseline from a directory (nothing new when unchanged).
    Create(CreateArgs),
    /// List baselines.
    List,
    /// List a baseline's versions, newest first.
    Versions(NameArgs),
    /// Show a baseline version; --extract writes its files.
    Get(GetArgs),
    /// Make a version the desired baseline of every account below an OU.
    Assign(AssignArgs),
    /// Remove an OU's baseline assignment (its accounts inherit again).
    Unassign(UnassignArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The baseline: `base` or `baselines/base`.
    name: String,
    /// The bundle: every regular file below it (`.git` skipped).
    #[arg(long)]
    dir: PathBuf,
    /// Run with `sh -c` in the unpacked bundle to apply it to one target.
    #[arg(long)]
    apply: String,
    /// Run the same way to check a target; non-zero exit means drift.
    #[arg(long)]
    check: String,
    /// Each command is killed after this long [default: the server's, 10m].
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<PbDuration>,
    /// What changed.
    #[arg(short = 'm', long, default_value = "")]
    message: String,
    /// What the baseline sets up (read when the baseline is created).
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(Args)]
pub struct NameArgs {
    name: String,
}

#[derive(Args)]
pub struct GetArgs {
    /// NAME@VERSION.
    version: String,
    /// Write the bundle's files below this directory.
    #[arg(long)]
    extract: Option<PathBuf>,
}

#[derive(Args)]
pub struct AssignArgs {
    /// NAME@VERSION.
    version: String,
    #[arg(long)]
    ou: String,
    /// Follow the baseline: the fleet service rolls each newer version out
    /// below the OU by itself, with the strategy below, then assigns it.
    #[arg(long)]
    auto_rollout: bool,
    /// With --auto-rollout: how its rollouts form waves.
    #[command(flatten)]
    strategy: super::rollouts::StrategyArgs,
}

#[derive(Args)]
pub struct UnassignArgs {
    #[arg(long)]
    ou: String,
}

pub async fn run(
    ctx: &Context,
    mut client: Client,
    command: BaselineCommand,
) -> anyhow::Result<()> {
    match command {
        BaselineCommand::Create(args) => create(ctx, client, args).await,
        BaselineCommand::List => list(ctx, client).await,
        BaselineCommand::Versions(args) => versions(ctx, client, args).await,
        BaselineCommand::Get(args) => get(ctx, client, args).await,
        BaselineCommand::Assign(args) => {
            let strategy = args.strategy.into_pb();
            if !args.auto_rollout && strategy != pb::RolloutStrategy::default() {
                anyhow::bail!("the rollout strategy flags go with --auto-rollout");
            }
            let ou = client
                .assign_baseline(pb::AssignBaselineRequest {
                    organizational_unit: ou_name(&args.ou),
                    baseline_version: version_name(&args.version)?,
                    auto_rollout: args.auto_rollout.then_some(strategy),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            super::ous::show(ctx, &ou);
            Ok(())
        }
        BaselineCommand::Unassign(args) => {
            let ou = client
                .assign_baseline(pb::AssignBaselineRequest {
                    organizational_unit: ou_name(&args.ou),
                    ..Default::default()
                })
                .await
                .map_err(to_anyhow)?
                .into_inner();
            super::ous::show(ctx, &ou);
            Ok(())
        }
    }
}

async fn create(ctx: &Context, mut client: Client, args: CreateArgs) -> anyhow::Result<()> {
    let parent = resource("baselines", &args.name);
    let mut files = Vec::new();
    read_dir(&args.dir, &args.dir, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // The server returns the latest version when nothing changed; compare
    // with the latest before the call to say so.
    let before = match client
        .get_baseline(pb::GetBaselineRequest {
            name: parent.clone(),
        })
        .await
    {
        Ok(b) => b.into_inner().latest_version,
        Err(s) if s.code() == tonic::Code::NotFound => 0,
        Err(s) => return Err(to_anyhow(s)),
    };
    let version = client
        .create_baseline_version(pb::CreateBaselineVersionRequest {
            parent,
            description: args.description,
            content: Some(pb::BaselineContent {
                files,
                apply_command: args.apply,
                check_command: args.check,
                timeout: args.timeout,
            }),
            author: std::env::var("USER").unwrap_or_default(),
            message: args.message,
            request_id: String::new(),
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    let unchanged = version.version <= before;
    let digest = version.artifact.as_ref().map(|a| a.digest.clone());
    match ctx.output {
        OutputFormat::Json => {
            let mut v = version_json(&version);
            v["unchanged"] = json!(unchanged);
            output::print_json(&v);
        }
        OutputFormat::Table => {
            let what = if unchanged { "unchanged" } else { "created" };
            println!("{} {what}", version.name);
            println!("digest {}", digest.unwrap_or_default());
        }
    }
    Ok(())
}

/// Every regular file below `dir`, relative to `root` with '/' separators.
pub(crate) fn read_dir(
    root: &Path,
    dir: &Path,
    files: &mut Vec<pb::BaselineFile>,
) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = entry.path();
        let meta = entry
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            if entry.file_name() != ".git" {
                read_dir(root, &path, files)?;
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .with_context(|| format!("{} is outside {}", path.display(), root.display()))?;
        let segments: Option<Vec<&str>> = relative.iter().map(|s| s.to_str()).collect();
        let Some(segments) = segments else {
            anyhow::bail!("{} is not a UTF-8 path", path.display());
        };
        files.push(pb::BaselineFile {
            path: segments.join("/"),
            content: std::fs::read(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            executable: meta.permissions().mode() & 0o111 != 0,
        });
    }
    Ok(())
}

async fn list(ctx: &Context, client: Client) -> anyhow::Result<()> {
    let baselines = all_pages(|token| {
        let mut client = client.clone();
        async move {
            let page = client
                .list_baselines(pb::ListBaselinesRequest {
                    page_size: 500,
                    page_token: token,
                })
                .await?
                .into_inner();
            Ok((page.baselines, page.next_page_token))
        }
    })
    .await
    .map_err(to_anyhow)?;
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            baselines
                .iter()
                .map(|b| json!({
                    "name": b.name,
                    "description": b.description,
                    "latestVersion": b.latest_version,
                    "createTime": output::rfc3339(&b.create_time),
                    "updateTime": output::rfc3339(&b.update_time),
                }))
                .collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = baselines
                .iter()
                .map(|b| {
                    vec![
                        super::id(&b.name).to_owned(),
                        b.latest_version.to_string(),
                        output::time(&b.update_time),
                        b.description.clone(),
                    ]
                })
                .collect();
            output::table(&["NAME", "LATEST", "UPDATED", "DESCRIPTION"], &rows);
        }
    }
    Ok(())
}

async fn versions(ctx: &Context, client: Client, args: NameArgs) -> anyhow::Result<()> {
    let parent = resource("baselines", &args.name);
    let versions = all_pages(|token| {
        let mut client = client.clone();
        let request = pb::ListBaselineVersionsRequest {
            parent: parent.clone(),
            page_size: 500,
            page_token: token,
            view: pb::BaselineVersionView::Basic as i32,
        };
        async move {
            let page = client.list_baseline_versions(request).await?.into_inner();
            Ok((page.versions, page.next_page_token))
        }
    })
    .await
    .map_err(to_anyhow)?;
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            versions.iter().map(version_json).collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    vec![
                        v.version.to_string(),
                        digest(v),
                        v.author.clone(),
                        output::time(&v.create_time),
                        v.message.clone(),
                    ]
                })
                .collect();
            output::table(
                &["VERSION", "DIGEST", "AUTHOR", "CREATED", "MESSAGE"],
                &rows,
            );
        }
    }
    Ok(())
}

async fn get(ctx: &Context, mut client: Client, args: GetArgs) -> anyhow::Result<()> {
    let version = client
        .get_baseline_version(pb::GetBaselineVersionRequest {
            name: version_name(&args.version)?,
            view: pb::BaselineVersionView::Full as i32,
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    let content = version.content.clone().unwrap_or_default();
    if let Some(dir) = &args.extract {
        for file in &content.files {
            extract(dir, file)?;
        }
        eprintln!("wrote {} file(s) to {}", content.files.len(), dir.display());
    }
    match ctx.output {
        OutputFormat::Json => output::print_json(&version_json(&version)),
        OutputFormat::Table => {
            let rows = vec![
                vec!["name".into(), version.name.clone()],
                vec!["digest".into(), digest(&version)],
                vec!["apply".into(), content.apply_command.clone()],
                vec!["check".into(), content.check_command.clone()],
                vec!["timeout".into(), super::duration_text(&content.timeout)],
                vec!["author".into(), version.author.clone()],
                vec!["message".into(), version.message.clone()],
                vec!["created".into(), output::time(&version.create_time)],
            ];
            output::table(&["FIELD", "VALUE"], &rows);
            println!();
            let files: Vec<Vec<String>> = content
                .files
                .iter()
                .map(|f| {
                    let mode = if f.executable { "0755" } else { "0644" };
                    vec![f.path.clone(), mode.into(), f.content.len().to_string()]
                })
                .collect();
            output::table(&["FILE", "MODE", "BYTES"], &files);
        }
    }
    Ok(())
}

/// Writes one bundle file below `dir`, refusing paths that would leave it.
fn extract(dir: &Path, file: &pb::BaselineFile) -> anyhow::Result<()> {
    let relative = Path::new(&file.path);
    if file.path.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        anyhow::bail!(
            "refusing to write {:?}: not a relative path inside the bundle",
            file.path
        );
    }
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, &file.content)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mode = if file.executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

fn digest(v: &pb::BaselineVersion) -> String {
    v.artifact
        .as_ref()
        .map(|a| a.digest.clone())
        .unwrap_or_default()
}

fn version_json(v: &pb::BaselineVersion) -> Value {
    let content = v.content.clone().unwrap_or_default();
    json!({
        "name": v.name,
        "version": v.version,
        "digest": digest(v),
        "sizeBytes": v.artifact.as_ref().map_or(0, |a| a.size_bytes),
        "applyCommand": content.apply_command,
        "checkCommand": content.check_command,
        "timeout": super::duration_text(&content.timeout),
        "files": content.files.iter().map(|f| json!({
            "path": f.path,
            "executable": f.executable,
        })).collect::<Vec<_>>(),
        "author": v.author,
        "message": v.message,
        "createTime": output::rfc3339(&v.create_time),
    })
}
