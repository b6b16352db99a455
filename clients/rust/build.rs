//! Compiles every contract under `proto/conveyor` with protox (no system
//! protoc) and tonic-prost-build, and writes the encoded descriptor set for
//! gRPC reflection.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    collect_protos(&proto_root.join("conveyor"), &mut files)?;
    files.sort();
    println!(
        "cargo:rerun-if-changed={}",
        proto_root.join("conveyor").display()
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let fds = protox::Compiler::new([&proto_root])?
        .include_imports(true)
        .include_source_info(true)
        .open_files(&files)?
        .file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("conveyor_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .include_file("protos.rs")
        .compile_fds(fds)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
