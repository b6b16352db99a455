//! What holds a stage before it starts: blockers, alarms, time windows.

use chrono::{DateTime, Utc};

use super::*;

impl Window {
    /// Whether `now` falls inside the window (start inclusive, end exclusive;
    /// a window whose end is before its start runs past midnight).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        use chrono::{Datelike, Timelike};
        // Wall-clock time where the window is defined, as a naive date-time.
        let local = match self
            .zone
            .as_deref()
            .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
        {
            Some(zone) => now.with_timezone(&zone).naive_local(),
            None => (now + chrono::Duration::minutes(i64::from(self.offset_minutes))).naive_utc(),
        };
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
    if let Some(waiting) = super::fleet::fleet_hold(stage) {
        return Some(waiting);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("a time")
            .with_timezone(&Utc)
    }

    /// Weekdays 09:00–17:00 in `zone`.
    fn office_hours(zone: Option<&str>, offset_minutes: i32) -> Window {
        Window {
            days: vec![0, 1, 2, 3, 4],
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            offset_minutes,
            zone: zone.map(str::to_owned),
            exclude_dates: vec!["2026-12-25".to_owned()],
        }
    }

    #[test]
    fn a_named_zone_follows_daylight_saving() {
        let paris = office_hours(Some("Europe/Paris"), 0);
        // Summer (UTC+2): 07:30 UTC is 09:30 in Paris.
        assert!(paris.contains(at("2026-07-01T07:30:00Z")));
        // Winter (UTC+1): 07:30 UTC is 08:30, before the window; 08:30 UTC is 09:30.
        assert!(!paris.contains(at("2026-01-07T07:30:00Z")));
        assert!(paris.contains(at("2026-01-07T08:30:00Z")));
        // 16:30 UTC on a Friday is 17:30 in Paris: closed.
        assert!(!paris.contains(at("2026-11-27T16:30:00Z")));
        // Excluded dates and weekends are local too: Christmas, and a Saturday.
        assert!(!paris.contains(at("2026-12-25T10:00:00Z")));
        assert!(!paris.contains(at("2026-11-28T10:00:00Z")));
    }

    #[test]
    fn a_fixed_offset_does_not_move() {
        let plus_one = office_hours(None, 60);
        assert!(
            !plus_one.contains(at("2026-07-01T07:30:00Z")),
            "08:30 at +01:00"
        );
        assert!(plus_one.contains(at("2026-07-01T08:30:00Z")));
    }
}
