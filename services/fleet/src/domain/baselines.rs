//! Baselines: immutable versions of a bundle plus its apply and check
//! commands. The version's identity is the digest of its canonical tar.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{Fleet, Page, request_key, settle, text, token_id};
use crate::bundle;
use crate::error::Error;
use crate::model::{Baseline, BaselineContent, BaselineVersion};
use crate::names::{VersionRef, check_id};
use crate::store::NewVersion;

/// A command runs at most this long when the version does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone)]
pub struct NewBaselineVersion {
    pub description: String,
    pub content: BaselineContent,
    pub author: String,
    pub message: String,
}

impl Fleet {
    /// Stores the next version of `baseline` (creating it with its first),
    /// or returns the latest when the content is the same.
    pub async fn create_baseline_version(
        &self,
        baseline: &str,
        mut new: NewBaselineVersion,
        request_id: &str,
    ) -> Result<(BaselineVersion, bool), Error> {
        check_id("parent", baseline)?;
        text("description", &new.description, 4096)?;
        text("author", &new.author, 256)?;
        text("message", &new.message, 4096)?;
        let c = &mut new.content;
        for (field, command) in [
            ("content.apply_command", &c.apply_command),
            ("content.check_command", &c.check_command),
        ] {
            if command.trim().is_empty() {
                return Err(Error::invalid(field, "must not be empty"));
            }
            text(field, command, 4096)?;
        }
        if c.timeout.is_zero() {
            c.timeout = DEFAULT_TIMEOUT;
        }
        if c.timeout > MAX_TIMEOUT || c.timeout.subsec_nanos() != 0 {
            return Err(Error::invalid(
                "content.timeout",
                "whole seconds, at most 24h",
            ));
        }
        bundle::check_files(&mut c.files)?;
        let tar = bundle::pack(&c.files)?;
        let digest = bundle::digest(&tar);
        let content_key = {
            let mut h = Sha256::new();
            for part in [&digest, &c.apply_command, &c.check_command] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(c.timeout.as_secs().to_be_bytes());
            hex::encode(h.finalize())
        };
        let key = request_key(
            request_id,
            "CreateBaselineVersion",
            (baseline, &content_key, &new.author, &new.message),
        )?;
        let stored = NewVersion {
            bundle: tar,
            files: c.files.clone(),
            apply_command: c.apply_command.clone(),
            check_command: c.check_command.clone(),
            timeout_secs: c.timeout.as_secs() as i64,
            digest,
            content_key,
            author: new.author,
            message: new.message,
        };
        let outcome = self
            .store
            .create_version(baseline, &new.description, stored, key.as_ref())
            .await?;
        let (version, created) = settle(outcome, |name| async move {
            let v = VersionRef::parse("name", &name)?;
            Ok((self.store.baseline_version(&v, false).await?, false))
        })
        .await?;
        if created {
            tracing::info!(version = %version.version.name(), digest = %version.digest, "baseline version created");
        }
        Ok((version, created))
    }

    pub async fn baseline(&self, id: &str) -> Result<Baseline, Error> {
        Ok(self.store.baseline(id).await?)
    }

    pub async fn list_baselines(&self, size: u64, token: &str) -> Result<Page<Baseline>, Error> {
        let after = token_id(token)?;
        let items = self.store.list_baselines(after, size + 1).await?;
        Ok(super::page_by_id(items, size, |b| b.id.clone()))
    }

    pub async fn baseline_version(
        &self,
        v: &VersionRef,
        full: bool,
    ) -> Result<BaselineVersion, Error> {
        Ok(self.store.baseline_version(v, full).await?)
    }

    /// Versions newest first; the token is the last version number read.
    pub async fn list_baseline_versions(
        &self,
        baseline: &str,
        size: u64,
        token: &str,
        full: bool,
    ) -> Result<Page<BaselineVersion>, Error> {
        let before = if token.is_empty() {
            None
        } else {
            Some(
                token
                    .parse::<i64>()
                    .map_err(|_| Error::invalid("page_token", "not a token this list returned"))?,
            )
        };
        let mut items = self
            .store
            .list_versions(baseline, before, size + 1, full)
            .await?;
        let next_page_token = if items.len() as u64 > size {
            items.truncate(size as usize);
            items
                .last()
                .map(|v| v.version.version.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Page {
            items,
            next_page_token,
        })
    }
}
