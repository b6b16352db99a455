//! What holds a stage before it starts: blockers, alarms, time windows.

use chrono::{DateTime, Utc};

use super::*;

impl Window {
    /// Whether `now` falls inside the window (start inclusive, end exclusive;
    /// a window whose end is before its start runs past midnight).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        use chrono::{Datelike, Timelike};
        let local = now + chrono::Duration::minutes(i64::from(self.offset_minutes));
        if self
            .exclude_dates
            .iter()
            .any(|d| *d == local.format("%Y-%m-%d").to_string())
        {
            return false;
        }
        let day = local.weekday().num_days_from_monday() as u8;
        if !self.days.is_empty() && !self.days.contains(&day) {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

/// Why a stage may not start now, if it may not.
pub(super) fn hold_reason(s: &Snapshot, stage: &StageRun, now: DateTime<Utc>) -> Option<String> {
    let deploys = !stage.environment.is_empty();
    if let Some(b) = s
        .blockers
        .iter()
        .find(|b| b.stage == stage.name || (b.stage.is_empty() && deploys))
    {
        return Some(format!(
            "promotion blocked by {}: {}",
            b.created_by, b.reason
        ));
    }
    let guards = stage.guards.as_ref()?;
    if let Some(alarm) = guards.alarms.iter().find(|a| s.firing.contains(*a)) {
        return Some(format!(
            "alarm {alarm:?} is in ALARM; the stage starts when it clears"
        ));
    }
    if !guards.windows.is_empty() && !guards.windows.iter().any(|w| w.contains(now)) {
        return Some("outside the stage's deployment windows; it starts when one opens".to_owned());
    }
    None
}
