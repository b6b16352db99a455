//! The pipeline-as-code document, as parsed.
//!
//! Field names are camelCase in YAML and JSON; unknown fields are refused.
//! Defaults are filled in on parse, so the canonical form (see
//! [`super::canonical`]) always spells every field out.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Dur;

pub const API_VERSION: &str = "conveyor/v1";
pub const KIND: &str = "Pipeline";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Document {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    #[serde(default = "default_project")]
    pub project: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_project() -> String {
    "default".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(rename = "type")]
    pub pipeline_type: PipelineType,
    pub source: Source,
    #[serde(default)]
    pub execution_mode: ExecutionMode,
    /// The account the pipeline itself runs in; it must differ from every
    /// environment's account (DPRA: separate accounts).
    #[serde(default)]
    pub tooling_account: Option<String>,
    #[serde(default)]
    pub environments: Vec<Environment>,
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub notifications: Vec<NotificationRule>,
    /// Pipelines whose published artifacts this one takes: every execution
    /// pins one execution of each, and a new publish can start this one.
    /// Left out of the canonical form when empty, so that specs stored
    /// before it existed keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<Upstream>,
    /// Conformance rules this pipeline is knowingly exempt from, each with
    /// its reason. Left out of the canonical form when empty.
    #[serde(default, skip_serializing_if = "ConformanceSettings::is_empty")]
    pub conformance: ConformanceSettings,
}

/// How the pipeline's conformance report treats it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConformanceSettings {
    /// Failed rules that do not count as failures: the report still shows
    /// them failed, with the reason, and the score still counts them.
    #[serde(default)]
    pub waivers: Vec<Waiver>,
}

impl ConformanceSettings {
    pub fn is_empty(&self) -> bool {
        self.waivers.is_empty()
    }
}

/// An exemption from one conformance rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Waiver {
    /// A rule id of the pipeline's type, e.g. `production.progressive`.
    pub rule: String,
    /// Why the rule does not apply, for reviewers: required, at most 1024 bytes.
    pub reason: String,
}

/// Another pipeline's published artifacts, taken as inputs (DPRA overview:
/// accounts → images → application; configuration → the running application).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Upstream {
    /// The upstream pipeline's name.
    pub pipeline: String,
    /// Which of its package and SBOM artifacts to take, by declared name;
    /// empty takes all of them.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// Whether each successful trunk execution of the upstream pipeline
    /// starts an execution of this one.
    #[serde(default = "yes")]
    pub trigger: bool,
    /// Whether this pipeline may run before the upstream has published:
    /// its executions then pin nothing from it. With `trigger: false` it
    /// records which version of the upstream (a configuration, say) was
    /// current when it ran, without depending on it. Left out of the
    /// canonical form when false.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineType {
    Application,
    ComputeImage,
    AccountFleet,
    MachineLearning,
    DynamicConfiguration,
}

