//! `conveyor-bench fleet`: a fleet of `--accounts` ACTIVE accounts (one
//! region each, 100 team OUs under 10 divisions, 70 % production) seeded
//! straight into a running fleet service's Postgres schema, then timed over
//! gRPC: PlanRollout over the whole fleet, and ListAccounts pages by OU
//! subtree (a division: a tenth of the fleet; a team: a hundredth).

use std::time::{Duration, Instant};

use anyhow::Context;
use conveyor_api::fleet::v1 as pb;
use conveyor_api::fleet::v1::fleet_service_client::FleetServiceClient;
use sea_orm::{ConnectionTrait, Database};
use tonic::transport::Channel;

use crate::latency_histogram;

pub struct Options {
    pub endpoint: String,
    /// The fleet service's database (its tables are in schema `fleet`).
    pub database_url: String,
    pub accounts: usize,
    pub iterations: usize,
    pub pages: usize,
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let channel = conveyor_api::client::channel(&o.endpoint)?;
    let mut client = FleetServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let seeded = Instant::now();
    seed(&mut client, &o).await?;
    println!(
        "seeded {} accounts in {:.1}s",
        o.accounts,
        seeded.elapsed().as_secs_f64()
    );

    let version = "baselines/bench/versions/1".to_owned();
    let mut plan_latency = latency_histogram();
    let mut size = 0;
    for i in 0..o.iterations + 1 {
        let start = Instant::now();
        let plan = client
            .plan_rollout(pb::PlanRolloutRequest {
                baseline_version: version.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let took = start.elapsed();
        anyhow::ensure!(
            plan.account_count as usize == o.accounts,
            "plan covers {} accounts",
            plan.account_count
        );
        size = prost::Message::encoded_len(&plan);
        if i > 0 {
            // The first call warms the connection pool and caches.
            plan_latency.record(took.as_micros() as u64)?;
        }
    }
    println!(
        "PlanRollout over {} accounts: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} calls; response {:.1} MiB)",
        o.accounts,
        ms(plan_latency.value_at_quantile(0.5)),
        ms(plan_latency.value_at_quantile(0.99)),
        ms(plan_latency.max()),
        o.iterations,
        size as f64 / (1 << 20) as f64,
    );

    for (label, ou) in [
        ("division (1/10 of the fleet)", "organizationalUnits/div-3"),
        ("team (1/100)", "organizationalUnits/team-3-7"),
    ] {
        let mut pages = latency_histogram();
        let mut token = String::new();
        let mut read = 0;
        for _ in 0..o.pages {
            let start = Instant::now();
            let page = client
                .list_accounts(pb::ListAccountsRequest {
                    organizational_unit: ou.to_owned(),
                    page_token: token.clone(),
                    page_size: 50,
                    ..Default::default()
                })
                .await?
                .into_inner();
            pages.record(start.elapsed().as_micros() as u64)?;
            read += page.accounts.len();
            // After the last page, an empty token starts over.
            token = page.next_page_token;
        }
        println!(
            "ListAccounts by OU subtree, {label}, 50 per page: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} pages, {read} accounts)",
            ms(pages.value_at_quantile(0.5)),
            ms(pages.value_at_quantile(0.99)),
            ms(pages.max()),
            o.pages,
        );
    }
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

async fn seed(client: &mut FleetServiceClient<Channel>, o: &Options) -> anyhow::Result<()> {
    for d in 0..10 {
        create_ou(client, "", &format!("div-{d}")).await?;
        for t in 0..10 {
            create_ou(
                client,
                &format!("organizationalUnits/div-{d}"),
                &format!("team-{d}-{t}"),
            )
            .await?;
        }
    }
    client
        .create_baseline_version(pb::CreateBaselineVersionRequest {
            parent: "baselines/bench".into(),
            content: Some(pb::BaselineContent {
                files: vec![pb::BaselineFile {
                    path: "policy.json".into(),
                    content: b"{}".to_vec(),
                    executable: false,
                }],
                apply_command: "true".into(),
                check_command: "true".into(),
                timeout: None,
            }),
            ..Default::default()
        })
        .await?;
    client
        .assign_baseline(pb::AssignBaselineRequest {
            organizational_unit: "organizationalUnits/root".into(),
            baseline_version: "baselines/bench/versions/1".into(),
            ..Default::default()
        })
        .await?;
    let db = Database::connect(&o.database_url)
        .await
        .context("connect to the fleet database")?;
    let tiers = "(ARRAY['production','production','production','production','production','production','production','gamma','beta','development'])[1 + i % 10]";
    let sql = format!(
        "INSERT INTO fleet.accounts (id, display_name, owner, ou, ou_path, tier, regions, tags, state,
            state_reason, vending_execution, apply_execution, check_detail, etag, create_time, update_time)
         SELECT 'acct-' || lpad(i::text, 7, '0'), 'acct-' || i, 'bench', ou.id, ou.path, {tiers},
            '[\"us-east-1\"]', '{{\"team\":\"t' || (i % 20) || '\"}}', 'active', 'seeded', '', '', '',
            md5(i::text), now(), now()
         FROM generate_series(0, {last}) AS i
         JOIN (SELECT id, path, row_number() OVER (ORDER BY id) - 1 AS n
               FROM fleet.organizational_units WHERE id LIKE 'team-%') AS ou ON ou.n = i % 100",
        last = o.accounts - 1,
    );
    db.execute_unprepared(&sql)
        .await
        .context("insert accounts")?;
    db.execute_unprepared("ANALYZE fleet.accounts").await?;
    db.close().await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

async fn create_ou(
    client: &mut FleetServiceClient<Channel>,
    parent: &str,
    id: &str,
) -> anyhow::Result<()> {
    client
        .create_organizational_unit(pb::CreateOrganizationalUnitRequest {
            parent: parent.to_owned(),
            organizational_unit_id: id.to_owned(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// The planner alone, in process: `accounts` synthetic candidates (70 %
/// production, one region each) planned `iterations` times.
pub fn plan_only(accounts: usize, iterations: usize) -> anyhow::Result<()> {
    use conveyor_fleet::model::{Strategy, Tier};
    use conveyor_fleet::plan::{Candidate, digest, plan};
    let tiers = [
        Tier::Production,
        Tier::Production,
        Tier::Production,
        Tier::Production,
        Tier::Production,
        Tier::Production,
        Tier::Production,
        Tier::Gamma,
        Tier::Beta,
        Tier::Development,
    ];
    let candidates: Vec<Candidate> = (0..accounts)
        .map(|i| Candidate {
            account: format!("acct-{i:07}"),
            tier: tiers[i % 10],
            regions: vec!["us-east-1".to_owned()],
        })
        .collect();
    let mut latency = latency_histogram();
    for _ in 0..iterations {
        let input = candidates.clone();
        let start = Instant::now();
        let waves = plan(input, &Strategy::default());
        let _ = digest(None, &waves.waves);
        latency.record(start.elapsed().as_micros() as u64)?;
    }
    println!(
        "plan + digest of {accounts} accounts in process: p50 {:.1} ms, p99 {:.1} ms ({iterations} runs)",
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
    );
    Ok(())
}
