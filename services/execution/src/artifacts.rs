//! Build once, deploy by digest. Actions upload their declared outputs
//! through the execution service, which stores the bytes under their SHA-256
//! in the artifact store (object_store: a local directory, or S3-compatible
//! storage), checks them against the digest the worker declared, signs the
//! digest with the control plane's ed25519 key, and indexes them. Every
//! later stage downloads the same bytes by digest, after the signature is
//! checked here and again, with the digest, on the worker.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::Error;
use crate::model::{ActionRun, ActionState, Artifact, ArtifactKind};
use crate::store::Store;
use conveyor_platform::signing::{Signer, TrustedKeys};

/// What a worker says about an output it uploads or registers.
#[derive(Debug, Clone, Default)]
pub struct Upload {
    pub action_id: String,
    pub attempt: i32,
    /// The worker holding the lease; empty skips that check.
    pub worker: String,
    pub name: String,
    pub media_type: String,
    /// "sha256:<64 hex digits>", computed by the worker.
    pub digest: String,
    pub size_bytes: i64,
    pub subject_digest: String,
    pub annotations: BTreeMap<String, String>,
}

impl Upload {
    /// DATA_LOSS unless the bytes hashed into `hash` are the declared ones.
    fn matches(&self, hash: Sha256, size: u64) -> Result<(), Error> {
        let actual = sha256_digest(hash);
        if actual == self.digest && size == self.size_bytes as u64 {
            Ok(())
        } else {
            Err(Error::DigestMismatch {
                declared: format!("{} ({} bytes)", self.digest, self.size_bytes),
                actual: format!("{actual} ({size} bytes)"),
            })
        }
    }
}

#[derive(Clone)]
pub struct Artifacts {
    objects: Arc<dyn ObjectStore>,
    /// Where in the object store artifacts live.
    prefix: Path,
    signer: Arc<Signer>,
    /// Keys whose signatures are accepted: the signer's, and earlier keys
    /// kept through a rotation.
    trusted: TrustedKeys,
    store: Store,
    /// The largest artifact accepted.
    pub max_bytes: u64,
}

/// "sha256:<64 lowercase hex digits>", or an error naming `field`.
pub fn check_digest(digest: &str, field: &str) -> Result<(), Error> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be \"sha256:\" and 64 lowercase hex digits",
        ))
    }
}

fn sha256_digest(hash: Sha256) -> String {
    format!("sha256:{}", hex::encode(hash.finalize()))
}

/// Opens the artifact store at `url`: `file:///dir`, a plain directory
/// path, or (built with the `s3` feature) `s3://bucket/prefix`.
pub fn open_store(url: &str) -> anyhow::Result<(Arc<dyn ObjectStore>, Path)> {
    let parsed = match url::Url::parse(url) {
        Ok(u) if u.scheme().len() > 1 => u,
        // A plain path (a one-letter "scheme" would be a drive letter).
        _ => {
            std::fs::create_dir_all(url)
                .map_err(|e| anyhow::anyhow!("cannot create artifact directory {url}: {e}"))?;
            let dir = std::fs::canonicalize(url)?;
            url::Url::from_directory_path(&dir)
                .map_err(|()| anyhow::anyhow!("artifact directory {url} is not absolute"))?
        }
    };
    if parsed.scheme() == "file"
        && let Ok(dir) = parsed.to_file_path()
    {
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::anyhow!("cannot create artifact directory {}: {e}", dir.display())
        })?;
    }
    // S3 settings (region, endpoint, credentials) come from AWS_* variables.
    let options = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
    let (store, prefix) = object_store::parse_url_opts(&parsed, options).map_err(|e| {
        anyhow::anyhow!("artifact store {url}: {e} (S3 needs a build with the `s3` feature)")
    })?;
    Ok((Arc::from(store), prefix))
}

