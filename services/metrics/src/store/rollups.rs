//! Daily rollups: one [`Tally`] per pipeline, per project and for the fleet
//! per UTC day, so a window's metrics read one row per day instead of every
//! record. A rollup is a cache of the raw records, never the truth: a
//! pipeline's day is recomputed from its records whenever a batch changes
//! them, in the batch's transaction, and its project's and the fleet's day
//! are the sum of their pipelines' days. `rebuild` makes them all again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::entities::{deployment, rollup, stage_budget, streak};
use super::history::{self, Select};
use super::queries::Scope;
use crate::compute::{Tally, Window};

const PIPELINE: &str = "pipeline";
const PROJECT: &str = "project";
const FLEET: &str = "fleet";
/// Days rebuilt together.
const REBUILD_DAYS: i64 = 7;

/// (day, pipeline, project) whose records a batch changed.
pub type Dirty = BTreeSet<(NaiveDate, String, String)>;

/// Marks the day of `t` for `pipeline`.
pub fn mark(dirty: &mut Dirty, pipeline: &str, project: &str, t: Option<DateTime<Utc>>) {
    if let Some(t) = t {
        dirty.insert((t.date_naive(), pipeline.to_owned(), project.to_owned()));
    }
}

fn day_window(day: NaiveDate) -> Window {
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    Window {
        start,
        end: start + Duration::days(1),
    }
}

fn row(kind: &str, key: &str, day: NaiveDate, project: &str, tally: &Tally) -> rollup::Model {
    rollup::Model {
        kind: kind.to_owned(),
        key: key.to_owned(),
        day,
        project: project.to_owned(),
        tally: serde_json::to_string(tally).unwrap_or_default(),
        update_time: Utc::now(),
    }
}

fn parse(r: &rollup::Model) -> Result<Tally, DbErr> {
    serde_json::from_str(&r.tally)
        .map_err(|e| DbErr::Custom(format!("rollup {} {} {}: {e}", r.kind, r.key, r.day)))
}

async fn upsert<C: ConnectionTrait>(db: &C, rows: Vec<rollup::Model>) -> Result<(), DbErr> {
    use rollup::Column as R;
    super::upsert::upsert::<rollup::Entity, _>(
        db,
        &rows,
        &[R::Kind, R::Key, R::Day],
        &[R::Project, R::Tally, R::UpdateTime],
    )
    .await
}

/// The day tallies of `scope` over the whole days of `range`, each with
/// its day; days without a rollup have nothing to count.
pub(crate) async fn read<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    range: Window,
) -> Result<Vec<(Window, Tally)>, DbErr> {
    let (kind, key) = match scope {
        Scope::Fleet => (FLEET, ""),
        Scope::Project(p) => (PROJECT, p.as_str()),
        Scope::Pipeline(p) => (PIPELINE, p.as_str()),
    };
    rollup::Entity::find()
        .filter(rollup::Column::Kind.eq(kind))
        .filter(rollup::Column::Key.eq(key))
        .filter(rollup::Column::Day.gte(range.start.date_naive()))
        .filter(rollup::Column::Day.lt(range.end.date_naive()))
        .all(db)
        .await?
        .iter()
        .map(|r| Ok((day_window(r.day), parse(r)?)))
        .collect()
}

/// Recomputes the rollups of the dirty pipeline days from their records,
/// then their projects' and the fleet's days from the pipelines' rollups.
pub(crate) async fn refresh<C: ConnectionTrait>(db: &C, dirty: &Dirty) -> Result<(), DbErr> {
    // One row per pipeline and day, whatever projects its records name.
    let mut by_day: BTreeMap<NaiveDate, BTreeMap<&str, &str>> = BTreeMap::new();
    for (day, pipeline, project) in dirty {
        by_day.entry(*day).or_default().insert(pipeline, project);
    }
    let mut rows = Vec::new();
    for (day, pipelines) in &by_day {
        let names: Vec<String> = pipelines.keys().map(|p| (*p).to_owned()).collect();
        let raw = history::load(db, &Select::Pipelines(&names), day_window(*day)).await?;
        for (pipeline, project) in pipelines {
            let tally = raw
                .get(*pipeline)
                .map(|(_, h)| Tally::of(h, DateTime::<Utc>::MAX_UTC))
                .unwrap_or_default();
            rows.push(row(PIPELINE, pipeline, *day, project, &tally));
        }
    }
    upsert(db, rows).await?;

    let days: Vec<NaiveDate> = by_day.keys().copied().collect();
    let projects: BTreeSet<(NaiveDate, &str)> =
        dirty.iter().map(|(d, _, p)| (*d, p.as_str())).collect();
    let mut fleet: BTreeMap<NaiveDate, Tally> =
        days.iter().map(|d| (*d, Tally::default())).collect();
    let mut per_project: BTreeMap<(NaiveDate, &str), Tally> =
        projects.iter().map(|k| (*k, Tally::default())).collect();
    let pipeline_days = rollup::Entity::find()
        .filter(rollup::Column::Kind.eq(PIPELINE))
        .filter(rollup::Column::Day.is_in(days))
        .all(db)
        .await?;
    for r in &pipeline_days {
        let tally = parse(r)?;
        if let Some(t) = per_project.get_mut(&(r.day, r.project.as_str())) {
            t.merge(&tally);
        }
        if let Some(t) = fleet.get_mut(&r.day) {
            t.merge(&tally);
        }
    }
    let mut rows: Vec<_> = per_project
        .iter()
        .map(|((day, project), t)| row(PROJECT, project, *day, "", t))
        .collect();
    rows.extend(fleet.iter().map(|(day, t)| row(FLEET, "", *day, "", t)));
    upsert(db, rows).await
}

