//! `conveyor demo`: the whole path from commit to production on this
//! machine. It starts the embedded control plane, makes git repositories
//! from the examples, applies their DPRA pipelines pointed at local
//! targets, and runs changes through build, beta, gamma and an approved,
//! three-wave production rollout with bake time and health-probe alarms.
//! On the embedded control plane, prod's accounts are vended by the fleet
//! service and its waves come from the fleet's plan.
//!
//! `--type application` (the default, [`application`]) ships the example
//! service; `--type dynamic-configuration` ([`configuration`]) ships it,
//! then changes its flags and settings without redeploying it;
//! `--type compute-image` ([`image`]) builds a base image whose publish
//! ships the service; `--type machine-learning` ([`model`]) gates and
//! serves a model; `--type account-fleet` ([`accounts`]) vends accounts and
//! rolls a baseline out across them. `--break` then ships a change that
//! fails and shows how the pipeline stops or rolls it back.

mod accounts;
mod application;
mod configuration;
mod fleet;
mod http;
mod image;
mod model;
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

/// Which example the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoType {
    /// The example service, from commit to prod.
    Application,
    /// The service, then flags and settings delivered to it while it runs.
    DynamicConfiguration,
    /// A base image; its publish builds and ships the service on it.
    ComputeImage,
    /// The service, then a model trained, gated and served by it.
    MachineLearning,
    /// Accounts vended with a baseline, then a new baseline rolled out
    /// across them in waves.
    AccountFleet,
}

impl DemoType {
    fn headline(self) -> &'static str {
        match self {
            DemoType::Application => {
                "conveyor demo: commit → build → beta → gamma → approval → prod in three waves"
            }
            DemoType::DynamicConfiguration => {
                "conveyor demo: the service to prod, then its flags and settings to the running service, no redeploy"
            }
            DemoType::ComputeImage => {
                "conveyor demo: a base image built, scanned, tested and published; its publish ships the service built on it"
            }
            DemoType::MachineLearning => {
                "conveyor demo: the service to prod, then a model trained, gated against production and served"
            }
            DemoType::AccountFleet => {
                "conveyor demo: accounts vended with a baseline, then a new baseline rolled out across them in waves"
            }
        }
    }
}

#[derive(Args)]
pub struct DemoArgs {
    /// Which pipeline type to run, with its example.
    #[arg(long = "type", value_enum, default_value = "application")]
    demo_type: DemoType,
    /// After a good release, ship a change that fails its health probe in
    /// prod, and watch it roll back automatically.
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
    /// With --control-plane: the fleet service, when it is not served at
    /// the same address.
    #[arg(long, value_name = "URL", requires = "control_plane")]
    fleet: Option<String>,
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

/// What the demo runs in one place: the control plane's address, the
/// local targets and where their state lives.
pub struct Session {
    pub endpoint: String,
    pub pipelines: conveyor_api::pipelines::PipelineClient,
    pub client: ExecutionServiceClient<tonic::transport::Channel>,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub ports: spec::Ports,
    /// Prod deploys to accounts the fleet service vended (embedded only).
    pub from_fleet: bool,
}

impl Session {
    /// Applies `doc`; the demo's short bake times are below what the DPRA
    /// asks, so non-conformance is accepted.
    pub async fn apply(
        &self,
        doc: &serde_json::Value,
        message: &str,
    ) -> anyhow::Result<defs::Pipeline> {
        let applied = self
            .pipelines
            .apply(defs::ApplyPipelineRequest {
                source: Some(defs::PipelineSource {
                    content: serde_json::to_vec(doc)?,
                    format: conveyor_api::common::v1::SpecFormat::Json as i32,
                }),
                author: AUTHOR.to_owned(),
                message: message.to_owned(),
                accept_non_conformance: true,
                request_id: String::new(),
            })
            .await
            .map_err(to_anyhow)?;
        Ok(applied.pipeline.unwrap_or_default())
    }

