//! Artifact signatures. The control plane signs each artifact's digest
//! string ("sha256:<hex>") with its ed25519 key when the artifact is stored;
//! whoever uses the artifact checks that signature against the keys it
//! trusts. Keys are PKCS#8 PEM files, so `openssl genpkey -algorithm ed25519`
//! makes one and `openssl pkey -pubout` gives the key to trust.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The one algorithm Conveyor signs with.
pub const ALGORITHM: &str = "ed25519";

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read or write key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not an ed25519 PKCS#8 PEM key: {why}")]
    BadKey { path: PathBuf, why: String },
    #[error("no randomness for a new key: {0}")]
    Random(String),
    #[error("unsigned")]
    Unsigned,
    #[error("signed with {0:?}, not ed25519")]
    Algorithm(String),
    #[error("signed by key {0}, which is not trusted")]
    UnknownKey(String),
    #[error("signature does not match the digest")]
    Mismatch,
}

/// A detached signature over an artifact's digest string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub algorithm: String,
    pub key_id: String,
    pub value: Vec<u8>,
}

/// The control plane's signing key.
pub struct Signer {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads the key at `path`; when there is none, creates one there
    /// (mode 0600) with its public key beside it in `<path>.pub`. Replicas
    /// starting together agree: only one creation can succeed.
    pub fn load_or_create(path: &Path) -> Result<Signer, SigningError> {
        let io = |source| SigningError::Io {
            path: path.to_owned(),
            source,
        };
        let signer = match std::fs::read_to_string(path) {
            Ok(pem) => Signer::from_pem(&pem, path)?,
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            Err(_) => Signer::create(path)?,
        };
        // Verifiers read the public key from beside the private one.
        let public = public_key_path(path);
        if !public.exists() {
            std::fs::write(&public, signer.public_key_pem()).map_err(|source| {
                SigningError::Io {
                    path: public,
                    source,
                }
            })?;
        }
        Ok(signer)
    }

    /// Writes a new key to a private temporary file, then links it into
    /// place: the link fails if another process got there first, and a
    /// reader never sees a half-written key.
    fn create(path: &Path) -> Result<Signer, SigningError> {
        let io = |source| SigningError::Io {
            path: path.to_owned(),
            source,
        };
        let signer = Signer::generate()?;
        let pem = signer
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SigningError::BadKey {
                path: path.to_owned(),
                why: e.to_string(),
            })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(pem.as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temporary, path)
        })();
        let _ = std::fs::remove_file(&temporary);
        match written {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    key_id = %signer.key_id,
                    "created a new artifact signing key; in production, mount one from a secret"
                );
                Ok(signer)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pem = std::fs::read_to_string(path).map_err(io)?;
                Signer::from_pem(&pem, path)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A key from PKCS#8 PEM text; `path` names it in errors.
    pub fn from_pem(pem: &str, path: &Path) -> Result<Signer, SigningError> {
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| SigningError::BadKey {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        Ok(Signer::from_key(key))
    }

    /// A fresh random key (tests, and the first start of a dev install).
    pub fn generate() -> Result<Signer, SigningError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| SigningError::Random(e.to_string()))?;
        Ok(Signer::from_key(SigningKey::from_bytes(&seed)))
    }

    fn from_key(key: SigningKey) -> Signer {
        let key_id = key_id(&key.verifying_key());
        Signer { key, key_id }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public key as SPKI PEM, for verifiers to trust.
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// Signs an artifact's digest string.
    pub fn sign(&self, digest: &str) -> Signature {
        Signature {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            value: self.key.sign(digest.as_bytes()).to_bytes().to_vec(),
        }
    }
}

/// Where [`Signer::load_or_create`] writes the public key.
pub fn public_key_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// "ed25519:" and the first 16 hex digits of the public key's SHA-256:
/// tells verifiers which trusted key to check against.
pub fn key_id(key: &VerifyingKey) -> String {
    let hash = Sha256::digest(key.as_bytes());
    format!("{ALGORITHM}:{}", &hex::encode(hash)[..16])
}

/// Public keys whose signatures are accepted.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys(Vec<(String, VerifyingKey)>);

impl TrustedKeys {
    /// Reads SPKI PEM public keys (one per file).
    pub fn from_files(paths: &[PathBuf]) -> Result<TrustedKeys, SigningError> {
        let mut keys = Vec::new();
        for path in paths {
            let pem = std::fs::read_to_string(path).map_err(|source| SigningError::Io {
                path: path.clone(),
                source,
            })?;
            let key =
                VerifyingKey::from_public_key_pem(&pem).map_err(|e| SigningError::BadKey {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            keys.push((key_id(&key), key));
        }
        Ok(TrustedKeys(keys))
    }

    /// Trusts `signer`'s key too.
    pub fn add(&mut self, signer: &Signer) {
        self.0
            .push((signer.key_id.clone(), signer.key.verifying_key()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks `signature` over `digest` with the trusted key it names.
    pub fn verify(&self, digest: &str, signature: &Signature) -> Result<(), SigningError> {
        if signature.value.is_empty() {
            return Err(SigningError::Unsigned);
        }
        if signature.algorithm != ALGORITHM {
            return Err(SigningError::Algorithm(signature.algorithm.clone()));
        }
        let key = self
            .0
            .iter()
            .find(|(id, _)| *id == signature.key_id)
            .map(|(_, key)| key)
            .ok_or_else(|| SigningError::UnknownKey(signature.key_id.clone()))?;
        let bytes: [u8; 64] = signature
            .value
            .as_slice()
            .try_into()
            .map_err(|_| SigningError::Mismatch)?;
        key.verify_strict(
            digest.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|_| SigningError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    #[test]
    fn a_signature_verifies_only_for_its_digest_and_key() {
        let signer = Signer::generate().expect("key");
        let mut trusted = TrustedKeys::default();
        trusted.add(&signer);
        let signature = signer.sign(DIGEST);
        assert_eq!(signature.value.len(), 64);
        trusted.verify(DIGEST, &signature).expect("verifies");

        let other = DIGEST.replace("2c26", "2c27");
        assert!(matches!(
            trusted.verify(&other, &signature),
            Err(SigningError::Mismatch)
        ));
        let mut flipped = signature.clone();
        flipped.value[0] ^= 1;
        assert!(matches!(
            trusted.verify(DIGEST, &flipped),
            Err(SigningError::Mismatch)
        ));
        let stranger = Signer::generate().expect("key").sign(DIGEST);
        assert!(matches!(
            trusted.verify(DIGEST, &stranger),
            Err(SigningError::UnknownKey(_))
        ));
        let unsigned = Signature {
            value: Vec::new(),
            ..signature
        };
        assert!(matches!(
            trusted.verify(DIGEST, &unsigned),
            Err(SigningError::Unsigned)
        ));
    }

    #[test]
    fn a_created_key_is_reloaded_and_its_public_key_rewritten_and_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/signing.pem");
        let created = Signer::load_or_create(&path).expect("create");
        std::fs::remove_file(public_key_path(&path)).expect("lose the public key");
        let loaded = Signer::load_or_create(&path).expect("load");
        assert_eq!(created.key_id(), loaded.key_id());
        let trusted = TrustedKeys::from_files(&[public_key_path(&path)]).expect("public key");
        trusted
            .verify(DIGEST, &loaded.sign(DIGEST))
            .expect("signature of the reloaded key verifies");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is private");
    }

    #[test]
    fn a_damaged_key_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("signing.pem");
        std::fs::write(
            &path,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let err = Signer::load_or_create(&path).expect_err("damaged");
        assert!(err.to_string().contains("signing.pem"), "{err}");
    }
}
