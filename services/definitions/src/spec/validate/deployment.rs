//! Validation of a stage's `deployment`: waves and one-boxes, fleet
//! selectors, bake and data points, alarms and probes, time windows,
//! rolling limits.

use std::collections::HashSet;
use std::time::Duration;

use super::super::model::*;
use super::super::names::{NAME_RULE, is_valid_name};
use super::{
    MAX_LIST, MAX_TARGETS_PER_WAVE, MAX_WAVES, Validator, is_region, parse_hhmm, parse_utc_offset,
    parse_zone,
};

impl Validator {
    pub(super) fn deployment(&mut self, field: &str, d: &Deployment, env: Option<&Environment>) {
        match (d.waves.is_empty(), &d.from_fleet) {
            (true, None) => self.err(format!("{field}.waves"), "give waves or fromFleet"),
            (false, Some(_)) => self.err(
                format!("{field}.fromFleet"),
                "give waves or fromFleet, not both",
            ),
            _ => {}
        }
        self.list_len(&format!("{field}.waves"), &d.waves, 0, MAX_WAVES);
        self.unique(
            d.waves
                .iter()
                .enumerate()
                .map(|(i, w)| (format!("{field}.waves[{i}].name"), w.name.as_str())),
            "wave",
        );
        let mut targets_seen = HashSet::new();
        for (i, wave) in d.waves.iter().enumerate() {
            let wf = format!("{field}.waves[{i}]");
            self.name(&format!("{wf}.name"), &wave.name);
            self.list_len(
                &format!("{wf}.targets"),
                &wave.targets,
                1,
                MAX_TARGETS_PER_WAVE,
            );
            for (j, t) in wave.targets.iter().enumerate() {
                let tf = format!("{wf}.targets[{j}]");
                self.text(&format!("{tf}.account"), &t.account, 128, true);
                if !is_region(&t.region) {
                    self.err(
                        format!("{tf}.region"),
                        format!(
                            "invalid region {:?}: lowercase letters, digits and '-'",
                            t.region
                        ),
                    );
                }
                if let Some(env) = env {
                    if t.account != env.account {
                        self.err(
                            format!("{tf}.account"),
                            format!("account {:?} is not environment {:?}'s account {:?}; deploy other accounts with fromFleet", t.account, env.name, env.account),
                        );
                    } else if !env.regions.contains(&t.region) {
                        self.err(
                            format!("{tf}.region"),
                            format!(
                                "region {:?} is not one of environment {:?}'s regions {:?}",
                                t.region, env.name, env.regions
                            ),
                        );
                    }
                }
                if !targets_seen.insert(t) {
                    self.err(
                        tf,
                        format!(
                            "target {}/{} appears twice in this deployment",
                            t.account, t.region
                        ),
                    );
                }
            }
            if let Some(one_box) = &wave.one_box {
                self.alarms(&format!("{wf}.oneBox.alarms"), &one_box.alarms);
            }
        }
        if let Some(sel) = &d.from_fleet {
            let ff = format!("{field}.fromFleet");
            if sel.tier.is_none() && sel.organizational_unit.is_none() && sel.tags.is_empty() {
                self.err(&*ff, "select accounts by tier, organizationalUnit or tags");
            }
            if let Some(ou) = &sel.organizational_unit
                && !is_valid_name(ou)
            {
                self.err(
                    format!("{ff}.organizationalUnit"),
                    format!("{ou:?} is not an OU id: {NAME_RULE}"),
                );
            }
            self.regions(&format!("{ff}.regions"), &sel.regions);
            self.labels(&format!("{ff}.tags"), &sel.tags);
            // The fleet's tag rule: no quotes, spaces or other punctuation.
            let tag_char = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b);
            for (key, value) in &sel.tags {
                if !value.bytes().all(tag_char) {
                    self.err(
                        format!("{ff}.tags.{key}"),
                        "fleet tag values hold only letters, digits and -_.:/@",
                    );
                }
            }
            if !(2..=10).contains(&sel.growth_factor) {
                self.err(format!("{ff}.growthFactor"), "must be between 2 and 10");
            }
        }
        if let Some(dp) = &d.min_data_points {
            self.text(
                &format!("{field}.minDataPoints.metric"),
                &dp.metric,
                256,
                true,
            );
            if dp.count == 0 {
                self.err(format!("{field}.minDataPoints.count"), "must be at least 1");
            }
        }
        self.alarms(&format!("{field}.alarms"), &d.alarms);
        self.list_len(
            &format!("{field}.timeWindows"),
            &d.time_windows,
            0,
            MAX_LIST,
        );
        for (i, w) in d.time_windows.iter().enumerate() {
            self.time_window(&format!("{field}.timeWindows[{i}]"), w);
        }
        if let Some(r) = &d.rolling {
            let rf = format!("{field}.rolling");
            if !(1..=100).contains(&r.max_batch_percent) {
                self.err(format!("{rf}.maxBatchPercent"), "must be between 1 and 100");
            }
            if r.min_healthy_percent > 99 {
                self.err(
                    format!("{rf}.minHealthyPercent"),
                    "must be between 0 and 99",
                );
            } else if r.max_batch_percent + r.min_healthy_percent > 100 {
                self.err(
                    format!("{rf}.maxBatchPercent"),
                    format!(
                        "replacing {}% at a time leaves {}% healthy, below minHealthyPercent {}%",
                        r.max_batch_percent,
                        100 - r.max_batch_percent.min(100),
                        r.min_healthy_percent
                    ),
                );
            }
        }
    }

    pub(super) fn alarms(&mut self, field: &str, alarms: &[Alarm]) {
        self.list_len(field, alarms, 0, MAX_LIST);
        self.unique(
            alarms
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{field}[{i}].name"), a.name.as_str())),
            "alarm",
        );
        for (i, alarm) in alarms.iter().enumerate() {
            let af = format!("{field}[{i}]");
            self.name(&format!("{af}.name"), &alarm.name);
            if let Some(p) = &alarm.probe {
                if !(p.url.starts_with("http://") || p.url.starts_with("https://"))
                    || p.url.len() > 2048
                {
                    self.err(
                        format!("{af}.probe.url"),
                        "must be an http:// or https:// URL of at most 2048 bytes",
                    );
                }
                self.min_duration(
                    &format!("{af}.probe.interval"),
                    p.interval.get(),
                    Duration::from_secs(1),
                );
                if !(1..=100).contains(&p.failure_threshold) {
                    self.err(
                        format!("{af}.probe.failureThreshold"),
                        "must be between 1 and 100",
                    );
                }
            }
        }
    }

    fn time_window(&mut self, field: &str, w: &TimeWindow) {
        self.list_len(&format!("{field}.days"), &w.days, 0, 7);
        self.list_len(&format!("{field}.excludeDates"), &w.exclude_dates, 0, 366);
        let start = parse_hhmm(&w.start);
        let end = parse_hhmm(&w.end);
        if start.is_none() {
            self.err(
                format!("{field}.start"),
                format!("{:?} is not a time of day \"HH:MM\"", w.start),
            );
        }
        if end.is_none() && w.end != "24:00" {
            self.err(
                format!("{field}.end"),
                format!("{:?} is not a time of day \"HH:MM\"", w.end),
            );
        }
        if start.is_some() && start == end {
            self.err(format!("{field}.end"), "the window must not be empty");
        }
        if parse_utc_offset(&w.timezone).is_none() && parse_zone(&w.timezone).is_none() {
            self.err(
                format!("{field}.timezone"),
                format!(
                    "{:?} is not \"UTC\", a fixed offset such as \"+02:00\", or an IANA time zone such as \"Europe/Paris\"",
                    w.timezone
                ),
            );
        }
        for (i, d) in w.exclude_dates.iter().enumerate() {
            if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
                self.err(
                    format!("{field}.excludeDates[{i}]"),
                    format!("{d:?} is not a date \"YYYY-MM-DD\""),
                );
            }
        }
    }
}
