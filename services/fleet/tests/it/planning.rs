//! Rollout plans over the fleet: candidates, waves, freezes, break-glass.

use chrono::{Duration, Utc};
use conveyor_fleet::domain::{Grant, NewFreeze};
use conveyor_fleet::model::{Principal, Selector, Strategy, Tier};
use conveyor_fleet::names::VersionRef;

use crate::on_every_backend;
use crate::support::{active_account, baseline_version, invalid_field, ou, requested_account};

/// 50 accounts in 3 OUs: 40 production (20 in "prod-eu", 20 in
/// "prod-us"), 10 gamma in "staging"; one more that is only REQUESTED.
async fn seed(fleet: &conveyor_fleet::domain::Fleet) -> VersionRef {
    ou(fleet, "root", "prod-eu").await;
    ou(fleet, "root", "prod-us").await;
    ou(fleet, "root", "staging").await;
    for i in 0..20 {
        active_account(
            fleet,
            &format!("eu-{i:02}"),
            "prod-eu",
            Tier::Production,
            &["eu-west-1", "eu-central-1"],
        )
        .await;
        active_account(
            fleet,
            &format!("us-{i:02}"),
            "prod-us",
            Tier::Production,
            &["us-east-1"],
        )
        .await;
    }
    for i in 0..10 {
        active_account(
            fleet,
            &format!("gamma-{i:02}"),
            "staging",
            Tier::Gamma,
            &["us-east-1"],
        )
        .await;
    }
    requested_account(
        fleet,
        "eu-new",
        "prod-eu",
        Tier::Production,
        &["eu-west-1"],
        &[],
    )
    .await;
    let v = baseline_version(fleet, "guardrails", "one").await;
    fleet
        .assign_baseline("root", Some(v.clone()), "", "")
        .await
        .unwrap();
    v
}

on_every_backend!(
    a_plan_covers_every_candidate_once_in_deterministic_waves,
    |fleet| {
        let v = seed(&fleet).await;
        let planned = fleet
            .plan_rollout(Some(v.clone()), Selector::default(), Strategy::default())
            .await
            .unwrap();
        let plan = &planned.plan;
        assert_eq!(plan.account_count, 50);
        assert_eq!(plan.target_count, 20 * 2 + 20 + 10);
        assert_eq!(plan.waves[0].name, "canary-gamma");
        let first_prod = plan
            .waves
            .iter()
            .position(|w| w.name == "canary-production")
            .unwrap();
        assert!(
            plan.waves[..first_prod]
                .iter()
                .all(|w| w.production_accounts == 0)
        );
        // 33% of 40 production accounts: at most 13 per wave.
        assert!(plan.waves.iter().all(|w| w.production_accounts <= 13));
        let mut targets: Vec<_> = plan.waves.iter().flat_map(|w| w.targets.clone()).collect();
        let count = targets.len();
        targets.sort();
        targets.dedup();
        assert_eq!(targets.len(), count, "a target planned twice");
        assert!(
            !targets.iter().any(|t| t.account == "eu-new"),
            "REQUESTED accounts are not planned"
        );

        let again = fleet
            .plan_rollout(Some(v.clone()), Selector::default(), Strategy::default())
            .await
            .unwrap();
        assert_eq!(again.plan.digest, plan.digest);
        assert_eq!(again.plan.waves, plan.waves);

        // A selector narrows it, and one region at a time splits eu accounts.
        let selector = Selector {
            ous: vec!["prod-eu".into()],
            ..Selector::default()
        };
        let strategy = Strategy {
            one_region_at_a_time: true,
            ..Strategy::default()
        };
        let eu = fleet
            .plan_rollout(Some(v.clone()), selector, strategy)
            .await
            .unwrap();
        assert_eq!((eu.plan.account_count, eu.plan.target_count), (20, 40));
        for w in &eu.plan.waves {
            let mut accounts: Vec<_> = w.targets.iter().map(|t| &t.account).collect();
            accounts.dedup();
            assert_eq!(accounts.len(), w.targets.len(), "{}", w.name);
        }
        assert_ne!(eu.plan.digest, plan.digest);

        // Accounts desiring another baseline are left out, and the plan says so.
        let other = baseline_version(&fleet, "other", "x").await;
        fleet
            .assign_baseline("staging", Some(other), "", "")
            .await
            .unwrap();
        let without_staging = fleet
            .plan_rollout(Some(v), Selector::default(), Strategy::default())
            .await
            .unwrap();
        assert_eq!(without_staging.plan.account_count, 40);
        assert!(
            without_staging
                .plan
                .explanation
                .iter()
                .any(|n| n.contains("10 account(s) left out")),
            "{:?}",
            without_staging.plan.explanation
        );
    }
);

on_every_backend!(
    unknown_selectors_and_bad_strategies_name_the_field,
    |fleet| {
        seed(&fleet).await;
        let cases = [
            (
                Selector {
                    ous: vec!["nowhere".into()],
                    ..Selector::default()
                },
                Strategy::default(),
                "selector.organizational_units[0]",
            ),
            (
                Selector {
                    accounts: vec!["eu-00".into(), "ghost".into()],
                    ..Selector::default()
                },
                Strategy::default(),
                "selector.accounts[1]",
            ),
            (
                Selector::default(),
                Strategy {
                    growth_factor: 0.5,
                    ..Strategy::default()
                },
                "strategy.growth_factor",
            ),
            (
                Selector::default(),
                Strategy {
                    wave_percentages: vec![10.0, 5.0, 100.0],
                    ..Strategy::default()
                },
                "strategy.wave_percentages[1]",
            ),
            (
                Selector::default(),
                Strategy {
                    wave_percentages: vec![10.0, 50.0],
                    ..Strategy::default()
                },
                "strategy.wave_percentages",
            ),
            (
                Selector::default(),
                Strategy {
                    max_production_percent: 120.0,
                    ..Strategy::default()
                },
                "strategy.max_production_percent",
            ),
        ];
        for (selector, strategy, field) in cases {
            let e = fleet
                .plan_rollout(None, selector, strategy)
                .await
                .unwrap_err();
            assert_eq!(invalid_field(e), field);
        }
        let e = fleet
            .resolve_targets(Selector::default(), Strategy::default(), "")
            .await
            .unwrap_err();
        assert_eq!(invalid_field(e), "selector");
    }
);

