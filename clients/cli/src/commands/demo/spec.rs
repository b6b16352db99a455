//! An example's pipeline, pointed at the demo's local world: its source is
//! the local repository, every beta, gamma and prod target is a copy of the
//! service on a local port (the target's region is the port), bake times
//! are seconds rather than hours, and nothing has a deployment window. Everything else (stages,
//! actions, gates) is the example's own; the demo's approver may approve.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

/// Where the demo's copies of the service listen.
#[derive(Debug, Clone)]
pub struct Ports {
    pub beta: u16,
    pub gamma: Vec<u16>,
    pub prod: Vec<u16>,
}

impl Ports {
    /// Free ports on 127.0.0.1, chosen by the kernel.
    pub fn pick() -> anyhow::Result<Ports> {
        let listeners: Vec<std::net::TcpListener> = (0..6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .context("cannot find free local ports")?;
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()?;
        Ok(Ports {
            beta: ports[0],
            gamma: ports[1..3].to_vec(),
            prod: ports[3..6].to_vec(),
        })
    }
}

/// The name the demo's pipeline is stored under.
pub const PIPELINE: &str = "demo-shop";

fn probe(alarm: &str) -> Value {
    json!({
        "name": alarm,
        "probe": {
            "url": "http://127.0.0.1:{target.region}/health",
            "interval": "1s",
            "failureThreshold": 2,
        },
    })
}

fn stage_mut<'a>(spec: &'a mut Value, name: &str) -> anyhow::Result<&'a mut Value> {
    spec["stages"]
        .as_array_mut()
        .and_then(|stages| stages.iter_mut().find(|s| s["name"] == name))
        .with_context(|| format!("the example pipeline has no {name} stage"))
}

fn account(spec: &Value, environment: &str) -> anyhow::Result<String> {
    spec["environments"]
        .as_array()
        .and_then(|envs| envs.iter().find(|e| e["name"] == environment))
        .and_then(|e| e["account"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("the example pipeline has no {environment} environment"))
}

/// The example's canonical spec, made runnable here.
pub fn localize(
    canonical: &str,
    name: &str,
    repo: &Path,
    ports: &Ports,
    state_dir: &Path,
    cache_dir: &Path,
) -> anyhow::Result<Value> {
    let mut doc: Value = serde_json::from_str(canonical)?;
    doc["metadata"]["name"] = json!(name);
    doc["metadata"]["project"] = json!("demo");
    let spec = &mut doc["spec"];
    spec["source"]["repository"] = json!(repo.display().to_string());
    if let Some(object) = spec.as_object_mut() {
        // The demo has no chat room to post to.
        object.remove("notifications");
    }
    let regions = |ports: &[u16]| -> Value { ports.iter().map(|p| json!(p.to_string())).collect() };
    for env in spec["environments"].as_array_mut().into_iter().flatten() {
        let ports: &[u16] = match env["name"].as_str() {
            Some("beta") => std::slice::from_ref(&ports.beta),
            Some("gamma") => &ports.gamma,
            Some("prod") => &ports.prod,
            _ => continue,
        };
        env["regions"] = regions(ports);
    }
    let targets = |account: &str, ports: &[u16]| -> Value {
        ports
            .iter()
            .map(|p| json!({"account": account, "region": p.to_string()}))
            .collect()
    };
    let has = |spec: &Value, stage: &str| {
        spec["stages"]
            .as_array()
            .is_some_and(|stages| stages.iter().any(|s| s["name"] == stage))
    };
    if has(spec, "gamma") {
        let gamma_account = account(spec, "gamma")?;
        let gamma = stage_mut(spec, "gamma")?;
        gamma["deployment"] = json!({
            "waves": [{"name": "gamma", "targets": targets(&gamma_account, &ports.gamma)}],
            "bakeTime": "2s",
            "alarms": [probe("gamma-health")],
        });
    }
    if has(spec, "prod") {
        let prod_account = account(spec, "prod")?;
        let prod = stage_mut(spec, "prod")?;
        let deployment = prod["deployment"]
            .as_object_mut()
            .context("the example's prod stage has no deployment")?;
        deployment.remove("timeWindows");
        deployment.insert(
            "waves".to_owned(),
            json!([
                {"name": "one-box", "targets": targets(&prod_account, &ports.prod[..1])},
                {"name": "wave-2", "targets": targets(&prod_account, &ports.prod[1..2])},
                {"name": "wave-3", "targets": targets(&prod_account, &ports.prod[2..])},
            ]),
        );
        deployment.insert("bakeTime".to_owned(), json!("3s"));
        deployment.insert("alarms".to_owned(), json!([probe("prod-health")]));
    }
    for stage in spec["stages"].as_array_mut().into_iter().flatten() {
        // Other deploying stages (an image's publish, say) keep their
        // targets, with the demo's bake time.
        let ports_named = matches!(stage["name"].as_str(), Some("gamma" | "prod"));
        if let Some(deployment) = stage["deployment"].as_object_mut()
            && !ports_named
        {
            deployment.insert("bakeTime".to_owned(), json!("2s"));
            deployment.remove("timeWindows");
        }
        // The demo's approver approves every production stage.
        if let Some(approval) = stage["approval"].as_object_mut() {
            approval.insert(
                "groups".to_owned(),
                json!([super::progress::APPROVER_GROUP]),
            );
        }
        let beta = stage["name"] == "beta";
        for action in stage["actions"].as_array_mut().into_iter().flatten() {
            let env = &mut action["env"];
            if !env.is_object() {
                *env = json!({});
            }
            env["DEMO_STATE_DIR"] = json!(state_dir.display().to_string());
            env["DEMO_CACHE_DIR"] = json!(cache_dir.display().to_string());
            if beta {
                env["APP_PORT"] = json!(ports.beta.to_string());
            }
        }
    }
    Ok(doc)
}
