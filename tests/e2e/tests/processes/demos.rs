//! The examples' pipelines across processes: `conveyor demo --type TYPE
//! --break` drives them against the cluster's services instead of its
//! embedded control plane, on Postgres and Redis when the environment has
//! them.

use super::{Cluster, binary};

/// The example application's DPRA pipeline, from commit to prod, then the
/// dynamic-configuration pipeline's versions delivered to the running
/// service, on the services as separate processes with two workers:
/// `conveyor demo --type dynamic-configuration --break` drives them against
/// this control plane instead of its embedded one. The third configuration
/// version puts prod in maintenance and is rolled back; the service's
/// processes never restart. The service's next release records the
/// configuration it ran with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_pipelines_reach_prod_across_processes() {
    let mut c = Cluster::start().await;
    c.start_worker("w1");
    c.start_worker("w2");
    let out = demo(&c, "dynamic-configuration").await;
    let runs = runs(&out);
    assert_eq!(runs.len(), 6, "{out}");
    assert!(
        runs[0].contains("demo-shop") && runs[0].contains(": succeeded"),
        "{out}"
    );
    for run in &runs[1..3] {
        assert!(
            run.contains("demo-config") && run.contains(": succeeded"),
            "{out}"
        );
    }
    assert!(
        runs[3].contains("demo-config") && runs[3].contains(": rolled back"),
        "{out}"
    );
    assert!(
        out.contains("(wave 3)"),
        "prod reached its last wave: {out}"
    );
    // Configuration 2 turned the new checkout on in every prod copy; the
    // rollback of configuration 3 put configuration 2's version back, and
    // every copy kept its process.
    let after_second = out
        .split("\nconfiguration 2:")
        .nth(1)
        .expect("configuration 2");
    let version_2 = after_second
        .lines()
        .find_map(|l| l.split("GET /config   version ").nth(1))
        .expect("configuration 2's version");
    assert!(
        after_second.matches("checkout: new flow").count() >= 3,
        "{out}"
    );
    let after_third = out
        .split("\nconfiguration 3:")
        .nth(1)
        .expect("configuration 3");
    assert_eq!(
        after_third
            .matches(&format!("GET /config   version {version_2}"))
            .count(),
        3,
        "{out}"
    );
    assert!(out.contains("(the same processes: no redeploy)"), "{out}");
    // The emergency redeploy of configuration 1 turned the new checkout
    // off again: every copy serves configuration 1's version.
    assert!(
        runs[4].contains("demo-config") && runs[4].contains(": succeeded"),
        "{out}"
    );
    let version_1 = out
        .split("\nconfiguration 1:")
        .nth(1)
        .and_then(|rest| {
            rest.lines()
                .find_map(|l| l.split("GET /config   version ").nth(1))
        })
        .expect("configuration 1's version");
    let emergency = out.split("\nemergency:").nth(1).expect("the emergency");
    assert_eq!(
        emergency
            .matches(&format!("GET /config   version {version_1}"))
            .count(),
        3,
        "{out}"
    );
    assert_eq!(
        emergency.matches("checkout: classic flow").count(),
        3,
        "{out}"
    );
    assert!(
        emergency.contains("skipped: redeploys the artifacts of execution"),
        "built nothing: {out}"
    );
    // The service's next release pinned the newest published configuration,
    // the redeploy's (3 was rolled back): its provenance names it.
    assert!(
        runs[5].contains("demo-shop") && runs[5].contains(": succeeded"),
        "{out}"
    );
    let redeployed = runs[4].split(':').next().expect("name");
    let pinned = out
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("ran with       dist/config.tar.gz")
        })
        .expect("the pinned configuration");
    assert!(
        pinned.ends_with(&format!(
            "from {redeployed} (the newest published configuration)"
        )),
        "{pinned}"
    );
    // The metrics service, a process of its own, read the run's events
    // from Redis (without Redis, events stay in the execution service).
    if c.env.redis.is_some() {
        let dora = out.split("\nDORA metrics").nth(1).expect("DORA numbers");
        assert!(dora.contains("pipelines/demo-config"), "{dora}");
        assert!(
            dora.contains("deployment frequency   3 deployments"),
            "{dora}"
        );
        assert!(
            dora.contains("change failure rate    25% (1 of 4 deployments)"),
            "{dora}"
        );
    }
    // Both workers ran part of it.
    for worker in ["w1", "w2"] {
        let log = std::fs::read_to_string(c.env.dir.path().join(format!("{worker}.log")))
            .unwrap_or_default();
        assert!(
            log.contains("attempt reported"),
            "{worker} ran nothing:\n{log}"
        );
    }
    c.env.cleanup().await;
}