impl PipelineType {
    pub const ALL: [PipelineType; 5] = [
        PipelineType::Application,
        PipelineType::ComputeImage,
        PipelineType::AccountFleet,
        PipelineType::MachineLearning,
        PipelineType::DynamicConfiguration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PipelineType::Application => "application",
            PipelineType::ComputeImage => "compute-image",
            PipelineType::AccountFleet => "account-fleet",
            PipelineType::MachineLearning => "machine-learning",
            PipelineType::DynamicConfiguration => "dynamic-configuration",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for PipelineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// A git URL or a local path.
    pub repository: String,
    /// The trunk branch: only its commits deploy (DPRA: trunk-based).
    #[serde(default = "default_trunk")]
    pub trunk: String,
    /// Glob patterns; a push touching none of them does not start a run.
    #[serde(default)]
    pub paths: Vec<String>,
}

fn default_trunk() -> String {
    "main".to_owned()
}

/// What happens when a newer change arrives while one is in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutionMode {
    /// A newer execution replaces one waiting at a stage boundary.
    #[default]
    Superseded,
    /// Executions wait their turn for each stage.
    Queued,
    /// Executions run independently.
    Parallel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    pub name: String,
    pub tier: Tier,
    /// The account the environment lives in (one account per environment).
    pub account: String,
    pub regions: Vec<String>,
    /// The role deployments assume in the account; short-lived credentials only.
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Sandbox,
    Development,
    Beta,
    Gamma,
    Production,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Sandbox => "sandbox",
            Tier::Development => "development",
            Tier::Beta => "beta",
            Tier::Gamma => "gamma",
            Tier::Production => "production",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    /// The environment the stage deploys to; none for build stages.
    #[serde(default)]
    pub environment: Option<String>,
    pub actions: Vec<Action>,
    #[serde(default)]
    pub approval: Option<Approval>,
    #[serde(default)]
    pub deployment: Option<Deployment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    pub kind: ActionKind,
    /// The command, run with `sh -c` in the checked-out source.
    pub run: String,
    /// Actions of the same stage that must succeed first.
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub retries: u32,
    /// The worker pool that runs the action.
    #[serde(default = "default_pool")]
    pub pool: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub outputs: Outputs,
    /// JSON documents the worker checks against JSON Schemas after the
    /// command succeeds; any violation fails the action (DPRA: an invalid
    /// configuration fails the build). Left out of the canonical form when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validate: Vec<SchemaCheck>,
}

/// Files that must be valid instances of a JSON Schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SchemaCheck {
    /// The schema (JSON, draft 2020-12 unless it says otherwise in
    /// `$schema`), relative to the workspace.
    pub schema: String,
    /// JSON documents to check, relative to the workspace.
    pub files: Vec<String>,
}

fn default_timeout() -> Dur {
    Dur::from_secs(15 * 60)
}

fn default_pool() -> String {
    "default".to_owned()
}

/// What an action produces, as paths relative to the workspace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Outputs {
    /// Files packaged into the stage's artifact (build stages only).
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// SARIF reports, counted by severity against the pipeline's gates.
    #[serde(default)]
    pub sarif: Vec<String>,
    /// JUnit XML test reports, stored per run.
    #[serde(default)]
    pub junit: Vec<String>,
    /// An SPDX or CycloneDX SBOM stored with the artifact.
    #[serde(default)]
    pub sbom: Option<String>,
    /// A JSON object of named numbers (a model's evaluation, say) the
    /// worker reports; `spec.gates.modelQuality` judges them. Left out of
    /// the canonical form when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// The DPRA action an action implements; conformance rules look for these.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    Build,
    UnitTest,
    CodeQuality,
    SecretsDetection,
    Sast,
    Sca,
    Sbom,
    Package,
    PolicyAsCode,
    VulnerabilityScan,
    IacUnitTest,
    DataValidation,
    Train,
    Evaluate,
    SchemaValidation,
    LaunchEnvironment,
    Provision,
    Deploy,
    DatabaseDeploy,
    DeployConfig,
    IntegrationTest,
    AcceptanceTest,
    SyntheticTest,
    PerformanceTest,
    ResilienceTest,
    Dast,
    Monitor,
    Publish,
    Custom,
}

impl ActionKind {
    /// Kinds that produce new artifacts: allowed only before the first
    /// environment stage (build once, DPRA "Consistency").
    pub fn builds(self) -> bool {
        matches!(
            self,
            ActionKind::Build | ActionKind::Package | ActionKind::Train
        )
    }