    /// Prints the pipeline's revision, its conformance score and the
    /// required rules it fails.
    fn print_conformance(pipeline: &defs::Pipeline) {
        let revision = pipeline.revision.clone().unwrap_or_default();
        let conformance = revision.conformance.unwrap_or_default();
        println!(
            "  pipeline       {} revision {}: DPRA conformance {:.0}%",
            pipeline.name.trim_start_matches("pipelines/"),
            revision.revision,
            conformance.score,
        );
        for rule in conformance.rules.iter().filter(|r| {
            !r.passed && r.waiver.is_empty() && r.severity == defs::RuleSeverity::Error as i32
        }) {
            println!(
                "                 accepted for the demo: {} ({})",
                rule.rule_id, rule.message
            );
        }
        if conformance.waived > 0 {
            println!(
                "                 {} rule(s) waived, with their reasons, in spec.conformance.waivers",
                conformance.waived
            );
        }
    }

    /// The example pipeline `example`, localized and stored as `name`.
    pub async fn apply_example(
        &self,
        example: &str,
        name: &str,
        repo: &Path,
    ) -> anyhow::Result<()> {
        self.apply_example_with(example, name, repo, |_| {}).await
    }

    /// As [`Self::apply_example`], with `adjust` applied to the localized
    /// document before it is stored.
    pub async fn apply_example_with(
        &self,
        example: &str,
        name: &str,
        repo: &Path,
        adjust: impl FnOnce(&mut serde_json::Value),
    ) -> anyhow::Result<()> {
        let valid = conveyor_definitions::spec::load(
            repo::pipeline_yaml(example)?,
            conveyor_definitions::spec::Format::Yaml,
        )
        .map_err(|errors| anyhow::anyhow!("the {example} example is invalid: {errors:?}"))?;
        let mut local = spec::localize(
            &valid.canonical,
            name,
            repo,
            &self.ports,
            &self.state_dir,
            &self.dir.join("cache"),
        )?;
        if self.from_fleet
            && local["spec"]["stages"]
                .as_array()
                .is_some_and(|stages| stages.iter().any(|s| s["name"] == "prod"))
        {
            fleet::prod_from_fleet(&mut local)?;
        }
        adjust(&mut local);
        let pipeline = self
            .apply(&local, &format!("the demo's {example} pipeline"))
            .await?;
        Self::print_conformance(&pipeline);
        Ok(())
    }

