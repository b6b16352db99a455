//! Invalid specs: each is refused with an error naming the offending field.

use conveyor_definitions::spec::{self, Format, SpecError};
use serde_json::{Value, json};

/// A small spec that is structurally valid (conformance is not checked here).
fn base() -> Value {
    json!({
        "apiVersion": "conveyor/v1",
        "kind": "Pipeline",
        "metadata": {"name": "shop", "project": "retail"},
        "spec": {
            "type": "application",
            "source": {"repository": "https://git.example.com/shop.git"},
            "environments": [
                {"name": "beta", "tier": "beta", "account": "2", "regions": ["us-east-1"]},
                {"name": "prod", "tier": "production", "account": "4", "regions": ["us-east-1", "eu-west-1"]}
            ],
            "stages": [
                {"name": "build", "actions": [
                    {"name": "compile", "kind": "build", "run": "make"},
                    {"name": "test", "kind": "unit-test", "run": "make test", "needs": ["compile"]}
                ]},
                {"name": "beta", "environment": "beta", "actions": [
                    {"name": "deploy", "kind": "deploy", "run": "./deploy.sh"}
                ]},
                {"name": "prod", "environment": "prod",
                 "approval": {"groups": ["release"]},
                 "actions": [{"name": "deploy", "kind": "deploy", "run": "./deploy.sh"}],
                 "deployment": {
                    "waves": [
                        {"name": "one", "targets": [{"account": "4", "region": "us-east-1"}]},
                        {"name": "two", "targets": [{"account": "4", "region": "eu-west-1"}]}
                    ],
                    "alarms": [{"name": "errors"}],
                    "timeWindows": [{"start": "09:00", "end": "17:00"}]
                 }}
            ],
            "notifications": [{"name": "chat", "events": ["action-failed"], "slack": "https://chat.example.com/x"}]
        }
    })
}

