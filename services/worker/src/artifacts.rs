//! Artifacts on the worker's side: before the command runs, every input is
//! downloaded by digest into `CONVEYOR_ARTIFACTS_DIR` and checked (the
//! bytes against the digest, the signature against the trusted keys);
//! after it succeeds, every declared output is uploaded with its digest.

use std::path::{Component, Path, PathBuf};

use conveyor_api::common::v1 as common;
use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::worker_service_client::WorkerServiceClient;
use conveyor_platform::signing::{Signature, TrustedKeys};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

/// Bytes per upload message: well under the gRPC message limit.
const CHUNK_BYTES: usize = 1 << 20;

/// `name` as a path under `dir`, refusing anything that would leave it.
fn inside(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let mut path = dir.to_path_buf();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return Err(format!("artifact name {name:?} is not a relative path")),
        }
    }
    if path == dir {
        return Err(format!("artifact name {name:?} names no file"));
    }
    Ok(path)
}

/// Downloads and verifies every input of `task` into `dir`; returns a line
/// per artifact for the attempt's log.
pub async fn fetch_inputs(
    client: &mut WorkerServiceClient<Channel>,
    task: &pb::Task,
    dir: &Path,
    trusted: &TrustedKeys,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for input in &task.inputs {
        let reference = input.r#ref.clone().unwrap_or_default();
        let line = fetch(client, task, &reference, dir, trusted)
            .await
            .map_err(|why| format!("artifact {:?} refused: {why}", reference.name))?;
        lines.push(line);
    }
    Ok(lines)
}

async fn fetch(
    client: &mut WorkerServiceClient<Channel>,
    task: &pb::Task,
    reference: &common::ArtifactRef,
    dir: &Path,
    trusted: &TrustedKeys,
) -> Result<String, String> {
    let path = inside(dir, &reference.name)?;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let request = pb::DownloadArtifactRequest {
        digest: reference.digest.clone(),
        action_run: task.action_run.clone(),
        attempt: task.attempt,
    };
    let mut stream = client
        .download_artifact(request)
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let (mut hash, mut size, mut signature) = (Sha256::new(), 0u64, None);
    while let Some(message) = stream.message().await.map_err(|s| s.message().to_owned())? {
        match message.part {
            Some(pb::download_artifact_response::Part::Artifact(a)) => {
                let stored = a.r#ref.unwrap_or_default();
                if stored.digest != reference.digest {
                    return Err(format!("the service sent {} instead", stored.digest));
                }
                signature = a.signature;
            }
            Some(pb::download_artifact_response::Part::Chunk(bytes)) => {
                hash.update(&bytes);
                size += bytes.len() as u64;
                file.write_all(&bytes)
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            None => {}
        }
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let actual = format!("sha256:{}", hex::encode(hash.finalize()));
    if actual != reference.digest {
        return Err(format!(
            "digest mismatch: expected {}, downloaded {actual}",
            reference.digest
        ));
    }
    let signature = signature.unwrap_or_default();
    let checked = if trusted.is_empty() {
        "signature checked by the execution service"
    } else {
        trusted
            .verify(
                &actual,
                &Signature {
                    algorithm: signature.algorithm.clone(),
                    key_id: signature.key_id.clone(),
                    value: signature.value,
                },
            )
            .map_err(|e| format!("signature: {e}"))?;
        "signature verified"
    };
    Ok(format!(
        "artifact {} {actual} ({size} bytes): digest verified, {checked} ({})",
        reference.name, signature.key_id
    ))
}

/// Uploads every declared output of `task` from `workspace`.
pub async fn store_outputs(
    client: &mut WorkerServiceClient<Channel>,
    task: &pb::Task,
    worker: &str,
    workspace: &Path,
) -> Result<Vec<common::ArtifactRef>, String> {
    let mut stored = Vec::new();
    for output in &task.outputs {
        let path = inside(workspace, &output.path)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => {}
            Ok(_) => {
                return Err(format!(
                    "declared output {:?} is not a file; package a directory into one (e.g. tar)",
                    output.path
                ));
            }
            Err(_) if !output.required => continue,
            Err(e) => {
                return Err(format!(
                    "declared output {:?} was not written: {e}",
                    output.path
                ));
            }
        }
        let (digest, size) = hash_file(&path)
            .await
            .map_err(|e| format!("cannot read output {:?}: {e}", output.path))?;
        let metadata = pb::ArtifactUpload {
            action_run: task.action_run.clone(),
            attempt: task.attempt,
            worker: worker.to_owned(),
            name: output.name.clone(),
            kind: output.kind,
            digest,
            size_bytes: size as i64,
            ..Default::default()
        };
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| format!("cannot read output {:?}: {e}", output.path))?;
        let artifact = client
            .upload_artifact(upload_stream(metadata, file))
            .await
            .map_err(|s| format!("upload of {:?} refused: {}", output.path, s.message()))?
            .into_inner();
        stored.extend(artifact.r#ref);
    }
    Ok(stored)
}

async fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let (mut hash, mut size) = (Sha256::new(), 0u64);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hash.finalize())), size))
}

/// The metadata message, then the file in chunks. A read error ends the
/// stream early; the service then sees too few bytes and refuses it.
fn upload_stream(
    metadata: pb::ArtifactUpload,
    file: tokio::fs::File,
) -> impl futures::Stream<Item = pb::UploadArtifactRequest> + Send + 'static {
    let first = pb::UploadArtifactRequest {
        part: Some(pb::upload_artifact_request::Part::Metadata(metadata)),
    };
    let chunks = futures::stream::unfold(file, |mut file| async move {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        match file.read(&mut buffer).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buffer.truncate(n);
                let message = pb::UploadArtifactRequest {
                    part: Some(pb::upload_artifact_request::Part::Chunk(buffer)),
                };
                Some((message, file))
            }
        }
    });
    futures::StreamExt::chain(futures::stream::once(async { first }), chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_stay_inside_their_directory() {
        let dir = Path::new("/work/a");
        assert_eq!(
            inside(dir, "dist/app.tar.gz").expect("relative"),
            Path::new("/work/a/dist/app.tar.gz")
        );
        assert_eq!(
            inside(dir, "./dist/app.tar.gz").expect("dot is fine"),
            Path::new("/work/a/dist/app.tar.gz")
        );
        for bad in ["", ".", "/etc/passwd", "../x", "dist/../../x"] {
            assert!(inside(dir, bad).is_err(), "{bad:?} must be refused");
        }
    }
}
