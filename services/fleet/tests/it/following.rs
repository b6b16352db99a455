//! OUs that follow their baseline: the tracker rolls a newer version out
//! below the OU by itself and then assigns it there, once; a freeze window
//! holds the OU on its version until it is gone; an OU with no account to
//! roll out to just moves on; a follow without a version or with a bad
//! strategy is refused.

use std::time::Duration;

use chrono::Utc;
use conveyor_fleet::domain::{FOLLOWER, NewFreeze};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{Principal, Strategy, Tier};

use crate::on_every_backend;
use crate::support::{active_account, baseline_version, invalid_field, ou};

fn strategy() -> Strategy {
    Strategy {
        bake_time: Some(Duration::from_secs(5)),
        ..Strategy::default()
    }
}

on_every_backend!(
    a_newer_version_rolls_out_below_an_ou_that_follows_it,
    |fleet| {
        ou(&fleet, "root", "prod").await;
        ou(&fleet, "root", "dev").await;
        active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
        active_account(&fleet, "prod-2", "prod", Tier::Production, &["r1", "r2"]).await;
        let v1 = baseline_version(&fleet, "guardrails", "one").await;
        for id in ["prod", "dev"] {
            fleet
                .assign_baseline_with(id, Some(v1.clone()), Some(strategy()), "", "")
                .await
                .unwrap();
        }
        assert_eq!(
            fleet.ou("prod").await.unwrap().ou.auto_rollout,
            Some(strategy())
        );
        // Nothing newer yet.
        fleet.track().await.unwrap();
        let none = fleet.list_rollouts(None, &[], 10, "").await.unwrap();
        assert!(none.items.is_empty(), "{:?}", none.items);

        let v2 = baseline_version(&fleet, "guardrails", "two").await;
        fleet.track().await.unwrap();
        let rollout = fleet.rollout("auto-prod-guardrails-2").await.unwrap();
        assert_eq!(rollout.baseline_version, v2);
        assert_eq!(rollout.created_by.id, FOLLOWER);
        assert_eq!(rollout.plan.strategy, strategy());
        assert_eq!(rollout.plan.target_count, 3, "{:?}", rollout.plan);
        for id in ["prod", "dev"] {
            let view = fleet.ou(id).await.unwrap();
            assert_eq!(view.ou.baseline, Some(v2.clone()), "{id}");
            assert_eq!(view.ou.auto_rollout, Some(strategy()), "{id} still follows");
        }
        // dev has no account: nothing rolled out there, the version assigned.
        assert!(matches!(
            fleet.rollout("auto-dev-guardrails-2").await,
            Err(Error::NotFound(_))
        ));
        // Once: the next pass finds both OUs on the newest version.
        fleet.track().await.unwrap();
        let all = fleet.list_rollouts(None, &[], 10, "").await.unwrap();
        assert_eq!(all.items.len(), 1);

        // Assigning without auto_rollout stops following.
        fleet
            .assign_baseline("prod", Some(v2.clone()), "", "")
            .await
            .unwrap();
        baseline_version(&fleet, "guardrails", "three").await;
        fleet.track().await.unwrap();
        assert_eq!(fleet.ou("prod").await.unwrap().ou.baseline, Some(v2));
        assert_eq!(
            fleet
                .list_rollouts(None, &[], 10, "")
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }
);

on_every_backend!(a_freeze_window_holds_an_ou_on_its_version, |fleet| {
    ou(&fleet, "root", "prod").await;
    active_account(&fleet, "prod-1", "prod", Tier::Production, &["r1"]).await;
    let v1 = baseline_version(&fleet, "guardrails", "one").await;
    fleet
        .assign_baseline_with("prod", Some(v1.clone()), Some(strategy()), "", "")
        .await
        .unwrap();
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
    assert_eq!(fleet.ou("prod").await.unwrap().ou.baseline, Some(v1));
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
    assert_eq!(
        fleet.ou("prod").await.unwrap().ou.baseline,
        Some(v2.clone())
    );
    let rollout = fleet.rollout("auto-prod-guardrails-2").await.unwrap();
    assert_eq!(rollout.baseline_version, v2);
});

on_every_backend!(following_needs_a_version_and_a_sound_strategy, |fleet| {
    ou(&fleet, "root", "prod").await;
    let v1 = baseline_version(&fleet, "guardrails", "one").await;
    let no_version = fleet
        .assign_baseline_with("prod", None, Some(strategy()), "", "")
        .await
        .unwrap_err();
    assert_eq!(invalid_field(no_version), "auto_rollout");
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
