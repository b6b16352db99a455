//! Accounts: vending requests, filters and pages, lifecycle, idempotency.

use conveyor_fleet::domain::{AccountQuery, Lifecycle};
use conveyor_fleet::error::Error;
use conveyor_fleet::model::{AccountState, Principal, Tier};

use crate::on_every_backend;
use crate::support::{active_account, invalid_field, new_account, ou, requested_account};

on_every_backend!(filters_and_pages_agree_with_a_full_listing, |fleet| {
    ou(&fleet, "root", "a").await;
    ou(&fleet, "a", "a1").await;
    ou(&fleet, "root", "b").await;
    let tiers = [Tier::Beta, Tier::Gamma, Tier::Production];
    for i in 0..30 {
        let ou = ["a", "a1", "b"][i % 3];
        let region = if i % 2 == 0 { "eu-west-1" } else { "us-east-1" };
        let team = if i % 5 == 0 { "payments" } else { "search" };
        requested_account(
            &fleet,
            &format!("acct-{i:02}"),
            ou,
            tiers[i % 3],
            &[region, "ap-south-1"],
            &[("team", team)],
        )
        .await;
    }
    let list = |q: AccountQuery| {
        let fleet = fleet.clone();
        async move {
            let mut ids = Vec::new();
            let mut token = String::new();
            loop {
                let page = fleet.list_accounts(q.clone(), 7, &token).await.unwrap();
                ids.extend(page.items.into_iter().map(|v| v.account.id));
                if page.next_page_token.is_empty() {
                    return ids;
                }
                token = page.next_page_token;
            }
        }
    };
    let expect = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..30)
            .filter(|i| keep(*i))
            .map(|i| format!("acct-{i:02}"))
            .collect()
    };
    assert_eq!(list(AccountQuery::default()).await, expect(&|_| true));
    let subtree_a = AccountQuery {
        ou: Some("a".into()),
        ..AccountQuery::default()
    };
    assert_eq!(list(subtree_a).await, expect(&|i| i % 3 != 2));
    let prod = AccountQuery {
        tiers: vec![Tier::Production],
        ..AccountQuery::default()
    };
    assert_eq!(list(prod).await, expect(&|i| i % 3 == 2));
    let eu = AccountQuery {
        region: Some("eu-west-1".into()),
        ..AccountQuery::default()
    };
    assert_eq!(list(eu).await, expect(&|i| i % 2 == 0));
    let payments = AccountQuery {
        tags: [("team".to_owned(), "payments".to_owned())].into(),
        ..AccountQuery::default()
    };
    assert_eq!(list(payments).await, expect(&|i| i % 5 == 0));
    // A tag value that is a prefix of another does not match it.
    let pay = AccountQuery {
        tags: [("team".to_owned(), "pay".to_owned())].into(),
        ..AccountQuery::default()
    };
    assert_eq!(list(pay).await, Vec::<String>::new());
    let active = AccountQuery {
        states: vec![AccountState::Active],
        ..AccountQuery::default()
    };
    assert_eq!(list(active).await, Vec::<String>::new());
});