/// Makes every rollup again from the raw records (after the rollups were
/// added to a database with history, or lost), but for days up to `frozen`,
/// whose records retention may have pruned in part; returns the days
/// covered.
pub(crate) async fn rebuild<C: ConnectionTrait>(
    db: &C,
    frozen: Option<NaiveDate>,
) -> Result<i64, DbErr> {
    let Some(first) = first_record(db).await? else {
        return Ok(0);
    };
    let mut start = history::midnight(first);
    if let Some(frozen) = frozen {
        start = start.max(day_window(frozen).end);
    }
    let end = Utc::now();
    let mut days = 0;
    while start < end {
        let range = Window {
            start,
            end: start + Duration::days(REBUILD_DAYS),
        };
        let raw = history::load(db, &Select::Scope(&Scope::Fleet), range).await?;
        let mut projects: BTreeMap<(NaiveDate, String), Tally> = BTreeMap::new();
        let mut fleet: BTreeMap<NaiveDate, Tally> = BTreeMap::new();
        let mut rows = Vec::new();
        for (pipeline, (project, h)) in &raw {
            for (day, tally) in crate::compute::tally::daily(range, h, DateTime::<Utc>::MAX_UTC) {
                if tally.is_empty() {
                    continue;
                }
                let day = day.start.date_naive();
                rows.push(row(PIPELINE, pipeline, day, project, &tally));
                projects
                    .entry((day, project.clone()))
                    .or_default()
                    .merge(&tally);
                fleet.entry(day).or_default().merge(&tally);
            }
        }
        rows.extend(
            projects
                .iter()
                .map(|((day, p), t)| row(PROJECT, p, *day, "", t)),
        );
        rows.extend(fleet.iter().map(|(day, t)| row(FLEET, "", *day, "", t)));
        upsert(db, rows).await?;
        start = range.end;
        days += REBUILD_DAYS;
    }
    Ok(days)
}

/// Rebuilds when there are records but no rollups (the first start after
/// the rollups were added).
pub(crate) async fn ensure<C: ConnectionTrait>(
    db: &C,
    frozen: Option<NaiveDate>,
) -> Result<(), DbErr> {
    if rollup::Entity::find().one(db).await?.is_some() || first_record(db).await?.is_none() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let days = rebuild(db, frozen).await?;
    tracing::info!(days, elapsed = ?started.elapsed(), "rebuilt the daily rollups");
    Ok(())
}

/// When the oldest record a rollup counts was made.
async fn first_record<C: ConnectionTrait>(db: &C) -> Result<Option<DateTime<Utc>>, DbErr> {
    let deployments: Option<Option<DateTime<Utc>>> = deployment::Entity::find()
        .select_only()
        .column_as(deployment::Column::StartTime.min(), "first")
        .into_tuple()
        .one(db)
        .await?;
    let streaks: Option<Option<DateTime<Utc>>> = streak::Entity::find()
        .select_only()
        .column_as(streak::Column::StartTime.min(), "first")
        .into_tuple()
        .one(db)
        .await?;
    let budgets: Option<Option<DateTime<Utc>>> = stage_budget::Entity::find()
        .select_only()
        .column_as(stage_budget::Column::EndTime.min(), "first")
        .into_tuple()
        .one(db)
        .await?;
    Ok([deployments, streaks, budgets]
        .into_iter()
        .flatten()
        .flatten()
        .min())
}
