//! Baselines: immutable versions, inheritance down the OU tree, drift.

use conveyor_fleet::domain::NewBaselineVersion;
use conveyor_fleet::model::{DriftState, Tier};
use conveyor_fleet::names::VersionRef;

use crate::on_every_backend;
use crate::support::{active_account, baseline_version, content, invalid_field, ou};

on_every_backend!(
    versions_are_immutable_and_same_content_is_not_a_new_version,
    |fleet| {
        let v1 = baseline_version(&fleet, "guardrails", "one").await;
        assert_eq!(v1.version, 1);
        let again = baseline_version(&fleet, "guardrails", "one").await;
        assert_eq!(again, v1);
        let v2 = baseline_version(&fleet, "guardrails", "two").await;
        assert_eq!(v2.version, 2);
        assert_eq!(
            fleet.baseline("guardrails").await.unwrap().latest_version,
            2
        );

        let full = fleet.baseline_version(&v1, true).await.unwrap();
        let files: Vec<_> = full
            .content
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.executable))
            .collect();
        assert_eq!(
            files,
            [("apply.sh", true), ("guardrails/policy.json", false)]
        );
        assert_eq!(full.content.files[1].content, b"{\"marker\": \"one\"}");
        assert_eq!(full.content.timeout, std::time::Duration::from_secs(600));
        let basic = fleet.baseline_version(&v2, false).await.unwrap();
        assert!(
            basic
                .content
                .files
                .iter()
                .all(|f| f.content.is_empty() && f.size > 0)
        );
        assert_ne!(basic.digest, full.digest);
        assert!(full.digest.starts_with("sha256:"));

        let page = fleet
            .list_baseline_versions("guardrails", 1, "", false)
            .await
            .unwrap();
        assert_eq!(page.items[0].version.version, 2);
        let next = fleet
            .list_baseline_versions("guardrails", 1, &page.next_page_token, false)
            .await
            .unwrap();
        assert_eq!(next.items[0].version.version, 1);
        assert!(next.next_page_token.is_empty());

        let mut bad = content("x");
        bad.files[0].path = "../escape".into();
        let new = NewBaselineVersion {
            description: String::new(),
            content: bad,
            author: String::new(),
            message: String::new(),
        };
        let e = fleet
            .create_baseline_version("guardrails", new, "")
            .await
            .unwrap_err();
        assert_eq!(invalid_field(e), "content.files[0].path");
        assert_eq!(
            fleet.baseline("guardrails").await.unwrap().latest_version,
            2
        );
    }
);

on_every_backend!(
    desired_baselines_are_inherited_and_drift_follows_applies_and_checks,
    |fleet| {
        ou(&fleet, "root", "prod").await;
        ou(&fleet, "prod", "eu").await;
        ou(&fleet, "root", "dev").await;
        active_account(&fleet, "eu-1", "eu", Tier::Production, &["eu-west-1"]).await;
        active_account(&fleet, "eu-2", "eu", Tier::Production, &["eu-west-1"]).await;
        active_account(&fleet, "dev-1", "dev", Tier::Development, &["eu-west-1"]).await;
        let v1 = baseline_version(&fleet, "guardrails", "one").await;
        let v2 = baseline_version(&fleet, "guardrails", "two").await;
        fleet
            .assign_baseline("root", Some(v1.clone()), "", "")
            .await
            .unwrap();
        let prod = fleet
            .assign_baseline("prod", Some(v2.clone()), "", "")
            .await
            .unwrap();
        assert_eq!(prod.effective, Some(v2.clone()));
        assert_eq!(fleet.ou("eu").await.unwrap().effective, Some(v2.clone()));
        assert_eq!(fleet.ou("dev").await.unwrap().effective, Some(v1.clone()));

        let eu1 = fleet.account("eu-1").await.unwrap();
        let desired = eu1.desired.unwrap();
        assert_eq!(
            (desired.version, desired.from.as_str()),
            (v2.clone(), "prod")
        );
        assert_eq!(eu1.drift, DriftState::NotApplied);

        let drifted = |states: Vec<DriftState>| {
            let fleet = fleet.clone();
            async move {
                let page = fleet
                    .list_drift(None, None, &states, 100, "")
                    .await
                    .unwrap();
                page.items
                    .into_iter()
                    .map(|v| (v.account.id, v.drift))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(drifted(vec![]).await.len(), 3);

        fleet
            .record_apply("eu-1", v1.clone(), "pipelines/f/executions/1")
            .await
            .unwrap();
        fleet
            .record_apply("eu-2", v2.clone(), "pipelines/f/executions/1")
            .await
            .unwrap();
        fleet
            .record_apply("dev-1", v1.clone(), "pipelines/f/executions/1")
            .await
            .unwrap();
        assert_eq!(
            drifted(vec![]).await,
            [("eu-1".to_owned(), DriftState::VersionMismatch)]
        );

        fleet
            .record_check("dev-1", false, "guardrails/policy.json changed")
            .await
            .unwrap();
        assert_eq!(
            drifted(vec![]).await,
            [
                ("dev-1".to_owned(), DriftState::CheckFailed),
                ("eu-1".to_owned(), DriftState::VersionMismatch)
            ]
        );
        assert_eq!(drifted(vec![DriftState::CheckFailed]).await.len(), 1);
        let under_prod = fleet
            .list_drift(Some("prod"), None, &[], 100, "")
            .await
            .unwrap();
        assert_eq!(under_prod.items.len(), 1);
        // Re-applying clears the failed check.
        fleet.record_apply("dev-1", v1.clone(), "").await.unwrap();
        assert_eq!(
            drifted(vec![]).await,
            [("eu-1".to_owned(), DriftState::VersionMismatch)]
        );
        // Removing prod's assignment makes eu-1 in sync with root's v1.
        fleet.assign_baseline("prod", None, "", "").await.unwrap();
        assert_eq!(
            drifted(vec![]).await,
            [("eu-2".to_owned(), DriftState::VersionMismatch)]
        );

        let missing = VersionRef {
            baseline: "guardrails".into(),
            version: 9,
        };
        let e = fleet
            .assign_baseline("prod", Some(missing), "", "")
            .await
            .unwrap_err();
        assert_eq!(invalid_field(e), "baseline_version");
    }
);
