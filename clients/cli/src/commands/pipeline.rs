//! `conveyor pipeline ...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use conveyor_api::client::RetryPolicy;
use conveyor_api::common::v1::SpecFormat;
use conveyor_api::definitions::v1 as pb;
use conveyor_api::pipelines::PipelineClient;
use conveyor_definitions::domain::{self, Source};
use conveyor_definitions::spec::{Format, PipelineType};
use conveyor_definitions::templates;
use serde_json::json;

use super::Context;
use crate::output::{self, OutputFormat};
use crate::status::to_anyhow;

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Print a conformant starting pipeline for a pipeline type.
    Init(InitArgs),
    /// Check a pipeline file offline: structure and DPRA conformance (exit 1 when invalid).
    Validate(FileArgs),
    /// Create the pipeline in a file, or add a revision when it changed.
    Apply(ApplyArgs),
    /// Show a pipeline and its current (or a given) revision.
    Get(GetArgs),
    /// List pipelines.
    List(ListArgs),
    /// List a pipeline's revisions, newest first.
    Revisions(NameArgs),
    /// Delete a pipeline and all its revisions.
    Delete(NameArgs),
    /// Print the JSON Schema of the pipeline file format.
    Schema,
}

#[derive(Args)]
pub struct InitArgs {
    /// application, compute-image, account-fleet, machine-learning or dynamic-configuration.
    #[arg(long = "type", value_parser = parse_type)]
    pipeline_type: PipelineType,
    /// metadata.name of the new pipeline [default: the type's name].
    #[arg(long)]
    name: Option<String>,
    /// metadata.project.
    #[arg(long, default_value = "default")]
    project: String,
    /// Write to this file instead of standard output.
    #[arg(short = 'f', long)]
    file: Option<PathBuf>,
}

#[derive(Args)]
pub struct FileArgs {
    /// A YAML or JSON pipeline file.
    #[arg(short = 'f', long)]
    file: PathBuf,
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    file: FileArgs,
    /// Why the pipeline changes; recorded on the revision.
    #[arg(short = 'm', long, default_value = "")]
    message: String,
    /// Who changes it [default: $USER].
    #[arg(long)]
    author: Option<String>,
    /// Store the pipeline even if required DPRA rules fail (recorded on the revision).
    #[arg(long)]
    accept_non_conformance: bool,
}

#[derive(Args)]
pub struct GetArgs {
    name: String,
    /// A revision number [default: the current one].
    #[arg(long)]
    revision: Option<i64>,
    /// Print the pipeline's source document only.
    #[arg(long)]
    source: bool,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long)]
    project: Option<String>,
    #[arg(long = "type", value_parser = parse_type)]
    pipeline_type: Option<PipelineType>,
    /// Only pipelines that take artifacts from this pipeline (spec.upstream).
    #[arg(long, value_name = "PIPELINE")]
    upstream: Option<String>,
}

#[derive(Args)]
pub struct NameArgs {
    name: String,
}

fn parse_type(s: &str) -> Result<PipelineType, String> {
    PipelineType::parse(s).ok_or_else(|| {
        let all: Vec<&str> = PipelineType::ALL.iter().map(|t| t.as_str()).collect();
        format!("unknown type {s:?}; one of {}", all.join(", "))
    })
}

/// `shop` or `pipelines/shop` → `pipelines/shop`.
fn resource(name: &str) -> String {
    if name.starts_with("pipelines/") {
        name.to_owned()
    } else {
        format!("pipelines/{name}")
    }
}

fn read(path: &Path) -> anyhow::Result<(Vec<u8>, Format)> {
    let content = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yaml" | "yml") => Format::Yaml,
        _ => Format::Auto,
    };
    Ok((content, format))
}

fn client(ctx: &Context) -> anyhow::Result<PipelineClient> {
    let retry = RetryPolicy {
        // A person is waiting: give up on an unreachable server quickly.
        deadline: std::time::Duration::from_secs(3),
        ..RetryPolicy::default()
    };
    Ok(PipelineClient::new(&ctx.endpoint)
        .with_context(|| format!("invalid endpoint {:?}", ctx.endpoint))?
        .with_retry(retry))
}

