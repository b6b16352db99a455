//! The OU tree: subtree queries, moves that carry accounts along, cycles
//! and non-empty deletes refused.

use conveyor_fleet::domain::{AccountQuery, Lifecycle};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{AccountState, Principal, Tier};

use crate::on_every_backend;
use crate::support::{active_account, invalid_field, ou};

async fn ids_under(fleet: &conveyor_fleet::domain::Fleet, ou: &str) -> Vec<String> {
    let query = AccountQuery {
        ou: Some(ou.to_owned()),
        ..AccountQuery::default()
    };
    let page = fleet.list_accounts(query, 100, "").await.unwrap();
    page.items.into_iter().map(|v| v.account.id).collect()
}

on_every_backend!(
    moving_an_ou_moves_its_subtree_and_cycles_are_refused,
    |fleet| {
        ou(&fleet, "root", "eng").await;
        ou(&fleet, "eng", "prod").await;
        ou(&fleet, "prod", "eu").await;
        ou(&fleet, "root", "ops").await;
        active_account(&fleet, "acct-eu", "eu", Tier::Production, &["eu-west-1"]).await;
        active_account(
            &fleet,
            "acct-prod",
            "prod",
            Tier::Production,
            &["us-east-1"],
        )
        .await;
        active_account(&fleet, "acct-ops", "ops", Tier::Tooling, &["us-east-1"]).await;
        assert_eq!(ids_under(&fleet, "eng").await, ["acct-eu", "acct-prod"]);

        let eu = fleet.ou("eu").await.unwrap();
        assert_eq!(eu.ou.ancestors(), ["root", "eng", "prod"]);

        let moved = fleet.move_ou("prod", "ops", "", "").await.unwrap();
        assert_eq!(moved.ou.parent.as_deref(), Some("ops"));
        assert_eq!(ids_under(&fleet, "eng").await, Vec::<String>::new());
        assert_eq!(
            ids_under(&fleet, "ops").await,
            ["acct-eu", "acct-ops", "acct-prod"]
        );
        assert_eq!(fleet.ou("eu").await.unwrap().ou.path, "/root/ops/prod/eu/");
        assert_eq!(
            fleet.account("acct-eu").await.unwrap().account.ou_path,
            "/root/ops/prod/eu/"
        );

        // Under itself or its own descendant: a cycle.
        let e = fleet.move_ou("ops", "eu", "", "").await.unwrap_err();
        assert_eq!(invalid_field(e), "destination");
        let e = fleet.move_ou("ops", "ops", "", "").await.unwrap_err();
        assert_eq!(invalid_field(e), "destination");
        let e = fleet.move_ou("root", "eng", "", "").await.unwrap_err();
        assert_eq!(invalid_field(e), "name");
        let e = fleet.move_ou("ops", "nowhere", "", "").await.unwrap_err();
        assert_eq!(invalid_field(e), "destination");
        // Nothing changed.
        assert_eq!(fleet.ou("ops").await.unwrap().ou.path, "/root/ops/");

        // A stale etag is refused.
        let e = fleet.move_ou("eu", "eng", "stale", "").await.unwrap_err();
        assert!(matches!(e, Error::EtagMismatch { .. }), "{e:?}");
    }
);

on_every_backend!(only_empty_ous_are_deleted, |fleet| {
    ou(&fleet, "root", "team").await;
    ou(&fleet, "team", "sub").await;
    active_account(&fleet, "acct-1", "team", Tier::Development, &["r1"]).await;
    let e = fleet.delete_ou("team", "").await.unwrap_err();
    match e {
        Error::FailedPrecondition {
            reason, message, ..
        } => {
            assert_eq!(reason, "OU_NOT_EMPTY");
            assert!(message.contains("1 OU(s) and 1 account(s)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let view = fleet.ou("team").await.unwrap();
    assert_eq!((view.child_count, view.account_count), (1, 1));
    fleet.delete_ou("sub", "").await.unwrap();
    let by = Principal::default();
    let closed = fleet
        .transition_account(Lifecycle::Close, "acct-1", "done", &by, "", "")
        .await
        .unwrap();
    assert_eq!(closed.account.state, AccountState::Closed);
    // A freeze window (the break-glass audit trail) keeps the OU.
    let now = chrono::Utc::now();
    let freeze = conveyor_fleet::domain::NewFreeze {
        ou: "team".into(),
        id: "w".into(),
        reason: "audit".into(),
        start_time: now,
        end_time: now + chrono::Duration::hours(1),
        principal: Principal::default(),
    };
    fleet.create_freeze(freeze, "").await.unwrap();
    match fleet.delete_ou("team", "").await.unwrap_err() {
        Error::FailedPrecondition { reason, .. } => assert_eq!(reason, "OU_HAS_FREEZE_WINDOWS"),
        other => panic!("{other:?}"),
    }
    fleet
        .delete_freeze("organizationalUnits/team/freezeWindows/w", "")
        .await
        .unwrap();
    fleet.delete_ou("team", "").await.unwrap();
    assert!(matches!(
        fleet.ou("team").await.unwrap_err(),
        Error::NotFound(_)
    ));
    assert_eq!(
        invalid_field(fleet.delete_ou("root", "").await.unwrap_err()),
        "name"
    );
});

on_every_backend!(ou_listing_pages_children_or_the_subtree, |fleet| {
    for i in 0..7 {
        ou(&fleet, "root", &format!("team-{i}")).await;
    }
    ou(&fleet, "team-3", "inner").await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = fleet.list_ous("root", false, 3, &token).await.unwrap();
        seen.extend(page.items.iter().map(|o| o.ou.id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("team-{i}")).collect::<Vec<_>>()
    );
    let all = fleet.list_ous("root", true, 100, "").await.unwrap();
    assert_eq!(all.items.len(), 8);
    assert!(all.items.iter().any(|o| o.ou.id == "inner"));
});
