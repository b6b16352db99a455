//! What a pipeline delivers to a running instance without a restart (the
//! dynamic configuration, the served model): a version written once under
//! `DIR/versions/<version>/`, and `DIR/current` pointing at it. The
//! instance re-reads `current/` whenever `current/VERSION` changes; a
//! version that cannot be read is ignored and the last good one stays.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A delivered thing, with the version it was read from.
pub trait Versioned: Clone + Default {
    /// What it is, for the log: "configuration", "model".
    const WHAT: &'static str;
    /// Reads version `version` from `dir` (the `current/` directory).
    fn load(dir: &Path, version: &str) -> Result<Self, String>;
    /// The version it was read from; empty before anything was delivered.
    fn version(&self) -> &str;
}

/// The current `T` of one instance.
pub struct Delivered<T> {
    dir: Option<PathBuf>,
    loaded: Mutex<T>,
}

impl<T: Versioned> Delivered<T> {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Delivered {
            dir,
            loaded: Mutex::new(T::default()),
        }
    }

    /// The one loaded, or the delivered one if its version changed since.
    pub fn current(&self) -> T {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let Some(dir) = &self.dir else {
            return loaded.clone();
        };
        let current = dir.join("current");
        let version = fs::read_to_string(current.join("VERSION")).unwrap_or_default();
        let version = version.trim();
        if version.is_empty() || version == loaded.version() {
            return loaded.clone();
        }
        match T::load(&current, version) {
            Ok(next) => {
                let was = match loaded.version() {
                    "" => "none",
                    v => v,
                };
                eprintln!("demo-app: {} {version} loaded (was {was})", T::WHAT);
                *loaded = next;
            }
            Err(why) => eprintln!("demo-app: {} {version} ignored: {why}", T::WHAT),
        }
        loaded.clone()
    }
}
