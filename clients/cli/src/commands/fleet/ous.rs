//! `conveyor fleet ou ...`: the tree of organizational units.

use clap::{Args, Subcommand};
use conveyor_api::fleet::v1 as pb;
use serde_json::{Value, json};

use super::{Client, Context, all_pages, id, ou_name, short_version};
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum OuCommand {
    /// Create an OU under a parent (the root by default).
    Create(CreateArgs),
    /// List the children (or with --recursive the subtree) of an OU.
    List(ListArgs),
    /// Show an OU.
    Get(NameArgs),
    /// Change an OU's display name (its id never changes).
    Rename(RenameArgs),
    /// Move an OU, with everything below it, under another parent.
    Move(MoveArgs),
    /// Delete an OU without child OUs or open accounts.
    Delete(NameArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The OU id: lowercase letters, digits and '-', unique in the tree.
    name: String,
    /// The parent OU [default: the root].
    #[arg(long)]
    parent: Option<String>,
    /// A human-readable name.
    #[arg(long, default_value = "")]
    display_name: String,
}

#[derive(Args)]
pub struct ListArgs {
    /// The OU whose children are listed [default: the root].
    #[arg(long)]
    parent: Option<String>,
    /// The whole subtree, not only the children.
    #[arg(long)]
    recursive: bool,
}

#[derive(Args)]
pub struct NameArgs {
    /// `prod` or `organizationalUnits/prod`.
    name: String,
}

#[derive(Args)]
pub struct RenameArgs {
    name: String,
    /// The new display name.
    display_name: String,
}

#[derive(Args)]
pub struct MoveArgs {
    name: String,
    /// The new parent OU.
    #[arg(long)]
    to: String,
}

pub async fn run(ctx: &Context, mut client: Client, command: OuCommand) -> anyhow::Result<()> {
    let ou = match command {
        OuCommand::Create(args) => {
            client
                .create_organizational_unit(pb::CreateOrganizationalUnitRequest {
                    parent: super::optional_ou(args.parent.as_deref()),
                    organizational_unit_id: args.name,
                    organizational_unit: Some(pb::OrganizationalUnit {
                        display_name: args.display_name,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
        }
        OuCommand::List(args) => return list(ctx, client, args).await,
        OuCommand::Get(args) => {
            client
                .get_organizational_unit(pb::GetOrganizationalUnitRequest {
                    name: ou_name(&args.name),
                })
                .await
        }
        OuCommand::Rename(args) => {
            client
                .update_organizational_unit(pb::UpdateOrganizationalUnitRequest {
                    organizational_unit: Some(pb::OrganizationalUnit {
                        name: ou_name(&args.name),
                        display_name: args.display_name,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".to_owned()],
                    }),
                    ..Default::default()
                })
                .await
        }
        OuCommand::Move(args) => {
            client
                .move_organizational_unit(pb::MoveOrganizationalUnitRequest {
                    name: ou_name(&args.name),
                    destination: ou_name(&args.to),
                    ..Default::default()
                })
                .await
        }
        OuCommand::Delete(args) => {
            let name = ou_name(&args.name);
            client
                .delete_organizational_unit(pb::DeleteOrganizationalUnitRequest {
                    name: name.clone(),
                    etag: String::new(),
                })
                .await
                .map_err(to_anyhow)?;
            match ctx.output {
                OutputFormat::Json => output::print_json(&json!({"deleted": name})),
                OutputFormat::Table => println!("{name} deleted"),
            }
            return Ok(());
        }
    }
    .map_err(to_anyhow)?
    .into_inner();
    show(ctx, &ou);
    Ok(())
}

async fn list(ctx: &Context, client: Client, args: ListArgs) -> anyhow::Result<()> {
    let parent = super::optional_ou(args.parent.as_deref());
    let ous = all_pages(|token| {
        let mut client = client.clone();
        let request = pb::ListOrganizationalUnitsRequest {
            parent: parent.clone(),
            recursive: args.recursive,
            page_size: 500,
            page_token: token,
        };
        async move {
            let page = client
                .list_organizational_units(request)
                .await?
                .into_inner();
            Ok((page.organizational_units, page.next_page_token))
        }
    })
    .await
    .map_err(to_anyhow)?;
    if ctx.output == OutputFormat::Json {
        output::print_json(&json!(ous.iter().map(ou_json).collect::<Vec<_>>()));
        return Ok(());
    }
    // Parents before their children, so the table reads as the tree.
    let mut ous = ous;
    ous.sort_by_cached_key(|o| path(o).split('/').map(str::to_owned).collect::<Vec<_>>());
    let rows: Vec<Vec<String>> = ous
        .iter()
        .map(|o| {
            vec![
                path(o),
                o.display_name.clone(),
                baseline(o),
                o.child_count.to_string(),
                o.account_count.to_string(),
            ]
        })
        .collect();
    output::table(
        &["PATH", "DISPLAY NAME", "BASELINE", "CHILDREN", "ACCOUNTS"],
        &rows,
    );
    Ok(())
}

/// `root/prod/eu`: the ancestors' ids and the OU's.
fn path(o: &pb::OrganizationalUnit) -> String {
    o.ancestors
        .iter()
        .chain(std::iter::once(&o.name))
        .map(|n| id(n))
        .collect::<Vec<_>>()
        .join("/")
}

/// The effective baseline, marked when it comes from an ancestor.
fn baseline(o: &pb::OrganizationalUnit) -> String {
    let effective = short_version(&o.effective_baseline_version);
    if o.baseline_version.is_empty() && !effective.is_empty() {
        format!("{effective} (inherited)")
    } else {
        effective
    }
}

/// Whether the OU follows its baseline, and with which waves and bake.
fn auto_rollout(o: &pb::OrganizationalUnit) -> String {
    let Some(s) = &o.auto_rollout else {
        return "off".to_owned();
    };
    let waves = if s.wave_percentages.is_empty() {
        format!("growth x{}", s.growth_factor)
    } else {
        let p: Vec<String> = s.wave_percentages.iter().map(|p| format!("{p}%")).collect();
        p.join(", ")
    };
    let bake = if s.bake_time.is_some() {
        format!("bake {}", super::duration_text(&s.bake_time))
    } else {
        "the pipeline's bake".to_owned()
    };
    format!("on: each newer version rolls out ({waves}, {bake})")
}

fn ou_json(o: &pb::OrganizationalUnit) -> Value {
    json!({
        "name": o.name,
        "displayName": o.display_name,
        "parent": o.parent,
        "ancestors": o.ancestors,
        "baselineVersion": o.baseline_version,
        "effectiveBaselineVersion": o.effective_baseline_version,
        "childCount": o.child_count,
        "accountCount": o.account_count,
        "etag": o.etag,
        "autoRollout": o.auto_rollout.as_ref().map(super::rollouts::strategy_json),
        "createTime": output::rfc3339(&o.create_time),
        "updateTime": output::rfc3339(&o.update_time),
    })
}

pub(super) fn show(ctx: &Context, o: &pb::OrganizationalUnit) {
    if ctx.output == OutputFormat::Json {
        return output::print_json(&ou_json(o));
    }
    let rows = vec![
        vec!["name".into(), o.name.clone()],
        vec!["display name".into(), o.display_name.clone()],
        vec!["path".into(), path(o)],
        vec!["baseline".into(), o.baseline_version.clone()],
        vec![
            "effective baseline".into(),
            o.effective_baseline_version.clone(),
        ],
        vec!["auto rollout".into(), auto_rollout(o)],
        vec!["children".into(), o.child_count.to_string()],
        vec!["accounts".into(), o.account_count.to_string()],
        vec!["created".into(), output::time(&o.create_time)],
        vec!["updated".into(), output::time(&o.update_time)],
    ];
    output::table(&["FIELD", "VALUE"], &rows);
}
