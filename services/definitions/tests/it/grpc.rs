//! The PipelineService over real sockets, on every backend.

use conveyor_api::common::v1::{PipelineType as PbType, SpecFormat};
use conveyor_api::definitions::v1 as pb;
use conveyor_definitions::spec::{Format, PipelineType};
use conveyor_definitions::templates;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{Server, backends};

fn source(text: &str) -> Option<pb::PipelineSource> {
    Some(pb::PipelineSource {
        content: text.as_bytes().to_vec(),
        format: SpecFormat::Unspecified as i32,
    })
}

fn template(t: PipelineType, name: &str, project: &str) -> String {
    templates::render(t, name, project, Format::Yaml).expect("template")
}

fn apply(text: &str) -> pb::ApplyPipelineRequest {
    pb::ApplyPipelineRequest {
        source: source(text),
        author: "ann".into(),
        message: "first".into(),
        ..Default::default()
    }
}

/// Runs `test` once per backend against a fresh server.
macro_rules! on_every_backend {
    ($name:ident, |$server:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            for backend in backends().await {
                let mut $server = Server::start(&backend.url).await;
                let run = async { $body };
                run.await;
                $server.stop().await;
                eprintln!("{} passed on {}", stringify!($name), backend.name);
                backend.cleanup().await;
            }
        }
    };
}

on_every_backend!(apply_creates_then_revises_only_on_change, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::Application, "shop", "retail");
    let first = c
        .apply_pipeline(apply(&yaml))
        .await
        .expect("apply")
        .into_inner();
    assert!(first.created && first.revision_created);
    let p = first.pipeline.expect("pipeline");
    assert_eq!(p.name, "pipelines/shop");
    assert_eq!(p.project, "retail");
    assert_eq!(p.r#type, PbType::Application as i32);
    assert_eq!(p.labels.get("team").map(String::as_str), Some("retail"));
    let rev = p.revision.expect("revision");
    assert_eq!(rev.revision, 1);
    assert_eq!(rev.author, "ann");
    assert_eq!(rev.spec_sha256.len(), 64);
    assert_eq!(rev.conformance.expect("report").required_failures, 0);

    // Same spec, different comments and key order: no new revision.
    let same = format!("# reformatted\n{yaml}");
    let again = c
        .apply_pipeline(apply(&same))
        .await
        .expect("apply")
        .into_inner();
    assert!(!again.created && !again.revision_created);
    assert_eq!(again.pipeline.expect("p").revision.expect("r").revision, 1);

    // A real change makes revision 2 and a new etag.
    let changed = yaml.replace("bakeTime: 2h", "bakeTime: 3h");
    let second = c
        .apply_pipeline(apply(&changed))
        .await
        .expect("apply")
        .into_inner();
    assert!(!second.created && second.revision_created);
    let p2 = second.pipeline.expect("p");
    assert_eq!(p2.revision.as_ref().expect("r").revision, 2);
    assert_ne!(p2.etag, p.etag);

    let revisions = c
        .list_pipeline_revisions(pb::ListPipelineRevisionsRequest {
            parent: "pipelines/shop".into(),
            ..Default::default()
        })
        .await
        .expect("revisions")
        .into_inner();
    let numbers: Vec<i64> = revisions.revisions.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, vec![2, 1]);
    assert!(
        revisions.revisions[0].source.is_none(),
        "BASIC view omits the document"
    );

    let old = c
        .get_pipeline(pb::GetPipelineRequest {
            name: "pipelines/shop".into(),
            revision: 1,
            ..Default::default()
        })
        .await
        .expect("get r1")
        .into_inner();
    let old_source = old
        .revision
        .expect("r")
        .source
        .expect("FULL view has the source");
    assert_eq!(String::from_utf8(old_source.content).expect("utf8"), yaml);

    let by_name = c
        .get_pipeline_revision(pb::GetPipelineRevisionRequest {
            name: "pipelines/shop/revisions/2".into(),
        })
        .await
        .expect("revision 2")
        .into_inner();
    assert!(by_name.canonical_spec.contains("\"bakeTime\":\"3h\""));
});

