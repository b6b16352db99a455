//! Change freezes on OU subtrees and their break-glass overrides.

use chrono::{DateTime, Utc};

use super::{Fleet, Page, request_key, settle, text};
use crate::error::Error;
use crate::model::{FreezeWindow, Override, Principal};
use crate::names::{self, check_id, freeze_window};
use crate::store::Outcome;

#[derive(Debug, Clone)]
pub struct NewFreeze {
    pub ou: String,
    /// Generated when empty.
    pub id: String,
    pub reason: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub principal: Principal,
}

/// A break-glass request.
#[derive(Debug, Clone)]
pub struct Grant {
    pub reason: String,
    pub principal: Principal,
    pub pipeline: String,
    pub rollout: String,
    pub expire_time: Option<DateTime<Utc>>,
}

impl Fleet {
    pub async fn create_freeze(
        &self,
        mut new: NewFreeze,
        request_id: &str,
    ) -> Result<FreezeWindow, Error> {
        // The key is taken before an id is generated, so a retry matches.
        let key = request_key(request_id, "CreateFreezeWindow", &new)?;
        if new.id.is_empty() {
            new.id = names::generate_id("freeze");
        } else {
            check_id("freeze_window_id", &new.id)?;
        }
        if new.reason.trim().is_empty() {
            return Err(Error::invalid(
                "freeze_window.reason",
                "say why changes are frozen",
            ));
        }
        text("freeze_window.reason", &new.reason, 1024)?;
        if new.end_time <= new.start_time {
            return Err(Error::invalid(
                "freeze_window.end_time",
                "must be after start_time",
            ));
        }
        if new.end_time <= self.now() {
            return Err(Error::invalid(
                "freeze_window.end_time",
                "must be in the future",
            ));
        }
        let window = FreezeWindow {
            ou: new.ou.clone(),
            id: new.id,
            reason: new.reason,
            start_time: new.start_time,
            end_time: new.end_time,
            created_by: new.principal,
            overrides: Vec::new(),
            etag: String::new(),
            create_time: self.now(),
        };
        let outcome = self
            .store
            .insert_freeze(window, key.as_ref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) if name == names::ou_name(&new.ou) => {
                    Error::invalid("parent", format!("{name} does not exist"))
                }
                e => e,
            })?;
        let window = settle(
            outcome,
            |name| async move { self.freeze_by_name(&name).await },
        )
        .await?;
        tracing::info!(ou = %window.ou, window = %window.id, start = %window.start_time, end = %window.end_time, "freeze window created");
        Ok(window)
    }

    async fn freeze_by_name(&self, name: &str) -> Result<FreezeWindow, Error> {
        let (ou, id) = freeze_window("name", name)?;
        Ok(self.store.freeze(ou, id).await?)
    }

    /// Windows on `ou` (every OU with `None`), with its ancestors' when
    /// `inherited`, current and future ones unless `ended`. By start time;
    /// the token is the last window's `{start millis}.{id}`.
    pub async fn list_freezes(
        &self,
        ou: Option<&str>,
        inherited: bool,
        ended: bool,
        size: u64,
        token: &str,
    ) -> Result<Page<FreezeWindow>, Error> {
        let ous = match ou {
            None => None,
            Some(id) => {
                let found = self.store.ou(id).await.map_err(|e| match Error::from(e) {
                    Error::NotFound(name) => {
                        Error::invalid("parent", format!("{name} does not exist"))
                    }
                    e => e,
                })?;
                Some(if inherited {
                    crate::model::path_ids(&found.path)
                } else {
                    vec![found.id]
                })
            }
        };
        let after = parse_token(token)?;
        let windows = self
            .store
            .freezes(ous.as_deref(), (!ended).then(|| self.now()))
            .await?;
        let mut items: Vec<FreezeWindow> = windows
            .into_iter()
            .filter(|w| {
                after
                    .as_ref()
                    .is_none_or(|(t, id)| (w.start_time.timestamp_millis(), &w.id) > (*t, id))
            })
            .take(size as usize + 1)
            .collect();
        let next_page_token = if items.len() as u64 > size {
            items.truncate(size as usize);
            items
                .last()
                .map(|w| format!("{}.{}", w.start_time.timestamp_millis(), w.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }

    pub async fn delete_freeze(&self, name: &str, etag: &str) -> Result<(), Error> {
        let (ou, id) = freeze_window("name", name)?;
        let etag = (!etag.is_empty()).then_some(etag);
        self.store.delete_freeze(ou, id, etag).await?;
        tracing::info!(ou, window = id, "freeze window deleted");
        Ok(())
    }

    /// Break-glass: records who lets what through the window and why.
    pub async fn override_freeze(
        &self,
        name: &str,
        grant: Grant,
        request_id: &str,
    ) -> Result<FreezeWindow, Error> {
        let (ou, id) = freeze_window("name", name)?;
        if grant.reason.trim().is_empty() {
            return Err(Error::invalid(
                "reason",
                "a break-glass override needs a reason",
            ));
        }
        text("reason", &grant.reason, 1024)?;
        if grant.principal.id.is_empty() {
            return Err(Error::invalid("principal.id", "say who breaks the freeze"));
        }
        names::check_pipeline("pipeline", &grant.pipeline)?;
        if !grant.rollout.is_empty() {
            names::rollout_id("rollout", &grant.rollout)?;
        }
        let key = request_key(request_id, "OverrideFreezeWindow", (name, &grant))?;
        let window = self.store.freeze(ou, id).await?;
        let now = self.now();
        let expire_time = grant
            .expire_time
            .unwrap_or(window.end_time)
            .min(window.end_time);
        if expire_time <= now {
            return Err(Error::invalid(
                "expire_time",
                "the override would never apply: it expires in the past or the window has ended",
            ));
        }
        let entry = Override {
            principal: grant.principal,
            reason: grant.reason,
            pipeline: grant.pipeline,
            rollout: grant.rollout,
            create_time: now,
            expire_time,
        };
        let outcome = self
            .store
            .add_override(ou, id, entry.clone(), key.as_ref())
            .await?;
        let window = match outcome {
            Outcome::Done(window) => {
                if let Some(queue) = &self.events {
                    conveyor_platform::events::publish(
                        queue,
                        crate::events::freeze_overridden(&window, &entry),
                    )
                    .await;
                }
                window
            }
            // A retry: the event went out with the first call.
            Outcome::Replayed(name) => return self.freeze_by_name(&name).await,
        };
        tracing::warn!(
            window = %name,
            principal = %entry.principal.id,
            reason = %entry.reason,
            pipeline = %entry.pipeline,
            rollout = %entry.rollout,
            "freeze window overridden (break-glass)"
        );
        Ok(window)
    }
}

fn parse_token(token: &str) -> Result<Option<(i64, String)>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("page_token", "not a token this list returned");
    let (millis, id) = token.split_once('.').ok_or_else(bad)?;
    Ok(Some((millis.parse().map_err(|_| bad())?, id.to_owned())))
}
