//! The fleet service driving account-fleet pipelines on the execution
//! service: vending makes accounts ACTIVE, and a baseline rollout across
//! 50 accounts in 3 OUs reverts when an alarm fires in its third wave.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::alarm_service_client::AlarmServiceClient;
use conveyor_fleet::domain::{Fleet, NewAccount, NewBaselineVersion, NewRollout};
use conveyor_fleet::model::{
    AccountState, BaselineContent, BaselineFile, DriftState, Principal, RolloutState, Selector,
    Strategy, Tier,
};
use conveyor_fleet::names::VersionRef;

use crate::support::{ControlPlane, git_repo, on_every_backend};
use crate::waves::lines;

fn vending(repo: &std::path::Path, log: &std::path::Path) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: account-vending}}
spec:
  type: account-fleet
  source: {{repository: "{repo}"}}
  stages:
    - name: provision
      actions:
        - name: create
          kind: provision
          run: 'if [ "$CONVEYOR_PARAM_ACCOUNT" = slow ]; then sleep 60; fi; test "$CONVEYOR_PARAM_ACCOUNT" != broken && echo "vend $CONVEYOR_PARAM_ACCOUNT $CONVEYOR_PARAM_ACCOUNT_TIER $CONVEYOR_PARAM_BASELINE_VERSION" >> {log}'
"#,
        repo = repo.display(),
        log = log.display()
    )
}

fn rollout_pipeline(repo: &std::path::Path, log: &std::path::Path) -> String {
    format!(
        r#"apiVersion: conveyor/v1
kind: Pipeline
metadata: {{name: account-fleet}}
spec:
  type: account-fleet
  source: {{repository: "{repo}"}}
  environments:
    - {{name: fleet, tier: production, account: "9", regions: [us-east-1]}}
  stages:
    - name: package
      actions:
        - {{name: package, kind: package, run: "true"}}
    - name: fleet
      environment: fleet
      actions:
        - name: apply-baseline
          kind: provision
          run: 'echo "${{CONVEYOR_ROLLBACK:+revert }}apply $CONVEYOR_TARGET_ACCOUNT" >> {log}'
      deployment:
        fromFleet: {{tier: production}}
        bakeTime: 2s
        alarms: [{{name: guardrail-violations}}]
"#,
        repo = repo.display(),
        log = log.display()
    )
}

async fn baseline(fleet: &Fleet, marker: &str) -> VersionRef {
    let content = BaselineContent {
        files: vec![BaselineFile {
            path: "guardrails.json".into(),
            content: marker.as_bytes().to_vec(),
            size: 0,
            executable: false,
        }],
        apply_command: "sh apply.sh".into(),
        check_command: "sh check.sh".into(),
        timeout: Duration::ZERO,
    };
    let new = NewBaselineVersion {
        description: "guardrails".into(),
        content,
        author: "platform".into(),
        message: marker.into(),
    };
    fleet
        .create_baseline_version("guardrails", new, "")
        .await
        .unwrap()
        .0
        .version
}

fn account(id: &str, ou: &str) -> NewAccount {
    NewAccount {
        id: id.into(),
        display_name: String::new(),
        owner: "platform".into(),
        ou: ou.into(),
        tier: Tier::Production,
        regions: vec!["us-east-1".into()],
        tags: Default::default(),
        vending_pipeline: String::new(),
        principal: Principal {
            id: "alice".into(),
            groups: vec![],
        },
    }
}

