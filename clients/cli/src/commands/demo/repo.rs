//! The demo's source repositories: an example under `examples/`, embedded
//! in the binary, written into a fresh git repository with one commit.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// The embedded files of `example` (its directory under examples/).
fn files(example: &str) -> anyhow::Result<&'static [File]> {
    EXAMPLES
        .iter()
        .find(|(name, _)| *name == example)
        .map(|(_, files)| *files)
        .with_context(|| format!("no embedded example {example:?}"))
}

/// The example's pipeline definition.
pub fn pipeline_yaml(example: &str) -> anyhow::Result<&'static [u8]> {
    file(example, "pipeline.yaml")
}

/// The embedded file `path` of `example`.
pub fn file(example: &str, path: &str) -> anyhow::Result<&'static [u8]> {
    files(example)?
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, content, _)| *content)
        .with_context(|| format!("the embedded example {example:?} has no {path}"))
}

fn git(repo: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Demo Developer",
            "-c",
            "user.email=dev@demo.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes `path` (relative to the repository) with `content`.
pub fn write(repo: &Path, path: &str, content: &[u8], executable: bool) -> anyhow::Result<()> {
    let file = repo.join(path);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&file, content).with_context(|| format!("cannot write {}", file.display()))?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Replaces `from` (which must be there) with `to` in the repository's `path`.
pub fn replace(repo: &Path, path: &str, from: &str, to: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(repo.join(path)).with_context(|| format!("cannot read {path}"))?;
    anyhow::ensure!(text.contains(from), "{path} has no {from:?}");
    write(repo, path, text.replace(from, to).as_bytes(), false)
}

/// Creates the repository at `repo` from the embedded `example`; returns
/// the commit.
pub fn create(repo: &Path, example: &str, message: &str) -> anyhow::Result<String> {
    std::fs::create_dir_all(repo)?;
    for (path, content, executable) in files(example)? {
        write(repo, path, content, *executable)?;
    }
    git(repo, &["init", "--quiet", "--initial-branch=main"])?;
    commit(repo, message)
}

/// Commits everything in the work tree; returns the commit.
pub fn commit(repo: &Path, message: &str) -> anyhow::Result<String> {
    git(repo, &["add", "--all"])?;
    git(repo, &["commit", "--quiet", "-m", message])?;
    git(repo, &["rev-parse", "HEAD"])
}
