//! What the worker reads from JSON files an action writes: its schema
//! checks (`validate` in the spec: documents that must be valid instances
//! of a JSON Schema, checked with boon once the command exited 0; schemas
//! may `$ref` other files of the workspace, never the network), and its
//! metrics output (named numbers).

use std::collections::HashMap;
use std::path::Path;

use conveyor_api::execution::v1 as pb;

/// Violations listed in the failure reason, at most.
const MAX_LISTED: usize = 20;

/// Checks every file of every check. Returns how many documents were
/// checked, or every problem found, one per line: `FILE: at /pointer: why`.
pub fn check(workspace: &Path, checks: &[pb::SchemaCheck]) -> Result<usize, String> {
    let mut problems = Vec::new();
    let mut checked = 0;
    for c in checks {
        let mut schemas = boon::Schemas::new();
        let mut compiler = boon::Compiler::new();
        let location = workspace.join(&c.schema);
        let schema = match compiler.compile(&location.to_string_lossy(), &mut schemas) {
            Ok(schema) => schema,
            Err(e) => {
                problems.push(format!("{}: not a usable JSON Schema: {e}", c.schema));
                continue;
            }
        };
        for file in &c.files {
            let document = match read_json(&workspace.join(file)) {
                Ok(document) => document,
                Err(why) => {
                    problems.push(format!("{file}: {why}"));
                    continue;
                }
            };
            checked += 1;
            if let Err(e) = schemas.validate(&document, schema) {
                problems.extend(violations(&e).into_iter().map(|v| format!("{file}: {v}")));
            }
        }
    }
    if problems.is_empty() {
        return Ok(checked);
    }
    let total = problems.len();
    problems.truncate(MAX_LISTED);
    if total > MAX_LISTED {
        problems.push(format!("… and {} more", total - MAX_LISTED));
    }
    Err(format!(
        "schema validation failed ({total} problem{}):\n{}",
        if total == 1 { "" } else { "s" },
        problems.join("\n")
    ))
}

/// A metrics output: a JSON object of named numbers (at most 100, names of
/// 1 to 64 bytes).
pub fn read_metrics(path: &Path) -> Result<HashMap<String, f64>, String> {
    let serde_json::Value::Object(object) = read_json(path)? else {
        return Err("not a JSON object".to_owned());
    };
    if object.len() > 100 {
        return Err(format!("{} metrics; at most 100", object.len()));
    }
    object
        .into_iter()
        .map(|(name, value)| {
            if name.is_empty() || name.len() > 64 {
                return Err(format!("metric name {name:?} is not 1 to 64 bytes"));
            }
            match value.as_f64() {
                Some(number) if number.is_finite() => Ok((name, number)),
                _ => Err(format!("{name:?} is {value}, not a number")),
            }
        })
        .collect()
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

/// The leaves of a validation error: where in the document, and why.
fn violations(e: &boon::ValidationError) -> Vec<String> {
    if e.causes.is_empty() {
        let at = e.instance_location.to_string();
        let at = if at.is_empty() { "/".to_owned() } else { at };
        return vec![format!("at {at}: {}", e.kind)];
    }
    e.causes.iter().flat_map(violations).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, content) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, content).expect("write");
        }
        dir
    }

    const SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["logLevel"],
        "properties": {
            "logLevel": {"enum": ["DEBUG", "INFO", "ERROR"]},
            "maxConnections": {"type": "integer", "minimum": 1},
            "limits": {"$ref": "limits.schema.json"}
        },
        "additionalProperties": false
    }"#;

    fn checks(files: &[&str]) -> Vec<pb::SchemaCheck> {
        vec![pb::SchemaCheck {
            schema: "schema/operational.schema.json".into(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
        }]
    }

    #[test]
    fn valid_documents_pass_and_refs_resolve_in_the_workspace() {
        let dir = workspace(&[
            ("schema/operational.schema.json", SCHEMA),
            (
                "schema/limits.schema.json",
                r#"{"type": "object", "properties": {"rps": {"type": "integer"}}}"#,
            ),
            (
                "prod.json",
                r#"{"logLevel": "ERROR", "limits": {"rps": 5}}"#,
            ),
            ("beta.json", r#"{"logLevel": "DEBUG", "maxConnections": 3}"#),
        ]);
        assert_eq!(
            check(dir.path(), &checks(&["prod.json", "beta.json"])),
            Ok(2)
        );
    }

    #[test]
    fn every_violation_is_named_with_its_file_and_pointer() {
        let dir = workspace(&[
            ("schema/operational.schema.json", SCHEMA),
            ("schema/limits.schema.json", r#"{"type": "object"}"#),
            ("prod.json", r#"{"logLevel": "TRACE", "maxConnections": 0}"#),
            ("beta.json", r#"{"maxConnections": 2, "colour": "blue"}"#),
            ("broken.json", "{not json"),
        ]);
        let why = check(
            dir.path(),
            &checks(&["prod.json", "beta.json", "broken.json", "gone.json"]),
        )
        .expect_err("invalid");
        assert!(why.starts_with("schema validation failed"), "{why}");
        for expected in [
            "prod.json: at /logLevel:",
            "prod.json: at /maxConnections:",
            "beta.json: at /:",
            "broken.json: not JSON",
            "gone.json: cannot read",
        ] {
            assert!(why.contains(expected), "{expected:?} missing from:\n{why}");
        }
        assert!(why.contains("colour"), "{why}");
    }

    #[test]
    fn metrics_are_named_finite_numbers() {
        let dir = workspace(&[
            ("good.json", r#"{"r2": 0.98, "rmse": 0.4, "rows": 40}"#),
            ("text.json", r#"{"r2": "high"}"#),
            ("list.json", "[0.9]"),
        ]);
        let good = read_metrics(&dir.path().join("good.json")).expect("good");
        assert_eq!((good["r2"], good["rows"], good.len()), (0.98, 40.0, 3));
        let text = read_metrics(&dir.path().join("text.json")).expect_err("text");
        assert!(text.contains("\"r2\" is \"high\", not a number"), "{text}");
        assert_eq!(
            read_metrics(&dir.path().join("list.json")),
            Err("not a JSON object".to_owned())
        );
        assert!(read_metrics(&dir.path().join("gone.json")).is_err());
    }

    #[test]
    fn an_unusable_schema_fails_the_check() {
        let dir = workspace(&[
            ("schema/operational.schema.json", r#"{"type": 12}"#),
            ("prod.json", "{}"),
        ]);
        let why = check(dir.path(), &checks(&["prod.json"])).expect_err("bad schema");
        assert!(
            why.contains("schema/operational.schema.json: not a usable JSON Schema"),
            "{why}"
        );
    }
}
