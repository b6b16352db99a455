//! Production stages whose waves come from the fleet service
//! (`deployment.fromFleet`): resolved when the stage is entered, held by
//! freeze windows over the targets until the freeze is broken.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_fleet::domain::{Fleet, Grant, NewAccount, NewFreeze};
use conveyor_fleet::model::{AccountState, Principal, Tier};

use crate::support::{git_repo, on_every_backend};
use crate::waves::lines;

fn pipeline(repo: &std::path::Path, log: &std::path::Path) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: shop}}
spec:
  type: application
  source: {{repository: "{repo}"}}
  environments:
    - {{name: prod, tier: production, account: "4", regions: [us-east-1]}}
  stages:
    - name: build
      actions:
        - {{name: compile, kind: build, run: "true"}}
    - name: prod
      environment: prod
      actions:
        - name: deploy
          kind: deploy
          run: 'echo "deploy $CONVEYOR_TARGET_ACCOUNT/$CONVEYOR_TARGET_REGION" >> {log}'
      deployment:
        fromFleet: {{tier: production, growthFactor: 2}}
        bakeTime: 1s
"#,
        repo = repo.display(),
        log = log.display()
    )
}

/// Three ACTIVE production accounts in OU "prod", and a gamma one.
async fn seed(fleet: &Fleet) {
    fleet.create_ou("root", "prod", "", "").await.unwrap();
    for (id, tier) in [
        ("prod-a", Tier::Production),
        ("prod-b", Tier::Production),
        ("prod-c", Tier::Production),
        ("gamma-a", Tier::Gamma),
    ] {
        let account = NewAccount {
            id: id.into(),
            display_name: String::new(),
            owner: "shop-team".into(),
            ou: "prod".into(),
            tier,
            regions: vec!["us-east-1".into()],
            tags: Default::default(),
            vending_pipeline: String::new(),
            principal: Principal::default(),
        };
        fleet.create_account(account, "").await.unwrap();
        fleet
            .record_provisioning(id, AccountState::Active, "provisioned", "")
            .await
            .unwrap();
    }
}

fn deployed(done: &pb::Execution) -> Vec<(i32, String)> {
    let mut runs: Vec<(i32, String)> = done.stages[1]
        .actions
        .iter()
        .filter(|a| a.wave >= 0)
        .map(|a| {
            let t = a.target.clone().unwrap_or_default();
            (a.wave, format!("{}/{}", t.account, t.region))
        })
        .collect();
    runs.sort();
    runs
}

on_every_backend!(
    fleet_waves_are_resolved_when_the_stage_is_entered,
    |cp, dir| {
        seed(&cp.fleet).await;
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&pipeline(&repo, &log)).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        // A one-account canary, then waves capped at 33% of the 3 production
        // accounts: one account each. Gamma is not selected.
        assert_eq!(
            deployed(&done),
            [
                (0, "prod-a/us-east-1".to_owned()),
                (1, "prod-b/us-east-1".to_owned()),
                (2, "prod-c/us-east-1".to_owned()),
            ]
        );
        let waves: Vec<&str> = done.stages[1]
            .waves
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        assert_eq!(waves, ["canary-production", "production-1", "production-2"]);
        let logged = lines(&log);
        assert_eq!(logged.len(), 3, "{logged:?}");
        assert_eq!(
            logged[0], "deploy prod-a/us-east-1",
            "the canary deploys first"
        );
    }
);

on_every_backend!(
    a_freeze_over_the_targets_holds_the_stage_until_broken,
    |cp, dir| {
        seed(&cp.fleet).await;
        let now = chrono::Utc::now();
        let freeze = NewFreeze {
            ou: "prod".into(),
            id: "peak".into(),
            reason: "peak season".into(),
            start_time: now - chrono::Duration::minutes(1),
            end_time: now + chrono::Duration::days(1),
            principal: Principal {
                id: "cab".into(),
                groups: vec![],
            },
        };
        cp.fleet.create_freeze(freeze, "").await.unwrap();
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&pipeline(&repo, &log)).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        // The build runs; prod holds on the freeze, and says which.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let held = loop {
            let e = cp.wait_done(&started.name, Duration::ZERO).await;
            if e.stages[1].state_reason.contains("freeze window") {
                break e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never held by the freeze: {e:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(held.state, pb::ExecutionState::Held as i32, "{held:#?}");
        assert!(
            held.stages[1]
                .state_reason
                .contains("organizationalUnits/prod/freezeWindows/peak (peak season)"),
            "{}",
            held.stages[1].state_reason
        );
        assert!(lines(&log).is_empty(), "nothing deploys during the freeze");

        let grant = Grant {
            reason: "sev1 fix".into(),
            principal: Principal {
                id: "sre".into(),
                groups: vec![],
            },
            pipeline: "pipelines/shop".into(),
            rollout: String::new(),
            expire_time: None,
        };
        cp.fleet
            .override_freeze("organizationalUnits/prod/freezeWindows/peak", grant, "")
            .await
            .unwrap();
        let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        assert_eq!(deployed(&done).len(), 3);
    }
);
