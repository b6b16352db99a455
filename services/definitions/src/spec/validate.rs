//! Structural validation: everything a spec must satisfy to be stored at
//! all, whatever its pipeline type. DPRA practices are checked separately by
//! the conformance rules. Every error names its field path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use super::SpecError;
use super::model::*;
use super::names::{NAME_RULE, is_valid_name};

mod deployment;

pub const MAX_STAGES: usize = 100;
pub const MAX_ACTIONS_PER_STAGE: usize = 500;
pub const MAX_ACTIONS: usize = 2_000;
pub const MAX_ENVIRONMENTS: usize = 50;
pub const MAX_WAVES: usize = 50;
pub const MAX_TARGETS_PER_WAVE: usize = 1_000;
pub const MAX_LIST: usize = 100;
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
pub const MAX_TEXT_BYTES: usize = 4 * 1024;
pub const MAX_RETRIES: u32 = 10;

pub fn validate(doc: &Document) -> Vec<SpecError> {
    let mut v = Validator::default();
    v.document(doc);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<SpecError>,
}

impl Validator {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError::new(field, message));
    }

    fn name(&mut self, field: &str, name: &str) {
        if !is_valid_name(name) {
            self.err(field, format!("invalid name {name:?}: {NAME_RULE}"));
        }
    }

    fn text(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.err(field, "must not be empty");
        } else if value.len() > max {
            self.err(
                field,
                format!("is {} bytes; at most {max} allowed", value.len()),
            );
        }
    }

    fn list_len<T>(&mut self, field: &str, list: &[T], min: usize, max: usize) {
        if list.len() < min {
            self.err(
                field,
                format!(
                    "needs at least {min} entr{}",
                    if min == 1 { "y" } else { "ies" }
                ),
            );
        } else if list.len() > max {
            self.err(
                field,
                format!("has {} entries; at most {max} allowed", list.len()),
            );
        }
    }

    /// Reports the second and later uses of a name in a list.
    fn unique<'a>(&mut self, names: impl IntoIterator<Item = (String, &'a str)>, what: &str) {
        let mut seen = HashSet::new();
        for (field, name) in names {
            if !seen.insert(name) {
                self.err(field, format!("duplicate {what} name {name:?}"));
            }
        }
    }

    fn min_duration(&mut self, field: &str, d: Duration, min: Duration) {
        if d < min {
            self.err(
                field,
                format!("must be at least {}", humantime::format_duration(min)),
            );
        }
    }

    fn document(&mut self, doc: &Document) {
        if doc.api_version != API_VERSION {
            self.err(
                "apiVersion",
                format!("must be {API_VERSION:?}, not {:?}", doc.api_version),
            );
        }
        if doc.kind != KIND {
            self.err("kind", format!("must be {KIND:?}, not {:?}", doc.kind));
        }
        self.metadata(&doc.metadata);
        self.spec(&doc.spec);
        self.upstream(&doc.spec.upstream, &doc.metadata.name);
        self.waivers(&doc.spec.conformance.waivers, doc.spec.pipeline_type);
    }

    fn waivers(&mut self, waivers: &[Waiver], pipeline_type: PipelineType) {
        self.list_len("spec.conformance.waivers", waivers, 0, MAX_LIST);
        self.unique(
            waivers.iter().enumerate().map(|(i, w)| {
                (
                    format!("spec.conformance.waivers[{i}].rule"),
                    w.rule.as_str(),
                )
            }),
            "waived rule",
        );
        let rules = crate::conformance::rules_for(pipeline_type);
        for (i, w) in waivers.iter().enumerate() {
            let field = format!("spec.conformance.waivers[{i}]");
            if !rules.iter().any(|r| r.id == w.rule) {
                self.err(
                    format!("{field}.rule"),
                    format!(
                        "{:?} is not a conformance rule of {} pipelines",
                        w.rule,
                        pipeline_type.as_str()
                    ),
                );
            }
            self.text(&format!("{field}.reason"), &w.reason, 1024, true);
        }
    }

    fn upstream(&mut self, upstream: &[Upstream], own_name: &str) {
        self.list_len("spec.upstream", upstream, 0, MAX_LIST);
        self.unique(
            upstream
                .iter()
                .enumerate()
                .map(|(i, u)| (format!("spec.upstream[{i}].pipeline"), u.pipeline.as_str())),
            "upstream pipeline",
        );
        for (i, u) in upstream.iter().enumerate() {
            let field = format!("spec.upstream[{i}]");
            self.name(&format!("{field}.pipeline"), &u.pipeline);
            if u.pipeline == own_name {
                self.err(
                    format!("{field}.pipeline"),
                    "a pipeline cannot take artifacts from itself",
                );
            }
            self.list_len(&format!("{field}.artifacts"), &u.artifacts, 0, MAX_LIST);
            for (j, name) in u.artifacts.iter().enumerate() {
                self.relative_path(&format!("{field}.artifacts[{j}]"), name);
            }
        }
    }

    fn metadata(&mut self, m: &Metadata) {
        self.name("metadata.name", &m.name);
        self.name("metadata.project", &m.project);
        self.text(
            "metadata.description",
            &m.description,
            MAX_TEXT_BYTES,
            false,
        );
        self.labels("metadata.labels", &m.labels);
    }

    fn labels(&mut self, field: &str, labels: &BTreeMap<String, String>) {
        if labels.len() > 64 {
            self.err(
                field,
                format!("has {} labels; at most 64 allowed", labels.len()),
            );
        }
        for (key, value) in labels {
            let valid_key = !key.is_empty()
                && key.len() <= 63
                && key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_./".contains(&b));
            if !valid_key {
                self.err(
                    format!("{field}.{key}"),
                    "label keys are 1 to 63 lowercase letters, digits, '-', '_', '.' or '/'",
                );
            }
            if value.len() > 255 {
                self.err(
                    format!("{field}.{key}"),
                    "label values are at most 255 bytes",
                );
            }
        }
    }

    fn spec(&mut self, spec: &Spec) {
        self.source(&spec.source);
        if let Some(account) = &spec.tooling_account {
            self.text("spec.toolingAccount", account, 128, true);
        }
        let environments = self.environments(&spec.environments);
        self.stages(&spec.stages, &environments);
        self.gates(&spec.gates);
        self.notifications(&spec.notifications);
    }

    fn source(&mut self, s: &Source) {
        self.text("spec.source.repository", &s.repository, 2048, true);
        let trunk_ok = !s.trunk.is_empty()
            && s.trunk.len() <= 255
            && !s.trunk.starts_with(['-', '/'])
            && !s.trunk.contains("..")
            && s.trunk
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"~^:?*[\\".contains(c));
        if !trunk_ok {
            self.err(
                "spec.source.trunk",
                format!("{:?} is not a valid branch name", s.trunk),
            );
        }
        self.list_len("spec.source.paths", &s.paths, 0, MAX_LIST);
        for (i, p) in s.paths.iter().enumerate() {
            self.text(&format!("spec.source.paths[{i}]"), p, 1024, true);
        }
    }

    fn environments<'a>(&mut self, envs: &'a [Environment]) -> HashMap<&'a str, &'a Environment> {
        self.list_len("spec.environments", envs, 0, MAX_ENVIRONMENTS);
        self.unique(
            envs.iter()
                .enumerate()
                .map(|(i, e)| (format!("spec.environments[{i}].name"), e.name.as_str())),
            "environment",
        );
        for (i, env) in envs.iter().enumerate() {
            let field = format!("spec.environments[{i}]");
            self.name(&format!("{field}.name"), &env.name);
            self.text(&format!("{field}.account"), &env.account, 128, true);
            self.list_len(&format!("{field}.regions"), &env.regions, 1, MAX_LIST);
            self.regions(&format!("{field}.regions"), &env.regions);
            if let Some(role) = &env.role {
                self.text(&format!("{field}.role"), role, 2048, true);
            }
        }
        envs.iter().map(|e| (e.name.as_str(), e)).collect()
    }

    fn regions(&mut self, field: &str, regions: &[String]) {
        if regions.len() > MAX_LIST {
            self.err(
                field,
                format!("has {} regions; at most {MAX_LIST} allowed", regions.len()),
            );
        }
        let mut seen = HashSet::new();
        for (i, region) in regions.iter().enumerate() {
            if !is_region(region) {
                self.err(
                    format!("{field}[{i}]"),
                    format!("invalid region {region:?}: lowercase letters, digits and '-'"),
                );
            }
            if !seen.insert(region) {
                self.err(
                    format!("{field}[{i}]"),
                    format!("duplicate region {region:?}"),
                );
            }
        }
    }

    fn stages(&mut self, stages: &[Stage], environments: &HashMap<&str, &Environment>) {
        self.list_len("spec.stages", stages, 1, MAX_STAGES);
        self.unique(
            stages
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("spec.stages[{i}].name"), s.name.as_str())),
            "stage",
        );
        let total: usize = stages.iter().map(|s| s.actions.len()).sum();
        if total > MAX_ACTIONS {
            self.err(
                "spec.stages",
                format!("has {total} actions in all; at most {MAX_ACTIONS} allowed"),
            );
        }
        for (i, stage) in stages.iter().enumerate() {
            let field = format!("spec.stages[{i}]");
            self.name(&format!("{field}.name"), &stage.name);
            if let Some(env) = &stage.environment
                && !environments.contains_key(env.as_str())
            {
                self.err(
                    format!("{field}.environment"),
                    format!("environment {env:?} is not declared in spec.environments"),
                );
            }
            self.actions(&field, &stage.actions);
            if let Some(approval) = &stage.approval {
                self.approval(&format!("{field}.approval"), approval);
            }
            if let Some(deployment) = &stage.deployment {
                if stage.environment.is_none() {
                    self.err(
                        format!("{field}.deployment"),
                        "a deployment needs the stage to name an environment",
                    );
                }
                let env = stage
                    .environment
                    .as_deref()
                    .and_then(|e| environments.get(e).copied());
                self.deployment(&format!("{field}.deployment"), deployment, env);
            }
        }
    }

    fn actions(&mut self, stage_field: &str, actions: &[Action]) {
        let field = format!("{stage_field}.actions");
        self.list_len(&field, actions, 1, MAX_ACTIONS_PER_STAGE);
        self.unique(
            actions
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("{field}[{i}].name"), a.name.as_str())),
            "action",
        );
        let index: HashMap<&str, usize> = actions
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.as_str(), i))
            .collect();
        for (i, action) in actions.iter().enumerate() {
            let af = format!("{field}[{i}]");
            self.name(&format!("{af}.name"), &action.name);
            self.text(&format!("{af}.run"), &action.run, MAX_COMMAND_BYTES, true);
            self.min_duration(
                &format!("{af}.timeout"),
                action.timeout.get(),
                Duration::from_secs(1),
            );
            if action.retries > MAX_RETRIES {
                self.err(
                    format!("{af}.retries"),
                    format!("at most {MAX_RETRIES} retries allowed"),
                );
            }
            self.name(&format!("{af}.pool"), &action.pool);
            self.env(&format!("{af}.env"), &action.env);
            self.outputs(&format!("{af}.outputs"), &action.outputs);
            self.schema_checks(&format!("{af}.validate"), &action.validate);
            self.list_len(
                &format!("{af}.needs"),
                &action.needs,
                0,
                MAX_ACTIONS_PER_STAGE,
            );
            let mut seen = HashSet::new();
            for (j, need) in action.needs.iter().enumerate() {
                let nf = format!("{af}.needs[{j}]");
                if need == &action.name {
                    self.err(nf, "an action cannot need itself");
                } else if !index.contains_key(need.as_str()) {
                    self.err(nf, format!("no action named {need:?} in this stage"));
                } else if !seen.insert(need) {
                    self.err(nf, format!("{need:?} is listed twice"));
                }
            }
        }
        if let Some((i, j)) = find_cycle(actions, &index) {
            let names: Vec<&str> = cycle_names(actions, &index, i);
            self.err(
                format!("{field}[{i}].needs[{j}]"),
                format!("needs form a cycle: {}", names.join(" -> ")),
            );
        }
    }

    fn env(&mut self, field: &str, env: &BTreeMap<String, String>) {
        if env.len() > MAX_LIST {
            self.err(
                field,
                format!("has {} variables; at most {MAX_LIST} allowed", env.len()),
            );
        }
        for (key, value) in env {
            let ok = key
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && key.len() <= 128;
            if !ok {
                self.err(
                    format!("{field}.{key}"),
                    "variable names are letters, digits and '_', not starting with a digit",
                );
            } else if key.starts_with("CONVEYOR_") {
                self.err(
                    format!("{field}.{key}"),
                    "the CONVEYOR_ prefix is reserved for variables Conveyor sets",
                );
            }
            if value.len() > MAX_TEXT_BYTES {
                self.err(
                    format!("{field}.{key}"),
                    format!("value is longer than {MAX_TEXT_BYTES} bytes"),
                );
            }
        }
    }

    fn outputs(&mut self, field: &str, o: &Outputs) {
        for (name, list) in [
            ("artifacts", &o.artifacts),
            ("sarif", &o.sarif),
            ("junit", &o.junit),
        ] {
            self.list_len(&format!("{field}.{name}"), list, 0, MAX_LIST);
            for (i, p) in list.iter().enumerate() {
                self.relative_path(&format!("{field}.{name}[{i}]"), p);
            }
        }
        if let Some(sbom) = &o.sbom {
            self.relative_path(&format!("{field}.sbom"), sbom);
        }
        if let Some(metrics) = &o.metrics {
            self.relative_path(&format!("{field}.metrics"), metrics);
        }
    }

    fn schema_checks(&mut self, field: &str, checks: &[SchemaCheck]) {
        self.list_len(field, checks, 0, MAX_LIST);
        for (i, check) in checks.iter().enumerate() {
            self.relative_path(&format!("{field}[{i}].schema"), &check.schema);
            self.list_len(&format!("{field}[{i}].files"), &check.files, 1, MAX_LIST);
            for (j, file) in check.files.iter().enumerate() {
                self.relative_path(&format!("{field}[{i}].files[{j}]"), file);
            }
        }
    }

    fn relative_path(&mut self, field: &str, path: &str) {
        if path.is_empty() || path.len() > 1024 {
            self.err(field, "paths are 1 to 1024 bytes");
        } else if path.starts_with('/') || path.split('/').any(|part| part == "..") {
            self.err(
                field,
                format!("{path:?} must be relative to the workspace and must not contain '..'"),
            );
        }
    }

    fn approval(&mut self, field: &str, a: &Approval) {
        if a.groups.is_empty() && a.principals.is_empty() {
            self.err(field, "name at least one approver group or principal");
        }
        self.list_len(&format!("{field}.groups"), &a.groups, 0, MAX_LIST);
        self.list_len(&format!("{field}.principals"), &a.principals, 0, MAX_LIST);
        for (i, g) in a.groups.iter().enumerate() {
            self.text(&format!("{field}.groups[{i}]"), g, 256, true);
        }
        for (i, p) in a.principals.iter().enumerate() {
            self.text(&format!("{field}.principals[{i}]"), p, 256, true);
        }
        if !(1..=10).contains(&a.min_approvals) {
            self.err(format!("{field}.minApprovals"), "must be between 1 and 10");
        } else if a.groups.is_empty() && (a.min_approvals as usize) > a.principals.len() {
            self.err(
                format!("{field}.minApprovals"),
                format!(
                    "needs {} approvals but only {} principals may approve",
                    a.min_approvals,
                    a.principals.len()
                ),
            );
        }
        if let Some(t) = a.timeout {
            self.min_duration(
                &format!("{field}.timeout"),
                t.get(),
                Duration::from_secs(60),
            );
        }
    }

    /// Every threshold combination is valid; a model-quality gate needs a
    /// metric name and finite numbers.
    fn gates(&mut self, g: &Gates) {
        let Some(q) = &g.model_quality else { return };
        let field = "spec.gates.modelQuality";
        let valid_metric = !q.metric.is_empty()
            && q.metric.len() <= 64
            && q.metric
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid_metric {
            self.err(
                format!("{field}.metric"),
                "1 to 64 letters, digits, '_', '.' or '-'",
            );
        }
        if !q.max_regression.is_finite() || q.max_regression < 0.0 {
            self.err(
                format!("{field}.maxRegression"),
                "a finite number, at least 0",
            );
        }
        if q.worst_allowed.is_some_and(|m| !m.is_finite()) {
            self.err(format!("{field}.worstAllowed"), "a finite number");
        }
    }

    fn notifications(&mut self, rules: &[NotificationRule]) {
        self.list_len("spec.notifications", rules, 0, MAX_LIST);
        self.unique(
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("spec.notifications[{i}].name"), r.name.as_str())),
            "notification rule",
        );
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("spec.notifications[{i}]");
            self.name(&format!("{field}.name"), &rule.name);
            self.list_len(&format!("{field}.events"), &rule.events, 1, 16);
            let channels = [&rule.webhook, &rule.slack, &rule.email]
                .iter()
                .filter(|c| c.is_some())
                .count();
            if channels != 1 {
                self.err(&*field, "give exactly one channel: webhook, slack or email");
            }
            for (name, url) in [("webhook", &rule.webhook), ("slack", &rule.slack)] {
                if let Some(url) = url
                    && !(url.starts_with("http://") || url.starts_with("https://"))
                {
                    self.err(
                        format!("{field}.{name}"),
                        "must be an http:// or https:// URL",
                    );
                }
            }
            if let Some(email) = &rule.email
                && (email.len() > 254
                    || !email.contains('@')
                    || email.contains(char::is_whitespace))
            {
                self.err(
                    format!("{field}.email"),
                    format!("{email:?} is not an email address"),
                );
            }
        }
    }
}

