//! Embeds the examples `conveyor demo` runs (examples/application/, …) in
//! the binary, so the demo needs nothing but itself: it writes an example's
//! files into a fresh git repository.

use std::path::{Path, PathBuf};

fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf, bool)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || matches!(name.as_str(), "target" | "dist" | "reports") {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            use std::os::unix::fs::PermissionsExt;
            let executable = entry
                .metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            files.push((
                relative.to_string_lossy().into_owned(),
                path.clone(),
                executable,
            ));
        }
    }
}

/// The examples `conveyor demo` runs, by directory under examples/.
const EXAMPLES: &[&str] = &[
    "application",
    "dynamic-configuration",
    "compute-image",
    "machine-learning",
    "account-fleet",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut code = String::from(
        "/// Each example's files: its directory under examples/, then (path, content, executable).\n",
    );
    code.push_str(
        "/// One embedded file: its path in the example, its bytes, whether it is executable.\n",
    );
    code.push_str("pub type File = (&'static str, &'static [u8], bool);\n");
    code.push_str("pub const EXAMPLES: &[(&str, &[File])] = &[\n");
    for name in EXAMPLES {
        let example = manifest.join("../../examples").join(name);
        println!("cargo:rerun-if-changed={}", example.display());
        let mut files = Vec::new();
        walk(&example, &example, &mut files);
        files.sort();
        code.push_str(&format!("    ({name:?}, &[\n"));
        for (relative, path, executable) in &files {
            println!("cargo:rerun-if-changed={}", path.display());
            code.push_str(&format!(
                "        ({relative:?}, include_bytes!({:?}), {executable}),\n",
                path.display().to_string()
            ));
        }
        code.push_str("    ]),\n");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("demo_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
