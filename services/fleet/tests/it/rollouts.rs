//! Starting rollouts without an execution service: freezes refuse the
//! start unless broken for the rollout, retries are idempotent, and only
//! the rollout's own pipeline may read its targets.

use chrono::{Duration, Utc};
use conveyor_fleet::domain::{Grant, Lifecycle, NewFreeze, NewRollout};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{Principal, RolloutState, Selector, Strategy, Tier};

use crate::on_every_backend;
use crate::support::{active_account, baseline_version, invalid_field, ou};

fn rollout(id: &str, version: &conveyor_fleet::names::VersionRef) -> NewRollout {
    NewRollout {
        id: id.into(),
        version: version.clone(),
        selector: Selector::default(),
        strategy: Strategy::default(),
        pipeline: String::new(),
        plan_digest: String::new(),
        principal: Principal {
            id: "alice".into(),
            groups: vec![],
        },
    }
}

on_every_backend!(freezes_refuse_a_rollout_until_broken_for_it, |fleet| {
    ou(&fleet, "root", "prod").await;
    active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
    let v = baseline_version(&fleet, "guardrails", "one").await;
    fleet
        .assign_baseline("root", Some(v.clone()), "", "")
        .await
        .unwrap();
    let now = Utc::now();
    let freeze = NewFreeze {
        ou: "root".into(),
        id: "audit".into(),
        reason: "year-end audit".into(),
        start_time: now - Duration::minutes(5),
        end_time: now + Duration::days(1),
        principal: Principal::default(),
    };
    fleet.create_freeze(freeze, "").await.unwrap();
    match fleet
        .start_rollout(rollout("r-1", &v), "")
        .await
        .unwrap_err()
    {
        Error::FailedPrecondition {
            reason, message, ..
        } => {
            assert_eq!(reason, "FROZEN");
            assert!(
                message.contains("organizationalUnits/root/freezeWindows/audit (year-end audit)"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(fleet.rollout("r-1").await.unwrap_err(), Error::NotFound(_)),
        "nothing stored"
    );

    let grant = Grant {
        reason: "regulatory fix".into(),
        principal: Principal {
            id: "ciso".into(),
            groups: vec![],
        },
        pipeline: String::new(),
        rollout: "rollouts/r-1".into(),
        expire_time: None,
    };
    fleet
        .override_freeze("organizationalUnits/root/freezeWindows/audit", grant, "")
        .await
        .unwrap();
    let started = fleet.start_rollout(rollout("r-1", &v), "").await.unwrap();
    // No execution service here: it waits to start, and says why.
    assert_eq!(started.state, RolloutState::Pending);
    assert!(
        started
            .state_reason
            .starts_with("waiting to start pipelines/account-fleet"),
        "{}",
        started.state_reason
    );
    // Another rollout is still held.
    assert!(fleet.start_rollout(rollout("r-2", &v), "").await.is_err());

    // The rollout's targets, for its own pipeline only.
    let targets = fleet
        .rollout_targets("r-1", "pipelines/account-fleet")
        .await
        .unwrap();
    assert!(
        targets.active_freezes.is_empty(),
        "the override lets r-1 through"
    );
    assert_eq!(targets.plan.account_count, 1);
    let e = fleet
        .rollout_targets("r-1", "pipelines/other")
        .await
        .unwrap_err();
    assert_eq!(invalid_field(e), "pipeline");
});

on_every_backend!(
    a_retried_start_without_an_id_returns_the_same_rollout,
    |fleet| {
        ou(&fleet, "root", "prod").await;
        active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
        let v = baseline_version(&fleet, "guardrails", "one").await;
        fleet
            .assign_baseline("root", Some(v.clone()), "", "")
            .await
            .unwrap();
        let first = fleet.start_rollout(rollout("", &v), "req-7").await.unwrap();
        let retry = fleet.start_rollout(rollout("", &v), "req-7").await.unwrap();
        assert_eq!(first.id, retry.id);
        assert!(first.id.starts_with("rollout-"), "{}", first.id);
        let page = fleet.list_rollouts(None, &[], 10, "").await.unwrap();
        assert_eq!(page.items.len(), 1);

        // A rollout that has not ended keeps its accounts open.
        let by = Principal::default();
        match fleet
            .transition_account(Lifecycle::Close, "prod-1", "decommission", &by, "", "")
            .await
            .unwrap_err()
        {
            Error::FailedPrecondition {
                reason, message, ..
            } => {
                assert_eq!(reason, "ROLLOUT_IN_PROGRESS");
                assert!(
                    message.contains(&format!("rollouts/{}", first.id)),
                    "{message}"
                );
            }
            e => panic!("{e:?}"),
        }

        let other = baseline_version(&fleet, "unassigned", "x").await;
        match fleet
            .start_rollout(rollout("", &other), "")
            .await
            .unwrap_err()
        {
            Error::FailedPrecondition { reason, .. } => assert_eq!(reason, "NO_TARGETS"),
            e => panic!("{e:?}"),
        }
        let mut stale = rollout("", &v);
        stale.plan_digest = "sha256:0000".into();
        assert!(matches!(
            fleet.start_rollout(stale, "").await.unwrap_err(),
            Error::PlanChanged { .. }
        ));
    }
);
