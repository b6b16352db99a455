//! The `conveyor` binary, run as a real process: offline commands, and
//! `conveyor dev` serving the others over a real socket.

#![allow(clippy::unwrap_used)] // test inputs are built by the tests themselves

mod account_fleet;
mod fleet;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn conveyor() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_conveyor"));
    cmd.env_remove("CONVEYOR_ENDPOINT").env("USER", "tester");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run conveyor")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn init(dir: &Path, kind: &str, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let o = run(conveyor()
        .args([
            "pipeline",
            "init",
            "--type",
            kind,
            "--name",
            name,
            "--project",
            "retail",
            "-f",
        ])
        .arg(&path));
    assert!(o.status.success(), "{}", stderr(&o));
    path
}

#[test]
fn init_then_validate_every_type() {
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in [
        "application",
        "compute-image",
        "account-fleet",
        "machine-learning",
        "dynamic-configuration",
    ] {
        let path = init(dir.path(), kind, "demo");
        let o = run(conveyor().args(["pipeline", "validate", "-f"]).arg(&path));
        assert!(o.status.success(), "{kind}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("valid (score 100.0"), "{}", stdout(&o));
    }
    let json = run(conveyor().args(["pipeline", "init", "--type", "application", "-o", "json"]));
    let parsed: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("init -o json is JSON");
    assert_eq!(parsed["spec"]["type"], "application");
}

#[test]
fn validate_exits_1_and_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = init(dir.path(), "application", "shop");
    let text = std::fs::read_to_string(&path)
        .expect("read")
        .replace("needs: [compile]", "needs: [nope]");
    std::fs::write(&path, text).expect("write");
    let o = run(conveyor().args(["pipeline", "validate", "-f"]).arg(&path));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("spec.stages[0].actions[1].needs[0] (line "),
        "{}",
        stdout(&o)
    );

    let o = run(conveyor()
        .args(["pipeline", "validate", "-o", "json", "-f"])
        .arg(&path));
    assert_eq!(o.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(report["valid"], false);
    assert_eq!(
        report["errors"][0]["field"],
        "spec.stages[0].actions[1].needs[0]"
    );

    let missing = run(conveyor().args(["pipeline", "validate", "-f", "/nonexistent.yaml"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
}

/// `conveyor dev` on a free port, stopped on drop.
struct Dev {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Dev {
    fn start() -> Dev {
        Dev::start_with(&[])
    }

    /// `conveyor dev` with `env` set (its worker's actions inherit it).
    fn start_with(env: &[(&str, &Path)]) -> Dev {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let data = tempfile::tempdir().expect("tempdir");
        let child = conveyor()
            .args([
                "dev",
                "--listen",
                &format!("127.0.0.1:{port}"),
                // Tests run side by side: not the fixed default port.
                "--dashboard-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(data.path())
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start conveyor dev");
        let dev = Dev {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let o = run(dev.cli().args(["pipeline", "list"]));
            if o.status.success() {
                return dev;
            }
            #[allow(clippy::disallowed_methods)] // a synchronous test, no runtime to block
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("conveyor dev did not start");
    }

    fn cli(&self) -> Command {
        let mut cmd = conveyor();
        cmd.args(["--endpoint", &self.endpoint]);
        cmd
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn apply_get_list_revisions_delete_against_conveyor_dev() {
    let dev = Dev::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = init(dir.path(), "application", "shop");

    let o = run(dev
        .cli()
        .args(["pipeline", "apply", "-m", "first"])
        .arg("-f")
        .arg(&path));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "pipelines/shop created (revision 1)");
    let o = run(dev.cli().args(["pipeline", "apply"]).arg("-f").arg(&path));
    assert_eq!(stdout(&o).trim(), "pipelines/shop unchanged (revision 1)");

    let changed = std::fs::read_to_string(&path)
        .expect("read")
        .replace("bakeTime: 2h", "bakeTime: 4h");
    std::fs::write(&path, changed).expect("write");
    let o = run(dev
        .cli()
        .args(["pipeline", "apply", "-m", "longer bake"])
        .arg("-f")
        .arg(&path));
    assert_eq!(stdout(&o).trim(), "pipelines/shop updated (revision 2)");

    let o = run(dev.cli().args(["pipeline", "list"]));
    let out = stdout(&o);
    assert!(
        out.lines().next().is_some_and(|h| h.starts_with("NAME")),
        "{out}"
    );
    assert!(out.contains("shop") && out.contains("application"), "{out}");

    let o = run(dev.cli().args(["-o", "json", "pipeline", "get", "shop"]));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(p["revision"]["revision"], 2);
    assert_eq!(p["revision"]["author"], "tester");
    assert_eq!(
        p["revision"]["canonicalSpec"]["spec"]["stages"][3]["deployment"]["bakeTime"],
        "4h"
    );

    let o = run(dev
        .cli()
        .args(["pipeline", "get", "shop", "--revision", "1", "--source"]));
    assert!(stdout(&o).contains("bakeTime: 2h"), "{}", stdout(&o));

    let o = run(dev
        .cli()
        .args(["-o", "json", "pipeline", "revisions", "shop"]));
    let revisions: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let numbers: Vec<i64> = revisions
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["revision"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    assert_eq!(revisions[0]["message"], "longer bake");

    // Bad input is refused with the field, and nothing changes.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&path)
            .expect("read")
            .replace("kind: sast", "kind: custom"),
    )
    .expect("write");
    let o = run(dev.cli().args(["pipeline", "apply"]).arg("-f").arg(&bad));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("build.sast"), "{}", stderr(&o));
    let o = run(dev
        .cli()
        .args(["pipeline", "apply", "--accept-non-conformance"])
        .arg("-f")
        .arg(&bad));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("error (accepted): build.sast"),
        "{}",
        stdout(&o)
    );

    let o = run(dev.cli().args(["pipeline", "delete", "shop"]));
    assert!(o.status.success());
    let o = run(dev.cli().args(["pipeline", "get", "shop"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let o = run(conveyor().args([
        "--endpoint",
        &format!("http://127.0.0.1:{port}"),
        "pipeline",
        "list",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach the control plane"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_start_waits_for_a_real_execution_in_conveyor_dev() {
    let dev = Dev::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("app.txt"), "v1\n").expect("write");
    for args in [
        vec!["init", "--quiet", "--initial-branch=main"],
        vec!["add", "app.txt"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "--quiet",
            "-m",
            "first",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(&args)
                .current_dir(&repo)
                .status()
                .expect("git")
                .success()
        );
    }
    let built = dir.path().join("built");
    let spec = format!(
        "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {{name: app}}\nspec:\n  type: application\n  source: {{repository: \"{}\"}}\n  stages:\n    - name: build\n      actions:\n        - {{name: compile, kind: build, run: 'cp app.txt {} && echo copied $(cat app.txt)'}}\n",
        repo.display(),
        built.display()
    );
    let path = dir.path().join("app.yaml");
    std::fs::write(&path, spec).expect("write");
    let o = run(dev
        .cli()
        .args(["pipeline", "apply", "--accept-non-conformance", "-f"])
        .arg(&path));
    assert!(o.status.success(), "{}", stderr(&o));

    let o = run(dev
        .cli()
        .args(["-o", "json", "run", "start", "app", "--wait"]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(e["state"], "succeeded");
    assert_eq!(e["stages"][0]["actions"][0]["state"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(&built).expect("built").trim(),
        "v1",
        "the worker ran the command in a checkout"
    );

    let o = run(dev.cli().args(["run", "list", "app"]));
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));

    let name = e["name"].as_str().expect("name").to_owned();
    let o = run(dev.cli().args(["logs", &name]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("copied v1"), "{}", stdout(&o));

    let o = run(dev.cli().args(["block", "app", "--reason", "incident 42"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("blocks every deploying stage"),
        "{}",
        stdout(&o)
    );
    let o = run(dev
        .cli()
        .args(["-o", "json", "unblock", "app", "--reason", "resolved"]));
    let lifted: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(lifted[0]["liftedBy"], "tester");
    let o = run(dev
        .cli()
        .args(["alarm", "set", "app-errors", "alarm", "--reason", "5xx"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(dev.cli().args(["alarm", "list"]));
    assert!(
        stdout(&o).contains("alarms/app-errors") && stdout(&o).contains("alarm"),
        "{}",
        stdout(&o)
    );
}

/// `conveyor demo --break`: a good release goes from commit to prod, then a
/// change that fails its health probe in wave 2 is rolled back, and every
/// copy of the service the demo started is stopped when it ends.
#[test]
fn the_demo_ships_a_release_and_rolls_back_a_broken_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let o = run(conveyor()
        .args(["demo", "--break", "--data-dir"])
        .arg(&data));
    let out = stdout(&o);
    assert!(o.status.success(), "{out}\n{}", stderr(&o));
    let summary = out.split("\nsummary\n").nth(1).expect("a summary");
    let mut runs = summary.lines().filter(|l| {
        l.trim_start()
            .starts_with("pipelines/demo-shop/executions/")
    });
    let first = runs.next().expect("release 1");
    let second = runs.next().expect("release 2");
    assert!(first.contains(": succeeded"), "{first}");
    assert!(second.contains(": rolled back"), "{second}");
    assert!(second.contains("prod-health"), "{second}");
    assert!(
        summary.contains("approved by dana"),
        "the named approver approved prod: {summary}"
    );
    assert!(
        summary.contains("artifact dist/app.tar.gz sha256:"),
        "{summary}"
    );
    // Release 2 went back to release 1's artifact on wave 2 and the one-box.
    let rollbacks = out
        .lines()
        .filter(|l| l.contains("deploy → ") && l.contains("[rollback]") && l.contains("succeeded"))
        .count();
    assert_eq!(rollbacks, 2, "{out}");
    assert!(out.contains("(wave 3)"), "{out}");
    // The demo ends with the metrics service's DORA numbers: one
    // deployment completed, one of two rolled back and restored.
    let dora = out.split("\nDORA metrics").nth(1).expect("DORA numbers");
    assert!(
        dora.contains("deployment frequency   1 deployments"),
        "{dora}"
    );
    assert!(
        dora.contains("change failure rate    50% (1 of 2 deployments)"),
        "{dora}"
    );
    assert!(dora.contains("(1 recovered, 0 not yet)"), "{dora}");
    // The services it started are gone.
    let port = summary
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("prod is serving on http://127.0.0.1:")
        })
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .expect("a prod port");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the demo stopped its services"
    );
}

/// `conveyor metrics` and `conveyor notify` against `conveyor dev`: rules
/// are added, listed and removed; a bad one is refused naming the field.
#[test]
fn metrics_and_notification_rules_against_conveyor_dev() {
    let dev = Dev::start();
    let o = run(dev.cli().args([
        "notify",
        "rule",
        "add",
        "oncall",
        "--pipeline",
        "shop",
        "--events",
        "failed,rolled-back,mainline-red",
        "--webhook",
        "https://hooks.example.com/conveyor",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "notificationRules/oncall added");
    let o = run(dev
        .cli()
        .args(["--output", "json", "notify", "rule", "list"]));
    let rules: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(rules[0]["name"], "notificationRules/oncall");
    assert_eq!(rules[0]["pipeline"], "pipelines/shop");
    assert_eq!(
        rules[0]["events"],
        serde_json::json!(["failed", "rolled-back", "mainline-red"])
    );
    let o = run(dev.cli().args([
        "notify",
        "rule",
        "add",
        "bad",
        "--events",
        "failed",
        "--webhook",
        "ftp://example.com/x",
    ]));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("notification_rule.channel.webhook.url"),
        "{}",
        stderr(&o)
    );
    let o = run(dev.cli().args(["notify", "rule", "remove", "oncall"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(dev
        .cli()
        .args(["--output", "json", "notify", "rule", "list"]));
    assert_eq!(stdout(&o).trim(), "[]");

    let o = run(dev
        .cli()
        .args(["--output", "json", "metrics", "dora", "--window", "7d"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let dora: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(dora["deploymentFrequency"]["deployments"], 0);
    let o = run(dev.cli().args(["metrics", "health"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("PIPELINE"), "{}", stdout(&o));
}
