//! `conveyor fleet account ...` and `conveyor fleet drift`.

use clap::{Args, Subcommand};
use conveyor_api::common::v1::Tier;
use conveyor_api::fleet::v1 as pb;
use serde_json::{Value, json};

use super::{Client, Context, all_pages, id, label, me, ou_name, parse_tag, parse_tier};
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Vend an account: it is REQUESTED until its provisioning execution succeeds.
    Create(CreateArgs),
    /// Show an account and its baseline status.
    Get(NameArgs),
    /// List accounts (every state but closed unless --state is given).
    List(ListArgs),
    /// Move an account to another OU; its desired baseline may change.
    Move(MoveArgs),
    /// Take an active account out of rollouts and deployments.
    Suspend(ReasonArgs),
    /// Return a suspended account to active.
    Reactivate(ReactivateArgs),
    /// Close an account for good.
    Close(ReasonArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The account id: lowercase letters, digits and '-', 3 to 63 characters.
    name: String,
    /// The OU to place it in, e.g. `prod` or `organizationalUnits/prod`.
    #[arg(long)]
    ou: String,
    /// sandbox, development, beta, gamma, production or tooling.
    #[arg(long, value_parser = parse_tier)]
    tier: Tier,
    /// A region (or cell) enabled in the account (repeatable).
    #[arg(long = "region", value_name = "REGION", required = true)]
    regions: Vec<String>,
    /// A KEY=VALUE label for target selectors (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// The team or person responsible for the account.
    #[arg(long, default_value = "")]
    owner: String,
    /// A human-readable name [default: the id].
    #[arg(long, default_value = "")]
    display_name: String,
}

#[derive(Args)]
pub struct NameArgs {
    /// `acme-prod` or `accounts/acme-prod`.
    name: String,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only accounts in this OU's subtree.
    #[arg(long)]
    ou: Option<String>,
    /// Only accounts of this tier (repeatable).
    #[arg(long = "tier", value_name = "TIER", value_parser = parse_tier)]
    tiers: Vec<Tier>,
    /// Only accounts with this region enabled.
    #[arg(long)]
    region: Option<String>,
    /// Only accounts carrying this KEY=VALUE tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
    /// requested, provisioning, active, suspended, closed or provisioning-failed (repeatable).
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state)]
    states: Vec<pb::AccountState>,
    /// Accounts per page [default: the server's, 50].
    #[arg(long, default_value_t = 0)]
    page_size: i32,
    /// Follow every page instead of printing the first.
    #[arg(long)]
    all: bool,
}

#[derive(Args)]
pub struct MoveArgs {
    name: String,
    /// The destination OU.
    #[arg(long)]
    to: String,
}

#[derive(Args)]
pub struct ReasonArgs {
    name: String,
    /// Why, recorded as the account's state reason.
    #[arg(long)]
    reason: String,
}

#[derive(Args)]
pub struct ReactivateArgs {
    name: String,
    /// Why, recorded in the audit trail.
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Args)]
pub struct DriftArgs {
    /// Only accounts in this OU's subtree.
    #[arg(long)]
    ou: Option<String>,
    /// Only accounts whose desired baseline is a version of this baseline.
    #[arg(long)]
    baseline: Option<String>,
    /// not-applied, version-mismatch or check-failed (repeatable) [default: all three].
    #[arg(long = "state", value_name = "STATE", value_parser = parse_drift)]
    states: Vec<pb::DriftState>,
}

const STATES: [&str; 6] = [
    "requested",
    "provisioning",
    "active",
    "suspended",
    "closed",
    "provisioning-failed",
];

fn parse_state(s: &str) -> Result<pb::AccountState, String> {
    STATES
        .contains(&s)
        .then(|| pb::AccountState::from_str_name(&super::enum_const("ACCOUNT_STATE_", s)))
        .flatten()
        .ok_or_else(|| format!("unknown state {s:?}; one of {}", STATES.join(", ")))
}

const DRIFTS: [&str; 3] = ["not-applied", "version-mismatch", "check-failed"];

