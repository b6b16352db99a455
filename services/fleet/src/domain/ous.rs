//! The OU tree: create, read with inherited baseline and counts, rename,
//! move, delete, and baseline assignment.

use super::{Fleet, Page, Tree, page_by_id, request_key, settle, text, token_id};
use crate::error::Error;
use crate::model::{Ou, OuView, Strategy};
use crate::names::{self, ROOT_OU, VersionRef, check_id, ou_id};

impl Fleet {
    pub async fn create_ou(
        &self,
        parent: &str,
        id: &str,
        display_name: &str,
        request_id: &str,
    ) -> Result<OuView, Error> {
        check_id("organizational_unit_id", id)?;
        text("organizational_unit.display_name", display_name, 256)?;
        let key = request_key(
            request_id,
            "CreateOrganizationalUnit",
            (parent, id, display_name),
        )?;
        let display_name = if display_name.is_empty() {
            id
        } else {
            display_name
        };
        let outcome = self
            .store
            .create_ou(parent, id, display_name, key.as_ref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) if name == names::ou_name(parent) => {
                    Error::invalid("parent", format!("{name} does not exist"))
                }
                e => e,
            })?;
        let ou = settle(outcome, |name| async move {
            self.ou_by_name(&name).await.map(|v| v.ou)
        })
        .await?;
        self.ou_view(ou).await
    }

    async fn ou_by_name(&self, name: &str) -> Result<OuView, Error> {
        self.ou(ou_id("name", name)?).await
    }

    pub async fn ou(&self, id: &str) -> Result<OuView, Error> {
        let ou = self.store.ou(id).await?;
        self.ou_view(ou).await
    }

    async fn ou_view(&self, ou: Ou) -> Result<OuView, Error> {
        let tree = self.tree().await?;
        let mut views = self.ou_views(&tree, vec![ou]).await?;
        views
            .pop()
            .ok_or_else(|| Error::Internal("an OU view went missing".into()))
    }

    async fn ou_views(&self, tree: &Tree, ous: Vec<Ou>) -> Result<Vec<OuView>, Error> {
        let ids: Vec<String> = ous.iter().map(|o| o.id.clone()).collect();
        let counts = self.store.ou_counts(&ids).await?;
        Ok(ous
            .into_iter()
            .map(|ou| {
                let (child_count, account_count) = counts.get(&ou.id).copied().unwrap_or_default();
                OuView {
                    effective: tree.effective(&ou),
                    child_count,
                    account_count,
                    ou,
                }
            })
            .collect())
    }

    pub async fn list_ous(
        &self,
        parent: &str,
        recursive: bool,
        size: u64,
        token: &str,
    ) -> Result<Page<OuView>, Error> {
        let after = token_id(token)?;
        let parent = self
            .store
            .ou(parent)
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) => Error::invalid("parent", format!("{name} does not exist")),
                e => e,
            })?;
        let ous = self
            .store
            .list_ous(&parent, recursive, after, size + 1)
            .await?;
        let page = page_by_id(ous, size, |o| o.id.clone());
        let tree = self.tree().await?;
        Ok(Page {
            items: self.ou_views(&tree, page.items).await?,
            next_page_token: page.next_page_token,
        })
    }

    pub async fn rename_ou(
        &self,
        id: &str,
        display_name: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<OuView, Error> {
        text("organizational_unit.display_name", display_name, 256)?;
        if display_name.is_empty() {
            return Err(Error::invalid(
                "organizational_unit.display_name",
                "must not be empty",
            ));
        }
        if id == ROOT_OU {
            return Err(Error::invalid(
                "organizational_unit.name",
                "the root OU cannot be renamed",
            ));
        }
        let key = request_key(request_id, "UpdateOrganizationalUnit", (id, display_name))?;
        let etag = (!etag.is_empty()).then_some(etag);
        let outcome = self
            .store
            .rename_ou(id, display_name, etag, key.as_ref())
            .await?;
        let ou = settle(outcome, |name| async move {
            self.ou_by_name(&name).await.map(|v| v.ou)
        })
        .await?;
        self.ou_view(ou).await
    }

    pub async fn move_ou(
        &self,
        id: &str,
        destination: &str,
        etag: &str,
        request_id: &str,
    ) -> Result<OuView, Error> {
        let key = request_key(request_id, "MoveOrganizationalUnit", (id, destination))?;
        let etag = (!etag.is_empty()).then_some(etag);
        let outcome = self
            .store
            .move_ou(id, destination, etag, key.as_ref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) if name == names::ou_name(destination) => {
                    Error::invalid("destination", format!("{name} does not exist"))
                }
                e => e,
            })?;
        let ou = settle(outcome, |name| async move {
            self.ou_by_name(&name).await.map(|v| v.ou)
        })
        .await?;
        tracing::info!(ou = %ou.id, path = %ou.path, "organizational unit moved");
        self.ou_view(ou).await
    }

    pub async fn delete_ou(&self, id: &str, etag: &str) -> Result<(), Error> {
        let etag = (!etag.is_empty()).then_some(etag);
        self.store.delete_ou(id, etag).await?;
        Ok(())
    }

    /// Assigns `version` to an OU, or removes the assignment with `None`.
    pub async fn assign_baseline(
        &self,
        id: &str,
        version: Option<VersionRef>,
        etag: &str,
        request_id: &str,
    ) -> Result<OuView, Error> {
        self.assign_baseline_with(id, version, None, etag, request_id)
            .await
    }

    /// As [`Self::assign_baseline`]; with `auto_rollout` the OU follows the
    /// baseline: each newer version is rolled out with that strategy and
    /// then assigned here (see `follow_baselines`).
    pub async fn assign_baseline_with(
        &self,
        id: &str,
        version: Option<VersionRef>,
        auto_rollout: Option<Strategy>,
        etag: &str,
        request_id: &str,
    ) -> Result<OuView, Error> {
        let key = match &auto_rollout {
            None => request_key(request_id, "AssignBaseline", (id, &version))?,
            Some(strategy) => {
                if version.is_none() {
                    return Err(Error::invalid(
                        "baseline_version",
                        "required with auto_rollout: an OU follows the baseline of its assigned version",
                    ));
                }
                super::planning::check_strategy("auto_rollout", strategy)?;
                request_key(request_id, "AssignBaseline", (id, &version, strategy))?
            }
        };
        let etag = (!etag.is_empty()).then_some(etag);
        let wanted = version.as_ref().map(VersionRef::name);
        let outcome = self
            .store
            .assign_baseline(id, version, auto_rollout, etag, key.as_ref())
            .await
            .map_err(|e| match Error::from(e) {
                Error::NotFound(name) if Some(&name) == wanted.as_ref() => {
                    Error::invalid("baseline_version", format!("{name} does not exist"))
                }
                e => e,
            })?;
        let ou = settle(outcome, |name| async move {
            self.ou_by_name(&name).await.map(|v| v.ou)
        })
        .await?;
        self.ou_view(ou).await
    }
}
