//! `conveyor fleet ...` against a real fleet service on a real socket,
//! started in the test with `conveyor_fleet::run` on a temporary SQLite file.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use conveyor_fleet::model::AccountState;
use serde_json::Value;

use super::{conveyor, run, stderr, stdout};

/// The fleet service on a free port, stopped on drop.
struct Fleet {
    endpoint: String,
    database_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _data: tempfile::TempDir,
}

impl Fleet {
    fn start() -> Fleet {
        let data = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let database_url = format!("sqlite://{}/fleet.db", data.path().display());
        let mut config = conveyor_fleet::Config {
            database_url: database_url.clone(),
            max_connections: 4,
            ..Default::default()
        };
        config.server.listen = addr;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(e) = conveyor_fleet::run(config, listener, shutdown).await {
                eprintln!("fleet service failed: {e:#}");
            }
        });
        let fleet = Fleet {
            endpoint: format!("http://{addr}"),
            database_url,
            stop: Some(stop),
            runtime: Some(runtime),
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if run(fleet.cli().args(["fleet", "ou", "list"]))
                .status
                .success()
            {
                return fleet;
            }
            #[allow(clippy::disallowed_methods)] // a synchronous test, no runtime to block
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the fleet service did not start");
    }

    fn cli(&self) -> Command {
        let mut cmd = conveyor();
        cmd.args(["--endpoint", &self.endpoint]);
        cmd
    }

    /// Runs the CLI with `args`, asserts it succeeded and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = run(self.cli().args(args));
        assert!(
            o.status.success(),
            "conveyor {}: {}{}",
            args.join(" "),
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(&[&["-o", "json"], args].concat());
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Marks accounts ACTIVE, as their vending executions would: nothing in
    /// the API does it until the execution service runs them.
    fn activate(&self, ids: &[&str]) {
        let runtime = self.runtime.as_ref().expect("runtime");
        runtime.block_on(async {
            let store = conveyor_fleet::store::Store::connect(&self.database_url, 1)
                .await
                .expect("store");
            let fleet = conveyor_fleet::domain::Fleet::new(
                store,
                std::sync::Arc::new(conveyor_fleet::executions::NoExecutions),
            );
            for id in ids {
                fleet
                    .record_provisioning(id, AccountState::Active, "provisioned", "")
                    .await
                    .expect("activate");
            }
        });
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn ous_and_accounts_with_filters() {
    let fleet = Fleet::start();
    fleet.ok(&[
        "fleet",
        "ou",
        "create",
        "prod",
        "--display-name",
        "Production",
    ]);
    fleet.ok(&[
        "fleet",
        "ou",
        "create",
        "eu",
        "--parent",
        "organizationalUnits/prod",
    ]);
    let out = fleet.ok(&["fleet", "ou", "list", "--recursive"]);
    assert!(out.contains("root/prod/eu"), "{out}");
    assert!(out.contains("Production"), "{out}");

    fleet.ok(&[
        "fleet",
        "account",
        "create",
        "acme-prod",
        "--ou",
        "prod",
        "--tier",
        "production",
        "--region",
        "us-east-1",
        "--region",
        "eu-west-1",
        "--tag",
        "team=payments",
        "--owner",
        "payments",
    ]);
    fleet.ok(&[
        "fleet",
        "account",
        "create",
        "acme-gamma",
        "--ou",
        "eu",
        "--tier",
        "gamma",
        "--region",
        "eu-west-1",
    ]);

    let production = fleet.json(&["fleet", "account", "list", "--tier", "production"]);
    assert_eq!(names(&production), ["accounts/acme-prod"]);
    assert_eq!(
        production[0]["regions"],
        serde_json::json!(["eu-west-1", "us-east-1"])
    );
    assert_eq!(production[0]["state"], "requested");
    let in_eu = fleet.json(&["fleet", "account", "list", "--ou", "eu"]);
    assert_eq!(names(&in_eu), ["accounts/acme-gamma"]);
    let tagged = fleet.json(&[
        "fleet",
        "account",
        "list",
        "--tag",
        "team=payments",
        "--all",
    ]);
    assert_eq!(names(&tagged), ["accounts/acme-prod"]);
    let out = fleet.ok(&["fleet", "account", "list", "--ou", "prod"]);
    assert!(out.starts_with("NAME"), "{out}");
    assert!(
        out.contains("acme-prod") && out.contains("acme-gamma"),
        "{out}"
    );

    let moved = fleet.json(&["fleet", "account", "move", "acme-gamma", "--to", "prod"]);
    assert_eq!(moved["organizationalUnit"], "organizationalUnits/prod");
    let out = fleet.ok(&["fleet", "account", "get", "accounts/acme-gamma"]);
    assert!(out.contains("organizationalUnits/prod"), "{out}");

    // A bad tier is refused before any call, naming the flag and the value.
    let o = run(fleet.cli().args([
        "fleet",
        "account",
        "create",
        "acme-x",
        "--ou",
        "prod",
        "--tier",
        "prod",
        "--region",
        "us-east-1",
    ]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--tier") && stderr(&o).contains("\"prod\""),
        "{}",
        stderr(&o)
    );
    // The server's field violations are printed with the field.
    let o = run(fleet.cli().args([
        "fleet",
        "account",
        "create",
        "Bad_Id",
        "--ou",
        "prod",
        "--tier",
        "production",
        "--region",
        "us-east-1",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("account_id"), "{}", stderr(&o));
}

#[test]
fn baseline_create_then_extract_round_trips_files_and_exec_bits() {
    let fleet = Fleet::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("conf")).expect("mkdir");
    std::fs::create_dir_all(bundle.join(".git")).expect("mkdir");
    std::fs::write(bundle.join("apply.sh"), "#!/bin/sh\necho applied\n").expect("write");
    std::fs::set_permissions(
        bundle.join("apply.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::write(bundle.join("conf/settings.toml"), "level = 3\n").expect("write");
    std::fs::write(bundle.join(".git/HEAD"), "ref: refs/heads/main\n").expect("write");
    let bundle_arg = bundle.to_str().expect("utf-8");

    let create = [
        "fleet",
        "baseline",
        "create",
        "base",
        "--dir",
        bundle_arg,
        "--apply",
        "./apply.sh",
        "--check",
        "./apply.sh --check",
        "--timeout",
        "5m",
        "-m",
        "first",
    ];
    let out = fleet.ok(&create);
    assert!(out.contains("baselines/base/versions/1 created"), "{out}");
    assert!(out.contains("digest sha256:"), "{out}");
    let out = fleet.ok(&create);
    assert!(out.contains("baselines/base/versions/1 unchanged"), "{out}");

    let out = fleet.ok(&["fleet", "baseline", "list"]);
    assert!(out.contains("base"), "{out}");
    let versions = fleet.json(&["fleet", "baseline", "versions", "base"]);
    assert_eq!(versions[0]["version"], 1);

    let target = dir.path().join("out");
    let got = fleet.json(&[
        "fleet",
        "baseline",
        "get",
        "base@1",
        "--extract",
        target.to_str().expect("utf-8"),
    ]);
    assert_eq!(got["checkCommand"], "./apply.sh --check");
    assert_eq!(got["timeout"], "5m");
    assert_eq!(
        std::fs::read_to_string(target.join("apply.sh")).expect("apply.sh"),
        "#!/bin/sh\necho applied\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("conf/settings.toml")).expect("settings"),
        "level = 3\n"
    );
    let mode = |p: &str| {
        std::fs::metadata(target.join(p))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("apply.sh"), 0o755);
    assert_eq!(mode("conf/settings.toml") & 0o111, 0);
    assert!(
        !target.join(".git").exists(),
        ".git is not part of the bundle"
    );

    // Assigned on an OU, it is the desired baseline of the accounts below.
    fleet.ok(&["fleet", "ou", "create", "prod"]);
    fleet.ok(&["fleet", "ou", "create", "eu", "--parent", "prod"]);
    fleet.ok(&[
        "fleet",
        "account",
        "create",
        "acme-eu",
        "--ou",
        "eu",
        "--tier",
        "production",
        "--region",
        "eu-west-1",
    ]);
    fleet.activate(&["acme-eu"]);
    fleet.ok(&["fleet", "baseline", "assign", "base@1", "--ou", "prod"]);
    let out = fleet.ok(&["fleet", "ou", "list", "--recursive"]);
    assert!(out.contains("base@1 (inherited)"), "{out}");
    let out = fleet.ok(&["fleet", "drift", "--state", "not-applied"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("acme-eu") && l.contains("base@1") && l.contains("not-applied")),
        "{out}"
    );
    let ou = fleet.json(&["fleet", "baseline", "unassign", "--ou", "prod"]);
    assert_eq!(ou["baselineVersion"], "");
}

#[test]
fn rollout_plan_prints_waves_as_json_and_status_reads_rollouts() {
    let fleet = Fleet::start();
    fleet.ok(&["fleet", "ou", "create", "prod"]);
    let accounts = ["prod-a", "prod-b", "prod-c", "prod-d"];
    for a in accounts {
        fleet.ok(&[
            "fleet",
            "account",
            "create",
            a,
            "--ou",
            "prod",
            "--tier",
            "production",
            "--region",
            "us-east-1",
            "--region",
            "eu-west-1",
        ]);
    }
    fleet.activate(&accounts);

    let plan = fleet.json(&[
        "fleet",
        "rollout",
        "plan",
        "--tier",
        "production",
        "--ou",
        "prod",
        "--bake",
        "30m",
    ]);
    let waves = plan["waves"].as_array().expect("waves");
    assert!(!waves.is_empty(), "{plan}");
    let targets: usize = waves
        .iter()
        .map(|w| w["targets"].as_array().expect("targets").len())
        .sum();
    assert_eq!(targets, 8, "{plan}");
    assert!(waves[0]["targets"][0]["account"].is_string(), "{plan}");
    assert!(waves[0]["targets"][0]["region"].is_string(), "{plan}");
    assert_eq!(plan["targetCount"], 8);
    assert!(
        plan["planDigest"].as_str().is_some_and(|d| !d.is_empty()),
        "{plan}"
    );

    fleet.ok(&[
        "fleet", "freeze", "add", "--ou", "prod", "--reason", "launch", "--for", "1h", "--id",
        "launch",
    ]);
    let out = fleet.ok(&["fleet", "rollout", "plan", "--tier", "production"]);
    assert!(out.starts_with("WAVE"), "{out}");
    assert!(out.contains("active freezes:"), "{out}");
    assert!(out.contains("plan digest: "), "{out}");

    // No rollout started yet: the listing is empty, and a missing one is NOT_FOUND.
    fleet.ok(&["fleet", "rollout", "status"]);
    let o = run(fleet.cli().args(["fleet", "rollout", "status", "nope"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

#[test]
fn freeze_add_list_override_remove() {
    let fleet = Fleet::start();
    fleet.ok(&["fleet", "ou", "create", "prod"]);
    fleet.ok(&["fleet", "ou", "create", "eu", "--parent", "prod"]);
    let out = fleet.ok(&[
        "fleet", "freeze", "add", "--ou", "prod", "--reason", "holidays", "--start", "now",
        "--for", "2h", "--id", "holidays",
    ]);
    assert!(out.contains("prod/holidays"), "{out}");

    let out = fleet.ok(&["fleet", "freeze", "list"]);
    assert!(
        out.lines().any(|l| l.starts_with("prod/holidays")
            && l.contains("tester")
            && l.ends_with("holidays")),
        "{out}"
    );
    let inherited = fleet.json(&["fleet", "freeze", "list", "--ou", "eu", "--inherited"]);
    assert_eq!(
        names(&inherited),
        ["organizationalUnits/prod/freezeWindows/holidays"]
    );
    let own = fleet.json(&["fleet", "freeze", "list", "--ou", "eu"]);
    assert_eq!(own, serde_json::json!([]));

    let w = fleet.json(&[
        "fleet",
        "freeze",
        "override",
        "prod/holidays",
        "--reason",
        "incident 7",
        "--principal",
        "dana",
        "--pipeline",
        "shop",
    ]);
    assert_eq!(w["overrides"][0]["principal"], "dana");
    assert_eq!(w["overrides"][0]["pipeline"], "pipelines/shop");

    fleet.ok(&[
        "fleet",
        "freeze",
        "remove",
        "organizationalUnits/prod/freezeWindows/holidays",
    ]);
    assert_eq!(
        fleet.json(&["fleet", "freeze", "list"]),
        serde_json::json!([])
    );
}
