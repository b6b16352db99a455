//! Configuration: defaults, then a TOML file, then `CONVEYOR_` environment
//! variables, then command-line flags; each layer overrides the one before.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Loads a service configuration.
///
/// `file` is read when given and must exist. Environment variables map to
/// fields by name: `CONVEYOR_DATABASE_URL` sets `database_url`, and a
/// double underscore reaches into a nested table (`CONVEYOR_A__B` sets `a.b`). `flags` holds only the
/// flags given on the command line (serialize `None` as absent).
pub fn load<T>(file: Option<&Path>, flags: impl Serialize) -> Result<T, Box<figment::Error>>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(Env::prefixed("CONVEYOR_").split("__"))
        .merge(Serialized::defaults(flags))
        .extract()
        .map_err(Box::new)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Sample {
        listen: String,
        limit: u32,
        name: String,
    }

    impl Default for Sample {
        fn default() -> Self {
            Sample {
                listen: "127.0.0.1:1".into(),
                limit: 1,
                name: "default".into(),
            }
        }
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "conveyor.toml",
                "listen = \"0.0.0.0:2\"\nlimit = 2\nname = \"file\"",
            )?;
            jail.set_env("CONVEYOR_LIMIT", "3");
            jail.set_env("CONVEYOR_NAME", "env");
            let loaded: Sample = load(
                Some(Path::new("conveyor.toml")),
                Flags {
                    name: Some("flag".into()),
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(
                loaded,
                Sample {
                    listen: "0.0.0.0:2".into(),
                    limit: 3,
                    name: "flag".into()
                }
            );
            let defaults: Sample = load(None, Flags { name: None }).map_err(|e| e.to_string())?;
            assert_eq!(defaults.name, "env");
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let result: Result<Sample, _> = load(
            Some(Path::new("/nonexistent/conveyor.toml")),
            Flags { name: None },
        );
        assert!(result.is_err());
    }
}
