//! Executions end to end over gRPC: a real worker runs real commands.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{ControlPlane, git_repo, on_every_backend, pipeline};

fn state(e: &pb::Execution) -> pb::ExecutionState {
    pb::ExecutionState::try_from(e.state).unwrap_or_default()
}

fn stage<'a>(e: &'a pb::Execution, name: &str) -> &'a pb::StageRun {
    e.stages.iter().find(|s| s.stage == name).expect("stage")
}

on_every_backend!(
    stages_run_in_order_and_needs_are_respected,
    30,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        let l = log.display();
        let yaml = pipeline(
            "shop",
            &repo,
            &format!("test -f README && echo compile >> {l}"),
            &format!("echo deploy-$CONVEYOR_ENVIRONMENT >> {l}"),
            &format!(
                "        - {{name: package, kind: package, run: 'echo package >> {l}', needs: [compile]}}"
            ),
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("shop", "").await;
        assert_eq!(started.revision, "pipelines/shop/revisions/1");
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(state(&done), pb::ExecutionState::Succeeded, "{done:#?}");
        let lines = std::fs::read_to_string(&log).expect("log");
        assert_eq!(
            lines.lines().collect::<Vec<_>>(),
            vec!["compile", "package", "deploy-beta"]
        );
        assert!(
            done.stages
                .iter()
                .all(|s| s.state == pb::StageState::Succeeded as i32)
        );
        assert!(done.end_time.is_some());
    }
);

on_every_backend!(a_failed_action_stops_the_execution, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    let yaml = pipeline(
        "shop",
        &repo,
        "echo broken build >&2; exit 7",
        &format!("touch {}", marker.display()),
        "",
    );
    cp.apply(&yaml).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::ExecutionState::Failed);
    assert_eq!(done.failed_stage, "build");
    let compile = &stage(&done, "build").actions[0];
    assert_eq!(compile.state, pb::ActionState::Failed as i32);
    assert_eq!(compile.exit_code, Some(7));
    assert!(
        compile.failure_reason.contains("broken build"),
        "{}",
        compile.failure_reason
    );
    assert_eq!(stage(&done, "beta").state, pb::StageState::Skipped as i32);
    assert!(!marker.exists(), "no later stage ran");
});

on_every_backend!(failed_attempts_are_retried, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    let mark = dir.path().join("tried");
    let flaky = format!(
        "if [ -f {m} ]; then exit 0; else touch {m}; exit 1; fi",
        m = mark.display()
    );
    let yaml =
        pipeline("flaky", &repo, &flaky, "true", "").replace("run: 'if", "retries: 2, run: 'if");
    cp.apply(&yaml).await;
    cp.start_worker();
    let started = cp.start_execution("flaky", "").await;
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::ExecutionState::Succeeded, "{done:#?}");
    assert_eq!(stage(&done, "build").actions[0].attempt, 2);
});

on_every_backend!(branches_off_trunk_only_build, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("deployed");
    let yaml = pipeline(
        "shop",
        &repo,
        "true",
        &format!("touch {}", marker.display()),
        "",
    );
    cp.apply(&yaml).await;
    cp.start_worker();
    let started = cp.start_execution("shop", "feature/x").await;
    assert!(started.build_only);
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::ExecutionState::Succeeded);
    assert_eq!(stage(&done, "beta").state, pb::StageState::Skipped as i32);
    assert!(!marker.exists(), "a branch run never deploys");
});