    /// Kinds that change an environment.
    pub fn deploys(self) -> bool {
        matches!(
            self,
            ActionKind::Deploy
                | ActionKind::DatabaseDeploy
                | ActionKind::DeployConfig
                | ActionKind::LaunchEnvironment
                | ActionKind::Provision
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Build => "build",
            ActionKind::UnitTest => "unit-test",
            ActionKind::CodeQuality => "code-quality",
            ActionKind::SecretsDetection => "secrets-detection",
            ActionKind::Sast => "sast",
            ActionKind::Sca => "sca",
            ActionKind::Sbom => "sbom",
            ActionKind::Package => "package",
            ActionKind::PolicyAsCode => "policy-as-code",
            ActionKind::VulnerabilityScan => "vulnerability-scan",
            ActionKind::IacUnitTest => "iac-unit-test",
            ActionKind::DataValidation => "data-validation",
            ActionKind::Train => "train",
            ActionKind::Evaluate => "evaluate",
            ActionKind::SchemaValidation => "schema-validation",
            ActionKind::LaunchEnvironment => "launch-environment",
            ActionKind::Provision => "provision",
            ActionKind::Deploy => "deploy",
            ActionKind::DatabaseDeploy => "database-deploy",
            ActionKind::DeployConfig => "deploy-config",
            ActionKind::IntegrationTest => "integration-test",
            ActionKind::AcceptanceTest => "acceptance-test",
            ActionKind::SyntheticTest => "synthetic-test",
            ActionKind::PerformanceTest => "performance-test",
            ActionKind::ResilienceTest => "resilience-test",
            ActionKind::Dast => "dast",
            ActionKind::Monitor => "monitor",
            ActionKind::Publish => "publish",
            ActionKind::Custom => "custom",
        }
    }
}

/// A human approval that holds the stage until given (DPRA: before prod only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approval {
    /// Groups whose members may approve.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Individual principals who may approve.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Whether the author of a change may approve it.
    #[serde(default)]
    pub allow_author: bool,
    #[serde(default = "one")]
    pub min_approvals: u32,
    /// How long the stage waits before the execution fails; none waits forever.
    #[serde(default)]
    pub timeout: Option<Dur>,
}

fn one() -> u32 {
    1
}

/// How a stage rolls out to its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deployment {
    /// Explicit waves, deployed in order, each after the previous one baked.
    #[serde(default)]
    pub waves: Vec<Wave>,
    /// Waves resolved from the fleet service when the stage starts.
    #[serde(default)]
    pub from_fleet: Option<FleetSelector>,
    /// Bake time after each wave unless the wave sets its own.
    #[serde(default = "default_bake")]
    pub bake_time: Dur,
    /// Bake completes only once the metric has at least this many data points.
    #[serde(default)]
    pub min_data_points: Option<DataPoints>,
    /// Alarms watched from the first deploy through the end of the last bake.
    #[serde(default)]
    pub alarms: Vec<Alarm>,
    /// When prod deployments may start; outside them the stage waits.
    #[serde(default)]
    pub time_windows: Vec<TimeWindow>,
    /// Rolling replacement limits inside a wave.
    #[serde(default)]
    pub rolling: Option<Rolling>,
    /// Roll back every target deployed by this execution when an alarm fires.
    #[serde(default = "yes")]
    pub auto_rollback: bool,
}