fn errors_of(doc: &Value) -> Vec<SpecError> {
    let text = serde_json::to_vec(doc).expect("json");
    match spec::load(&text, Format::Json) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

#[test]
fn base_spec_is_valid() {
    assert_eq!(errors_of(&base()), Vec::new());
}

#[test]
fn time_windows_take_utc_offsets_and_iana_zones() {
    for zone in [
        "UTC",
        "Z",
        "+05:30",
        "-08:00",
        "Europe/Paris",
        "America/New_York",
    ] {
        let mut d = base();
        d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["timezone"] = json!(zone);
        assert_eq!(errors_of(&d), Vec::new(), "{zone}");
    }
}

type Mutation = fn(&mut Value);

const CASES: &[(&str, &str, Mutation)] = &[
    ("wrong apiVersion", "apiVersion", |d| {
        d["apiVersion"] = json!("conveyor/v2")
    }),
    ("wrong kind", "kind", |d| d["kind"] = json!("Job")),
    ("missing metadata", "metadata", |d| {
        d.as_object_mut().unwrap().remove("metadata");
    }),
    ("uppercase name", "metadata.name", |d| {
        d["metadata"]["name"] = json!("Shop")
    }),
    ("name starting with a digit", "metadata.name", |d| {
        d["metadata"]["name"] = json!("1shop")
    }),
    ("name too long", "metadata.name", |d| {
        d["metadata"]["name"] = json!(format!("a{}", "b".repeat(63)))
    }),
    ("name with underscore", "metadata.name", |d| {
        d["metadata"]["name"] = json!("my_shop")
    }),
    ("invalid project", "metadata.project", |d| {
        d["metadata"]["project"] = json!("Retail Team")
    }),
    ("bad label key", "metadata.labels.Team", |d| {
        d["metadata"]["labels"] = json!({"Team": "x"})
    }),
    ("unknown metadata field", "metadata.owner", |d| {
        d["metadata"]["owner"] = json!("bob")
    }),
    ("unknown spec field", "spec.triggers", |d| {
        d["spec"]["triggers"] = json!([])
    }),
    ("unknown pipeline type", "spec.type", |d| {
        d["spec"]["type"] = json!("web")
    }),
    ("missing source", "spec.source", |d| {
        d["spec"].as_object_mut().unwrap().remove("source");
    }),
    ("empty repository", "spec.source.repository", |d| {
        d["spec"]["source"]["repository"] = json!("")
    }),
    ("invalid trunk branch", "spec.source.trunk", |d| {
        d["spec"]["source"]["trunk"] = json!("main branch")
    }),
    ("unknown execution mode", "spec.executionMode", |d| {
        d["spec"]["executionMode"] = json!("fifo")
    }),
    ("duplicate environment", "spec.environments[1].name", |d| {
        d["spec"]["environments"][1]["name"] = json!("beta")
    }),
    (
        "environment without regions",
        "spec.environments[0].regions",
        |d| d["spec"]["environments"][0]["regions"] = json!([]),
    ),
    ("invalid region", "spec.environments[0].regions[0]", |d| {
        d["spec"]["environments"][0]["regions"] = json!(["US East"])
    }),
    ("duplicate region", "spec.environments[1].regions[1]", |d| {
        d["spec"]["environments"][1]["regions"] = json!(["us-east-1", "us-east-1"])
    }),
    ("unknown tier", "spec.environments[0].tier", |d| {
        d["spec"]["environments"][0]["tier"] = json!("staging")
    }),
    ("no stages", "spec.stages", |d| {
        d["spec"]["stages"] = json!([])
    }),
    ("duplicate stage", "spec.stages[1].name", |d| {
        d["spec"]["stages"][1]["name"] = json!("build")
    }),
    (
        "undeclared environment",
        "spec.stages[1].environment",
        |d| d["spec"]["stages"][1]["environment"] = json!("qa"),
    ),
    ("stage without actions", "spec.stages[1].actions", |d| {
        d["spec"]["stages"][1]["actions"] = json!([])
    }),
    ("duplicate action", "spec.stages[0].actions[1].name", |d| {
        d["spec"]["stages"][0]["actions"][1]["name"] = json!("compile")
    }),
    (
        "invalid action name",
        "spec.stages[0].actions[0].name",
        |d| d["spec"]["stages"][0]["actions"][0]["name"] = json!("Compile!"),
    ),
    (
        "unknown action kind",
        "spec.stages[0].actions[0].kind",
        |d| d["spec"]["stages"][0]["actions"][0]["kind"] = json!("compile"),
    ),
    ("empty command", "spec.stages[0].actions[0].run", |d| {
        d["spec"]["stages"][0]["actions"][0]["run"] = json!("  ")
    }),
    (
        "command over 64 KiB",
        "spec.stages[0].actions[0].run",
        |d| d["spec"]["stages"][0]["actions"][0]["run"] = json!("x".repeat(65 * 1024)),
    ),
    ("unknown need", "spec.stages[0].actions[1].needs[0]", |d| {
        d["spec"]["stages"][0]["actions"][1]["needs"] = json!(["lint"])
    }),
    ("self need", "spec.stages[0].actions[1].needs[0]", |d| {
        d["spec"]["stages"][0]["actions"][1]["needs"] = json!(["test"])
    }),
    (
        "duplicate need",
        "spec.stages[0].actions[1].needs[1]",
        |d| d["spec"]["stages"][0]["actions"][1]["needs"] = json!(["compile", "compile"]),
    ),
    ("needs cycle", "spec.stages[0].actions[1].needs[0]", |d| {
        d["spec"]["stages"][0]["actions"][0]["needs"] = json!(["test"])
    }),
    ("bad timeout", "spec.stages[0].actions[0].timeout", |d| {
        d["spec"]["stages"][0]["actions"][0]["timeout"] = json!("ten minutes")
    }),
    (
        "timeout over 30 days",
        "spec.stages[0].actions[0].timeout",
        |d| d["spec"]["stages"][0]["actions"][0]["timeout"] = json!("31days"),
    ),
    (
        "timeout too short",
        "spec.stages[0].actions[0].timeout",
        |d| d["spec"]["stages"][0]["actions"][0]["timeout"] = json!("10ms"),
    ),
    (
        "too many retries",
        "spec.stages[0].actions[0].retries",
        |d| d["spec"]["stages"][0]["actions"][0]["retries"] = json!(11),
    ),
    (
        "negative retries",
        "spec.stages[0].actions[0].retries",
        |d| d["spec"]["stages"][0]["actions"][0]["retries"] = json!(-1),
    ),
    ("invalid pool", "spec.stages[0].actions[0].pool", |d| {
        d["spec"]["stages"][0]["actions"][0]["pool"] = json!("GPU pool")
    }),
    (
        "reserved env var",
        "spec.stages[0].actions[0].env.CONVEYOR_STAGE",
        |d| d["spec"]["stages"][0]["actions"][0]["env"] = json!({"CONVEYOR_STAGE": "x"}),
    ),
    (
        "absolute output path",
        "spec.stages[0].actions[0].outputs.artifacts[0]",
        |d| d["spec"]["stages"][0]["actions"][0]["outputs"] = json!({"artifacts": ["/etc/passwd"]}),
    ),
    (
        "escaping output path",
        "spec.stages[0].actions[0].outputs.sarif[0]",
        |d| d["spec"]["stages"][0]["actions"][0]["outputs"] = json!({"sarif": ["../x.sarif"]}),
    ),
    (
        "unknown output kind",
        "spec.stages[0].actions[0].outputs.coverage",
        |d| d["spec"]["stages"][0]["actions"][0]["outputs"] = json!({"coverage": ["c.xml"]}),
    ),
    (
        "approval without approvers",
        "spec.stages[2].approval",
        |d| d["spec"]["stages"][2]["approval"] = json!({}),
    ),
    (
        "more approvals than principals",
        "spec.stages[2].approval.minApprovals",
        |d| d["spec"]["stages"][2]["approval"] = json!({"principals": ["ann"], "minApprovals": 2}),
    ),
    (
        "deployment without environment",
        "spec.stages[0].deployment",
        |d| d["spec"]["stages"][0]["deployment"] = d["spec"]["stages"][2]["deployment"].clone(),
    ),
    (
        "deployment without waves",
        "spec.stages[2].deployment.waves",
        |d| d["spec"]["stages"][2]["deployment"]["waves"] = json!([]),
    ),
    (
        "waves and fromFleet",
        "spec.stages[2].deployment.fromFleet",
        |d| d["spec"]["stages"][2]["deployment"]["fromFleet"] = json!({"tier": "production"}),
    ),
    (
        "empty fleet selector",
        "spec.stages[2].deployment.fromFleet",
        |d| {
            d["spec"]["stages"][2]["deployment"]["waves"] = json!([]);
            d["spec"]["stages"][2]["deployment"]["fromFleet"] = json!({});
        },
    ),
    (
        "fleet selector with an OU that is not an id",
        "spec.stages[2].deployment.fromFleet.organizationalUnit",
        |d| {
            d["spec"]["stages"][2]["deployment"]["waves"] = json!([]);
            d["spec"]["stages"][2]["deployment"]["fromFleet"] =
                json!({"organizationalUnit": "Prod OU"});
        },
    ),
    (
        "fleet selector with a tag the fleet refuses",
        "spec.stages[2].deployment.fromFleet.tags.team",
        |d| {
            d["spec"]["stages"][2]["deployment"]["waves"] = json!([]);
            d["spec"]["stages"][2]["deployment"]["fromFleet"] = json!({"tags": {"team": "a b"}});
        },
    ),
    (
        "duplicate wave",
        "spec.stages[2].deployment.waves[1].name",
        |d| d["spec"]["stages"][2]["deployment"]["waves"][1]["name"] = json!("one"),
    ),
    (
        "wave without targets",
        "spec.stages[2].deployment.waves[0].targets",
        |d| d["spec"]["stages"][2]["deployment"]["waves"][0]["targets"] = json!([]),
    ),
    (
        "target in two waves",
        "spec.stages[2].deployment.waves[1].targets[0]",
        |d| {
            d["spec"]["stages"][2]["deployment"]["waves"][1]["targets"] =
                json!([{"account": "4", "region": "us-east-1"}])
        },
    ),
    ("bad bake time", "spec.stages[2].deployment.bakeTime", |d| {
        d["spec"]["stages"][2]["deployment"]["bakeTime"] = json!(60)
    }),
    (
        "zero data points",
        "spec.stages[2].deployment.minDataPoints.count",
        |d| {
            d["spec"]["stages"][2]["deployment"]["minDataPoints"] =
                json!({"metric": "requests", "count": 0})
        },
    ),
    (
        "duplicate alarm",
        "spec.stages[2].deployment.alarms[1].name",
        |d| d["spec"]["stages"][2]["deployment"]["alarms"] = json!([{"name": "e"}, {"name": "e"}]),
    ),
    (
        "probe without http",
        "spec.stages[2].deployment.alarms[0].probe.url",
        |d| {
            d["spec"]["stages"][2]["deployment"]["alarms"][0]["probe"] =
                json!({"url": "localhost:8080/health"})
        },
    ),
    (
        "bad window start",
        "spec.stages[2].deployment.timeWindows[0].start",
        |d| d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["start"] = json!("9am"),
    ),
    (
        "empty window",
        "spec.stages[2].deployment.timeWindows[0].end",
        |d| d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["end"] = json!("09:00"),
    ),
    (
        "bad timezone",
        "spec.stages[2].deployment.timeWindows[0].timezone",
        |d| {
            d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["timezone"] =
                json!("Mars/Olympus")
        },
    ),
    (
        "bad weekday",
        "spec.stages[2].deployment.timeWindows[0].days[0]",
        |d| d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["days"] = json!(["monday"]),
    ),
    (
        "bad excluded date",
        "spec.stages[2].deployment.timeWindows[0].excludeDates[0]",
        |d| {
            d["spec"]["stages"][2]["deployment"]["timeWindows"][0]["excludeDates"] =
                json!(["2026-02-30"])
        },
    ),
    (
        "rolling leaves too few healthy",
        "spec.stages[2].deployment.rolling.maxBatchPercent",
        |d| {
            d["spec"]["stages"][2]["deployment"]["rolling"] =
                json!({"maxBatchPercent": 50, "minHealthyPercent": 66})
        },
    ),
    (
        "notification without channel",
        "spec.notifications[0]",
        |d| {
            d["spec"]["notifications"][0]
                .as_object_mut()
                .unwrap()
                .remove("slack");
        },
    ),
    (
        "notification with two channels",
        "spec.notifications[0]",
        |d| d["spec"]["notifications"][0]["email"] = json!("team@example.com"),
    ),
    (
        "notification with bad email",
        "spec.notifications[0].email",
        |d| {
            d["spec"]["notifications"][0]
                .as_object_mut()
                .unwrap()
                .remove("slack");
            d["spec"]["notifications"][0]["email"] = json!("team");
        },
    ),
    (
        "notification with unknown event",
        "spec.notifications[0].events[0]",
        |d| d["spec"]["notifications"][0]["events"] = json!(["deployed"]),
    ),
    ("gate threshold negative", "spec.gates.sast.high", |d| {
        d["spec"]["gates"] = json!({"sast": {"high": -1}})
    }),
    (
        "upstream is the pipeline itself",
        "spec.upstream[0].pipeline",
        |d| d["spec"]["upstream"] = json!([{"pipeline": d["metadata"]["name"].clone()}]),
    ),
    ("upstream named twice", "spec.upstream[1].pipeline", |d| {
        d["spec"]["upstream"] = json!([{"pipeline": "image"}, {"pipeline": "image"}])
    }),
    (
        "upstream artifact leaves the workspace",
        "spec.upstream[0].artifacts[0]",
        |d| d["spec"]["upstream"] = json!([{"pipeline": "image", "artifacts": ["../x"]}]),
    ),
    (
        "schema check without files",
        "spec.stages[0].actions[0].validate[0].files",
        |d| {
            d["spec"]["stages"][0]["actions"][0]["validate"] =
                json!([{"schema": "s.json", "files": []}])
        },
    ),
    (
        "schema outside the workspace",
        "spec.stages[0].actions[0].validate[0].schema",
        |d| {
            d["spec"]["stages"][0]["actions"][0]["validate"] =
                json!([{"schema": "/etc/s.json", "files": ["c.json"]}])
        },
    ),
    (
        "upstream with an unknown field",
        "spec.upstream[0].branch",
        |d| d["spec"]["upstream"] = json!([{"pipeline": "image", "branch": "main"}]),
    ),
    (
        "waiver of a rule the type does not have",
        "spec.conformance.waivers[0].rule",
        |d| {
            d["spec"]["conformance"] =
                json!({"waivers": [{"rule": "build.no-such-rule", "reason": "r"}]})
        },
    ),
    (
        "waiver without a reason",
        "spec.conformance.waivers[0].reason",
        |d| {
            d["spec"]["conformance"] =
                json!({"waivers": [{"rule": "production.approval", "reason": " "}]})
        },
    ),
    (
        "rule waived twice",
        "spec.conformance.waivers[1].rule",
        |d| {
            d["spec"]["conformance"] = json!({"waivers": [
                {"rule": "production.approval", "reason": "r"},
                {"rule": "production.approval", "reason": "again"},
            ]})
        },
    ),
];

#[test]
fn each_invalid_spec_names_its_field() {
    assert!(
        CASES.len() >= 40,
        "the issue asks for at least 40 invalid specs"
    );
    let mut failures = Vec::new();
    for (what, field, mutate) in CASES {
        let mut doc = base();
        mutate(&mut doc);
        let errors = errors_of(&doc);
        if !errors.iter().any(|e| e.field == *field) {
            failures.push(format!(
                "{what}: expected an error at {field}, got {errors:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validation_reports_every_error_at_once() {
    let mut doc = base();
    doc["metadata"]["name"] = json!("Bad Name");
    doc["spec"]["stages"][1]["environment"] = json!("qa");
    doc["spec"]["stages"][0]["actions"][1]["needs"] = json!(["nope"]);
    let fields: Vec<String> = errors_of(&doc).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        vec![
            "metadata.name",
            "spec.stages[0].actions[1].needs[0]",
            "spec.stages[1].environment"
        ]
    );
}

fn yaml_errors(text: &[u8]) -> Vec<SpecError> {
    spec::load(text, Format::Yaml).err().unwrap_or_default()
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let text = "apiVersion: conveyor/v1\nkind: Pipeline\nmetadata:\n  name: shop\n  owner: bob\nspec: {}\n";
    let errors = yaml_errors(text.as_bytes());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].field, "metadata.owner");
    assert!(errors[0].message.contains("owner"), "{}", errors[0].message);
    // The position of the offending value, on the key's line.
    assert_eq!(errors[0].line, 5, "{:?}", errors[0]);
    assert!(errors[0].column > 0, "{:?}", errors[0]);
}

#[test]
fn semantic_errors_point_at_the_yaml_line() {
    let text = "apiVersion: conveyor/v1
kind: Pipeline
metadata: {name: shop}
spec:
  type: application
  source: {repository: r}
  environments:
    - {name: beta, tier: beta, account: a, regions: [us-east-1]}
    - name: beta
      tier: gamma
      account: b
      regions: [us-east-1]
  stages:
    - name: build
      actions:
        - {name: c, kind: build, run: make, needs: [missing]}
";
    let errors = yaml_errors(text.as_bytes());
    let line_of = |field: &str| {
        errors
            .iter()
            .find(|e| e.field == field && e.column > 0)
            .map(|e| e.line)
    };
    assert_eq!(line_of("spec.environments[1].name"), Some(9), "{errors:?}");
    assert_eq!(
        line_of("spec.stages[0].actions[0].needs[0]"),
        Some(16),
        "{errors:?}"
    );
}

#[test]
fn syntax_errors_carry_position() {
    let errors = yaml_errors(b"apiVersion: conveyor/v1\nkind: [Pipeline\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.starts_with("invalid YAML"),
        "{}",
        errors[0].message
    );
    assert!(errors[0].line >= 2, "{:?}", errors[0]);
}

#[test]
fn refuses_oversized_documents() {
    let big = vec![b'#'; spec::MAX_DOCUMENT_BYTES + 1];
    let errors = yaml_errors(&big);
    assert!(errors[0].message.contains("1 MiB"), "{errors:?}");
}

#[test]
fn refuses_non_utf8() {
    let errors = yaml_errors(b"apiVersion: \xff\xfe\n");
    assert!(errors[0].message.contains("UTF-8"), "{errors:?}");
}

#[test]
fn refuses_empty_documents() {
    assert!(
        yaml_errors(b"  \n")
            .first()
            .is_some_and(|e| e.message.contains("empty"))
    );
}

#[test]
fn refuses_alias_bombs() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
        ));
    }
    let errors = yaml_errors(text.as_bytes());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
}

