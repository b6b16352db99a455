//! OUs that follow their baseline: the tracker rolls a newer version out to
//! the OU's own accounts by itself, one rollout at a time, and assigns it
//! once the rollout succeeded (a reverted one leaves the OU where it was);
//! a freeze window holds the rollout until it is gone; an OU with no
//! account takes the version at once; a follow without a version or with
//! a bad strategy is refused. The tests end rollouts through the store, as
//! the tracker does when their execution ends.

use std::time::Duration;

use chrono::Utc;
use conveyor_fleet::domain::{FOLLOWER, NewFreeze};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{Principal, RolloutState, Strategy, Tier};
use conveyor_fleet::store::Store;

use crate::on_every_backend;
use crate::support::{
    active_account, backends, baseline_version, fleet_and_store, invalid_field, ou,
};

fn strategy() -> Strategy {
    Strategy {
        bake_time: Some(Duration::from_secs(5)),
        ..Strategy::default()
    }
}

/// Ends rollout `id` as the tracker does when its execution ends.
async fn end(store: &Store, id: &str, state: RolloutState) {
    store
        .update_rollout(id, move |r| r.state = state)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_newer_version_rolls_out_below_an_ou_that_follows_it() {
    for backend in backends().await {
        let (fleet, store) = fleet_and_store(&backend).await;
        ou(&fleet, "root", "prod").await;
        ou(&fleet, "root", "dev").await;
        ou(&fleet, "prod", "pinned").await;
        active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
        active_account(&fleet, "prod-2", "prod", Tier::Production, &["r1", "r2"]).await;
        active_account(&fleet, "pinned-1", "pinned", Tier::Production, &["r1"]).await;
        let v1 = baseline_version(&fleet, "guardrails", "one").await;
        for id in ["prod", "dev"] {
            fleet
                .assign_baseline_with(id, Some(v1.clone()), Some(strategy()), "", "")
                .await
                .unwrap();
        }
        // A nearer assignment below prod that does not follow.
        fleet
            .assign_baseline("pinned", Some(v1.clone()), "", "")
            .await
            .unwrap();
        assert_eq!(
            fleet.ou("prod").await.unwrap().ou.auto_rollout,
            Some(strategy())
        );
        fleet.track().await.unwrap();
        let none = fleet.list_rollouts(None, &[], 10, "").await.unwrap();
        assert!(none.items.is_empty(), "nothing newer: {:?}", none.items);

        // Version 2 rolls out to prod's own accounts, not pinned's.
        let v2 = baseline_version(&fleet, "guardrails", "two").await;
        fleet.track().await.unwrap();
        let rollout = fleet.rollout("auto-prod-guardrails-2").await.unwrap();
        assert_eq!(rollout.baseline_version, v2);
        assert_eq!(rollout.created_by.id, FOLLOWER);
        assert_eq!(rollout.plan.strategy, strategy());
        assert_eq!(rollout.plan.target_count, 3, "{:?}", rollout.plan);
        // dev has no account: the version is assigned at once. prod waits
        // for its rollout.
        assert!(matches!(
            fleet.rollout("auto-dev-guardrails-2").await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(fleet.ou("dev").await.unwrap().ou.baseline, Some(v2.clone()));
        assert_eq!(
            fleet.ou("prod").await.unwrap().ou.baseline,
            Some(v1.clone())
        );
        fleet.track().await.unwrap();
        let all = fleet.list_rollouts(None, &[], 10, "").await.unwrap();
        assert_eq!(all.items.len(), 1);

        end(&store, "auto-prod-guardrails-2", RolloutState::Succeeded).await;
        fleet.track().await.unwrap();
        let prod = fleet.ou("prod").await.unwrap().ou;
        assert_eq!(prod.baseline, Some(v2.clone()), "assigned once rolled out");
        assert_eq!(prod.auto_rollout, Some(strategy()), "and still following");
        assert_eq!(
            fleet.ou("pinned").await.unwrap().ou.baseline,
            Some(v1.clone())
        );

        // One rollout at a time: version 4 waits for version 3's.
        baseline_version(&fleet, "guardrails", "three").await;
        fleet.track().await.unwrap();
        fleet.rollout("auto-prod-guardrails-3").await.unwrap();
        baseline_version(&fleet, "guardrails", "four").await;
        fleet.track().await.unwrap();
        assert!(matches!(
            fleet.rollout("auto-prod-guardrails-4").await,
            Err(Error::NotFound(_))
        ));
        // Version 3 is reverted: prod stays on 2, and 4 is tried afresh.
        end(&store, "auto-prod-guardrails-3", RolloutState::Reverted).await;
        fleet.track().await.unwrap();
        assert_eq!(
            fleet.ou("prod").await.unwrap().ou.baseline,
            Some(v2.clone())
        );
        fleet.rollout("auto-prod-guardrails-4").await.unwrap();

        // Assigning without auto_rollout stops following.
        end(&store, "auto-prod-guardrails-4", RolloutState::Cancelled).await;
        fleet
            .assign_baseline("prod", Some(v2.clone()), "", "")
            .await
            .unwrap();
        baseline_version(&fleet, "guardrails", "five").await;
        fleet.track().await.unwrap();
        assert_eq!(fleet.ou("prod").await.unwrap().ou.baseline, Some(v2));
        assert!(matches!(
            fleet.rollout("auto-prod-guardrails-5").await,
            Err(Error::NotFound(_))
        ));
        backend.cleanup().await;
    }
}

on_every_backend!(a_freeze_window_holds_an_ou_on_its_version, |fleet| {
    ou(&fleet, "root", "prod").await;
    active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
    let v1 = baseline_version(&fleet, "guardrails", "one").await;
    // empty, below prod, follows too but has no account.
    ou(&fleet, "prod", "empty").await;
    for id in ["prod", "empty"] {
        fleet
            .assign_baseline_with(id, Some(v1.clone()), Some(strategy()), "", "")
            .await
            .unwrap();
    }
    let now = Utc::now();
    fleet
        .create_freeze(
            NewFreeze {
                ou: "prod".into(),
                id: "audit".into(),
                reason: "year-end audit".into(),
                start_time: now - chrono::Duration::minutes(5),
                end_time: now + chrono::Duration::days(1),
                principal: Principal::default(),
            },
            "",
        )
        .await
        .unwrap();
    let v2 = baseline_version(&fleet, "guardrails", "two").await;
    fleet.track().await.unwrap();
    assert_eq!(
        fleet.ou("prod").await.unwrap().ou.baseline,
        Some(v1.clone())
    );
    assert_eq!(fleet.ou("empty").await.unwrap().ou.baseline, Some(v1));
    assert!(
        fleet
            .list_rollouts(None, &[], 10, "")
            .await
            .unwrap()
            .items
            .is_empty()
    );

    fleet
        .delete_freeze("organizationalUnits/prod/freezeWindows/audit", "")
        .await
        .unwrap();
    fleet.track().await.unwrap();
    let rollout = fleet.rollout("auto-prod-guardrails-2").await.unwrap();
    assert_eq!(rollout.baseline_version, v2);
    assert_eq!(fleet.ou("empty").await.unwrap().ou.baseline, Some(v2));
});

on_every_backend!(following_needs_a_version_and_a_sound_strategy, |fleet| {
    ou(&fleet, "root", "prod").await;
    let v1 = baseline_version(&fleet, "guardrails", "one").await;
    let no_version = fleet
        .assign_baseline_with("prod", None, Some(strategy()), "", "")
        .await
        .unwrap_err();
    assert_eq!(invalid_field(no_version), "baseline_version");
    let slow = Strategy {
        growth_factor: 0.5,
        ..strategy()
    };
    let bad = fleet
        .assign_baseline_with("prod", Some(v1), Some(slow), "", "")
        .await
        .unwrap_err();
    assert_eq!(invalid_field(bad), "auto_rollout.growth_factor");
    let view = fleet.ou("prod").await.unwrap();
    assert_eq!(view.ou.baseline, None, "nothing stored");
    assert_eq!(view.ou.auto_rollout, None);
});
