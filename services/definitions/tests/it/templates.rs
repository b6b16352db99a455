//! The five templates parse, validate and conform to their type's rules.

use conveyor_definitions::conformance;
use conveyor_definitions::spec::{self, Format, PipelineType};
use conveyor_definitions::templates;

#[test]
fn every_template_conforms_with_no_failures() {
    for t in PipelineType::ALL {
        let yaml = templates::render(t, "demo", "team", Format::Yaml).expect("render");
        let valid =
            spec::load(yaml.as_bytes(), Format::Yaml).unwrap_or_else(|e| panic!("{t}: {e:?}"));
        assert_eq!(valid.document.spec.pipeline_type, t);
        assert_eq!(valid.document.metadata.name, "demo");
        let report = conformance::check(&valid.document, &valid.locations);
        let failed: Vec<_> = report
            .failures()
            .map(|r| format!("{}: {}", r.rule_id, r.message))
            .collect();
        assert!(failed.is_empty(), "{t} template fails: {failed:#?}");
        assert_eq!(report.score, 100.0);
        assert_eq!(report.security_control_automation_percent, 100.0);
    }
}

#[test]
fn json_rendering_has_the_same_canonical_digest() {
    for t in PipelineType::ALL {
        let yaml = templates::render(t, "demo", "team", Format::Yaml).expect("yaml");
        let json = templates::render(t, "demo", "team", Format::Json).expect("json");
        let a = spec::load(yaml.as_bytes(), Format::Yaml).expect("yaml loads");
        let b = spec::load(json.as_bytes(), Format::Json).expect("json loads");
        assert_eq!(a.sha256, b.sha256, "{t}");
        assert_eq!(a.canonical, b.canonical, "{t}");
    }
}

#[test]
fn render_refuses_invalid_names() {
    let err =
        templates::render(PipelineType::Application, "Bad", "team", Format::Yaml).unwrap_err();
    assert_eq!(err.field, "pipeline_id");
}

#[test]
fn canonical_form_ignores_comments_order_and_defaults() {
    let a = "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {name: a}\nspec:\n  type: application\n  source: {repository: r}\n  stages: [{name: build, actions: [{name: c, kind: build, run: make}]}]\n";
    let b = "# a comment\nkind: Pipeline\napiVersion: conveyor/v1\nspec:\n  stages:\n    - actions:\n        - {run: make, kind: build, name: c, timeout: 15m, pool: default}\n      name: build\n  source: {trunk: main, repository: r}\n  type: application\nmetadata: {project: default, name: a}\n";
    let a = spec::load(a.as_bytes(), Format::Yaml).expect("a");
    let b = spec::load(b.as_bytes(), Format::Yaml).expect("b");
    assert_eq!(a.sha256, b.sha256);
}

/// Fields added after specs were stored stay out of the canonical form when
/// unset, so a stored spec keeps its digest. The digest below is pinned:
/// a change to the canonical form of an existing spec fails here.
#[test]
fn new_optional_fields_leave_existing_digests_alone() {
    let base = "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {name: a}\nspec:\n  type: application\n  source: {repository: r}\n  stages: [{name: build, actions: [{name: c, kind: build, run: make}]}]\n";
    let digest = |yaml: &str| {
        spec::load(yaml.as_bytes(), Format::Yaml)
            .expect("valid")
            .sha256
    };
    assert_eq!(
        digest(base),
        "7f5e7fc893e37d69ff68d99a87b5ee27407a586e71f133bef681f228888110be"
    );
    let canonical = spec::load(base.as_bytes(), Format::Yaml)
        .expect("valid")
        .canonical;
    assert!(
        !canonical.contains("optional") && !canonical.contains("conformance"),
        "{canonical}"
    );
    let upstream = format!("{base}  upstream: [{{pipeline: x}}]\n");
    assert_eq!(
        digest(&upstream),
        digest(&format!(
            "{base}  upstream: [{{pipeline: x, optional: false}}]\n"
        ))
    );
    assert_eq!(
        digest(base),
        digest(&format!("{base}  conformance: {{waivers: []}}\n"))
    );
    assert_ne!(
        digest(&upstream),
        digest(&format!(
            "{base}  upstream: [{{pipeline: x, optional: true}}]\n"
        ))
    );
}

#[test]
fn json_schema_file_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/pipeline.schema.json"
    );
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == spec::json_schema(),
        "docs/pipeline.schema.json is stale; regenerate it with\n  cargo run -p conveyor-cli -- pipeline schema > docs/pipeline.schema.json"
    );
}

#[test]
fn every_example_is_valid_and_conforms() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut seen = Vec::new();
    for t in PipelineType::ALL {
        let path = format!("{root}/{}/pipeline.yaml", t.as_str());
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let valid = spec::load(&text, Format::Yaml).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(valid.document.spec.pipeline_type, t, "{path}");
        let report = conformance::check(&valid.document, &valid.locations);
        assert!(
            report.conforms(),
            "{path}: {:?}",
            report.failures().collect::<Vec<_>>()
        );
        seen.push(t);
    }
    assert_eq!(seen.len(), 5);
}