    /// Starts an execution of `pipeline` for `commit` on trunk and follows
    /// it to the end.
    pub async fn release(
        &mut self,
        pipeline: &str,
        commit: &str,
        message: &str,
    ) -> anyhow::Result<pb::Execution> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let started = self
            .client
            .start_execution(pb::StartExecutionRequest {
                parent: format!("pipelines/{pipeline}"),
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
        progress::follow(&mut self.client, &started.name).await
    }
}

impl Session {
    /// Starts a redeploy of `execution` (an earlier execution of `pipeline`)
    /// and follows it to the end.
    pub async fn redeploy(
        &mut self,
        pipeline: &str,
        execution: &str,
        message: &str,
    ) -> anyhow::Result<pb::Execution> {
        let started = self
            .client
            .start_execution(pb::StartExecutionRequest {
                parent: format!("pipelines/{pipeline}"),
                commit: Some(pb::Commit {
                    author: AUTHOR.to_owned(),
                    message: message.to_owned(),
                    ..Default::default()
                }),
                redeploy: execution.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(to_anyhow)?
            .into_inner();
        println!("  {} (redeploys {execution})", started.name);
        progress::follow(&mut self.client, &started.name).await
    }
}

/// One run the demo made, and how it should have ended.
pub struct Run {
    pub execution: pb::Execution,
    pub expected: pb::ExecutionState,
}

async fn demo(args: &DemoArgs, dir: &Path, state_dir: &Path) -> anyhow::Result<ExitCode> {
    println!("{}", args.demo_type.headline());
    // The accounts of the account-fleet example are directories under this
    // root; the control plane's workers must see the same one.
    let fleet_root = match &args.control_plane {
        None => dir.join("fleet"),
        Some(_) => std::env::var_os("CONVEYOR_FLEET_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("conveyor-fleet")),
    };
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
                &[("CONVEYOR_FLEET_ROOT", fleet_root.display().to_string())],
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
    let ports = spec::Ports::pick()?;
    if args.demo_type != DemoType::AccountFleet {
        println!(
            "  targets        beta :{}  gamma :{} :{}  prod :{} :{} :{} (each a copy of the service)",
            ports.beta, ports.gamma[0], ports.gamma[1], ports.prod[0], ports.prod[1], ports.prod[2]
        );
    }
    let mut session = Session {
        pipelines: conveyor_api::pipelines::PipelineClient::new(
            args.definitions.as_deref().unwrap_or(&endpoint),
        )?,
        client: ExecutionServiceClient::new(conveyor_api::client::channel(&endpoint)?),
        endpoint: endpoint.clone(),
        dir: dir.to_owned(),
        state_dir: state_dir.to_owned(),
        ports,
        from_fleet: embedded.is_some(),
    };
    let runs = match args.demo_type {
        DemoType::Application => application::run(&mut session, args.break_release).await?,
        DemoType::DynamicConfiguration => {
            let mut runs = application::run(&mut session, false).await?;
            runs.extend(configuration::run(&mut session, args.break_release).await?);
            runs
        }
        DemoType::ComputeImage => image::run(&mut session, args.break_release).await?,
        DemoType::MachineLearning => {
            let mut runs = application::run(&mut session, false).await?;
            runs.extend(model::run(&mut session, args.break_release).await?);
            runs
        }
        DemoType::AccountFleet => {
            let fleet = args.fleet.as_deref().unwrap_or(&endpoint);
            accounts::run(&mut session, args.break_release, fleet, &fleet_root).await?
        }
    };

    println!("\nsummary");
    for run in &runs {
        for line in progress::summary(&run.execution) {
            println!("  {line}");
        }
    }
    if args.demo_type != DemoType::AccountFleet {
        let prod: Vec<String> = session
            .ports
            .prod
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/"))
            .collect();
        println!("  prod is serving on {}", prod.join(" "));
    }
    // The configuration demo ends with a release of the service; its
    // numbers are the configuration pipeline's.
    let measured = runs.iter().rev().find(|r| {
        args.demo_type != DemoType::DynamicConfiguration
            || pipeline_of(&r.execution.name) == configuration::PIPELINE
    });
    if let Some(last) = measured {
        dora_summary(
            args.metrics.as_deref().unwrap_or(&endpoint),
            &last.execution,
        )
        .await;
    }
    let as_expected = runs.iter().all(|r| r.execution.state == r.expected as i32);
    if let Some(embedded) = embedded {
        if args.keep {
            let pipeline = runs
                .last()
                .map(|r| pipeline_of(&r.execution.name))
                .unwrap_or(spec::PIPELINE);
            println!(
                "\nthe control plane keeps running (Ctrl-C stops it); try\n  conveyor --endpoint {endpoint} run list {pipeline}\n  conveyor --endpoint {endpoint} run provenance {}\n  conveyor --endpoint {endpoint} metrics dora --pipeline {pipeline}\n  the dashboard at http://{}/",
                runs.last()
                    .map(|r| r.execution.name.as_str())
                    .unwrap_or_default(),
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

/// `P` of `pipelines/P/executions/E`.
fn pipeline_of(execution: &str) -> &str {
    execution
        .trim_start_matches("pipelines/")
        .split('/')
        .next()
        .unwrap_or_default()
}

/// Prints the pipeline's DORA numbers once the metrics service has
/// consumed the last run's events (or after ten seconds).
async fn dora_summary(endpoint: &str, last: &pb::Execution) {
    use conveyor_api::metrics::v1 as metrics;
    let Ok(channel) = conveyor_api::client::channel(endpoint) else {
        return;
    };
    let mut client = metrics::metrics_service_client::MetricsServiceClient::new(channel);
    let pipeline = format!("pipelines/{}", pipeline_of(&last.name));
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
                pipeline: pipeline.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    match dora {
        Ok(m) => {
            println!(
                "
DORA metrics (last 30 days, {pipeline})"
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