on_every_backend!(create_refuses_duplicates_and_mismatched_ids, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::ComputeImage, "base-image", "platform");
    let create = |id: &str| pb::CreatePipelineRequest {
        pipeline_id: id.into(),
        source: source(&yaml),
        ..Default::default()
    };
    c.create_pipeline(create("base-image"))
        .await
        .expect("create");
    let dup = c.create_pipeline(create("")).await.expect_err("duplicate");
    assert_eq!(dup.code(), Code::AlreadyExists);
    assert_eq!(
        dup.get_details_error_info().expect("info").reason,
        "PIPELINE_ALREADY_EXISTS"
    );
    let mismatch = c
        .create_pipeline(create("other"))
        .await
        .expect_err("id mismatch");
    assert_eq!(mismatch.code(), Code::InvalidArgument);
    assert_eq!(
        mismatch
            .get_details_bad_request()
            .expect("bad request")
            .field_violations[0]
            .field,
        "pipeline_id"
    );
});

on_every_backend!(stale_etag_is_aborted_and_writes_nothing, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::MachineLearning, "model", "ml");
    let p = c
        .apply_pipeline(apply(&yaml))
        .await
        .expect("apply")
        .into_inner()
        .pipeline
        .expect("p");
    let update = |etag: &str, text: &str| pb::UpdatePipelineRequest {
        name: "pipelines/model".into(),
        source: source(text),
        etag: etag.into(),
        ..Default::default()
    };
    let v2 = yaml.replace("bakeTime: 1h", "bakeTime: 2h");
    let updated = c
        .update_pipeline(update(&p.etag, &v2))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.revision.expect("r").revision, 2);
    let v3 = yaml.replace("bakeTime: 1h", "bakeTime: 3h");
    let stale = c
        .update_pipeline(update(&p.etag, &v3))
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let current = c
        .get_pipeline(pb::GetPipelineRequest {
            name: "pipelines/model".into(),
            ..Default::default()
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        current.revision.expect("r").revision,
        2,
        "the stale update wrote nothing"
    );
    let stale_delete = c
        .delete_pipeline(pb::DeletePipelineRequest {
            name: "pipelines/model".into(),
            etag: p.etag.clone(),
        })
        .await
        .expect_err("stale delete");
    assert_eq!(stale_delete.code(), Code::Aborted);
    c.delete_pipeline(pb::DeletePipelineRequest {
        name: "pipelines/model".into(),
        etag: current.etag,
    })
    .await
    .expect("delete");
    let gone = c
        .get_pipeline(pb::GetPipelineRequest {
            name: "pipelines/model".into(),
            ..Default::default()
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let renamed = c
        .update_pipeline(pb::UpdatePipelineRequest {
            name: "pipelines/other".into(),
            source: source(&yaml),
            ..Default::default()
        })
        .await
        .expect_err("rename");
    assert_eq!(renamed.code(), Code::InvalidArgument);
});

on_every_backend!(invalid_specs_name_the_field_and_store_nothing, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::Application, "shop", "retail")
        .replace("needs: [compile]", "needs: [compil]");
    let err = c.apply_pipeline(apply(&yaml)).await.expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let violations = err
        .get_details_bad_request()
        .expect("bad request")
        .field_violations;
    assert_eq!(violations[0].field, "spec.stages[0].actions[1].needs[0]");
    assert!(
        violations[0].description.contains("line"),
        "{}",
        violations[0].description
    );
    assert_eq!(
        err.get_details_error_info().expect("info").reason,
        "INVALID_SPEC"
    );

    let not_utf8 = c
        .apply_pipeline(pb::ApplyPipelineRequest {
            source: Some(pb::PipelineSource {
                content: vec![0xff, 0xfe, 0x00],
                format: 0,
            }),
            ..Default::default()
        })
        .await
        .expect_err("not utf-8");
    assert_eq!(not_utf8.code(), Code::InvalidArgument);
    assert_eq!(
        not_utf8
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "source.content"
    );

    let huge = c
        .apply_pipeline(apply(&"#".repeat(1024 * 1024 + 1)))
        .await
        .expect_err("too big");
    assert_eq!(huge.code(), Code::InvalidArgument);

    let bomb = "a: &a [x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    let bomb = c.apply_pipeline(apply(bomb)).await.expect_err("alias bomb");
    assert_eq!(bomb.code(), Code::InvalidArgument);

    let missing = c
        .apply_pipeline(pb::ApplyPipelineRequest::default())
        .await
        .expect_err("no source");
    assert_eq!(
        missing
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "source"
    );

    let bad_name = c
        .get_pipeline(pb::GetPipelineRequest {
            name: "shop".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad name");
    assert_eq!(bad_name.code(), Code::InvalidArgument);

    let listed = c
        .list_pipelines(pb::ListPipelinesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.pipelines.is_empty(), "nothing was stored");
});

on_every_backend!(nonconformant_specs_need_explicit_acceptance, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::Application, "shop", "retail")
        .replace("kind: secrets-detection", "kind: custom");
    let refused = c
        .apply_pipeline(apply(&yaml))
        .await
        .expect_err("nonconformant");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let failure = refused
        .get_details_precondition_failure()
        .expect("precondition failure");
    assert_eq!(failure.violations[0].subject, "build.secrets-detection");
    assert_eq!(failure.violations[0].r#type, "DPRA_RULE");

    let mut accepted = apply(&yaml);
    accepted.accept_non_conformance = true;
    let stored = c
        .apply_pipeline(accepted)
        .await
        .expect("accepted")
        .into_inner();
    let rev = stored.pipeline.expect("p").revision.expect("r");
    assert!(rev.non_conformance_accepted);
    assert_eq!(rev.conformance.expect("report").required_failures, 1);

    // The same spec again writes nothing, acceptance or not (rules may
    // have become stricter since it was stored); a changed one is refused.
    let again = c
        .apply_pipeline(apply(&yaml))
        .await
        .expect("unchanged")
        .into_inner();
    assert!(!again.revision_created);
    assert_eq!(
        again.pipeline.expect("p").revision.expect("r").revision,
        rev.revision
    );
    let changed = c
        .apply_pipeline(apply(&yaml.replace("Builds, tests", "Builds, checks")))
        .await
        .expect_err("changed and nonconformant");
    assert_eq!(changed.code(), Code::FailedPrecondition);
});

