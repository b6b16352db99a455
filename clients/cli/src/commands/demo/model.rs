//! The machine-learning part of the demo: examples/machine-learning as a
//! git repository and its pipeline applied as `demo-model`, serving from the
//! copies of the service the application part deployed. Model 1 trains,
//! passes its quality gate (the first model has no production model to
//! beat) and rolls out to prod in waves. With `--break`, model 2 drops a
//! feature: its evaluation is far worse than the model in production, the
//! model-quality gate fails the build, and prod keeps serving model 1.

use conveyor_api::execution::v1 as pb;

use super::{Run, Session, http, repo};

const EXAMPLE: &str = "machine-learning";
/// The name the demo's model pipeline is stored under.
pub const PIPELINE: &str = "demo-model";

pub async fn run(s: &mut Session, break_release: bool) -> anyhow::Result<Vec<Run>> {
    let repo_dir = s.dir.join("model-repo");
    let message = "Price model on x1 and x2";
    let first = repo::create(&repo_dir, EXAMPLE, message)?;
    println!(
        "\n  repository     {} (examples/machine-learning, commit {})",
        repo_dir.display(),
        &first[..12]
    );
    s.apply_example(EXAMPLE, PIPELINE, &repo_dir).await?;

    let mut runs = Vec::new();
    println!("\nmodel 1: {message}");
    let model = s.release(PIPELINE, &first, message).await?;
    println!("  evaluation     {}", evaluation(&model));
    runs.push(Run {
        execution: model,
        expected: pb::ExecutionState::Succeeded,
    });
    show(s);

    if break_release {
        let message = "Train on x1 only";
        repo::write(
            &repo_dir,
            "model/params.env",
            b"# Training parameters (shell syntax, read by ci/train.sh).\nFEATURES=x1\n",
            false,
        )?;
        let second = repo::commit(&repo_dir, message)?;
        println!("\nmodel 2: {message}");
        let worse = s.release(PIPELINE, &second, message).await?;
        println!("  evaluation     {}", evaluation(&worse));
        runs.push(Run {
            execution: worse,
            expected: pb::ExecutionState::Failed,
        });
        show(s);
    }
    Ok(runs)
}

/// The evaluate action's metrics and its gate's verdict.
fn evaluation(e: &pb::Execution) -> String {
    let Some(action) = e
        .stages
        .iter()
        .flat_map(|st| st.actions.iter())
        .find(|a| a.action == "evaluate")
    else {
        return "not evaluated".to_owned();
    };
    let mut metrics: Vec<String> = action
        .metrics
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    metrics.sort();
    let verdict = match action.gate.as_ref().and_then(|g| g.model_quality.clone()) {
        Some(q) => match q.baseline {
            Some(baseline) => format!(
                "{}: {} {} against production's {baseline}",
                if action.gate.as_ref().is_some_and(|g| g.passed) {
                    "passed"
                } else {
                    "failed"
                },
                q.metric,
                q.value.map(|v| v.to_string()).unwrap_or_default()
            ),
            None => "first model: nothing in production to compare with".to_owned(),
        },
        None => String::new(),
    };
    format!("{} ({verdict})", metrics.join(", "))
}

/// What each prod copy serves.
fn show(s: &Session) {
    for port in &s.ports.prod {
        let model = http::get(*port, "/model").unwrap_or_else(|e| format!("no answer: {e}"));
        let prediction =
            http::get(*port, "/predict?x1=2&x2=3").unwrap_or_else(|e| format!("no answer: {e}"));
        println!(
            "  prod :{port} {} predict(2, 3) = {}",
            model.lines().next().unwrap_or_default(),
            prediction.trim()
        );
    }
}