/// Runs `conveyor demo --type TYPE --break` against the cluster (its
/// workers must be started); returns what it printed, once it succeeded.
async fn demo(c: &Cluster, demo_type: &str) -> String {
    let output = tokio::process::Command::new(binary("conveyor"))
        .arg("demo")
        .args(["--type", demo_type, "--break"])
        .arg("--control-plane")
        .arg(format!("http://127.0.0.1:{}", c.exec_port))
        .arg("--definitions")
        .arg(format!("http://127.0.0.1:{}", c.defs_port))
        .arg("--metrics")
        .arg(format!("http://127.0.0.1:{}", c.metrics_port))
        .arg("--fleet")
        .arg(format!("http://127.0.0.1:{}", c.fleet_port))
        .env("CONVEYOR_FLEET_ROOT", c.fleet_root())
        .arg("--data-dir")
        .arg(c.env.dir.path().join(format!("demo-{demo_type}")))
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// The summary lines naming each run, in order.
fn runs(out: &str) -> Vec<String> {
    out.split("\nsummary\n")
        .nth(1)
        .expect("a summary")
        .lines()
        .filter(|l| l.trim_start().starts_with("pipelines/"))
        .map(|l| l.trim().to_owned())
        .collect()
}

/// The compute-image pipeline across processes: image 1's publish starts
/// the application's pipeline by itself, pinned to the image's digest, and
/// the provenance of that application execution leads back to the image;
/// image 2 fails its vulnerability gate and starts nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_publish_ships_the_service_built_on_it_across_processes() {
    let mut c = Cluster::start().await;
    c.start_worker("w1");
    c.start_worker("w2");
    let out = demo(&c, "compute-image").await;
    let runs = runs(&out);
    assert_eq!(runs.len(), 3, "{out}");
    assert!(
        runs[0].starts_with("pipelines/demo-image/") && runs[0].ends_with(": succeeded"),
        "{out}"
    );
    assert!(
        runs[1].starts_with("pipelines/demo-shop/") && runs[1].ends_with(": succeeded"),
        "{out}"
    );
    assert!(
        runs[2].starts_with("pipelines/demo-image/") && runs[2].contains(": failed"),
        "{out}"
    );
    assert!(
        runs[2].contains(
            "\"vulnerabilities\" failed: findings over the gate's thresholds: 1 critical"
        ),
        "{out}"
    );
    let digest = out
        .split("the publish of ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the published digest");
    assert_eq!(
        out.matches(&format!("GET /base Demo Base 1 {digest}"))
            .count(),
        3,
        "{out}"
    );
    assert!(
        out.contains("not published: pipelines/demo-shop still has 1 execution(s)"),
        "{out}"
    );
    // The application execution's provenance names the image execution and digest.
    let app = runs[1].split(':').next().expect("name");
    let image = runs[0].split(':').next().expect("name");
    let provenance = std::process::Command::new(binary("conveyor"))
        .args([
            "--endpoint",
            &format!("http://127.0.0.1:{}", c.exec_port),
            "-o",
            "json",
        ])
        .args(["run", "provenance", app])
        .output()
        .unwrap();
    assert!(
        provenance.status.success(),
        "{}",
        String::from_utf8_lossy(&provenance.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&provenance.stdout).expect("json");
    assert_eq!(json["execution"], app);
    assert_eq!(json["trigger"]["kind"], "TRIGGER_KIND_UPSTREAM_ARTIFACT");
    assert_eq!(json["trigger"]["upstreamExecution"], image);
    assert_eq!(json["upstreamArtifacts"][0]["digest"], digest);
    assert_eq!(json["upstream"][0]["execution"], image);
    let gates: Vec<&str> = json["upstream"][0]["stages"][0]["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .filter_map(|g| g["kind"].as_str())
        .collect();
    assert!(
        gates.contains(&"vulnerability") && gates.contains(&"policy"),
        "{gates:?}"
    );
    c.env.cleanup().await;
}

/// The machine-learning pipeline across processes: model 1 is served by
/// every prod copy of the service; model 2 is worse than model 1 by far
/// more than the gate allows, fails the build, and prod keeps model 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worse_model_never_reaches_prod_across_processes() {
    let mut c = Cluster::start().await;
    c.start_worker("w1");
    c.start_worker("w2");
    let out = demo(&c, "machine-learning").await;
    let runs = runs(&out);
    assert_eq!(runs.len(), 3, "{out}");
    assert!(
        runs[1].starts_with("pipelines/demo-model/") && runs[1].ends_with(": succeeded"),
        "{out}"
    );
    assert!(
        runs[2].contains("model quality: r2 0.6069 is worse than the production model's 0.998"),
        "{out}"
    );
    let served = out.split("\nmodel 1:").nth(1).expect("model 1");
    let version = served
        .lines()
        .find_map(|l| l.split(" version ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the served version");
    // Three copies after model 1, the same three after model 2.
    assert_eq!(
        served
            .matches(&format!("version {version} predict(2, 3) = 4.967"))
            .count(),
        6,
        "{out}"
    );
    c.env.cleanup().await;
}

/// The account-fleet pipelines across processes: the fleet service vends
/// three accounts through the vending pipeline into an OU that follows its
/// baseline; publishing baseline 2 starts its rollout by itself, in the
/// waves the fleet service planned, after an approval, and every target
/// runs it; baseline 3 denies the region of the canary account, the demo's
/// monitor sets the alarm the fleet stage watches, and the rollout reverts
/// the account it touched to baseline 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_rolls_out_across_the_fleet_and_reverts_on_alarm_across_processes() {
    let mut c = Cluster::start().await;
    c.start_worker("w1");
    c.start_worker("w2");
    let out = demo(&c, "account-fleet").await;
    let runs = runs(&out);
    assert_eq!(runs.len(), 2, "{out}");
    assert!(
        runs[0].starts_with("pipelines/account-fleet/") && runs[0].ends_with(": succeeded"),
        "{out}"
    );
    assert!(
        runs[1].contains(": rolled back (alarm \"guardrail-violations\" fired"),
        "{out}"
    );
    assert!(
        out.contains("rollouts/auto-fleet-demo-guardrails-2 started by the fleet service for baselines/guardrails/versions/2"),
        "publishing version 2 started its rollout: {out}"
    );
    assert!(
        out.contains("rollouts/auto-fleet-demo-guardrails-2 succeeded: 3 account(s) applied baselines/guardrails/versions/2"),
        "{out}"
    );
    assert!(
        out.contains("rollouts/auto-fleet-demo-guardrails-3 reverted"),
        "{out}"
    );
    assert!(out.contains("reverted       accounts/prod-eu-1"), "{out}");
    // Version 2 was assigned once its rollout succeeded; 3 never was.
    assert!(
        out.contains("organizationalUnits/fleet-demo now on baselines/guardrails/versions/2"),
        "{out}"
    );
    assert!(
        out.contains("organizationalUnits/fleet-demo stays on baselines/guardrails/versions/2"),
        "{out}"
    );
    // Every target ran baseline 2 after its rollout, and again after the
    // revert of baseline 3: the files on disk say so.
    let root = c.fleet_root();
    for (account, region) in [
        ("prod-eu-1", "eu-west-1"),
        ("prod-eu-1", "eu-central-1"),
        ("prod-us-1", "us-east-1"),
        ("prod-us-2", "us-west-2"),
    ] {
        let target = root.join(account).join(region).join("baseline/guardrails");
        let policy = std::fs::read_to_string(target.join("password-policy.json")).unwrap();
        assert!(
            policy.contains("\"MinimumPasswordLength\": 16"),
            "{account}/{region}: {policy}"
        );
        let regions = std::fs::read_to_string(target.join("allowed-regions.json")).unwrap();
        assert!(regions.contains(region), "{account}/{region}: {regions}");
    }
    c.env.cleanup().await;
}