fn default_bake() -> Dur {
    Dur::from_secs(60 * 60)
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wave {
    pub name: String,
    pub targets: Vec<TargetRef>,
    #[serde(default)]
    pub bake_time: Option<Dur>,
    /// Deploy to a single target first and bake it before the rest of the wave.
    #[serde(default)]
    pub one_box: Option<OneBox>,
}

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetRef {
    pub account: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OneBox {
    #[serde(default = "default_one_box_bake")]
    pub bake_time: Dur,
    /// Alarms scoped to the one-box target.
    #[serde(default)]
    pub alarms: Vec<Alarm>,
}

fn default_one_box_bake() -> Dur {
    Dur::from_secs(60 * 60)
}

/// Targets chosen by the fleet service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetSelector {
    #[serde(default)]
    pub tier: Option<Tier>,
    #[serde(default)]
    pub organizational_unit: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Growth factor of successive waves after each tier's one-account canary wave.
    #[serde(default = "default_growth")]
    pub growth_factor: u32,
}

fn default_growth() -> u32 {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataPoints {
    pub metric: String,
    pub count: u64,
}

/// An alarm watched during deployment and bake: either set by an external
/// monitor through the AlarmService, or a built-in HTTP health probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Alarm {
    pub name: String,
    #[serde(default)]
    pub probe: Option<HttpProbe>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpProbe {
    /// May contain `{target.account}` and `{target.region}`.
    pub url: String,
    #[serde(default = "default_probe_interval")]
    pub interval: Dur,
    /// Consecutive failures that put the alarm in ALARM.
    #[serde(default = "default_failures")]
    pub failure_threshold: u32,
}

fn default_probe_interval() -> Dur {
    Dur::from_secs(10)
}

fn default_failures() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeWindow {
    /// Days the window is open; empty means every day.
    #[serde(default)]
    pub days: Vec<Weekday>,
    /// "HH:MM", inclusive.
    pub start: String,
    /// "HH:MM", exclusive.
    pub end: String,
    /// "UTC" or a fixed offset such as "+02:00".
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Dates ("YYYY-MM-DD") the window stays shut.
    #[serde(default)]
    pub exclude_dates: Vec<String>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Rolling {
    /// Largest share of a wave's targets replaced at once, 1 to 100.
    pub max_batch_percent: u32,
    /// Smallest share that must stay healthy, 0 to 99.
    #[serde(default)]
    pub min_healthy_percent: u32,
}

/// Finding thresholds: the most findings of each severity a run may have.
/// Secrets detection has no threshold: any finding fails the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gates {
    #[serde(default = "Thresholds::strict")]
    pub sast: Thresholds,
    #[serde(default = "Thresholds::strict")]
    pub sca: Thresholds,
    /// Code-quality findings are always recorded; they fail the run only when set.
    #[serde(default)]
    pub code_quality: Option<Thresholds>,
    #[serde(default)]
    pub dast: Option<Thresholds>,
    #[serde(default)]
    pub vulnerability_scan: Option<Thresholds>,
    #[serde(default)]
    pub policy_as_code: Option<Thresholds>,
    /// Judges `evaluate` actions' metrics against the model in production.
    /// Left out of the canonical form when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_quality: Option<ModelQuality>,
}

/// A new model may not be worse than the one in production (the pipeline's
/// newest successful trunk execution) by more than `maxRegression` on
/// `metric`, nor worse than `worstAllowed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelQuality {
    /// The metric's name in the evaluate action's `outputs.metrics`.
    pub metric: String,
    /// Whether a larger value is better (accuracy, r2) or worse (error, loss).
    #[serde(default = "yes")]
    pub higher_is_better: bool,
    /// How much worse than the production model's value is allowed.
    #[serde(default)]
    pub max_regression: f64,
    /// The worst value allowed at all, also for the first model: a floor
    /// when higher is better, a ceiling otherwise.
    #[serde(default)]
    pub worst_allowed: Option<f64>,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            sast: Thresholds::strict(),
            sca: Thresholds::strict(),
            code_quality: None,
            dast: None,
            vulnerability_scan: None,
            policy_as_code: None,
            model_quality: None,
        }
    }
}

/// Allowed findings per severity. Critical and high default to 0, medium
/// and low to unlimited; `null` makes a severity unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Thresholds {
    #[serde(default = "zero")]
    pub critical: Option<u32>,
    #[serde(default = "zero")]
    pub high: Option<u32>,
    #[serde(default)]
    pub medium: Option<u32>,
    #[serde(default)]
    pub low: Option<u32>,
}

fn zero() -> Option<u32> {
    Some(0)
}

impl Thresholds {
    /// No critical or high findings.
    pub fn strict() -> Self {
        Thresholds {
            critical: Some(0),
            high: Some(0),
            medium: None,
            low: None,
        }
    }

    pub fn is_gating(&self) -> bool {
        self.critical.is_some()
            || self.high.is_some()
            || self.medium.is_some()
            || self.low.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationRule {
    pub name: String,
    pub events: Vec<NotificationEvent>,
    /// Exactly one channel.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub slack: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationEvent {
    ActionFailed,
    ApprovalNeeded,
    RolledBack,
    Succeeded,
    MainlineRed,
    MainlineGreen,
}