async fn wait_account(
    cp: &ControlPlane,
    id: &str,
    state: AccountState,
) -> conveyor_fleet::model::AccountView {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let view = cp.fleet.account(id).await.unwrap();
        if view.account.state == state {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never {state:?}: {view:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_rollout(cp: &ControlPlane, id: &str) -> conveyor_fleet::model::Rollout {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = cp.fleet.rollout(id).await.unwrap();
        if r.state.is_final() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout never ended: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

on_every_backend!(
    vending_runs_the_vending_pipeline_and_activates_the_account,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&vending(&repo, &log)).await;
        cp.start_worker();
        cp.fleet.create_ou("root", "prod", "", "").await.unwrap();
        let v1 = baseline(&cp.fleet, "one").await;
        cp.fleet
            .assign_baseline("root", Some(v1.clone()), "", "")
            .await
            .unwrap();

        let requested = cp
            .fleet
            .create_account(account("shop-prod", "prod"), "")
            .await
            .unwrap();
        assert_eq!(
            requested.account.state,
            AccountState::Provisioning,
            "{requested:#?}"
        );
        assert!(
            requested
                .account
                .vending_execution
                .starts_with("pipelines/account-vending/executions/")
        );
        let active = wait_account(&cp, "shop-prod", AccountState::Active).await;
        assert_eq!(
            active.drift,
            DriftState::InSync,
            "the OU's baseline was applied while vending"
        );
        assert_eq!(active.account.applied.unwrap().version, v1);
        assert_eq!(
            lines(&log),
            ["vend shop-prod production baselines/guardrails/versions/1"]
        );

        cp.fleet
            .create_account(account("broken", "prod"), "")
            .await
            .unwrap();
        let failed = wait_account(&cp, "broken", AccountState::ProvisioningFailed).await;
        assert!(
            failed.account.state_reason.contains("ended failed"),
            "{}",
            failed.account.state_reason
        );

        // Closing an account while it is vended cancels its vending execution.
        let slow = cp
            .fleet
            .create_account(account("slow", "prod"), "")
            .await
            .unwrap();
        let by = Principal {
            id: "alice".into(),
            groups: vec![],
        };
        cp.fleet
            .transition_account(
                conveyor_fleet::domain::Lifecycle::Close,
                "slow",
                "not needed",
                &by,
                "",
                "",
            )
            .await
            .unwrap();
        let vending = cp
            .wait_done(&slow.account.vending_execution, Duration::from_secs(30))
            .await;
        assert_eq!(
            vending.state,
            pb::ExecutionState::Cancelled as i32,
            "{vending:#?}"
        );
    }
);

on_every_backend!(
    an_alarm_in_the_third_wave_reverts_it_and_later_waves_never_start,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&rollout_pipeline(&repo, &log)).await;
        for ou in ["prod-a", "prod-b", "prod-c"] {
            cp.fleet.create_ou("root", ou, "", "").await.unwrap();
        }
        let v1 = baseline(&cp.fleet, "one").await;
        cp.fleet
            .assign_baseline("root", Some(v1.clone()), "", "")
            .await
            .unwrap();
        for i in 0..50 {
            let id = format!("acct-{i:02}");
            // No vending pipeline here: the accounts wait REQUESTED, then are marked provisioned.
            cp.fleet
                .create_account(account(&id, ["prod-a", "prod-b", "prod-c"][i % 3]), "")
                .await
                .unwrap();
            cp.fleet
                .record_provisioning(&id, AccountState::Active, "provisioned", "")
                .await
                .unwrap();
            cp.fleet.record_apply(&id, v1.clone(), "").await.unwrap();
        }
        cp.start_worker();
        // A first rollout of v1 to one account succeeds: the deployment a
        // revert goes back to.
        let first = NewRollout {
            id: "guardrails-1".into(),
            version: v1.clone(),
            selector: Selector {
                accounts: vec!["acct-00".into()],
                ..Selector::default()
            },
            strategy: Strategy::default(),
            pipeline: String::new(),
            plan_digest: String::new(),
            principal: Principal {
                id: "alice".into(),
                groups: vec![],
            },
        };
        cp.fleet.start_rollout(first, "").await.unwrap();
        let first = wait_rollout(&cp, "guardrails-1").await;
        assert_eq!(first.state, RolloutState::Succeeded, "{first:#?}");
        assert_eq!(
            first.state_reason,
            "1 account(s) applied baselines/guardrails/versions/1"
        );
        assert_eq!(lines(&log), ["apply acct-00"]);

        let v2 = baseline(&cp.fleet, "two").await;
        cp.fleet
            .assign_baseline("root", Some(v2.clone()), "", "")
            .await
            .unwrap();
        let new = NewRollout {
            id: "guardrails-2".into(),
            version: v2.clone(),
            selector: Selector::default(),
            strategy: Strategy::default(),
            pipeline: String::new(),
            plan_digest: String::new(),
            principal: Principal {
                id: "alice".into(),
                groups: vec![],
            },
        };
        let started = cp.fleet.start_rollout(new, "").await.unwrap();
        assert_eq!(started.state, RolloutState::Running, "{started:#?}");
        assert_eq!(started.plan.account_count, 50);
        let waves: Vec<Vec<String>> = started
            .plan
            .waves
            .iter()
            .map(|w| w.targets.iter().map(|t| t.account.clone()).collect())
            .collect();
        assert_eq!(
            waves[..3].iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 2, 4]
        );

        // The third wave deploys: fire the alarm during its bake.
        let third = &waves[2];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        while !third
            .iter()
            .all(|a| lines(&log).contains(&format!("apply {a}")))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "wave 3 never deployed: {:?}",
                lines(&log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let channel = conveyor_api::client::channel(&format!("http://{}", cp.addr)).unwrap();
        AlarmServiceClient::new(channel)
            .set_alarm_state(pb::SetAlarmStateRequest {
                name: "alarms/guardrail-violations".into(),
                state: pb::AlarmState::Alarm as i32,
                reason: "guardrail violations in wave 3".into(),
                ..Default::default()
            })
            .await
            .unwrap();

        let ended = wait_rollout(&cp, "guardrails-2").await;
        assert_eq!(ended.state, RolloutState::Reverted, "{ended:#?}");
        assert!(
            ended.state_reason.contains("guardrail-violations"),
            "{}",
            ended.state_reason
        );
        for a in third {
            assert!(
                ended.reverted_accounts.contains(a),
                "{a} not reverted: {:?}",
                ended.reverted_accounts
            );
            assert!(
                lines(&log).contains(&format!("revert apply {a}")),
                "{a}: {:?}",
                lines(&log)
            );
        }
        // Later waves never started, and nobody records the reverted version.
        for a in waves[3..].iter().flatten() {
            assert!(
                !lines(&log).iter().any(|l| l.ends_with(&format!(" {a}"))),
                "{a} was touched"
            );
            let view = cp.fleet.account(a).await.unwrap();
            assert_eq!(view.account.applied.unwrap().version, v1);
            assert_eq!(view.drift, DriftState::VersionMismatch);
        }
        for a in third {
            assert_eq!(
                cp.fleet
                    .account(a)
                    .await
                    .unwrap()
                    .account
                    .applied
                    .unwrap()
                    .version,
                v1
            );
        }
    }
);
