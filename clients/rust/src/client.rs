//! Connecting to Conveyor services, and the one retry policy every client uses.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// The default address of `conveyor dev` and of a local service.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7700";

/// Opens a channel to `endpoint` (e.g. `http://127.0.0.1:7700`).
///
/// The channel connects lazily, so this fails only on a malformed address;
/// the first call reports an unreachable server as UNAVAILABLE.
pub fn channel(endpoint: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(endpoint.to_owned())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Exponential backoff bounded by a total deadline.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        RetryPolicy {
            deadline: Duration::ZERO,
            ..Self::default()
        }
    }

    /// Runs `call` until it succeeds, fails with a code that is not worth
    /// retrying, or the deadline passes. Calls must be idempotent: mutations
    /// carry a `request_id` for that.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let start = tokio::time::Instant::now();
        let mut backoff = self.initial_backoff;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(status) => {
                    let elapsed = start.elapsed();
                    if !should_retry(status.code()) || elapsed + backoff > self.deadline {
                        return Err(status);
                    }
                    tracing::debug!(code = ?status.code(), backoff_ms = backoff.as_millis() as u64, "retrying call");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.max_backoff);
                }
            }
        }
    }
}

/// Whether a call that failed with `code` may succeed if sent again.
pub fn should_retry(code: Code) -> bool {
    match code {
        Code::Unavailable | Code::ResourceExhausted | Code::Aborted | Code::DeadlineExceeded => {
            true
        }
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss
        | Code::Unauthenticated => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_unavailable_then_succeeds() {
        let calls = AtomicU32::new(0);
        let result = RetryPolicy::default()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Status::unavailable("down"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.map_err(|s| s.code()), Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn never_retries_invalid_argument() {
        let calls = AtomicU32::new(0);
        let result: Result<(), Status> = RetryPolicy::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Status::invalid_argument("bad"))
            })
            .await;
        assert_eq!(result.map_err(|s| s.code()), Err(Code::InvalidArgument));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            deadline: Duration::from_secs(1),
            ..RetryPolicy::default()
        };
        let result: Result<(), Status> = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Status::unavailable("down"))
            })
            .await;
        assert!(result.is_err());
        // 50 + 100 + 200 + 400 ms fit in one second; the next 800 ms do not.
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }
}
