//! A baseline's files as one canonical tar: sorted paths, fixed modes,
//! owners and times, so the same files always give the same bytes and the
//! same digest (the artifact identity a rollout deploys).

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::model::BaselineFile;

/// The most a bundle may hold, in bytes of file content.
pub const MAX_BUNDLE_BYTES: u64 = 4 << 20;
/// The most files a bundle may hold.
pub const MAX_FILES: usize = 1000;

/// Checks the files of a new version (field paths under `content.files`)
/// and sorts them by path.
pub fn check_files(files: &mut [BaselineFile]) -> Result<(), Error> {
    if files.is_empty() {
        return Err(Error::invalid("content.files", "give at least one file"));
    }
    if files.len() > MAX_FILES {
        return Err(Error::invalid(
            "content.files",
            format!("at most {MAX_FILES} files"),
        ));
    }
    let mut total = 0u64;
    for (i, f) in files.iter_mut().enumerate() {
        f.size = f.content.len() as u64;
        if let Err(why) = check_path(&f.path) {
            return Err(Error::invalid(
                format!("content.files[{i}].path"),
                format!("{:?} {why}", f.path),
            ));
        }
        total += f.content.len() as u64;
    }
    if total > MAX_BUNDLE_BYTES {
        return Err(Error::invalid(
            "content.files",
            format!("{total} bytes of content; at most {MAX_BUNDLE_BYTES}"),
        ));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = files.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(Error::invalid(
            "content.files",
            format!("{:?} is given twice", w[0].path),
        ));
    }
    // A file may not also be a directory of another ("a" and "a/b").
    let paths: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    for f in files.iter() {
        let mut dir = f.path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if paths.contains(parent) {
                return Err(Error::invalid(
                    "content.files",
                    format!("{parent:?} is a file and a directory"),
                ));
            }
            dir = parent;
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > 255 {
        return Err("must have 1 to 255 characters");
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err("must be relative, without a trailing '/'");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err("must not contain empty, '.' or '..' parts");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("must not contain control characters or '\\'");
    }
    Ok(())
}

/// The canonical tar of sorted, checked files.
pub fn pack(files: &[BaselineFile]) -> Result<Vec<u8>, Error> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for f in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(f.content.len() as u64);
        header.set_mode(if f.executable { 0o755 } else { 0o644 });
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &f.path, f.content.as_slice())
            .map_err(|e| Error::invalid("content.files", format!("{:?}: {e}", f.path)))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::Internal(Box::new(e)))
}

/// The files of a canonical tar, in order.
pub fn unpack(bytes: &[u8]) -> std::io::Result<Vec<BaselineFile>> {
    let mut archive = tar::Archive::new(bytes);
    let mut files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let executable = entry.header().mode()? & 0o111 != 0;
        let mut content = Vec::with_capacity(entry.size() as usize);
        std::io::Read::read_to_end(&mut entry, &mut content)?;
        files.push(BaselineFile {
            path,
            size: content.len() as u64,
            content,
            executable,
        });
    }
    Ok(files)
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str, executable: bool) -> BaselineFile {
        BaselineFile {
            path: path.to_owned(),
            content: content.as_bytes().to_vec(),
            size: content.len() as u64,
            executable,
        }
    }

    #[test]
    fn same_files_same_bytes_whatever_the_order() {
        let mut a = vec![file("b.sh", "echo b", true), file("a/x.json", "{}", false)];
        let mut b = vec![file("a/x.json", "{}", false), file("b.sh", "echo b", true)];
        check_files(&mut a).unwrap();
        check_files(&mut b).unwrap();
        let (pa, pb) = (pack(&a).unwrap(), pack(&b).unwrap());
        assert_eq!(pa, pb);
        assert_eq!(unpack(&pa).unwrap(), a);
        let mut changed = b.clone();
        changed[1].executable = false;
        assert_ne!(digest(&pack(&changed).unwrap()), digest(&pa));
    }

    #[test]
    fn bad_paths_name_the_file() {
        for (path, want) in [
            ("/etc/passwd", "relative"),
            ("a/../b", "'..'"),
            ("a//b", "empty"),
            ("", "1 to 255"),
        ] {
            let mut files = vec![file("ok", "", false), file(path, "", false)];
            let err = check_files(&mut files).unwrap_err().to_string();
            assert!(err.starts_with("content.files[1].path: "), "{err}");
            assert!(err.contains(want), "{path}: {err}");
        }
        let mut twice = vec![file("a", "", false), file("a", "x", false)];
        assert!(
            check_files(&mut twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let mut nested = vec![
            file("a", "", false),
            file("a.txt", "", false),
            file("a/b", "x", false),
        ];
        assert!(
            check_files(&mut nested)
                .unwrap_err()
                .to_string()
                .contains("directory")
        );
        assert!(check_files(&mut []).is_err());
    }
}