#[test]
fn refuses_deep_nesting() {
    let yaml = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert!(
        yaml_errors(yaml.as_bytes())[0]
            .message
            .starts_with("invalid YAML")
    );
    let json = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let errors = spec::load(json.as_bytes(), Format::Json)
        .err()
        .unwrap_or_default();
    assert!(errors[0].message.contains("deeper"), "{errors:?}");
}

#[test]
fn refuses_multiple_documents() {
    let errors = yaml_errors(b"a: 1\n---\nb: 2\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn duplicate_keys_are_refused_in_yaml_and_json() {
    let yaml = yaml_errors(b"apiVersion: conveyor/v1\napiVersion: conveyor/v1\n");
    assert!(yaml[0].message.contains("duplicate"), "{yaml:?}");
    let json = spec::load(br#"{"kind": "Pipeline", "kind": "Job"}"#, Format::Json)
        .err()
        .unwrap_or_default();
    assert!(
        json[0].message.starts_with("invalid JSON") && json[0].message.contains("duplicate"),
        "{json:?}"
    );
}

/// A cheap, deterministic cousin of the cargo-fuzz target (`fuzz/`): random
/// edits of real documents must never panic the parser, the validator or the
/// conformance rules.
#[test]
fn mutated_documents_never_panic() {
    use conveyor_definitions::conformance;
    use conveyor_definitions::spec::PipelineType;
    use conveyor_definitions::templates;

    let seeds: Vec<Vec<u8>> = PipelineType::ALL
        .into_iter()
        .flat_map(|t| {
            [Format::Yaml, Format::Json].map(|f| {
                templates::render(t, "a", "b", f)
                    .expect("template")
                    .into_bytes()
            })
        })
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const SPECIAL: &[u8] = b":-[]{}&*!|>'\"\n #,?%@`\t\\0";
    let mut parsed = 0;
    for i in 0..1500 {
        let mut doc = seeds[i % seeds.len()].clone();
        for _ in 0..=next() % 6 {
            let len = doc.len().max(1) as u64;
            let at = (next() % len) as usize;
            match next() % 4 {
                0 => doc.insert(
                    at.min(doc.len()),
                    SPECIAL[(next() % SPECIAL.len() as u64) as usize],
                ),
                1 if !doc.is_empty() => {
                    let end = (at + (next() % 40) as usize).min(doc.len());
                    doc.drain(at..end);
                }
                2 if !doc.is_empty() => doc[at] = next() as u8,
                _ => {
                    let end = (at + (next() % 80) as usize).min(doc.len());
                    let copy = doc[at..end].to_vec();
                    let to = (next() % len) as usize;
                    doc.splice(to.min(doc.len())..to.min(doc.len()), copy);
                }
            }
        }
        if let Ok(valid) = spec::load(&doc, Format::Auto) {
            parsed += 1;
            let _ = conformance::check(&valid.document, &valid.locations);
        }
    }
    assert!(parsed > 0, "some mutations should still parse");
}
