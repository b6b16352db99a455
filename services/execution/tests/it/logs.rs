//! Action output reaches the control plane as it is written, in order,
//! capped per attempt, and can be followed live.

use std::time::Duration;

use conveyor_api::execution::v1 as pb;

use crate::support::{ControlPlane, backends, git_repo, pipeline};

pub(crate) async fn read_logs(
    cp: &mut ControlPlane,
    request: pb::StreamLogsRequest,
) -> Vec<pb::LogChunk> {
    let mut stream = cp
        .executions
        .stream_logs(request)
        .await
        .expect("stream")
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(message) = stream.message().await.expect("message") {
        chunks.extend(message.chunks);
    }
    chunks
}

pub(crate) fn text(chunks: &[pb::LogChunk], action: &str) -> String {
    let bytes: Vec<u8> = chunks
        .iter()
        .filter(|c| c.action_run.ends_with(action))
        .flat_map(|c| c.data.clone())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_stored_in_order_and_capped() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        // 200 KiB of output against the 64 KiB cap of the test control plane.
        let yaml = pipeline(
            "noisy",
            &repo,
            "for i in 1 2 3; do echo line-$i; echo err-$i >&2; done",
            "head -c 204800 /dev/zero | tr \"\\\\0\" x; echo; echo END",
            "",
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("noisy", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        let compile = done.stages[0].actions[0].name.clone();
        let deploy = done.stages[1].actions[0].name.clone();

        let all = read_logs(
            &mut cp,
            pb::StreamLogsRequest {
                name: started.name.clone(),
                ..Default::default()
            },
        )
        .await;
        let compile_text = text(&all, &compile);
        for i in 1..=3 {
            assert!(
                compile_text.contains(&format!("line-{i}\n")),
                "{compile_text}"
            );
            assert!(
                compile_text.contains(&format!("err-{i}\n")),
                "{compile_text}"
            );
        }
        let stdout_only: String = all
            .iter()
            .filter(|c| c.action_run == compile && c.stream == pb::LogStream::Stdout as i32)
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect();
        assert_eq!(
            stdout_only, "line-1\nline-2\nline-3\n",
            "stdout keeps its order"
        );
        let mut offsets: Vec<i64> = all
            .iter()
            .filter(|c| c.action_run == compile)
            .map(|c| c.offset)
            .collect();
        let sorted = {
            let mut o = offsets.clone();
            o.sort_unstable();
            o
        };
        assert_eq!(offsets, sorted, "chunks come in offset order");
        offsets.dedup();

        let deploy_chunks: Vec<&pb::LogChunk> =
            all.iter().filter(|c| c.action_run == deploy).collect();
        let stored: usize = deploy_chunks
            .iter()
            .filter(|c| !c.truncated)
            .map(|c| c.data.len())
            .sum();
        assert_eq!(stored, 64 * 1024, "output beyond the cap is dropped");
        let marker = deploy_chunks.last().expect("chunks");
        assert!(marker.truncated, "a marker ends a truncated log");
        assert!(String::from_utf8_lossy(&marker.data).contains("truncated"));

        // Filtering by stage, and resuming after a token.
        let build_only = read_logs(
            &mut cp,
            pb::StreamLogsRequest {
                name: started.name.clone(),
                stage: "build".into(),
                ..Default::default()
            },
        )
        .await;
        assert!(build_only.iter().all(|c| c.action_run == compile));
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_streams_output_until_the_execution_ends() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        let yaml = pipeline(
            "slow",
            &repo,
            "echo first; sleep 1; echo second",
            "echo deployed",
            "",
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("slow", "").await;
        let request = pb::StreamLogsRequest {
            name: started.name.clone(),
            follow: true,
            ..Default::default()
        };
        let chunks = tokio::time::timeout(Duration::from_secs(60), read_logs(&mut cp, request))
            .await
            .expect("the stream ends when the execution does");
        let all: String = chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect();
        assert_eq!(all, "first\nsecond\ndeployed\n");
        cp.stop().await;
        backend.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_is_stored_byte_for_byte() {
    for backend in backends().await {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cp = ControlPlane::start(&backend, 30).await;
        let repo = git_repo(dir.path());
        // Not UTF-8: NUL, 0xff, 0xfe, a lone continuation byte, then random bytes.
        let yaml = pipeline(
            "binary",
            &repo,
            "printf \"\\\\000\\\\377\\\\376\\\\200end\"",
            "head -c 30000 /dev/urandom",
            "",
        );
        cp.apply(&yaml).await;
        cp.start_worker();
        let started = cp.start_execution("binary", "").await;
        let done = cp.wait_done(&started.name, Duration::from_secs(60)).await;
        assert_eq!(
            done.state,
            pb::ExecutionState::Succeeded as i32,
            "{done:#?}"
        );
        let chunks = read_logs(
            &mut cp,
            pb::StreamLogsRequest {
                name: started.name.clone(),
                ..Default::default()
            },
        )
        .await;
        let bytes = |action: &str, stream: pb::LogStream| -> Vec<u8> {
            chunks
                .iter()
                .filter(|c| c.action_run.ends_with(action) && c.stream == stream as i32)
                .flat_map(|c| c.data.clone())
                .collect()
        };
        let compile = done.stages[0].actions[0].name.clone();
        let deploy = done.stages[1].actions[0].name.clone();
        assert_eq!(
            bytes(&compile, pb::LogStream::Stdout),
            b"\x00\xff\xfe\x80end".to_vec()
        );
        assert_eq!(bytes(&deploy, pb::LogStream::Stdout).len(), 30000);
        cp.stop().await;
        backend.cleanup().await;
    }
}