on_every_backend!(lifecycle_transitions_are_checked, |fleet| {
    ou(&fleet, "root", "prod").await;
    requested_account(&fleet, "acct-1", "prod", Tier::Production, &["r1"], &[]).await;
    let by = Principal {
        id: "bob".into(),
        groups: vec![],
    };
    let refused = |e: Error| match e {
        Error::FailedPrecondition { reason, .. } => assert_eq!(reason, "ACCOUNT_STATE"),
        other => panic!("{other:?}"),
    };
    // REQUESTED cannot be suspended.
    refused(
        fleet
            .transition_account(Lifecycle::Suspend, "acct-1", "x", &by, "", "")
            .await
            .unwrap_err(),
    );
    fleet
        .record_provisioning(
            "acct-1",
            AccountState::Active,
            "provisioned",
            "pipelines/v/executions/1",
        )
        .await
        .unwrap();
    let suspended = fleet
        .transition_account(Lifecycle::Suspend, "acct-1", "incident", &by, "", "")
        .await
        .unwrap();
    assert_eq!(suspended.account.state, AccountState::Suspended);
    assert_eq!(
        suspended.account.state_reason,
        "incident (suspended by bob)"
    );
    refused(
        fleet
            .transition_account(Lifecycle::Suspend, "acct-1", "again", &by, "", "")
            .await
            .unwrap_err(),
    );
    let back = fleet
        .transition_account(
            Lifecycle::Reactivate,
            "acct-1",
            "",
            &by,
            &suspended.account.etag,
            "",
        )
        .await
        .unwrap();
    assert_eq!(back.account.state, AccountState::Active);
    assert_eq!(back.account.vending_execution, "pipelines/v/executions/1");
    // The old etag is stale now.
    let stale = fleet
        .transition_account(
            Lifecycle::Close,
            "acct-1",
            "",
            &by,
            &suspended.account.etag,
            "",
        )
        .await
        .unwrap_err();
    assert!(matches!(stale, Error::EtagMismatch { .. }), "{stale:?}");
    fleet
        .transition_account(Lifecycle::Close, "acct-1", "decommissioned", &by, "", "")
        .await
        .unwrap();
    refused(
        fleet
            .transition_account(Lifecycle::Close, "acct-1", "", &by, "", "")
            .await
            .unwrap_err(),
    );
    refused(
        fleet
            .move_account("acct-1", "root", "", "")
            .await
            .unwrap_err(),
    );
    // A failed vending can only be closed.
    requested_account(&fleet, "acct-2", "prod", Tier::Production, &["r1"], &[]).await;
    fleet
        .record_provisioning(
            "acct-2",
            AccountState::ProvisioningFailed,
            "vending failed",
            "",
        )
        .await
        .unwrap();
    refused(
        fleet
            .move_account("acct-2", "root", "", "")
            .await
            .unwrap_err(),
    );
    fleet
        .transition_account(Lifecycle::Close, "acct-2", "", &by, "", "")
        .await
        .unwrap();
    // Closed accounts are listed only when asked for.
    let all = fleet
        .list_accounts(AccountQuery::default(), 10, "")
        .await
        .unwrap();
    assert!(all.items.is_empty());
});

on_every_backend!(
    bad_accounts_are_refused_with_the_field_and_nothing_is_stored,
    |fleet| {
        ou(&fleet, "root", "prod").await;
        let cases = [
            (
                new_account("A", "prod", Tier::Beta, &["r"], &[]),
                "account_id",
            ),
            (
                new_account("ab", "prod", Tier::Beta, &["r"], &[]),
                "account_id",
            ),
            (
                new_account("acct", "prod", Tier::Beta, &[], &[]),
                "account.regions",
            ),
            (
                new_account("acct", "prod", Tier::Beta, &["EU"], &[]),
                "account.regions[0]",
            ),
            (
                new_account("acct", "prod", Tier::Beta, &["r", "r"], &[]),
                "account.regions",
            ),
            (
                new_account("acct", "prod", Tier::Beta, &["r"], &[("bad key", "v")]),
                "account.tags[\"bad key\"]",
            ),
            (
                new_account("acct", "nowhere", Tier::Beta, &["r"], &[]),
                "account.organizational_unit",
            ),
        ];
        for (account, field) in cases {
            let e = fleet.create_account(account, "").await.unwrap_err();
            assert_eq!(invalid_field(e), field);
        }
        assert!(
            fleet
                .list_accounts(
                    AccountQuery {
                        states: vec![AccountState::Requested],
                        ..AccountQuery::default()
                    },
                    10,
                    ""
                )
                .await
                .unwrap()
                .items
                .is_empty()
        );
        active_account(&fleet, "acct", "prod", Tier::Beta, &["r"]).await;
        let again = fleet
            .create_account(new_account("acct", "prod", Tier::Beta, &["r"], &[]), "")
            .await
            .unwrap_err();
        assert!(matches!(again, Error::AlreadyExists(_)), "{again:?}");
    }
);

on_every_backend!(a_retried_request_returns_the_same_account, |fleet| {
    ou(&fleet, "root", "prod").await;
    let first = fleet
        .create_account(
            new_account("acct-x", "prod", Tier::Beta, &["r"], &[]),
            "req-1",
        )
        .await
        .unwrap();
    let retry = fleet
        .create_account(
            new_account("acct-x", "prod", Tier::Beta, &["r"], &[]),
            "req-1",
        )
        .await
        .unwrap();
    assert_eq!(first.account, retry.account);
    let reuse = fleet
        .create_account(
            new_account("acct-y", "prod", Tier::Beta, &["r"], &[]),
            "req-1",
        )
        .await
        .unwrap_err();
    assert_eq!(invalid_field(reuse), "request_id");
    assert!(matches!(
        fleet.account("acct-y").await.unwrap_err(),
        Error::NotFound(_)
    ));
});