fn is_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Minutes since midnight of "HH:MM".
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// An IANA time zone ("Europe/Paris"), whose offset follows daylight saving.
pub fn parse_zone(s: &str) -> Option<chrono_tz::Tz> {
    s.parse().ok()
}

/// Offset from UTC in minutes of "UTC", "Z" or "+HH:MM" / "-HH:MM".
pub fn parse_utc_offset(s: &str) -> Option<i32> {
    if s == "UTC" || s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let minutes = parse_hhmm(&s[1..])?;
    (minutes <= 14 * 60).then_some(sign * minutes as i32)
}

/// The first `needs` edge (action index, needs index) that closes a cycle.
fn find_cycle(actions: &[Action], index: &HashMap<&str, usize>) -> Option<(usize, usize)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; actions.len()];
    for root in 0..actions.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next needs index to visit).
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Active;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let needs = &actions[node].needs;
            if *next < needs.len() {
                let j = *next;
                *next += 1;
                let Some(&dep) = index.get(needs[j].as_str()) else {
                    continue;
                };
                match marks[dep] {
                    Mark::Active => return Some((node, j)),
                    Mark::New => {
                        marks[dep] = Mark::Active;
                        stack.push((dep, 0));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// The action names around the cycle through `start`, for the message.
fn cycle_names<'a>(
    actions: &'a [Action],
    index: &HashMap<&str, usize>,
    start: usize,
) -> Vec<&'a str> {
    // Follow needs edges from `start` until we come back to it (bounded by the action count).
    let mut path = vec![start];
    let mut seen = HashSet::from([start]);
    fn dfs(
        actions: &[Action],
        index: &HashMap<&str, usize>,
        start: usize,
        path: &mut Vec<usize>,
        seen: &mut HashSet<usize>,
    ) -> bool {
        let Some(&node) = path.last() else {
            return false;
        };
        for need in &actions[node].needs {
            let Some(&dep) = index.get(need.as_str()) else {
                continue;
            };
            if dep == start {
                return true;
            }
            if seen.insert(dep) {
                path.push(dep);
                if dfs(actions, index, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    dfs(actions, index, start, &mut path, &mut seen);
    path.push(start);
    path.into_iter().map(|i| actions[i].name.as_str()).collect()
}
