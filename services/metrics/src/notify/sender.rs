//! Delivers recorded notices: due deliveries are sent, and each attempt is
//! recorded (state, attempts, response code, error). A failed attempt is
//! retried with exponential backoff (1 s, 2 s, 4 s, ... at most 5 min)
//! until `MAX_ATTEMPTS`; an answer that retrying cannot fix (HTTP 4xx but
//! 408 and 429, a permanent SMTP error) ends it at once. One replica sends
//! at a time (a Postgres advisory lock).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;

use super::channels::Channels;
use super::{Channel, Notice};
use crate::store::Store;
use crate::store::entities::delivery;
use crate::store::notifications::state;

/// Attempts per delivery before it is given up.
pub const MAX_ATTEMPTS: i32 = 6;
/// The advisory-lock key of the sender ("conveyor-metrics-notify").
const LEADER_KEY: i64 = 0x636f_6e76_6e6f_7466;

pub struct Sender {
    pub store: Store,
    pub channels: Channels,
    pub database_url: String,
    /// Rung when new deliveries are recorded, so they go out at once.
    pub wake: Arc<Notify>,
}

/// The wait before attempt `attempts + 1`.
pub fn backoff(attempts: i32) -> Duration {
    Duration::from_secs(1u64 << attempts.clamp(1, 20).saturating_sub(1))
        .min(Duration::from_secs(300))
}

impl Sender {
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let mut leader = conveyor_platform::database::Leader::new(
            self.database_url.clone(),
            LEADER_KEY,
            "notifications",
        );
        loop {
            // A wake-up while sending is kept for the next pass.
            let woken = self.wake.notified();
            if leader.holds().await {
                match self.store.due_deliveries(Utc::now(), 100).await {
                    Ok(due) => {
                        for d in due {
                            self.attempt(d).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read due deliveries"),
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), woken).await;
        }
    }

    async fn attempt(&self, mut d: delivery::Model) {
        let rule = self.store.rule(&d.rule).await;
        let notice: Option<Notice> = serde_json::from_str(&d.notice).ok();
        let now = Utc::now();
        d.attempts += 1;
        d.last_attempt_time = Some(now);
        let outcome = match (&rule, notice) {
            (Ok(rule), Some(notice)) => match serde_json::from_str::<Channel>(&rule.channel) {
                Ok(channel) => self.channels.send(&channel, &notice).await,
                Err(e) => Err(super::channels::Failure {
                    message: format!("the rule's channel is unreadable: {e}"),
                    code: 0,
                    retry: false,
                }),
            },
            (Err(_), _) => Err(super::channels::Failure {
                message: "the rule was deleted".to_owned(),
                code: 0,
                retry: false,
            }),
            (_, None) => Err(super::channels::Failure {
                message: "the stored notice is unreadable".to_owned(),
                code: 0,
                retry: false,
            }),
        };
        match outcome {
            Ok(code) => {
                d.state = state::SUCCEEDED.to_owned();
                d.response_code = code;
                d.last_error.clear();
            }
            Err(f) => {
                d.response_code = f.code;
                d.last_error = f.message;
                if f.retry && d.attempts < MAX_ATTEMPTS {
                    d.state = state::RETRYING.to_owned();
                    d.next_attempt_time = now
                        + chrono::Duration::from_std(backoff(d.attempts))
                            .unwrap_or(chrono::Duration::seconds(300));
                } else {
                    d.state = state::FAILED.to_owned();
                }
                tracing::warn!(delivery = %d.id, rule = %d.rule, attempts = d.attempts, error = %d.last_error, state = %d.state, "notification attempt failed");
            }
        }
        if let Err(e) = self.store.record_attempt(d).await {
            tracing::warn!(error = %e, "cannot record a notification attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<u64> = (1..=5).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