pub async fn run(ctx: &Context, command: PipelineCommand) -> anyhow::Result<ExitCode> {
    match command {
        PipelineCommand::Init(args) => init(ctx, args),
        PipelineCommand::Validate(args) => validate(ctx, args),
        PipelineCommand::Apply(args) => apply(ctx, args).await,
        PipelineCommand::Get(args) => get(ctx, args).await,
        PipelineCommand::List(args) => list(ctx, args).await,
        PipelineCommand::Revisions(args) => revisions(ctx, args).await,
        PipelineCommand::Delete(args) => delete(ctx, args).await,
        PipelineCommand::Schema => {
            print!("{}", conveyor_definitions::spec::json_schema());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(ctx: &Context, args: InitArgs) -> anyhow::Result<ExitCode> {
    let format = match ctx.output {
        OutputFormat::Json => Format::Json,
        OutputFormat::Table => Format::Yaml,
    };
    let name = args
        .name
        .unwrap_or_else(|| args.pipeline_type.as_str().to_owned());
    let rendered = templates::render(args.pipeline_type, &name, &args.project, format)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match args.file {
        Some(path) => {
            std::fs::write(&path, rendered)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {} ({} pipeline {name:?})",
                path.display(),
                args.pipeline_type
            );
        }
        None => print!("{rendered}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(ctx: &Context, args: FileArgs) -> anyhow::Result<ExitCode> {
    let (content, format) = read(&args.file)?;
    let v = domain::validate(&Source { content, format });
    let valid = v.is_valid();
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!({
            "file": args.file.display().to_string(),
            "valid": valid,
            "errors": v.errors.iter().map(|e| json!({"field": e.field, "message": e.message, "line": e.line, "column": e.column})).collect::<Vec<_>>(),
            "specSha256": v.sha256,
            "conformance": v.errors.is_empty().then(|| serde_json::to_value(&v.conformance).unwrap_or_default()),
        })),
        OutputFormat::Table => {
            let file = args.file.display();
            if !v.errors.is_empty() {
                println!("{file}: {} error(s)", v.errors.len());
                for e in &v.errors {
                    println!("  {e}");
                }
            } else {
                let r = &v.conformance;
                let verdict = if valid {
                    "valid"
                } else {
                    "not DPRA-conformant"
                };
                println!(
                    "{file}: {verdict} (score {:.1}, security controls {:.1}%, {} required and {} recommended rule(s) failed)",
                    r.score,
                    r.security_control_automation_percent,
                    r.required_failures,
                    r.recommended_failures
                );
                let failed: Vec<Vec<String>> = r
                    .failures()
                    .map(|f| {
                        let location = if f.line > 0 {
                            format!("{}:{}", f.line, f.column)
                        } else {
                            String::new()
                        };
                        vec![
                            f.rule_id.clone(),
                            format!("{:?}", f.severity).to_lowercase(),
                            f.field.clone(),
                            location,
                            f.message.clone(),
                        ]
                    })
                    .collect();
                if !failed.is_empty() {
                    output::table(&["RULE", "SEVERITY", "FIELD", "LINE", "MESSAGE"], &failed);
                }
                for w in r.rules.iter().filter(|r| !r.waiver.is_empty()) {
                    println!("  waived: {} ({})", w.rule_id, w.waiver);
                }
            }
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn apply(ctx: &Context, args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let (content, format) = read(&args.file.file)?;
    let author = args
        .author
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let request = pb::ApplyPipelineRequest {
        source: Some(pb::PipelineSource {
            content,
            format: match format {
                Format::Json => SpecFormat::Json,
                Format::Yaml => SpecFormat::Yaml,
                Format::Auto => SpecFormat::Unspecified,
            } as i32,
        }),
        author,
        message: args.message,
        accept_non_conformance: args.accept_non_conformance,
        request_id: String::new(),
    };
    // The client gives the request an id, so its retries apply it once.
    let applied = client(ctx)?.apply(request).await.map_err(to_anyhow)?;
    let pipeline = applied.pipeline.unwrap_or_default();
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!({
            "created": applied.created,
            "revisionCreated": applied.revision_created,
            "pipeline": output::pipeline_json(&pipeline),
        })),
        OutputFormat::Table => {
            let revision = pipeline.revision.as_ref().map_or(0, |r| r.revision);
            let what = match (applied.created, applied.revision_created) {
                (true, _) => "created",
                (false, true) => "updated",
                (false, false) => "unchanged",
            };
            println!("{} {what} (revision {revision})", pipeline.name);
            if let Some(report) = pipeline
                .revision
                .as_ref()
                .and_then(|r| r.conformance.as_ref())
            {
                for rule in report.rules.iter().filter(|r| !r.passed) {
                    let level = if !rule.waiver.is_empty() {
                        format!("waived ({})", rule.waiver)
                    } else if rule.severity == pb::RuleSeverity::Error as i32 {
                        "error (accepted)".to_owned()
                    } else {
                        "warning".to_owned()
                    };
                    println!(
                        "  {level}: {} {}: {}",
                        rule.rule_id, rule.field, rule.message
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(ctx: &Context, args: GetArgs) -> anyhow::Result<ExitCode> {
    let request = pb::GetPipelineRequest {
        name: resource(&args.name),
        revision: args.revision.unwrap_or(0),
        view: pb::PipelineView::Full as i32,
    };
    let p = client(ctx)?.get(request).await.map_err(to_anyhow)?;
    let revision = p.revision.clone().unwrap_or_default();
    if args.source {
        print!(
            "{}",
            String::from_utf8_lossy(&revision.source.unwrap_or_default().content)
        );
        return Ok(ExitCode::SUCCESS);
    }
    match ctx.output {
        OutputFormat::Json => output::print_json(&output::pipeline_json(&p)),
        OutputFormat::Table => {
            let report = revision.conformance.clone().unwrap_or_default();
            let rows = vec![
                vec!["name".into(), p.name.clone()],
                vec!["project".into(), p.project.clone()],
                vec!["type".into(), output::type_name(p.r#type).into()],
                vec!["revision".into(), revision.revision.to_string()],
                vec!["author".into(), revision.author.clone()],
                vec!["message".into(), revision.message.clone()],
                vec!["created".into(), output::time(&revision.create_time)],
                vec!["spec sha256".into(), revision.spec_sha256.clone()],
                vec!["etag".into(), p.etag.clone()],
                vec![
                    "conformance".into(),
                    format!(
                        "score {:.1}, security controls {:.1}%",
                        report.score, report.security_control_automation_percent
                    ),
                ],
                vec![
                    "non-conformance accepted".into(),
                    revision.non_conformance_accepted.to_string(),
                ],
            ];
            output::table(&["FIELD", "VALUE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = client(ctx)?;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list(pb::ListPipelinesRequest {
                page_size: 500,
                page_token: token,
                project: args.project.clone().unwrap_or_default(),
                r#type: args.pipeline_type.map_or(0, |t| {
                    conveyor_definitions::api::pipeline_type_to_pb(t) as i32
                }),
                view: pb::PipelineView::Basic as i32,
                upstream: args
                    .upstream
                    .as_deref()
                    .map(|p| format!("pipelines/{}", p.trim_start_matches("pipelines/")))
                    .unwrap_or_default(),
            })
            .await
            .map_err(to_anyhow)?;
        all.extend(page.pipelines);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            all.iter().map(output::pipeline_json).collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|p| {
                    let rev = p.revision.as_ref();
                    vec![
                        p.name.trim_start_matches("pipelines/").to_owned(),
                        p.project.clone(),
                        output::type_name(p.r#type).to_owned(),
                        rev.map_or(0, |r| r.revision).to_string(),
                        output::time(&p.update_time),
                    ]
                })
                .collect();
            output::table(&["NAME", "PROJECT", "TYPE", "REVISION", "UPDATED"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn revisions(ctx: &Context, args: NameArgs) -> anyhow::Result<ExitCode> {
    let client = client(ctx)?;
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_revisions(pb::ListPipelineRevisionsRequest {
                parent: resource(&args.name),
                page_size: 500,
                page_token: token,
                view: pb::PipelineView::Basic as i32,
            })
            .await
            .map_err(to_anyhow)?;
        all.extend(page.revisions);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!(
            all.iter().map(output::revision_json).collect::<Vec<_>>()
        )),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|r| {
                    vec![
                        r.revision.to_string(),
                        output::time(&r.create_time),
                        r.author.clone(),
                        r.spec_sha256.chars().take(12).collect(),
                        r.message.clone(),
                    ]
                })
                .collect();
            output::table(
                &["REVISION", "CREATED", "AUTHOR", "SHA256", "MESSAGE"],
                &rows,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(ctx: &Context, args: NameArgs) -> anyhow::Result<ExitCode> {
    let name = resource(&args.name);
    client(ctx)?
        .delete(pb::DeletePipelineRequest {
            name: name.clone(),
            etag: String::new(),
        })
        .await
        .map_err(to_anyhow)?;
    match ctx.output {
        OutputFormat::Json => output::print_json(&json!({"deleted": name})),
        OutputFormat::Table => println!("{name} deleted"),
    }
    Ok(ExitCode::SUCCESS)
}
