//! Daily rollups: a window read from rollups answers as the raw records
//! do, a failure restored after the window's end is unrecovered in it, and
//! rollups rebuilt from the records answer the same.

use chrono::{DateTime, Duration, TimeZone, Utc};
use conveyor_api::metrics::v1 as pb;
use conveyor_api::time::timestamp;
use sea_orm::ConnectionTrait;

use crate::events::PIPELINE;
use crate::history::known_history_from;
use crate::on_every_backend;
use crate::support::Server;

fn midnight() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 10, 0, 0, 0).unwrap()
}

async fn dora(
    server: &mut Server,
    scope: pb::MetricsScope,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> pb::DoraMetrics {
    let mut m = server
        .client
        .get_dora_metrics(pb::GetDoraMetricsRequest {
            scope: Some(scope),
            window: Some(pb::TimeWindow {
                start_time: Some(timestamp(start)),
                end_time: Some(timestamp(end)),
            }),
            granularity: pb::SeriesGranularity::Daily as i32,
        })
        .await
        .unwrap()
        .into_inner();
    // What differs by construction between two windows.
    m.window = None;
    m.series.clear();
    m.scope = None;
    m
}

fn pipeline() -> pb::MetricsScope {
    pb::MetricsScope {
        pipeline: PIPELINE.into(),
        ..Default::default()
    }
}

on_every_backend!(rollups_and_raw_records_give_the_same_metrics, |server| {
    let day = midnight();
    server.publish(&known_history_from(day).events).await;
    server.settle().await;
    // [day, day + 1d) is one whole day, read from its rollup; one second
    // later it is a partial day, read from the records.
    let rolled = dora(&mut server, pipeline(), day, day + Duration::days(1)).await;
    let raw = dora(
        &mut server,
        pipeline(),
        day + Duration::seconds(1),
        day + Duration::days(1) + Duration::seconds(1),
    )
    .await;
    assert_eq!(rolled.lead_time_for_changes.as_ref().unwrap().commits, 9);
    assert_eq!(rolled, raw);
    // The fleet's and the project's rollups are the sum of the pipeline's.
    let fleet = dora(
        &mut server,
        Default::default(),
        day,
        day + Duration::days(1),
    )
    .await;
    assert_eq!(fleet, rolled);
});

on_every_backend!(
    a_failure_restored_after_the_window_is_unrecovered_in_it,
    |server| {
        // g's alarm fires 10 minutes before midnight and it is restored 10
        // minutes after; e's failure (alarm at -250 min) is restored at +95.
        let t0 = midnight() - Duration::minutes(650);
        server.publish(&known_history_from(t0).events).await;
        server.settle().await;
        let day_before = midnight() - Duration::days(1);
        let early = dora(
            &mut server,
            pipeline(),
            day_before,
            midnight() + Duration::minutes(5),
        )
        .await;
        let r = early.failed_deployment_recovery_time.unwrap();
        assert_eq!((r.recoveries, r.unrecovered), (0, 2));
        assert_eq!(r.median, None);
        let later = dora(
            &mut server,
            pipeline(),
            day_before,
            midnight() + Duration::hours(2),
        )
        .await;
        let r = later.failed_deployment_recovery_time.unwrap();
        assert_eq!((r.recoveries, r.unrecovered), (2, 0));
        assert_eq!(r.median.map(|d| d.seconds), Some(20 * 60));
    }
);

on_every_backend!(rebuilt_rollups_answer_as_the_live_ones, |server| {
    let day = midnight();
    server.publish(&known_history_from(day).events).await;
    server.settle().await;
    let whole = (day - Duration::days(1), day + Duration::days(2));
    let live = dora(&mut server, pipeline(), whole.0, whole.1).await;
    let store = server.store().await;
    store
        .connection()
        .execute_unprepared("DELETE FROM rollups")
        .await
        .unwrap();
    let gone = dora(&mut server, pipeline(), whole.0, whole.1).await;
    assert_eq!(gone.lead_time_for_changes.unwrap().commits, 0);
    assert!(store.rebuild_rollups(Default::default()).await.unwrap() >= 1);
    let rebuilt = dora(&mut server, pipeline(), whole.0, whole.1).await;
    assert_eq!(rebuilt, live);
});

on_every_backend!(
    pruned_records_leave_the_rollups_and_the_event_ids,
    |server| {
        let day = midnight();
        let events = known_history_from(day).events;
        server.publish(&events).await;
        server.settle().await;
        let whole = (day - Duration::days(1), day + Duration::days(2));
        let live = dora(&mut server, pipeline(), whole.0, whole.1).await;
        let store = server.store().await;
        let retention = conveyor_metrics::store::Retention {
            records_days: 1,
            rollups_days: 0,
            dedup_days: 1,
        };
        let pruned = store.prune(retention, Utc::now()).await.unwrap();
        assert!(pruned.records > 20, "{pruned:?}");
        assert_eq!(pruned.event_ids, 0, "ids applied today are kept");
        let listed = server
            .client
            .list_deployments(pb::ListDeploymentsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(listed.deployments.is_empty());
        assert_eq!(dora(&mut server, pipeline(), whole.0, whole.1).await, live);
        // A redelivery of the whole history is still recognised.
        server.publish(&events).await;
        server.settle().await;
        assert_eq!(
            server
                .stats()
                .duplicates
                .load(std::sync::atomic::Ordering::Relaxed),
            events.len() as u64
        );
        let later = conveyor_metrics::store::Retention {
            dedup_days: 1,
            ..Default::default()
        };
        let tomorrow = Utc::now() + Duration::days(2);
        assert_eq!(
            store.prune(later, tomorrow).await.unwrap().event_ids,
            events.len() as u64
        );
    }
);