on_every_backend!(
    a_freeze_holds_targets_below_its_ou_until_broken_for_a_pipeline,
    |fleet| {
        // Break-glass overrides go out on the event stream.
        let queue: std::sync::Arc<dyn conveyor_platform::queue::Queue> =
            std::sync::Arc::new(conveyor_platform::queue::InProcessQueue::new());
        let mut events = queue
            .reader(conveyor_platform::queue::EVENTS_STREAM, "test", "test")
            .await
            .unwrap();
        let mut fleet = fleet;
        fleet.events = Some(queue);
        seed(&fleet).await;
        let now = Utc::now();
        let window = fleet
            .create_freeze(
                NewFreeze {
                    ou: "prod-eu".into(),
                    id: "xmas".into(),
                    reason: "holiday freeze".into(),
                    start_time: now - Duration::hours(1),
                    end_time: now + Duration::days(3),
                    principal: Principal {
                        id: "cab".into(),
                        groups: vec![],
                    },
                },
                "",
            )
            .await
            .unwrap();
        let prod = Selector {
            tiers: vec![Tier::Production],
            ..Selector::default()
        };
        let held = fleet
            .resolve_targets(prod.clone(), Strategy::default(), "pipelines/payments")
            .await
            .unwrap();
        assert_eq!(held.active_freezes.len(), 1);
        assert_eq!(held.active_freezes[0].reason, "holiday freeze");
        let us_only = Selector {
            ous: vec!["prod-us".into()],
            ..Selector::default()
        };
        let free = fleet
            .resolve_targets(us_only, Strategy::default(), "pipelines/payments")
            .await
            .unwrap();
        assert!(free.active_freezes.is_empty());

        let e = fleet
            .override_freeze(
                "organizationalUnits/prod-eu/freezeWindows/xmas",
                Grant {
                    reason: " ".into(),
                    principal: Principal {
                        id: "sre".into(),
                        groups: vec![],
                    },
                    pipeline: String::new(),
                    rollout: String::new(),
                    expire_time: None,
                },
                "",
            )
            .await
            .unwrap_err();
        assert_eq!(invalid_field(e), "reason");
        let broken = fleet
            .override_freeze(
                "organizationalUnits/prod-eu/freezeWindows/xmas",
                Grant {
                    reason: "sev1 fix for checkout".into(),
                    principal: Principal {
                        id: "sre-on-call".into(),
                        groups: vec!["sre".into()],
                    },
                    pipeline: "pipelines/payments".into(),
                    rollout: String::new(),
                    expire_time: Some(now + Duration::days(30)),
                },
                "",
            )
            .await
            .unwrap();
        let published = events
            .next(std::time::Duration::from_secs(5), 10)
            .await
            .unwrap();
        assert_eq!(published.len(), 1);
        let event: conveyor_api::events::v1::Event =
            prost::Message::decode(published[0].payload.as_slice()).unwrap();
        assert_eq!(
            (
                event.source.as_str(),
                event.r#type.as_str(),
                event.subject.as_str()
            ),
            (
                "conveyor.fleet",
                "fleet.freeze.overridden",
                "organizationalUnits/prod-eu/freezeWindows/xmas"
            )
        );
        match event.payload {
            Some(conveyor_api::events::v1::event::Payload::FreezeOverridden(o)) => {
                assert_eq!(o.reason, "sev1 fix for checkout");
                assert_eq!(o.pipeline, "pipelines/payments");
                assert_eq!(o.principal.unwrap().id, "sre-on-call");
            }
            other => panic!("{other:?}"),
        }
        let audit = &broken.overrides[0];
        assert_eq!(
            (audit.principal.id.as_str(), audit.reason.as_str()),
            ("sre-on-call", "sev1 fix for checkout")
        );
        assert_eq!(
            audit.expire_time, window.end_time,
            "an override never outlives its window"
        );
        let payments = fleet
            .resolve_targets(prod.clone(), Strategy::default(), "pipelines/payments")
            .await
            .unwrap();
        assert!(payments.active_freezes.is_empty());
        let search = fleet
            .resolve_targets(prod, Strategy::default(), "pipelines/search")
            .await
            .unwrap();
        assert_eq!(search.active_freezes.len(), 1);

        // Inherited windows are listed for the OUs below.
        let listed = fleet
            .list_freezes(Some("prod-eu"), true, false, 10, "")
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        let root = fleet
            .list_freezes(Some("root"), false, false, 10, "")
            .await
            .unwrap();
        assert!(root.items.is_empty());
        fleet
            .delete_freeze("organizationalUnits/prod-eu/freezeWindows/xmas", "")
            .await
            .unwrap();
        assert!(
            fleet
                .list_freezes(None, false, true, 10, "")
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
);
