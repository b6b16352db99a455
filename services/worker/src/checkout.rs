//! Source checkouts with a cache. Each repository is cloned once per worker
//! into a mirror (`git clone --mirror`; a local path is cloned like a URL),
//! fetched again only when a commit is missing, and every attempt gets a
//! fresh `git worktree` of the mirror at its commit: one short git process
//! per attempt instead of a full clone. Git commands on one mirror run one
//! at a time (git reads every worktree's metadata, and one being created
//! makes a concurrent add or fetch fail). Every git command has a deadline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;

/// How long a clone or fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// How long adding a worktree may take.
const WORKTREE_TIMEOUT: Duration = Duration::from_secs(120);
/// Stale worktree entries are pruned from a mirror every this many checkouts.
const PRUNE_EVERY: u64 = 64;

#[derive(Default)]
struct Mirror {
    /// Held while git works on the mirror.
    busy: Arc<tokio::sync::Mutex<()>>,
    checkouts: u64,
}

/// The mirrors of one worker, under `root`.
pub struct Checkouts {
    root: PathBuf,
    mirrors: Mutex<HashMap<String, Mirror>>,
}

impl Checkouts {
    pub fn new(root: PathBuf) -> Self {
        Checkouts {
            root,
            mirrors: Mutex::new(HashMap::new()),
        }
    }

    /// Makes `workspace` a checkout of `repository` at `commit` (the
    /// default branch's head when empty); no repository gives an empty
    /// workspace.
    pub async fn checkout(
        &self,
        repository: &str,
        commit: &str,
        workspace: &Path,
    ) -> Result<(), String> {
        if repository.is_empty() {
            return tokio::fs::create_dir_all(workspace)
                .await
                .map_err(|e| e.to_string());
        }
        let key = hex::encode(&Sha256::digest(repository.as_bytes())[..12]);
        let mirror = self.root.join(&key);
        let (busy, prune) = {
            let mut mirrors = self.mirrors.lock().unwrap_or_else(|e| e.into_inner());
            let m = mirrors.entry(key).or_default();
            m.checkouts += 1;
            (m.busy.clone(), m.checkouts.is_multiple_of(PRUNE_EVERY))
        };
        let _busy = busy.lock().await;
        if !mirror.join("HEAD").exists() {
            let _ = tokio::fs::remove_dir_all(&mirror).await;
            let target = mirror.to_string_lossy();
            git(
                &["clone", "--quiet", "--mirror", "--", repository, &target],
                None,
                FETCH_TIMEOUT,
            )
            .await?;
        }
        if prune {
            git(&["worktree", "prune"], Some(&mirror), WORKTREE_TIMEOUT).await?;
        }
        let revision = if commit.is_empty() { "HEAD" } else { commit };
        let target = workspace.to_string_lossy().into_owned();
        let add = [
            "worktree", "add", "--quiet", "--detach", "--", &target, revision,
        ];
        if git(&add, Some(&mirror), WORKTREE_TIMEOUT).await.is_ok() {
            return Ok(());
        }
        // Most likely a commit pushed after the mirror was made: fetch, retry.
        git(
            &["fetch", "--quiet", "--prune", "origin"],
            Some(&mirror),
            FETCH_TIMEOUT,
        )
        .await?;
        let _ = tokio::fs::remove_dir_all(workspace).await;
        git(&add, Some(&mirror), WORKTREE_TIMEOUT)
            .await
            .map_err(|e| format!("commit {revision} of {repository}: {e}"))
    }
}

/// Runs git with a deadline; on timeout the process is killed.
async fn git(args: &[&str], dir: Option<&Path>, timeout: Duration) -> Result<(), String> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .stdin(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let what = args.first().copied().unwrap_or_default();
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| format!("git {what} took over {}s", timeout.as_secs()))?
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "git {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) -> String {
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir)
            .output()
            .expect("sh");
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    const COMMIT: &str = "git -c user.name=t -c user.email=t@example.com commit -q -am";

    #[tokio::test]
    async fn checkouts_come_from_a_mirror_that_fetches_new_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        sh(&repo, "git init -q -b main && echo one > f && git add f");
        sh(&repo, &format!("{COMMIT} one"));
        let first = sh(&repo, "git rev-parse HEAD");
        let checkouts = Checkouts::new(dir.path().join("cache"));
        let repository = repo.to_string_lossy();

        let a = dir.path().join("a");
        checkouts
            .checkout(&repository, &first, &a)
            .await
            .expect("first");
        assert_eq!(std::fs::read_to_string(a.join("f")).expect("f"), "one\n");
        assert_eq!(sh(&a, "git rev-parse HEAD"), first, "a git checkout");

        // A commit made after the mirror: fetched on demand.
        sh(&repo, &format!("echo two > f && {COMMIT} two"));
        let second = sh(&repo, "git rev-parse HEAD");
        let b = dir.path().join("b");
        checkouts
            .checkout(&repository, &second, &b)
            .await
            .expect("second");
        assert_eq!(std::fs::read_to_string(b.join("f")).expect("f"), "two\n");
        // Each workspace is its own: writing one leaves the other alone.
        std::fs::write(b.join("f"), "changed\n").expect("write");
        assert_eq!(std::fs::read_to_string(a.join("f")).expect("f"), "one\n");

        let missing = checkouts
            .checkout(&repository, &"0".repeat(40), &dir.path().join("c"))
            .await
            .expect_err("no such commit");
        assert!(missing.contains("0000000"), "{missing}");
        let nowhere = checkouts
            .checkout("/no/such/repository", "", &dir.path().join("d"))
            .await
            .expect_err("no such repository");
        assert!(nowhere.contains("git clone failed"), "{nowhere}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checkouts_of_one_repository_all_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).expect("mkdir");
        sh(&repo, "git init -q -b main && echo one > f && git add f");
        sh(&repo, &format!("{COMMIT} one"));
        let commit = sh(&repo, "git rev-parse HEAD");
        let checkouts = Arc::new(Checkouts::new(dir.path().join("cache")));
        let mut tasks = Vec::new();
        for i in 0..PRUNE_EVERY + 8 {
            let (checkouts, commit) = (checkouts.clone(), commit.clone());
            let (repository, workspace) = (repo.clone(), dir.path().join(format!("w{i}")));
            tasks.push(tokio::spawn(async move {
                let done = checkouts
                    .checkout(&repository.to_string_lossy(), &commit, &workspace)
                    .await;
                // Half of them are removed at once, as finished attempts are.
                if i % 2 == 0 {
                    let _ = tokio::fs::remove_dir_all(&workspace).await;
                }
                done
            }));
        }
        for task in tasks {
            task.await.expect("task").expect("every checkout succeeds");
        }
    }
}
