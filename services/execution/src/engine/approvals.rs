//! Human approvals of a stage waiting before production.

use chrono::{DateTime, Utc};

use super::*;

pub(super) fn approvals_given(stage: &StageRun) -> u32 {
    let mut approvers: Vec<&str> = stage
        .approvals
        .iter()
        .filter(|a| a.approved)
        .map(|a| a.principal.as_str())
        .collect();
    approvers.sort_unstable();
    approvers.dedup();
    approvers.len() as u32
}

/// Why an approval or rejection was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalError {
    UnknownStage,
    NotWaiting,
    NotAnApprover,
    AuthorMayNotApprove,
}

/// Records `principal`'s decision on the stage waiting for approval; an
/// approval that completes the count starts the stage with the artifacts
/// of this same execution, a rejection fails it.
pub fn decide(
    s: &mut Snapshot,
    stage_name: &str,
    principal: &str,
    groups: &[String],
    approve: bool,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<(), ApprovalError> {
    let author = s.execution.author.clone();
    let stage_pos = s
        .stages
        .iter()
        .position(|st| st.name == stage_name)
        .ok_or(ApprovalError::UnknownStage)?;
    let stage = &mut s.stages[stage_pos];
    if stage.state != StageState::WaitingApproval {
        return Err(ApprovalError::NotWaiting);
    }
    let policy = stage.approval.clone().ok_or(ApprovalError::NotWaiting)?;
    let allowed = policy.principals.iter().any(|p| p == principal)
        || policy.groups.iter().any(|g| groups.contains(g));
    if !allowed {
        return Err(ApprovalError::NotAnApprover);
    }
    if approve && !policy.allow_author && !author.is_empty() && principal == author {
        return Err(ApprovalError::AuthorMayNotApprove);
    }
    stage.approvals.push(ApprovalRecord {
        principal: principal.to_owned(),
        groups: groups.to_vec(),
        approved: approve,
        comment: comment.to_owned(),
        time: now,
    });
    stage.dirty = true;
    let index = stage.index;
    s.transitions
        .push(Transition::ApprovalRecorded { stage: index });
    if approve {
        if approvals_given(&s.stages[stage_pos]) >= policy.min_approvals {
            s.stages[stage_pos].state = StageState::Pending;
            advance(s, now);
        }
    } else {
        let why = if comment.is_empty() {
            format!("rejected by {principal}")
        } else {
            format!("rejected by {principal}: {comment}")
        };
        fail(s, stage_pos, why, now);
    }
    Ok(())
}