on_every_backend!(list_pages_and_filters, |server| {
    let c = &mut server.client;
    for (i, t) in PipelineType::ALL.into_iter().enumerate() {
        for project in ["alpha", "beta"] {
            let name = format!("p{i}-{project}");
            c.apply_pipeline(apply(&template(t, &name, project)))
                .await
                .expect("apply");
        }
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = c
            .list_pipelines(pb::ListPipelinesRequest {
                page_size: 3,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.pipelines.len() <= 3);
        names.extend(page.pipelines.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 4);
    assert_eq!(names.len(), 10);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    let alpha = c
        .list_pipelines(pb::ListPipelinesRequest {
            project: "alpha".into(),
            r#type: PbType::DynamicConfiguration as i32,
            ..Default::default()
        })
        .await
        .expect("filtered")
        .into_inner();
    let alpha: Vec<_> = alpha.pipelines.into_iter().map(|p| p.name).collect();
    assert_eq!(alpha, vec!["pipelines/p4-alpha"]);

    let first = c
        .list_pipelines(pb::ListPipelinesRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    let replay = c
        .list_pipelines(pb::ListPipelinesRequest {
            page_size: 2,
            page_token: first.next_page_token,
            project: "beta".into(),
            ..Default::default()
        })
        .await
        .expect_err("token for another filter");
    assert_eq!(replay.code(), Code::InvalidArgument);
    let negative = c
        .list_pipelines(pb::ListPipelinesRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .expect_err("negative page size");
    assert_eq!(
        negative
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "page_size"
    );
    let garbage = c
        .list_pipelines(pb::ListPipelinesRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .expect_err("garbage token");
    assert_eq!(garbage.code(), Code::InvalidArgument);
});

on_every_backend!(list_filters_by_upstream_pipeline, |server| {
    let c = &mut server.client;
    let with_upstream = |name: &str, upstream: &[&str]| {
        let mut yaml = template(PipelineType::Application, name, "retail");
        if !upstream.is_empty() {
            let list: Vec<String> = upstream
                .iter()
                .map(|u| format!("    - {{pipeline: {u}}}"))
                .collect();
            yaml.push_str(&format!("  upstream:\n{}\n", list.join("\n")));
        }
        yaml
    };
    let downstream = |c: &mut pb::pipeline_service_client::PipelineServiceClient<_>, of: &str| {
        let request = pb::ListPipelinesRequest {
            upstream: format!("pipelines/{of}"),
            ..Default::default()
        };
        let mut c = c.clone();
        async move {
            let page = c.list_pipelines(request).await.expect("list").into_inner();
            page.pipelines
                .into_iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
        }
    };
    for (name, upstream) in [
        ("image", &[][..]),
        ("config", &[][..]),
        ("app", &["image", "config"][..]),
        ("worker", &["image"][..]),
    ] {
        c.apply_pipeline(apply(&with_upstream(name, upstream)))
            .await
            .expect("apply");
    }
    assert_eq!(
        downstream(c, "image").await,
        vec!["pipelines/app", "pipelines/worker"]
    );
    assert_eq!(downstream(c, "config").await, vec!["pipelines/app"]);
    // A new revision replaces the list; a delete removes it.
    c.apply_pipeline(apply(&with_upstream("app", &["config"])))
        .await
        .expect("revise");
    assert_eq!(downstream(c, "image").await, vec!["pipelines/worker"]);
    c.delete_pipeline(pb::DeletePipelineRequest {
        name: "pipelines/worker".into(),
        ..Default::default()
    })
    .await
    .expect("delete");
    assert!(downstream(c, "image").await.is_empty());
    assert_eq!(downstream(c, "config").await, vec!["pipelines/app"]);
    let bad = c
        .list_pipelines(pb::ListPipelinesRequest {
            upstream: "image".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a resource name");
    assert_eq!(
        bad.get_details_bad_request().expect("br").field_violations[0].field,
        "upstream"
    );
});

on_every_backend!(request_ids_make_mutations_idempotent, |server| {
    let c = &mut server.client;
    let yaml = template(PipelineType::DynamicConfiguration, "flags", "retail");
    let mut request = apply(&yaml);
    request.request_id = "req-1".into();
    let first = c
        .apply_pipeline(request.clone())
        .await
        .expect("first")
        .into_inner();
    let retried = c.apply_pipeline(request).await.expect("retry").into_inner();
    assert!(retried.created, "a retry returns the first result");
    assert_eq!(first.pipeline, retried.pipeline);

    let create = pb::CreatePipelineRequest {
        source: source(&template(PipelineType::AccountFleet, "fleet", "platform")),
        request_id: "req-2".into(),
        ..Default::default()
    };
    let a = c
        .create_pipeline(create.clone())
        .await
        .expect("create")
        .into_inner();
    let b = c
        .create_pipeline(create)
        .await
        .expect("retried create is not ALREADY_EXISTS")
        .into_inner();
    assert_eq!(a, b);
});

on_every_backend!(validate_and_render_store_nothing, |server| {
    let c = &mut server.client;
    for t in [
        PbType::Application,
        PbType::ComputeImage,
        PbType::AccountFleet,
        PbType::MachineLearning,
        PbType::DynamicConfiguration,
    ] {
        for format in [SpecFormat::Yaml, SpecFormat::Json] {
            let rendered = c
                .render_template(pb::RenderTemplateRequest {
                    r#type: t as i32,
                    pipeline_id: "demo".into(),
                    project: "team".into(),
                    format: format as i32,
                })
                .await
                .expect("render")
                .into_inner()
                .source;
            let report = c
                .validate_pipeline(pb::ValidatePipelineRequest { source: rendered })
                .await
                .expect("validate")
                .into_inner();
            assert!(report.valid, "{t:?} {format:?}: {report:?}");
            assert_eq!(report.conformance.expect("report").score, 100.0);
        }
    }
    let broken = c
        .validate_pipeline(pb::ValidatePipelineRequest {
            source: source("apiVersion: conveyor/v1\nkind: Pipeline\nmetadata: {name: x}\nspec: {type: nope}\n"),
        })
        .await
        .expect("validate")
        .into_inner();
    assert!(!broken.valid);
    assert_eq!(broken.errors[0].field, "spec.type");
    assert_eq!(broken.errors[0].line, 4);
    let unspecified = c
        .render_template(pb::RenderTemplateRequest::default())
        .await
        .expect_err("type required");
    assert_eq!(unspecified.code(), Code::InvalidArgument);
    let listed = c
        .list_pipelines(pb::ListPipelinesRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.pipelines.is_empty());
});

on_every_backend!(concurrent_applies_get_distinct_revisions, |server| {
    let yaml = template(PipelineType::Application, "busy", "retail");
    server
        .client
        .apply_pipeline(apply(&yaml))
        .await
        .expect("first");
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let mut client = server.client.clone();
            let text = yaml.replace("bakeTime: 2h", &format!("bakeTime: {}h", i + 3));
            tokio::spawn(async move { client.apply_pipeline(apply(&text)).await })
        })
        .collect();
    let mut aborted = 0;
    for w in writers {
        match w.await.expect("join") {
            Ok(_) => {}
            // Contention past the store's retries surfaces as ABORTED: safe to retry.
            Err(status) if status.code() == Code::Aborted => aborted += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    let revisions = server
        .client
        .list_pipeline_revisions(pb::ListPipelineRevisionsRequest {
            parent: "pipelines/busy".into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("revisions")
        .into_inner()
        .revisions;
    let numbers: Vec<i64> = revisions.iter().map(|r| r.revision).collect();
    let expected: Vec<i64> = (1..=(9 - aborted) as i64).rev().collect();
    assert_eq!(numbers, expected, "revisions are contiguous and unique");
    let mut digests: Vec<&str> = revisions.iter().map(|r| r.spec_sha256.as_str()).collect();
    digests.sort_unstable();
    digests.dedup();
    assert_eq!(
        digests.len(),
        revisions.len(),
        "each revision holds a different spec"
    );
});

on_every_backend!(
    a_request_id_cannot_be_reused_for_another_request,
    |server| {
        let c = &mut server.client;
        let yaml = template(PipelineType::Application, "shop", "retail");
        let mut first = apply(&yaml);
        first.request_id = "req-9".into();
        c.apply_pipeline(first).await.expect("apply");
        let mut other = apply(&yaml.replace("bakeTime: 2h", "bakeTime: 5h"));
        other.request_id = "req-9".into();
        let reused = c.apply_pipeline(other).await.expect_err("reused id");
        assert_eq!(reused.code(), Code::InvalidArgument);
        assert_eq!(
            reused
                .get_details_bad_request()
                .expect("br")
                .field_violations[0]
                .field,
            "request_id"
        );
    }
);

on_every_backend!(unknown_revisions_and_pipelines_are_not_found, |server| {
    let c = &mut server.client;
    c.apply_pipeline(apply(&template(
        PipelineType::Application,
        "shop",
        "retail",
    )))
    .await
    .expect("apply");
    let get = |name: &str, revision: i64| pb::GetPipelineRequest {
        name: name.into(),
        revision,
        ..Default::default()
    };
    let missing_revision = c
        .get_pipeline(get("pipelines/shop", 7))
        .await
        .expect_err("no revision 7");
    assert_eq!(missing_revision.code(), Code::NotFound);
    assert_eq!(
        missing_revision
            .get_details_error_info()
            .expect("info")
            .reason,
        "REVISION_NOT_FOUND"
    );
    let missing_pipeline = c
        .get_pipeline(get("pipelines/nope", 0))
        .await
        .expect_err("no pipeline");
    assert_eq!(
        missing_pipeline
            .get_details_error_info()
            .expect("info")
            .reason,
        "PIPELINE_NOT_FOUND"
    );
    let by_name = c
        .get_pipeline_revision(pb::GetPipelineRevisionRequest {
            name: "pipelines/shop/revisions/2".into(),
        })
        .await
        .expect_err("no revision 2");
    assert_eq!(by_name.code(), Code::NotFound);
    let malformed = c
        .get_pipeline_revision(pb::GetPipelineRevisionRequest {
            name: "pipelines/shop/revisions/zero".into(),
        })
        .await
        .expect_err("malformed");
    assert_eq!(malformed.code(), Code::InvalidArgument);
});

/// A new revision is announced on the event stream (Redis) with its
/// conformance summary; the same spec again announces nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_revisions_are_announced_on_the_event_stream() {
    use conveyor_api::events::v1 as ev;
    use conveyor_platform::queue::{EVENTS_STREAM, Queue, RedisQueue};
    use prost::Message;
    let Ok(redis) = std::env::var("CONVEYOR_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CONVEYOR_TEST_REDIS_URL"
        );
        return;
    };
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let queue = RedisQueue::connect(&redis, &prefix).await.expect("redis");
    let mut events = queue
        .reader(EVENTS_STREAM, "test", "t")
        .await
        .expect("reader");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("d.db").display());
    let mut server = Server::start_with(&url, |c| {
        c.redis_url = Some(redis.clone());
        c.queue_prefix = prefix.clone();
    })
    .await;
    let yaml = template(PipelineType::Application, "shop", "retail");
    server
        .client
        .apply_pipeline(apply(&yaml))
        .await
        .expect("apply");
    server
        .client
        .apply_pipeline(apply(&yaml))
        .await
        .expect("same");
    let got = events
        .next(std::time::Duration::from_secs(5), 10)
        .await
        .expect("events");
    assert_eq!(got.len(), 1, "one revision, one event");
    let event = ev::Event::decode(got[0].payload.as_slice()).expect("an Event");
    assert_eq!(event.source, "conveyor.definitions");
    let Some(ev::event::Payload::PipelineRevisionCreated(r)) = event.payload else {
        panic!("not a revision event: {event:?}");
    };
    assert_eq!(r.pipeline, "pipelines/shop");
    assert_eq!(r.project, "retail");
    assert_eq!(r.revision, "pipelines/shop/revisions/1");
    assert!(r.security_control_automation_percent > 0.0, "{r:?}");
    server.stop().await;
}
