//! `conveyor demo`: the whole path from commit to production on this
//! machine. It starts the embedded control plane, makes a git repository
//! from `examples/application/` (a small std-only Rust service with real
//! scanners), applies the example's DPRA pipeline pointed at local targets,
//! and runs a change through build, beta, gamma and an approved, three-wave
//! production rollout with bake time and health-probe alarms. On the
//! embedded control plane, prod's accounts are vended by the fleet service
//! and its waves come from the fleet's plan. `--break`
//! then ships a change that fails its health probe in wave 2 and shows the
//! automatic rollback.

mod fleet;
mod progress;
mod repo;
mod spec;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use conveyor_api::definitions::v1 as defs;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::execution_service_client::ExecutionServiceClient;
use conveyor_platform::telemetry::{self, LogFormat};

use super::dev::Embedded;
use crate::status::to_anyhow;

#[derive(Args)]
pub struct DemoArgs {
    /// After a good release, ship a change that fails its health probe in
    /// prod wave 2, and watch it roll back automatically.
    #[arg(long = "break")]
    break_release: bool,
    /// Where the demo keeps its control plane, repository and deployed
    /// services; default: a new temporary directory, removed at the end.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Keep the control plane and the deployed services running after the
    /// demo, until Ctrl-C, to look around with the other commands.
    #[arg(long, alias = "keep-running")]
    keep: bool,
    /// Address of the embedded control plane (default: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address of the embedded dashboard (default: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    dashboard_listen: SocketAddr,
    /// Run against this running control plane (definitions and execution
    /// services, with workers that can run cargo) instead of starting one.
    #[arg(long, value_name = "URL")]
    control_plane: Option<String>,
    /// With --control-plane: the definitions service, when it is not
    /// served at the same address.
    #[arg(long, value_name = "URL", requires = "control_plane")]
    definitions: Option<String>,
    /// With --control-plane: the metrics service, when it is not served at
    /// the same address.
    #[arg(long, value_name = "URL", requires = "control_plane")]
    metrics: Option<String>,
}

