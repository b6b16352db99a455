//! Embeds `examples/application/` in the binary, so `conveyor demo` needs
//! nothing but itself: it writes the files into a fresh git repository.

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

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let example = manifest.join("../../examples/application");
    println!("cargo:rerun-if-changed={}", example.display());
    let mut files = Vec::new();
    walk(&example, &example, &mut files);
    files.sort();
    let mut code =
        String::from("/// The files of examples/application: path, content, executable.\n");
    code.push_str("pub const FILES: &[(&str, &[u8], bool)] = &[\n");
    for (relative, path, executable) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?}), {executable}),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("demo_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