fn parse_drift(s: &str) -> Result<pb::DriftState, String> {
    DRIFTS
        .contains(&s)
        .then(|| pb::DriftState::from_str_name(&super::enum_const("DRIFT_STATE_", s)))
        .flatten()
        .ok_or_else(|| format!("unknown drift state {s:?}; one of {}", DRIFTS.join(", ")))
}

fn account_name(name: &str) -> String {
    super::resource("accounts", name)
}

pub async fn run(ctx: &Context, mut client: Client, command: AccountCommand) -> anyhow::Result<()> {
    let account = match command {
        AccountCommand::Create(args) => {
            let account = pb::Account {
                display_name: args.display_name,
                owner: args.owner,
                organizational_unit: ou_name(&args.ou),
                tier: args.tier as i32,
                regions: args.regions,
                tags: args.tags.into_iter().collect(),
                ..Default::default()
            };
            client
                .create_account(pb::CreateAccountRequest {
                    account_id: args.name,
                    account: Some(account),
                    principal: me(),
                    ..Default::default()
                })
                .await
        }
        AccountCommand::Get(args) => {
            client
                .get_account(pb::GetAccountRequest {
                    name: account_name(&args.name),
                })
                .await
        }
        AccountCommand::List(args) => return list(ctx, client, args).await,
        AccountCommand::Move(args) => {
            client
                .move_account(pb::MoveAccountRequest {
                    name: account_name(&args.name),
                    destination: ou_name(&args.to),
                    ..Default::default()
                })
                .await
        }
        AccountCommand::Suspend(args) => {
            client
                .suspend_account(pb::SuspendAccountRequest {
                    name: account_name(&args.name),
                    reason: args.reason,
                    principal: me(),
                    ..Default::default()
                })
                .await
        }
        AccountCommand::Reactivate(args) => {
            client
                .reactivate_account(pb::ReactivateAccountRequest {
                    name: account_name(&args.name),
                    reason: args.reason,
                    principal: me(),
                    ..Default::default()
                })
                .await
        }
        AccountCommand::Close(args) => {
            client
                .close_account(pb::CloseAccountRequest {
                    name: account_name(&args.name),
                    reason: args.reason,
                    principal: me(),
                    ..Default::default()
                })
                .await
        }
    }
    .map_err(to_anyhow)?
    .into_inner();
    show(ctx, &account);
    Ok(())
}

async fn list(ctx: &Context, client: Client, args: ListArgs) -> anyhow::Result<()> {
    let request = pb::ListAccountsRequest {
        page_size: args.page_size,
        organizational_unit: super::optional_ou(args.ou.as_deref()),
        tiers: args.tiers.iter().map(|t| *t as i32).collect(),
        region: args.region.unwrap_or_default(),
        tags: args.tags.into_iter().collect(),
        states: args.states.iter().map(|s| *s as i32).collect(),
        ..Default::default()
    };
    let accounts = if args.all {
        all_pages(|token| {
            let mut client = client.clone();
            let request = pb::ListAccountsRequest {
                page_token: token,
                ..request.clone()
            };
            async move {
                let page = client.list_accounts(request).await?.into_inner();
                Ok((page.accounts, page.next_page_token))
            }
        })
        .await
        .map_err(to_anyhow)?
    } else {
        let page = client
            .clone()
            .list_accounts(request)
            .await
            .map_err(to_anyhow)?
            .into_inner();
        if !page.next_page_token.is_empty() {
            eprintln!("more accounts: add --all to list every page");
        }
        page.accounts
    };
    print_accounts(ctx, &accounts);
    Ok(())
}

