//! Running one attempt: check out the source, run the command with `sh -c`
//! in its own process group, enforce the timeout, and keep the tail of its
//! output for the report.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// How an attempt ended on this worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Exited {
        code: i32,
    },
    Signalled,
    TimedOut,
    /// Stopped on request (cancelled, or the attempt went stale).
    Stopped,
    /// It never started: the workspace or the checkout failed.
    SetupFailed(String),
}

/// What the command ran with.
pub struct Job<'a> {
    pub command: &'a str,
    pub workspace: &'a Path,
    pub env: HashMap<String, String>,
    pub timeout: Duration,
}

/// The last bytes of output kept for the report.
pub const OUTPUT_TAIL_BYTES: usize = 16 * 1024;

/// Which pipe output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    Stdout,
    Stderr,
    /// Lines written by the worker itself (artifact checks).
    System,
}

/// Where output goes as it is read (besides the tail kept for the report).
pub type OutputSink = mpsc::Sender<(Pipe, Vec<u8>)>;

/// Runs the job until it exits, times out, or `stop` turns true; output is
/// sent to `sink` as it arrives.
pub async fn run(
    job: Job<'_>,
    mut stop: watch::Receiver<bool>,
    sink: Option<OutputSink>,
) -> (Ended, String) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(job.command)
        .current_dir(job.workspace)
        .envs(&job.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                Ended::SetupFailed(format!("cannot start sh: {e}")),
                String::new(),
            );
        }
    };
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let sink2 = sink.clone();
    let output = tokio::spawn(async move {
        let (a, b) = tokio::join!(
            tail(stdout, Pipe::Stdout, sink),
            tail(stderr, Pipe::Stderr, sink2)
        );
        let mut text = a;
        text.push_str(&b);
        text
    });
    let kill = |group: Option<Pid>| {
        if let Some(group) = group {
            // The whole group: the shell and everything it started.
            let _ = killpg(group, Signal::SIGKILL);
        }
    };
    enum Why {
        Exited(std::io::Result<std::process::ExitStatus>),
        Timeout,
        Stop,
    }
    let why = tokio::select! {
        status = child.wait() => Why::Exited(status),
        () = tokio::time::sleep(job.timeout) => Why::Timeout,
        _ = stop.wait_for(|stop| *stop) => Why::Stop,
    };
    let ended = match why {
        Why::Exited(Ok(status)) => match status.code() {
            Some(code) => Ended::Exited { code },
            None => Ended::Signalled,
        },
        Why::Exited(Err(e)) => Ended::SetupFailed(format!("waiting for the command failed: {e}")),
        Why::Timeout | Why::Stop => {
            kill(group);
            let _ = child.wait().await;
            if matches!(why, Why::Timeout) {
                Ended::TimedOut
            } else {
                Ended::Stopped
            }
        }
    };
    // Children that outlived the shell would hold the pipes open.
    kill(group);
    let text = output.await.unwrap_or_default();
    (ended, text)
}

/// Reads a stream to its end, sending what it reads to `sink` and keeping
/// only the last [`OUTPUT_TAIL_BYTES`].
async fn tail(
    stream: Option<impl AsyncRead + Unpin>,
    pipe: Pipe,
    sink: Option<OutputSink>,
) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(sink) = &sink {
                    // Never wait for the shipper: when it falls behind (or gave
                    // up), output is dropped from the stored log rather than
                    // stalling the command; the report still carries the tail.
                    let _ = sink.try_send((pipe, buf[..n].to_vec()));
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * OUTPUT_TAIL_BYTES {
                    kept.drain(..kept.len() - OUTPUT_TAIL_BYTES);
                }
            }
        }
    }
    if kept.len() > OUTPUT_TAIL_BYTES {
        kept.drain(..kept.len() - OUTPUT_TAIL_BYTES);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A fresh directory for one attempt under `root`.
pub fn workspace_for(root: &Path, action_run: &str, attempt: i32) -> PathBuf {
    let id = action_run.rsplit('/').next().unwrap_or(action_run);
    root.join(format!("{id}-{attempt}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(command: &'a str, dir: &'a Path, timeout: Duration) -> Job<'a> {
        Job {
            command,
            workspace: dir,
            env: HashMap::from([("GREETING".to_owned(), "hello".to_owned())]),
            timeout,
        }
    }

    #[tokio::test]
    async fn runs_a_command_with_its_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_tx, rx) = watch::channel(false);
        let (ended, out) = run(
            job(
                "echo $GREETING; exit 3",
                dir.path(),
                Duration::from_secs(10),
            ),
            rx,
            None,
        )
        .await;
        assert_eq!(ended, Ended::Exited { code: 3 });
        assert_eq!(out.trim(), "hello");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_tx, rx) = watch::channel(false);
        let marker = dir.path().join("survived");
        let command = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let (ended, _) = run(
            job(&command, dir.path(), Duration::from_millis(300)),
            rx,
            None,
        )
        .await;
        assert_eq!(ended, Ended::TimedOut);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            !marker.exists(),
            "the background child was killed with its group"
        );
    }

    #[tokio::test]
    async fn stop_ends_the_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, rx) = watch::channel(false);
        let running = tokio::spawn(async move {
            let dir = dir;
            run(
                job("sleep 30", dir.path(), Duration::from_secs(60)),
                rx,
                None,
            )
            .await
            .0
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        tx.send(true).expect("send");
        assert_eq!(running.await.expect("join"), Ended::Stopped);
    }

    #[tokio::test]
    async fn keeps_only_the_tail_of_huge_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_tx, rx) = watch::channel(false);
        let (ended, out) = run(
            job(
                "head -c 1000000 /dev/zero | tr '\\0' 'x'; echo END",
                dir.path(),
                Duration::from_secs(20),
            ),
            rx,
            None,
        )
        .await;
        assert_eq!(ended, Ended::Exited { code: 0 });
        assert!(out.len() <= OUTPUT_TAIL_BYTES);
        assert!(out.trim_end().ends_with("END"));
    }
}
