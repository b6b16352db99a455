//! A view of a document that conformance rules ask questions of.

use crate::spec::{Action, ActionKind, Document, Environment, Stage, Tier};

/// Where in the pipeline an action or stage sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Stages before the first stage that names an environment.
    Build,
    /// Stages deploying to an environment of this tier.
    Tier(Tier),
    /// Stages deploying to a beta or gamma environment.
    PreProduction,
}

pub struct Context<'a> {
    pub doc: &'a Document,
}

impl<'a> Context<'a> {
    pub fn new(doc: &'a Document) -> Self {
        Context { doc }
    }

    pub fn environment(&self, stage: &Stage) -> Option<&'a Environment> {
        let name = stage.environment.as_deref()?;
        self.doc.spec.environments.iter().find(|e| e.name == name)
    }

    pub fn tier(&self, stage: &Stage) -> Option<Tier> {
        self.environment(stage).map(|e| e.tier)
    }

    /// Index of the first stage that names an environment.
    pub fn first_environment_stage(&self) -> usize {
        self.doc
            .spec
            .stages
            .iter()
            .position(|s| s.environment.is_some())
            .unwrap_or(self.doc.spec.stages.len())
    }

    /// Stages in `scope`, with their index.
    pub fn stages(&self, scope: Scope) -> Vec<(usize, &'a Stage)> {
        let first_env = self.first_environment_stage();
        self.doc
            .spec
            .stages
            .iter()
            .enumerate()
            .filter(|(i, s)| match scope {
                Scope::Build => *i < first_env,
                Scope::Tier(t) => self.tier(s) == Some(t),
                Scope::PreProduction => matches!(self.tier(s), Some(Tier::Beta | Tier::Gamma)),
            })
            .collect()
    }

    /// Actions of `kind` in `scope`, with their field path.
    pub fn actions(&self, scope: Scope, kind: ActionKind) -> Vec<(String, &'a Action)> {
        self.stages(scope)
            .into_iter()
            .flat_map(|(i, s)| {
                s.actions
                    .iter()
                    .enumerate()
                    .filter(move |(_, a)| a.kind == kind)
                    .map(move |(j, a)| (format!("spec.stages[{i}].actions[{j}]"), a))
            })
            .collect()
    }

    /// The field path to point at when something is missing from `scope`.
    pub fn scope_field(&self, scope: Scope) -> String {
        match self.stages(scope).first() {
            Some((i, _)) => format!("spec.stages[{i}].actions"),
            None => "spec.stages".to_owned(),
        }
    }

    /// The production stages.
    pub fn production(&self) -> Vec<(usize, &'a Stage)> {
        self.stages(Scope::Tier(Tier::Production))
    }
}

pub fn scope_name(scope: Scope) -> String {
    match scope {
        Scope::Build => "the build stage".to_owned(),
        Scope::Tier(t) => format!("a {} stage", t.as_str()),
        Scope::PreProduction => "a beta or gamma stage".to_owned(),
    }
}