const AUTHOR: &str = "demo-dev";

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let _telemetry = telemetry::init_with_filter(
        "conveyor-demo",
        LogFormat::Text,
        "warn,conveyor_platform::signing=error",
    );
    let (dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("conveyor-demo-{}", std::process::id())),
            true,
        ),
    };
    let state_dir = dir.join("targets");
    // With --keep, `demo` returns only after Ctrl-C.
    let outcome = demo(&args, &dir, &state_dir).await;
    stop_services(&state_dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

async fn demo(args: &DemoArgs, dir: &Path, state_dir: &Path) -> anyhow::Result<ExitCode> {
    println!("conveyor demo: commit → build → beta → gamma → approval → prod in three waves");
    let (embedded, endpoint) = match &args.control_plane {
        Some(url) => {
            println!("  control plane  {url}");
            (None, url.clone())
        }
        None => {
            let embedded = Embedded::start(
                &dir.join("control-plane"),
                args.listen,
                args.dashboard_listen,
                4,
            )
            .await?;
            let endpoint = format!("http://{}", embedded.addr);
            println!(
                "  control plane  {endpoint} (definitions, execution, fleet, metrics, one worker; SQLite)"
            );
            println!("  dashboard      http://{}/", embedded.dashboard_addr);
            (Some(embedded), endpoint)
        }
    };

    let repo_dir = dir.join("repo");
    let first = repo::create(&repo_dir, "Initial version of the demo service")?;
    println!(
        "  repository     {} (examples/application, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    let ports = spec::Ports::pick()?;
    println!(
        "  targets        beta :{}  gamma :{} :{}  prod :{} :{} :{} (each a copy of the service)",
        ports.beta, ports.gamma[0], ports.gamma[1], ports.prod[0], ports.prod[1], ports.prod[2]
    );
    let valid = conveyor_definitions::spec::load(
        repo::pipeline_yaml()?,
        conveyor_definitions::spec::Format::Yaml,
    )
    .map_err(|errors| anyhow::anyhow!("the example pipeline is invalid: {errors:?}"))?;
    let mut local = spec::localize(
        &valid.canonical,
        &repo_dir,
        &ports,
        state_dir,
        &dir.join("cache"),
    )?;
    // The embedded control plane serves the fleet: prod deploys to its accounts.
    let from_fleet = embedded.is_some();
    if from_fleet {
        fleet::prod_from_fleet(&mut local)?;
    }
    let pipelines = conveyor_api::pipelines::PipelineClient::new(
        args.definitions.as_deref().unwrap_or(&endpoint),
    )?;
    let applied = pipelines
        .apply(defs::ApplyPipelineRequest {
            source: Some(defs::PipelineSource {
                content: serde_json::to_vec(&local)?,
                format: conveyor_api::common::v1::SpecFormat::Json as i32,
            }),
            author: AUTHOR.to_owned(),
            message: "the demo's pipeline".to_owned(),
            // Bake times of seconds, not hours, are below what the DPRA asks.
            accept_non_conformance: true,
            request_id: String::new(),
        })
        .await
        .map_err(to_anyhow)?;
    let revision = applied
        .pipeline
        .and_then(|p| p.revision)
        .unwrap_or_default();
    let conformance = revision.conformance.unwrap_or_default();
    let failing: Vec<String> = conformance
        .rules
        .iter()
        .filter(|r| !r.passed && r.severity == defs::RuleSeverity::Error as i32)
        .map(|r| format!("{} ({})", r.rule_id, r.message))
        .collect();
    println!(
        "  pipeline       {} revision {}: DPRA conformance {:.0}%",
        spec::PIPELINE,
        revision.revision,
        conformance.score,
    );
    for rule in failing {
        println!("                 accepted for the demo: {rule}");
    }

    if from_fleet {
        pipelines
            .apply(defs::ApplyPipelineRequest {
                source: Some(defs::PipelineSource {
                    content: serde_json::to_vec(&fleet::vending_spec(&repo_dir))?,
                    format: conveyor_api::common::v1::SpecFormat::Json as i32,
                }),
                author: AUTHOR.to_owned(),
                message: "the demo's account vending".to_owned(),
                accept_non_conformance: true,
                request_id: String::new(),
            })
            .await
            .map_err(to_anyhow)?;
        let accounts = fleet::vend(&endpoint, &ports).await?;
        let listed: Vec<String> = accounts
            .iter()
            .zip(&ports.prod)
            .map(|(a, p)| format!("{a} :{p}"))
            .collect();
        println!(
            "  accounts       {} (OU {}, vended by pipelines/{}; prod's waves come from the fleet)",
            listed.join("  "),
            fleet::OU,
            fleet::VENDING_PIPELINE
        );
    }

    let channel = conveyor_api::client::channel(&endpoint)?;
    let mut client = ExecutionServiceClient::new(channel);
    let message = "Initial version of the demo service";
    println!("\nrelease 1: {message}");
    let good = release(&mut client, &first, message).await?;
    let mut runs = vec![good];

    if args.break_release {
        let message =
            "Require per-target configuration (written for beta, gamma and the one-box only)";
        write_breaking_change(&repo_dir, &ports)?;
        let second = repo::commit(&repo_dir, message)?;
        println!("\nrelease 2: {message}");
        runs.push(release(&mut client, &second, message).await?);
    }

    println!("\nsummary");
    for e in &runs {
        for line in progress::summary(e) {
            println!("  {line}");
        }
    }
    let prod: Vec<String> = ports
        .prod
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/"))
        .collect();
    println!("  prod is serving on {}", prod.join(" "));
    if let Some(last) = runs.last() {
        dora_summary(args.metrics.as_deref().unwrap_or(&endpoint), last).await;
    }
    let expected = if args.break_release {
        [
            pb::ExecutionState::Succeeded,
            pb::ExecutionState::RolledBack,
        ]
        .as_slice()
    } else {
        [pb::ExecutionState::Succeeded].as_slice()
    };
    let as_expected = runs.len() == expected.len()
        && runs.iter().zip(expected).all(|(e, s)| e.state == *s as i32);
    if let Some(embedded) = embedded {
        if args.keep {
            println!(
                "\nthe control plane keeps running (Ctrl-C stops it); try\n  conveyor --endpoint {endpoint} run list {}\n  conveyor --endpoint {endpoint} metrics dora --pipeline {}\n  the dashboard at http://{}/",
                spec::PIPELINE,
                spec::PIPELINE,
                embedded.dashboard_addr
            );
            embedded.serve_until_signal().await?;
        } else {
            embedded.shutdown().await?;
        }
    }
    Ok(if as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the pipeline's DORA numbers once the metrics service has
/// consumed the last run's events (or after ten seconds).
async fn dora_summary(endpoint: &str, last: &pb::Execution) {
    use conveyor_api::metrics::v1 as metrics;
    let Ok(channel) = conveyor_api::client::channel(endpoint) else {
        return;
    };
    let mut client = metrics::metrics_service_client::MetricsServiceClient::new(channel);
    let pipeline = format!("pipelines/{}", spec::PIPELINE);
    for _ in 0..100 {
        let health = client
            .get_pipeline_health(metrics::GetPipelineHealthRequest {
                name: format!("{pipeline}/health"),
            })
            .await;
        if health.is_ok_and(|h| h.into_inner().last_execution == last.name) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let dora = client
        .get_dora_metrics(metrics::GetDoraMetricsRequest {
            scope: Some(metrics::MetricsScope {
                pipeline,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    match dora {
        Ok(m) => {
            println!(
                "
DORA metrics (last 30 days, pipelines/{})",
                spec::PIPELINE
            );
            for line in crate::commands::metrics::dora_lines(&m.into_inner()) {
                println!("  {line}");
            }
        }
        Err(e) => println!(
            "
DORA metrics unavailable: {}",
            e.message()
        ),
    }
}

/// Starts an execution for `commit` on trunk and follows it to the end.
async fn release(
    client: &mut ExecutionServiceClient<tonic::transport::Channel>,
    commit: &str,
    message: &str,
) -> anyhow::Result<pb::Execution> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let started = client
        .start_execution(pb::StartExecutionRequest {
            parent: format!("pipelines/{}", spec::PIPELINE),
            commit: Some(pb::Commit {
                sha: commit.to_owned(),
                branch: "main".to_owned(),
                author: AUTHOR.to_owned(),
                message: message.to_owned(),
                commit_time: Some(prost_types::Timestamp {
                    seconds: now.as_secs() as i64,
                    nanos: 0,
                }),
                land_time: None,
            }),
            ..Default::default()
        })
        .await
        .map_err(to_anyhow)?
        .into_inner();
    println!("  {}", started.name);
    progress::follow(client, &started.name).await
}

/// The change `--break` ships: the service now requires a configuration
/// file per target, and only beta, gamma and the first prod target got one.
fn write_breaking_change(repo: &Path, ports: &spec::Ports) -> anyhow::Result<()> {
    repo::write(
        repo,
        "release.conf",
        b"# Release settings, packaged with the service.\nrequire_target_config = true\n",
        false,
    )?;
    let mut configured = vec![format!("beta-{}", ports.beta)];
    configured.extend(ports.gamma.iter().map(|p| format!("gamma-{p}")));
    configured.push(format!("prod-{}", ports.prod[0]));
    for target in configured {
        repo::write(
            repo,
            &format!("targets/{target}.conf"),
            format!("# Settings of {target}.\n").as_bytes(),
            false,
        )?;
    }
    Ok(())
}

/// Stops every copy of the service the demo deployed (their pid files are
/// under the state directory).
fn stop_services(state_dir: &Path) {
    fn pid_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pid_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "pid")
                || path.file_name().is_some_and(|n| n == "pid")
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    pid_files(state_dir, &mut found);
    for file in found {
        let Ok(pid) = std::fs::read_to_string(&file) else {
            continue;
        };
        let pid = pid.trim();
        // Only a demo service: the pid may have been reused since.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && comm.trim() == "demo-app" {
            let _ = std::process::Command::new("kill")
                .arg(pid)
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}
