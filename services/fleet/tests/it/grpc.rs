//! The FleetService over a real socket: round trips and errors with the
//! field that is wrong.

use conveyor_api::common::v1 as common;
use conveyor_api::fleet::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{Server, backends};

fn field(status: &tonic::Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations[0]
        .field
        .clone()
}

#[tokio::test]
async fn accounts_ous_baselines_and_plans_over_grpc() {
    for backend in backends().await {
        let server = Server::start(&backend.url).await;
        let mut c = server.client.clone();
        let ou = c
            .create_organizational_unit(pb::CreateOrganizationalUnitRequest {
                organizational_unit_id: "prod".into(),
                organizational_unit: Some(pb::OrganizationalUnit {
                    display_name: "Production".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ou.name.as_str(), ou.parent.as_str()),
            ("organizationalUnits/prod", "organizationalUnits/root")
        );
        assert_eq!(ou.ancestors, ["organizationalUnits/root"]);

        let account = c
            .create_account(pb::CreateAccountRequest {
                account_id: "prod-eu-1".into(),
                account: Some(pb::Account {
                    organizational_unit: "organizationalUnits/prod".into(),
                    tier: common::Tier::Production as i32,
                    regions: vec!["eu-west-1".into()],
                    tags: [("team".to_owned(), "payments".to_owned())].into(),
                    ..Default::default()
                }),
                principal: Some(common::Principal {
                    id: "alice".into(),
                    groups: vec![],
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(account.name, "accounts/prod-eu-1");
        assert_eq!(account.state, pb::AccountState::Requested as i32);

        let version = c
            .create_baseline_version(pb::CreateBaselineVersionRequest {
                parent: "baselines/guardrails".into(),
                content: Some(pb::BaselineContent {
                    files: vec![pb::BaselineFile {
                        path: "policy.json".into(),
                        content: b"{}".to_vec(),
                        executable: false,
                    }],
                    apply_command: "sh apply.sh".into(),
                    check_command: "sh check.sh".into(),
                    timeout: None,
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(version.name, "baselines/guardrails/versions/1");
        assert!(version.artifact.unwrap().digest.starts_with("sha256:"));
        let full = c
            .get_baseline_version(pb::GetBaselineVersionRequest {
                name: version.name.clone(),
                view: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(full.content.unwrap().files[0].content, b"{}");

        let assigned = c
            .assign_baseline(pb::AssignBaselineRequest {
                organizational_unit: "organizationalUnits/prod".into(),
                baseline_version: version.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(assigned.effective_baseline_version, version.name);
        assert_eq!(assigned.auto_rollout, None);
        // Following the baseline: the strategy is kept and shown; a bad one
        // is refused with the field named.
        let follow = |growth_factor: f64| pb::AssignBaselineRequest {
            organizational_unit: "organizationalUnits/prod".into(),
            baseline_version: version.name.clone(),
            auto_rollout: Some(pb::RolloutStrategy {
                growth_factor,
                bake_time: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bad = c.assign_baseline(follow(0.5)).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(
            bad.get_details_bad_request().unwrap().field_violations[0].field,
            "auto_rollout.growth_factor"
        );
        let following = c.assign_baseline(follow(3.0)).await.unwrap().into_inner();
        let kept = following.auto_rollout.expect("auto_rollout");
        assert_eq!(kept.growth_factor, 3.0);
        assert_eq!(kept.bake_time.map(|d| d.seconds), Some(60));
        let got = c
            .get_account(pb::GetAccountRequest {
                name: "accounts/prod-eu-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let status = got.baseline.unwrap();
        assert_eq!(status.desired_version, version.name);
        assert_eq!(status.drift, pb::DriftState::NotApplied as i32);

        // Not ACTIVE yet: planned nowhere, and the plan says how many matched.
        let plan = c
            .plan_rollout(pb::PlanRolloutRequest {
                baseline_version: version.name.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(plan.waves.is_empty());
        assert_eq!(
            plan.explanation[0],
            "0 ACTIVE account(s) match the selector"
        );
        assert!(plan.plan_digest.starts_with("sha256:"));
        server.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test]
async fn bad_requests_name_the_field() {
    for backend in backends().await {
        let server = Server::start(&backend.url).await;
        let mut c = server.client.clone();
        let no_tier = c
            .create_account(pb::CreateAccountRequest {
                account_id: "acct-1".into(),
                account: Some(pb::Account {
                    organizational_unit: "organizationalUnits/root".into(),
                    regions: vec!["r".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&no_tier), "account.tier");

        let selector = c
            .resolve_targets(pb::ResolveTargetsRequest {
                selector: Some(pb::TargetSelector {
                    organizational_units: vec!["organizationalUnits/ghost".into()],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&selector), "selector.organizational_units[0]");

        let both = c
            .plan_rollout(pb::PlanRolloutRequest {
                strategy: Some(pb::RolloutStrategy {
                    growth_factor: 3.0,
                    wave_percentages: vec![50.0, 100.0],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&both), "strategy.wave_percentages");

        let mask = c
            .update_account(pb::UpdateAccountRequest {
                account: Some(pb::Account {
                    name: "accounts/acct-1".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["state".into()],
                }),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&mask), "update_mask.paths[0]");

        let page = c
            .list_accounts(pb::ListAccountsRequest {
                page_size: -1,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&page), "page_size");

        for (name, want) in [("accounts/A", "name"), ("nope/x", "name")] {
            let e = c
                .get_account(pb::GetAccountRequest { name: name.into() })
                .await
                .unwrap_err();
            assert_eq!(field(&e), want);
        }
        let missing = c
            .get_account(pb::GetAccountRequest {
                name: "accounts/ghost".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);

        c.create_organizational_unit(pb::CreateOrganizationalUnitRequest {
            organizational_unit_id: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        c.create_organizational_unit(pb::CreateOrganizationalUnitRequest {
            parent: "organizationalUnits/a".into(),
            organizational_unit_id: "b".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        let cycle = c
            .move_organizational_unit(pb::MoveOrganizationalUnitRequest {
                name: "organizationalUnits/a".into(),
                destination: "organizationalUnits/b".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&cycle), "destination");
        let not_empty = c
            .delete_organizational_unit(pb::DeleteOrganizationalUnitRequest {
                name: "organizationalUnits/a".into(),
                etag: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(not_empty.code(), Code::FailedPrecondition);
        let violation = &not_empty
            .get_details_precondition_failure()
            .expect("precondition details")
            .violations[0];
        assert_eq!(violation.r#type, "OU_NOT_EMPTY");

        let override_without_reason = c
            .override_freeze_window(pb::OverrideFreezeWindowRequest {
                name: "organizationalUnits/a/freezeWindows/w".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(field(&override_without_reason), "reason");
        server.stop().await;
        backend.cleanup().await;
    }
}
