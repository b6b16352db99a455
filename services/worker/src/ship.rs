//! Shipping an attempt's output to the execution service while it runs:
//! batched (up to 64 KiB or 200 ms), numbered by byte offset so a resend
//! is harmless, and abandoned when the service says the cap was reached.
//! Shipping never holds up the command: after repeated failures the rest
//! of the output is dropped (the report still carries its tail).

use std::time::Duration;

use conveyor_api::execution::v1 as pb;
use conveyor_api::execution::v1::worker_service_client::WorkerServiceClient;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::runner::Pipe;

const BATCH_BYTES: usize = 64 * 1024;
const BATCH_WAIT: Duration = Duration::from_millis(200);

pub struct Shipper {
    pub client: WorkerServiceClient<Channel>,
    pub action_run: String,
    pub attempt: i32,
    pub worker: String,
}

impl Shipper {
    /// Ships everything received until the sending side closes.
    pub async fn run(mut self, mut output: mpsc::Receiver<(Pipe, Vec<u8>)>) {
        let mut offset: i64 = 0;
        let mut batch: Vec<pb::LogChunk> = Vec::new();
        let mut batch_bytes = 0;
        let mut open = true;
        let mut shipping = true;
        while open {
            let deadline = tokio::time::Instant::now() + BATCH_WAIT;
            while batch_bytes < BATCH_BYTES {
                match tokio::time::timeout_at(deadline, output.recv()).await {
                    Ok(Some((pipe, data))) => {
                        if !shipping {
                            continue;
                        }
                        batch_bytes += data.len();
                        let len = data.len() as i64;
                        batch.push(pb::LogChunk {
                            action_run: self.action_run.clone(),
                            attempt: self.attempt,
                            stream: match pipe {
                                Pipe::Stdout => pb::LogStream::Stdout,
                                Pipe::Stderr => pb::LogStream::Stderr,
                                Pipe::System => pb::LogStream::System,
                            } as i32,
                            offset,
                            data,
                            ..Default::default()
                        });
                        offset += len;
                    }
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            let chunks = std::mem::take(&mut batch);
            batch_bytes = 0;
            shipping = shipping && self.send(chunks).await;
        }
    }

    /// Sends one batch; false when shipping should stop.
    async fn send(&mut self, chunks: Vec<pb::LogChunk>) -> bool {
        let request = pb::AppendLogsRequest {
            action_run: self.action_run.clone(),
            attempt: self.attempt,
            worker: self.worker.clone(),
            chunks,
        };
        for delay in [100, 500, 2000] {
            match self.client.append_logs(request.clone()).await {
                Ok(response) => return !response.into_inner().truncated,
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                Err(status) => {
                    tracing::debug!(code = ?status.code(), "log shipping stopped");
                    return false;
                }
            }
        }
        tracing::warn!("log shipping gave up after repeated failures");
        false
    }
}
