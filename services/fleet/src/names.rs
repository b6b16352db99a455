//! Resource names: `accounts/{a}`, `organizationalUnits/{ou}`,
//! `baselines/{b}/versions/{n}`, `rollouts/{r}` and
//! `organizationalUnits/{ou}/freezeWindows/{w}`, and the id rule they share.

use crate::error::Error;

/// The OU every tree starts from; it always exists.
pub const ROOT_OU: &str = "root";

/// The rule every id follows, as shown in error messages.
pub const ID_RULE: &str = "must match [a-z][a-z0-9-]{0,62}: a lowercase letter, then up to 62 lowercase letters, digits or hyphens";

pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Checks a new id given in `field`.
pub fn check_id(field: &str, id: &str) -> Result<(), Error> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{id:?} {ID_RULE}")))
    }
}

/// The id in `{collection}/{id}`, checked.
fn id_in<'a>(field: &str, collection: &str, name: &'a str) -> Result<&'a str, Error> {
    match name
        .strip_prefix(collection)
        .and_then(|r| r.strip_prefix('/'))
    {
        Some(id) if is_valid_id(id) => Ok(id),
        _ => Err(Error::invalid(
            field,
            format!("{name:?} is not a {collection}/{{id}} name ({ID_RULE})"),
        )),
    }
}

pub fn account_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    id_in(field, "accounts", name)
}

pub fn account_name(id: &str) -> String {
    format!("accounts/{id}")
}

pub fn ou_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    id_in(field, "organizationalUnits", name)
}

/// An OU name, where empty means the root.
pub fn ou_id_or_root<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    if name.is_empty() {
        Ok(ROOT_OU)
    } else {
        ou_id(field, name)
    }
}

pub fn ou_name(id: &str) -> String {
    format!("organizationalUnits/{id}")
}

pub fn baseline_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    id_in(field, "baselines", name)
}

pub fn baseline_name(id: &str) -> String {
    format!("baselines/{id}")
}

/// A baseline version: `baselines/{b}/versions/{n}`, n ≥ 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionRef {
    pub baseline: String,
    pub version: i64,
}

impl VersionRef {
    pub fn parse(field: &str, name: &str) -> Result<VersionRef, Error> {
        let bad = || {
            Error::invalid(
                field,
                format!("{name:?} is not a baselines/{{baseline}}/versions/{{n}} name"),
            )
        };
        let rest = name.strip_prefix("baselines/").ok_or_else(bad)?;
        let (baseline, version) = rest.split_once("/versions/").ok_or_else(bad)?;
        let version: i64 = version.parse().map_err(|_| bad())?;
        if !is_valid_id(baseline) || version < 1 {
            return Err(bad());
        }
        Ok(VersionRef {
            baseline: baseline.to_owned(),
            version,
        })
    }

    /// Reads a stored name; `None` for one that does not parse.
    pub fn from_stored(name: &str) -> Option<VersionRef> {
        VersionRef::parse("", name).ok()
    }

    pub fn name(&self) -> String {
        format!("baselines/{}/versions/{}", self.baseline, self.version)
    }
}

pub fn rollout_id<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
    id_in(field, "rollouts", name)
}

pub fn rollout_name(id: &str) -> String {
    format!("rollouts/{id}")
}

/// `organizationalUnits/{ou}/freezeWindows/{w}` as (ou, window).
pub fn freeze_window<'a>(field: &str, name: &'a str) -> Result<(&'a str, &'a str), Error> {
    let bad = || {
        Error::invalid(
            field,
            format!("{name:?} is not an organizationalUnits/{{ou}}/freezeWindows/{{id}} name"),
        )
    };
    let rest = name.strip_prefix("organizationalUnits/").ok_or_else(bad)?;
    let (ou, window) = rest.split_once("/freezeWindows/").ok_or_else(bad)?;
    if is_valid_id(ou) && is_valid_id(window) {
        Ok((ou, window))
    } else {
        Err(bad())
    }
}

pub fn freeze_window_name(ou: &str, window: &str) -> String {
    format!("organizationalUnits/{ou}/freezeWindows/{window}")
}

/// A pipeline name, `pipelines/{p}`, checked loosely (the definitions
/// service owns the rule); empty is allowed.
pub fn check_pipeline(field: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Ok(());
    }
    match name.strip_prefix("pipelines/") {
        Some(id) if is_valid_id(id) => Ok(()),
        _ => Err(Error::invalid(
            field,
            format!("{name:?} is not a pipelines/{{pipeline}} name"),
        )),
    }
}

/// A fresh generated id with a readable prefix: `{prefix}-{uuid v7}`.
pub fn generate_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Regions and cells: lowercase letters, digits and '-', 1 to 63 characters.
pub fn is_valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 63
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Tag keys and values: letters, digits and `-_.:/@`, keys 1 to 63
/// characters, values up to 255. No quotes or backslashes, so a tag reads
/// the same inside the stored JSON.
pub fn is_valid_tag(key: &str, value: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b);
    !key.is_empty()
        && key.len() <= 63
        && value.len() <= 255
        && key.bytes().all(ok)
        && value.bytes().all(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(is_valid_id("a"));
        assert!(is_valid_id("prod-eu-1"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("1a"));
        assert!(!is_valid_id("A"));
        assert!(!is_valid_id(&format!("a{}", "b".repeat(63))));
    }

    #[test]
    fn versions_round_trip() {
        let v = VersionRef::parse("f", "baselines/guardrails/versions/12").unwrap();
        assert_eq!(v.baseline, "guardrails");
        assert_eq!(v.version, 12);
        assert_eq!(v.name(), "baselines/guardrails/versions/12");
        for bad in [
            "baselines/guardrails",
            "baselines/g/versions/0",
            "baselines/g/versions/x",
            "baselines/G/versions/1",
            "accounts/a",
        ] {
            let err = VersionRef::parse("f", bad).unwrap_err();
            assert!(err.to_string().starts_with("f: "), "{bad}: {err}");
        }
    }

    #[test]
    fn freeze_window_names() {
        assert_eq!(
            freeze_window("f", "organizationalUnits/prod/freezeWindows/xmas").unwrap(),
            ("prod", "xmas")
        );
        assert!(freeze_window("f", "organizationalUnits/prod/xmas").is_err());
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("team", "payments"));
        assert!(is_valid_tag("cost-center", ""));
        assert!(!is_valid_tag("", "x"));
        assert!(!is_valid_tag("a\"b", "x"));
        assert!(!is_valid_tag("a", "x\\y"));
    }
}