pub async fn drift(ctx: &Context, client: Client, args: DriftArgs) -> anyhow::Result<()> {
    let request = pb::ListDriftRequest {
        organizational_unit: super::optional_ou(args.ou.as_deref()),
        baseline: args
            .baseline
            .map(|b| super::resource("baselines", &b))
            .unwrap_or_default(),
        states: args.states.iter().map(|s| *s as i32).collect(),
        ..Default::default()
    };
    let accounts = all_pages(|token| {
        let mut client = client.clone();
        let request = pb::ListDriftRequest {
            page_token: token,
            ..request.clone()
        };
        async move {
            let page = client.list_drift(request).await?.into_inner();
            Ok((page.accounts, page.next_page_token))
        }
    })
    .await
    .map_err(to_anyhow)?;
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            accounts.iter().map(account_json).collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = accounts
                .iter()
                .map(|a| {
                    let b = a.baseline.clone().unwrap_or_default();
                    vec![
                        id(&a.name).to_owned(),
                        super::short_version(&b.desired_version),
                        super::short_version(&b.applied_version),
                        drift_label(b.drift),
                        b.check_detail.lines().next().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            output::table(
                &["ACCOUNT", "DESIRED", "APPLIED", "DRIFT", "CHECK DETAIL"],
                &rows,
            );
        }
    }
    Ok(())
}

fn state_label(s: i32) -> String {
    pb::AccountState::try_from(s).map_or_else(
        |_| s.to_string(),
        |s| label("ACCOUNT_STATE_", s.as_str_name()),
    )
}

fn drift_label(d: i32) -> String {
    pb::DriftState::try_from(d).map_or_else(
        |_| d.to_string(),
        |d| label("DRIFT_STATE_", d.as_str_name()),
    )
}

fn account_json(a: &pb::Account) -> Value {
    let b = a.baseline.clone().unwrap_or_default();
    json!({
        "name": a.name,
        "displayName": a.display_name,
        "owner": a.owner,
        "organizationalUnit": a.organizational_unit,
        "tier": super::tier_label(a.tier),
        "regions": a.regions,
        "tags": a.tags,
        "state": state_label(a.state),
        "stateReason": a.state_reason,
        "vendingExecution": a.vending_execution,
        "baseline": {
            "desiredVersion": b.desired_version,
            "desiredFrom": b.desired_from,
            "appliedVersion": b.applied_version,
            "applyTime": output::rfc3339(&b.apply_time),
            "applyExecution": b.apply_execution,
            "drift": drift_label(b.drift),
            "checkTime": output::rfc3339(&b.check_time),
            "checkDetail": b.check_detail,
        },
        "etag": a.etag,
        "createTime": output::rfc3339(&a.create_time),
        "updateTime": output::rfc3339(&a.update_time),
    })
}

fn tags_text(a: &pb::Account) -> String {
    let mut tags: Vec<String> = a.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
    tags.sort();
    tags.join(",")
}

fn show(ctx: &Context, a: &pb::Account) {
    if ctx.output == OutputFormat::Json {
        return output::print_json(&account_json(a));
    }
    let b = a.baseline.clone().unwrap_or_default();
    let rows = vec![
        vec!["name".into(), a.name.clone()],
        vec!["display name".into(), a.display_name.clone()],
        vec!["owner".into(), a.owner.clone()],
        vec!["ou".into(), a.organizational_unit.clone()],
        vec!["tier".into(), super::tier_label(a.tier)],
        vec!["regions".into(), a.regions.join(",")],
        vec!["tags".into(), tags_text(a)],
        vec!["state".into(), state_label(a.state)],
        vec!["state reason".into(), a.state_reason.clone()],
        vec!["vending execution".into(), a.vending_execution.clone()],
        vec!["desired baseline".into(), b.desired_version.clone()],
        vec!["desired from".into(), b.desired_from.clone()],
        vec!["applied baseline".into(), b.applied_version.clone()],
        vec!["drift".into(), drift_label(b.drift)],
        vec!["check detail".into(), b.check_detail.clone()],
        vec!["created".into(), output::time(&a.create_time)],
        vec!["updated".into(), output::time(&a.update_time)],
    ];
    output::table(&["FIELD", "VALUE"], &rows);
}

fn print_accounts(ctx: &Context, accounts: &[pb::Account]) {
    if ctx.output == OutputFormat::Json {
        return output::print_json(&json!(
            accounts.iter().map(account_json).collect::<Vec<_>>()
        ));
    }
    let rows: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            let b = a.baseline.clone().unwrap_or_default();
            vec![
                id(&a.name).to_owned(),
                id(&a.organizational_unit).to_owned(),
                super::tier_label(a.tier),
                a.regions.join(","),
                tags_text(a),
                state_label(a.state),
                super::short_version(&b.desired_version),
                drift_label(b.drift),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME", "OU", "TIER", "REGIONS", "TAGS", "STATE", "BASELINE", "DRIFT",
        ],
        &rows,
    );
}