impl Artifacts {
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        prefix: Path,
        signer: Arc<Signer>,
        trusted: TrustedKeys,
        store: Store,
    ) -> Self {
        Artifacts {
            objects,
            prefix,
            signer,
            trusted,
            store,
            max_bytes: 1 << 30,
        }
    }

    /// Where the bytes of `digest` are kept.
    fn location(&self, digest: &str) -> Path {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.prefix.clone().join("sha256").join(hex)
    }

    /// The action run, if `attempt` is its current, running attempt (and,
    /// when `worker` is named, that worker holds its lease).
    async fn current(
        &self,
        action_id: &str,
        attempt: i32,
        worker: &str,
    ) -> Result<ActionRun, Error> {
        let action = self.store.action(action_id).await?;
        if action.attempt != attempt
            || action.state != ActionState::Running
            || (!worker.is_empty() && action.worker != worker)
        {
            return Err(Error::StaleAttempt {
                action: action_id.to_owned(),
                attempt,
                current: action.attempt,
            });
        }
        Ok(action)
    }

    /// Checks the metadata of an output against what the action declared.
    async fn declared(&self, u: &Upload) -> Result<(ActionRun, ArtifactKind), Error> {
        check_digest(&u.digest, "metadata.digest")?;
        if !u.subject_digest.is_empty() {
            check_digest(&u.subject_digest, "metadata.subject_digest")?;
        }
        if u.size_bytes < 0 || u.size_bytes as u64 > self.max_bytes {
            return Err(Error::invalid(
                "metadata.size_bytes",
                format!("must be between 0 and {} bytes", self.max_bytes),
            ));
        }
        let action = self.current(&u.action_id, u.attempt, &u.worker).await?;
        let kind = action
            .outputs
            .iter()
            .find(|o| o.path == u.name)
            .map(|o| o.kind)
            .or_else(|| {
                action
                    .sarif
                    .contains(&u.name)
                    .then_some(ArtifactKind::Sarif)
            })
            .ok_or_else(|| {
                Error::invalid(
                    "metadata.name",
                    format!(
                        "{:?} is not an output action {:?} declares",
                        u.name, action.name
                    ),
                )
            })?;
        Ok((action, kind))
    }

    /// Stores an uploaded output: the bytes go to a temporary object, and
    /// become the artifact only if their digest and size are the declared ones.
    pub async fn upload<S>(&self, u: Upload, mut chunks: S) -> Result<Artifact, Error>
    where
        S: Stream<Item = Result<Bytes, Error>> + Unpin,
    {
        let (action, kind) = self.declared(&u).await?;
        let temporary = self
            .prefix
            .clone()
            .join("uploads")
            .join(uuid::Uuid::new_v4().simple().to_string());
        let mut writer =
            object_store::buffered::BufWriter::new(self.objects.clone(), temporary.clone());
        let mut hash = Sha256::new();
        let mut size: u64 = 0;
        let written: Result<(), Error> = async {
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                size += chunk.len() as u64;
                if size > u.size_bytes as u64 {
                    return Err(Error::invalid(
                        "chunk",
                        format!("more bytes than the declared {}", u.size_bytes),
                    ));
                }
                hash.update(&chunk);
                writer.write_all(&chunk).await.map_err(store_error)?;
            }
            writer.shutdown().await.map_err(store_error)
        }
        .await;
        if let Err(e) = written {
            let _ = writer.abort().await;
            let _ = self.objects.delete(&temporary).await;
            return Err(e);
        }
        if let Err(e) = u.matches(hash, size) {
            let _ = self.objects.delete(&temporary).await;
            return Err(e);
        }
        self.objects
            .rename(&temporary, &self.location(&u.digest))
            .await
            .map_err(store_error)?;
        self.record(action, kind, u).await
    }

    /// Registers an output the worker wrote to the artifact store itself:
    /// the stored bytes are read back and must match the declared digest.
    pub async fn register(&self, u: Upload) -> Result<Artifact, Error> {
        let (action, kind) = self.declared(&u).await?;
        let mut bytes = self.read(&u.digest).await?;
        let (mut hash, mut size) = (Sha256::new(), 0u64);
        while let Some(chunk) = bytes.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hash.update(&chunk);
        }
        u.matches(hash, size)?;
        self.record(action, kind, u).await
    }

    async fn record(
        &self,
        action: ActionRun,
        kind: ArtifactKind,
        u: Upload,
    ) -> Result<Artifact, Error> {
        let execution = self.store.execution(&action.execution_id).await?;
        let artifact = Artifact {
            commit_sha: execution.commit_sha,
            pipeline: execution.pipeline,
            execution_id: action.execution_id,
            name: u.name,
            action_id: action.id,
            stage_index: action.stage_index,
            kind,
            signature: self.signer.sign(&u.digest),
            digest: u.digest,
            size_bytes: u.size_bytes,
            media_type: u.media_type,
            subject_digest: u.subject_digest,
            annotations: u.annotations,
            create_time: chrono::Utc::now(),
        };
        self.store.put_artifact(&artifact).await?;
        tracing::info!(
            execution = %artifact.execution_id,
            name = %artifact.name,
            digest = %artifact.digest,
            size = artifact.size_bytes,
            "artifact stored and signed"
        );
        Ok(artifact)
    }

    /// The artifacts an action downloads before it runs: the upstream
    /// artifacts its execution pinned (under `upstream/PIPELINE/NAME`), and
    /// the packages and SBOMs earlier stages stored. A rollback run gets
    /// the last good execution's, pins included.
    pub async fn inputs(&self, action: &ActionRun) -> Result<Vec<Artifact>, Error> {
        let source = action.artifact_source();
        let mut inputs = self.pinned(source).await?;
        if action.stage_index > 0 || action.rollback {
            inputs.extend(
                self.store
                    .artifacts(source)
                    .await?
                    .into_iter()
                    .filter(|a| a.kind.is_input())
                    .filter(|a| {
                        source != action.execution_id || a.stage_index < action.stage_index
                    }),
            );
        }
        Ok(inputs)
    }

    /// The upstream artifacts `execution_id` pinned, named for the
    /// workspace; each is the upstream's indexed (signed) artifact.
    pub async fn pinned(&self, execution_id: &str) -> Result<Vec<Artifact>, Error> {
        let pins = self.store.execution(execution_id).await?.upstream;
        let mut found = Vec::with_capacity(pins.len());
        let mut by_execution: std::collections::BTreeMap<&str, Vec<Artifact>> = Default::default();
        for pin in &pins {
            if !by_execution.contains_key(pin.execution_id.as_str()) {
                let stored = self.store.artifacts(&pin.execution_id).await?;
                by_execution.insert(&pin.execution_id, stored);
            }
            let artifact = by_execution[pin.execution_id.as_str()]
                .iter()
                .find(|a| a.name == pin.name && a.digest == pin.digest)
                .ok_or_else(|| Error::ArtifactNotFound(pin.digest.clone()))?;
            found.push(Artifact {
                name: pin.input_name(),
                ..artifact.clone()
            });
        }
        Ok(found)
    }

    /// Every artifact an execution stored.
    pub async fn of_execution(&self, execution_id: &str) -> Result<Vec<Artifact>, Error> {
        Ok(self.store.artifacts(execution_id).await?)
    }

    /// One of an attempt's inputs, after its signature is checked, and its
    /// bytes. The stream ends with DATA_LOSS if the stored bytes do not hash
    /// to the digest.
    pub async fn download(
        &self,
        digest: &str,
        action_id: &str,
        attempt: i32,
    ) -> Result<(Artifact, BoxStream<'static, Result<Bytes, Error>>), Error> {
        check_digest(digest, "digest")?;
        let action = self.current(action_id, attempt, "").await?;
        let artifact = self
            .inputs(&action)
            .await?
            .into_iter()
            .find(|a| a.digest == digest)
            .ok_or_else(|| Error::ArtifactNotFound(digest.to_owned()))?;
        self.trusted
            .verify(&artifact.digest, &artifact.signature)
            .map_err(|e| Error::ArtifactUntrusted {
                digest: digest.to_owned(),
                why: e.to_string(),
            })?;
        let bytes = self.read(digest).await?;
        let verified = verify_at_end(bytes, digest.to_owned());
        Ok((artifact, verified))
    }

    async fn read(&self, digest: &str) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        match self.objects.get(&self.location(digest)).await {
            Ok(got) => Ok(got.into_stream().map(|c| c.map_err(store_error)).boxed()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::ArtifactNotFound(digest.to_owned()))
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Passes chunks through, hashing them; at the end, yields DATA_LOSS
/// instead of finishing if the hash is not `expected`.
fn verify_at_end(
    chunks: BoxStream<'static, Result<Bytes, Error>>,
    expected: String,
) -> BoxStream<'static, Result<Bytes, Error>> {
    futures::stream::unfold(
        (chunks, Some(Sha256::new()), expected),
        |(mut chunks, mut hash, expected)| async move {
            let h = hash.as_mut()?;
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    h.update(&chunk);
                    Some((Ok(chunk), (chunks, hash, expected)))
                }
                Some(Err(e)) => Some((Err(e), (chunks, None, expected))),
                None => {
                    let actual = sha256_digest(hash.take()?);
                    (actual != expected).then(|| {
                        let mismatch = Error::DigestMismatch {
                            declared: expected.clone(),
                            actual,
                        };
                        (Err(mismatch), (chunks, None, expected))
                    })
                }
            }
        },
    )
    .boxed()
}

fn store_error(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("artifact store: {e}"))
}