/// Claims the next task of the default pool as `worker`, without running it.
async fn claim(cp: &mut ControlPlane, worker: &str) -> pb::Task {
    cp.workers
        .claim_task(pb::ClaimTaskRequest {
            worker: worker.into(),
            pool: "default".into(),
            wait: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("claim")
        .into_inner()
        .task
        .expect("a task")
}

fn report(task: &pb::Task, attempt: i32, outcome: pb::TaskOutcome) -> pb::ReportResultRequest {
    pb::ReportResultRequest {
        action_run: task.action_run.clone(),
        attempt,
        worker: "w".into(),
        outcome: outcome as i32,
        exit_code: Some(0),
        ..Default::default()
    }
}

on_every_backend!(
    stale_reports_are_refused_and_duplicates_are_harmless,
    30,
    |cp, dir| {
        let repo = git_repo(dir.path());
        cp.apply(&pipeline("shop", &repo, "true", "true", "")).await;
        let started = cp.start_execution("shop", "").await;
        let task = claim(&mut cp, "w").await;
        assert_eq!(task.attempt, 1);
        assert_eq!(task.stage, "build");
        assert_eq!(
            task.source.as_ref().expect("source").repository,
            repo.display().to_string()
        );

        let stale = cp
            .workers
            .report_result(report(&task, 0, pb::TaskOutcome::Succeeded))
            .await
            .expect_err("stale");
        assert_eq!(stale.code(), Code::FailedPrecondition);
        assert_eq!(
            stale.get_details_error_info().expect("info").reason,
            "STALE_ATTEMPT"
        );

        let first = cp
            .workers
            .report_result(report(&task, 1, pb::TaskOutcome::Succeeded))
            .await
            .expect("report")
            .into_inner();
        assert!(!first.duplicate);
        let again = cp
            .workers
            .report_result(report(&task, 1, pb::TaskOutcome::Succeeded))
            .await
            .expect("repeat")
            .into_inner();
        assert!(again.duplicate, "a repeated report changes nothing");

        let next = claim(&mut cp, "w").await;
        assert_eq!(
            next.stage, "beta",
            "the next stage started once the build succeeded"
        );
        let e = cp.wait_done(&started.name, Duration::from_millis(10)).await;
        assert_eq!(stage(&e, "build").state, pb::StageState::Succeeded as i32);
    }
);

on_every_backend!(expired_leases_are_dispatched_again, 1, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.apply(&pipeline("shop", &repo, "true", "true", "")).await;
    cp.start_execution("shop", "").await;
    let lost = claim(&mut cp, "crashed-worker").await;
    // No heartbeat: the reconciler re-queues it as attempt 2 after the 1 s lease.
    let retried = claim(&mut cp, "healthy-worker").await;
    assert_eq!(retried.action_run, lost.action_run);
    assert_eq!(retried.attempt, lost.attempt + 1);
    let heartbeat = cp
        .workers
        .heartbeat(pb::HeartbeatRequest {
            action_run: lost.action_run.clone(),
            attempt: lost.attempt,
            worker: "crashed-worker".into(),
        })
        .await
        .expect_err("the old attempt is stale");
    assert_eq!(heartbeat.code(), Code::FailedPrecondition);
    let late = cp
        .workers
        .report_result(report(&lost, lost.attempt, pb::TaskOutcome::Succeeded))
        .await
        .expect_err("late report");
    assert_eq!(late.code(), Code::FailedPrecondition);
    cp.workers
        .report_result(report(
            &retried,
            retried.attempt,
            pb::TaskOutcome::Succeeded,
        ))
        .await
        .expect("current report");
});

on_every_backend!(cancel_stops_running_commands, 3, |cp, dir| {
    let repo = git_repo(dir.path());
    let marker = dir.path().join("finished");
    let yaml = pipeline(
        "slow",
        &repo,
        &format!("sleep 20; touch {}", marker.display()),
        "true",
        "",
    );
    cp.apply(&yaml).await;
    cp.start_worker();
    let started = cp.start_execution("slow", "").await;
    // Wait until the worker holds the attempt.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let e = cp.wait_done(&started.name, Duration::ZERO).await;
        if stage(&e, "build").actions[0].state == pb::ActionState::Running as i32
            || tokio::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancelled = cp
        .executions
        .cancel_execution(pb::CancelExecutionRequest {
            name: started.name.clone(),
            principal: Some(conveyor_api::common::v1::Principal {
                id: "ann".into(),
                groups: vec![],
            }),
            ..Default::default()
        })
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(state(&cancelled), pb::ExecutionState::Cancelled);
    assert!(cancelled.state_reason.contains("ann"));
    let again = cp
        .executions
        .cancel_execution(pb::CancelExecutionRequest {
            name: started.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("already ended");
    assert_eq!(again.code(), Code::FailedPrecondition);
    // The worker learns at its next heartbeat (every second here) and kills the command.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!marker.exists());
});

on_every_backend!(bad_requests_name_the_field, 30, |cp, _dir| {
    let unknown = cp
        .executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown pipeline");
    assert_eq!(unknown.code(), Code::NotFound);
    let bad_parent = cp
        .executions
        .start_execution(pb::StartExecutionRequest {
            parent: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad parent");
    assert_eq!(
        bad_parent
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "parent"
    );
    let bad_name = cp
        .executions
        .get_execution(pb::GetExecutionRequest {
            name: "pipelines/x".into(),
            view: 0,
        })
        .await
        .expect_err("bad name");
    assert_eq!(bad_name.code(), Code::InvalidArgument);
    let missing = cp
        .executions
        .get_execution(pb::GetExecutionRequest {
            name: "pipelines/x/executions/0190aaaabbbbccccddddeeeeffff0000".into(),
            view: 0,
        })
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    let bad_outcome = cp
        .workers
        .report_result(pb::ReportResultRequest {
            action_run: "0190aaaabbbbccccddddeeeeffff0000".into(),
            ..Default::default()
        })
        .await
        .expect_err("no outcome");
    assert_eq!(
        bad_outcome
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "outcome"
    );
    let bad_commit = cp
        .executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/x".into(),
            commit: Some(pb::Commit {
                sha: "not hex!".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("bad sha");
    assert_eq!(
        bad_commit
            .get_details_bad_request()
            .expect("br")
            .field_violations[0]
            .field,
        "commit.sha"
    );
});

on_every_backend!(parallel_actions_each_run_exactly_once, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    let log = dir.path().join("log");
    let extra: String = (0..12)
        .map(|i| {
            format!(
                "        - {{name: check-{i}, kind: custom, run: 'echo check-{i} >> {}'}}\n",
                log.display()
            )
        })
        .collect();
    let yaml = pipeline("wide", &repo, "true", "true", extra.trim_end());
    cp.apply(&yaml).await;
    cp.start_worker();
    let started = cp.start_execution("wide", "").await;
    let done = cp.wait_done(&started.name, Duration::from_secs(90)).await;
    assert_eq!(state(&done), pb::ExecutionState::Succeeded, "{done:#?}");
    let text = std::fs::read_to_string(&log).expect("log");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let total = lines.len();
    lines.dedup();
    assert_eq!(total, 12, "each action ran once: {text}");
    assert_eq!(lines.len(), 12);
    assert!(stage(&done, "build").actions.iter().all(|a| a.attempt == 1));
});

on_every_backend!(events_describe_the_execution, 30, |cp, dir| {
    use conveyor_api::events::v1 as ev;
    use prost::Message;
    let repo = git_repo(dir.path());
    cp.apply(&pipeline("shop", &repo, "true", "exit 3", ""))
        .await;
    let mut events = cp
        .queue
        .reader(conveyor_platform::queue::EVENTS_STREAM, "test", "t")
        .await
        .expect("reader");
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::ExecutionState::Failed);
    let mut kinds = Vec::new();
    let mut finished = None;
    let mut stage_failed = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while finished.is_none() && tokio::time::Instant::now() < deadline {
        for d in events
            .next(Duration::from_millis(500), 100)
            .await
            .expect("events")
        {
            let event = ev::Event::decode(d.payload.as_slice()).expect("an Event");
            assert_eq!(event.source, "conveyor.execution");
            kinds.push(event.r#type.clone());
            match event.payload {
                Some(ev::event::Payload::ExecutionFinished(f)) => finished = Some(f),
                Some(ev::event::Payload::StageFailed(f)) => stage_failed = Some(f),
                _ => {}
            }
        }
    }
    assert_eq!(
        kinds,
        vec![
            "execution.started",
            "execution.stage.started",
            "execution.action.succeeded",
            "execution.stage.succeeded",
            "execution.stage.started",
            "execution.action.failed",
            "execution.stage.failed",
            "execution.finished",
        ]
    );
    let finished = finished.expect("execution.finished");
    assert_eq!(finished.outcome, pb::ExecutionState::Failed as i32);
    assert_eq!(finished.failed_stage, "beta");
    assert_eq!(finished.context.expect("context").execution, started.name);
    assert_eq!(finished.commits.len(), 1, "the head commit");
    assert!(
        finished.commits[0].land_time.is_some(),
        "landed when pushed"
    );
    assert!(finished.production.is_none(), "never reached production");
    let stage_failed = stage_failed.expect("execution.stage.failed");
    let stage = stage_failed.stage.expect("stage context");
    assert_eq!(stage.tier, conveyor_api::common::v1::Tier::Beta as i32);
    assert_eq!(stage_failed.state, pb::StageState::Failed as i32);
    assert!(stage_failed.failed_action_run.contains("/actionRuns/"));
    assert_eq!(
        stage_failed.budget.map(|b| b.seconds),
        Some(1800),
        "beta's DPRA budget"
    );
});

on_every_backend!(lost_dispatches_are_sent_again, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.apply(&pipeline("shop", &repo, "true", "true", "")).await;
    let started = cp.start_execution("shop", "").await;
    // Lose every dispatch so far, as a Redis restart would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cp.drop_dispatches().await;
    cp.start_worker();
    // The reconciler dispatches the queued attempt again (after 2 s here).
    let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
    assert_eq!(state(&done), pb::ExecutionState::Succeeded, "{done:#?}");
});

on_every_backend!(watch_streams_every_change_until_the_end, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.apply(&pipeline("shop", &repo, "sleep 0.3", "sleep 0.3", ""))
        .await;
    cp.start_worker();
    let started = cp.start_execution("shop", "").await;
    let mut stream = cp
        .executions
        .watch_execution(pb::WatchExecutionRequest {
            name: started.name.clone(),
            view: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut sequences = Vec::new();
    let mut last = None;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(60), stream.message())
        .await
        .expect("the stream ends with the execution")
        .expect("message")
    {
        sequences.push(message.sequence);
        last = message.execution;
    }
    assert!(sequences.len() >= 3, "{sequences:?}");
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        state(&last.expect("a final snapshot")),
        pb::ExecutionState::Succeeded
    );
});

fn with_mode(yaml: String, mode: &str) -> String {
    yaml.replace(
        "  environments:",
        &format!("  executionMode: {mode}\n  environments:"),
    )
}

/// A build that logs when it starts and ends, one second apart.
fn timed_build(log: &std::path::Path) -> String {
    let l = log.display();
    format!(
        "echo start-$CONVEYOR_EXECUTION_ID >> {l}; sleep 1; echo end-$CONVEYOR_EXECUTION_ID >> {l}"
    )
}

fn id_of(e: &pb::Execution) -> String {
    e.name.rsplit('/').next().unwrap_or_default().to_owned()
}

on_every_backend!(
    queued_mode_runs_one_execution_per_stage_at_a_time,
    30,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        cp.apply(&with_mode(
            pipeline("q", &repo, &timed_build(&log), "true", ""),
            "queued",
        ))
        .await;
        cp.start_worker();
        let first = cp.start_execution("q", "").await;
        let second = cp.start_execution("q", "").await;
        assert_eq!(state(&second), pb::ExecutionState::Queued, "{second:#?}");
        assert_eq!(stage(&second, "build").state, pb::StageState::Held as i32);
        assert!(
            stage(&second, "build")
                .state_reason
                .contains(&id_of(&first))
        );
        let a = cp.wait_done(&first.name, Duration::from_secs(60)).await;
        let b = cp.wait_done(&second.name, Duration::from_secs(60)).await;
        assert_eq!(
            (state(&a), state(&b)),
            (pb::ExecutionState::Succeeded, pb::ExecutionState::Succeeded)
        );
        let lines = std::fs::read_to_string(&log).expect("log");
        let (x, y) = (id_of(&first), id_of(&second));
        assert_eq!(
            lines.lines().collect::<Vec<_>>(),
            vec![
                format!("start-{x}"),
                format!("end-{x}"),
                format!("start-{y}"),
                format!("end-{y}")
            ],
            "the second build started only after the first left the stage"
        );
    }
);

on_every_backend!(
    a_newer_execution_supersedes_one_waiting_at_the_same_stage,
    30,
    |cp, dir| {
        let repo = git_repo(dir.path());
        let log = dir.path().join("log");
        // The build waits for a go signal, so the first execution holds the
        // stage until all three have started, however loaded the machine is.
        let go = dir.path().join("go");
        let build = format!(
            "while [ ! -f {} ]; do sleep 0.05; done; {}",
            go.display(),
            timed_build(&log)
        );
        cp.apply(&with_mode(
            pipeline("s", &repo, &build, "true", ""),
            "superseded",
        ))
        .await;
        cp.start_worker();
        let first = cp.start_execution("s", "").await;
        let middle = cp.start_execution("s", "").await;
        let newest = cp.start_execution("s", "").await;
        std::fs::write(&go, "").expect("go");
        let a = cp.wait_done(&first.name, Duration::from_secs(60)).await;
        let b = cp.wait_done(&middle.name, Duration::from_secs(60)).await;
        let c = cp.wait_done(&newest.name, Duration::from_secs(60)).await;
        assert_eq!(state(&a), pb::ExecutionState::Succeeded);
        assert_eq!(state(&b), pb::ExecutionState::Superseded, "{b:#?}");
        assert!(
            b.state_reason.contains(&id_of(&newest)),
            "{}",
            b.state_reason
        );
        assert_eq!(state(&c), pb::ExecutionState::Succeeded);
        let lines = std::fs::read_to_string(&log).expect("log");
        assert!(
            !lines.contains(&id_of(&middle)),
            "the superseded execution never built: {lines}"
        );
    }
);

on_every_backend!(parallel_mode_lets_executions_overlap, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    let log = dir.path().join("log");
    cp.apply(&with_mode(
        pipeline("p", &repo, &timed_build(&log), "true", ""),
        "parallel",
    ))
    .await;
    cp.start_worker();
    let first = cp.start_execution("p", "").await;
    let second = cp.start_execution("p", "").await;
    assert_eq!(state(&second), pb::ExecutionState::Running);
    cp.wait_done(&first.name, Duration::from_secs(60)).await;
    cp.wait_done(&second.name, Duration::from_secs(60)).await;
    let lines = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = lines.lines().collect();
    assert!(
        lines[0].starts_with("start-") && lines[1].starts_with("start-"),
        "both builds ran at once: {lines:?}"
    );
});

on_every_backend!(listing_filters_by_state_branch_and_commit, 30, |cp, dir| {
    let repo = git_repo(dir.path());
    cp.apply(&pipeline("shop", &repo, "true", "true", "")).await;
    cp.start_worker();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&repo)
        .output()
        .expect("git rev-parse");
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let trunk = cp
        .executions
        .start_execution(pb::StartExecutionRequest {
            parent: "pipelines/shop".into(),
            commit: Some(pb::Commit {
                sha: commit.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    let feature = cp.start_execution("shop", "feature").await;
    for e in [&trunk, &feature] {
        let done = cp.wait_done(&e.name, Duration::from_secs(60)).await;
        assert_eq!(state(&done), pb::ExecutionState::Succeeded, "{done:#?}");
    }
    let list =
        |states: Vec<pb::ExecutionState>, branch: &str, commit: &str| pb::ListExecutionsRequest {
            parent: "pipelines/shop".into(),
            states: states.into_iter().map(|s| s as i32).collect(),
            branch: branch.into(),
            commit_sha: commit.into(),
            ..Default::default()
        };
    let names = |r: pb::ListExecutionsResponse| -> Vec<String> {
        r.executions.into_iter().map(|e| e.name).collect()
    };
    let mut c = cp.executions.clone();
    let all = names(
        c.list_executions(list(vec![], "", ""))
            .await
            .expect("list")
            .into_inner(),
    );
    assert_eq!(
        all,
        vec![feature.name.clone(), trunk.name.clone()],
        "newest first"
    );
    let on_feature = names(
        c.list_executions(list(vec![], "feature", ""))
            .await
            .expect("list")
            .into_inner(),
    );
    assert_eq!(on_feature, vec![feature.name.clone()]);
    let failed = names(
        c.list_executions(list(vec![pb::ExecutionState::Failed], "", ""))
            .await
            .expect("list")
            .into_inner(),
    );
    assert!(failed.is_empty(), "{failed:?}");
    let by_commit = names(
        c.list_executions(list(vec![], "", &commit))
            .await
            .expect("list")
            .into_inner(),
    );
    assert_eq!(by_commit, vec![trunk.name.clone()]);
    let bad = c
        .list_executions(list(vec![pb::ExecutionState::Unspecified], "", ""))
        .await
        .expect_err("unspecified state");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = c
        .list_executions(list(vec![], "", "not-hex"))
        .await
        .expect_err("bad commit");
    assert_eq!(bad.code(), Code::InvalidArgument);
});
