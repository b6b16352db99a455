//! Work queues and the event stream, behind one small trait with two
//! implementations: Redis Streams for the distributed deployment, and an
//! in-process queue for `conveyor dev` and unit tests.
//!
//! # Redis design
//!
//! - One stream per topic, key `{prefix}:v1:{stream}` (the prefix lets tests
//!   and several installations share a Redis; `v1` versions the payloads).
//! - Readers belong to a consumer group (`XGROUP CREATE ... MKSTREAM`, made on
//!   first read), so each message goes to one consumer of the group; the
//!   metrics service and later consumers of the event stream each have
//!   their own group.
//! - Payloads are protobuf or JSON bytes under the field `p`.
//! - Streams are capped (`XADD MAXLEN ~`): Redis carries work and events,
//!   Postgres is the record. Losing Redis loses no execution: the execution
//!   service's outbox re-relays unsent rows and its reconciler re-dispatches
//!   queued work that no worker picked up.
//! - Blocking reads use their own connection with a response timeout longer
//!   than the block, so they never stall the publishing connection.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamMaxlen, StreamReadOptions, StreamReadReply};
use tokio::sync::Notify;

/// Roughly how many messages a stream keeps.
const MAX_STREAM_LEN: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// One message handed to a reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub payload: Vec<u8>,
}

#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<(), QueueError>;

    /// A reader of `stream` in consumer group `group`.
    async fn reader(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn Reader>, QueueError>;
}

#[async_trait::async_trait]
pub trait Reader: Send {
    /// Up to `max` new messages, waiting at most `block` for the first.
    async fn next(&mut self, block: Duration, max: usize) -> Result<Vec<Delivery>, QueueError>;

    /// Marks a message handled.
    async fn ack(&mut self, id: &str) -> Result<(), QueueError>;

    /// Marks messages handled, in one round trip where the queue can.
    async fn ack_all(&mut self, ids: &[String]) -> Result<(), QueueError> {
        for id in ids {
            self.ack(id).await?;
        }
        Ok(())
    }
}

/// Redis Streams with consumer groups.
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    writer: ConnectionManager,
    prefix: String,
}

impl RedisQueue {
    /// Connects to `url` (`redis://host:6379/`); keys start with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, QueueError> {
        let client = redis::Client::open(url)?;
        let writer = client.get_connection_manager().await?;
        Ok(RedisQueue {
            client,
            writer,
            prefix: prefix.to_owned(),
        })
    }

    pub fn key(&self, stream: &str) -> String {
        format!("{}:v1:{stream}", self.prefix)
    }
}

#[async_trait::async_trait]
impl Queue for RedisQueue {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<(), QueueError> {
        let mut con = self.writer.clone();
        let _: Option<String> = con
            .xadd_maxlen(
                self.key(stream),
                StreamMaxlen::Approx(MAX_STREAM_LEN),
                "*",
                &[("p", payload)],
            )
            .await?;
        Ok(())
    }

    async fn reader(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Box<dyn Reader>, QueueError> {
        let config =
            ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(35)));
        let con = self
            .client
            .get_connection_manager_with_config(config)
            .await?;
        let mut reader = RedisReader {
            con,
            key: self.key(stream),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            backlog: true,
        };
        reader.ensure_group().await?;
        Ok(Box::new(reader))
    }
}

struct RedisReader {
    con: ConnectionManager,
    key: String,
    group: String,
    consumer: String,
    /// Until drained: this consumer's messages delivered before and never
    /// acknowledged (it stopped mid-batch); they are read again first.
    backlog: bool,
}

impl RedisReader {
    /// Creates the group (and stream) unless it exists; after a FLUSHALL
    /// the next read calls this again.
    async fn ensure_group(&mut self) -> Result<(), QueueError> {
        let created: Result<(), redis::RedisError> = self
            .con
            .xgroup_create_mkstream(&self.key, &self.group, "0")
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl Reader for RedisReader {
    async fn next(&mut self, block: Duration, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let mut options = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(max.max(1));
        let from = if self.backlog {
            "0"
        } else {
            options = options.block(block.as_millis().min(30_000) as usize);
            ">"
        };
        let reply: Result<Option<StreamReadReply>, redis::RedisError> = self
            .con
            .xread_options(&[&self.key], &[from], &options)
            .await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOGROUP") => {
                self.ensure_group().await?;
                return Ok(Vec::new());
            }
            other => other?,
        };
        let mut out = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let payload = match entry.map.get("p") {
                    Some(redis::Value::BulkString(bytes)) => bytes.clone(),
                    _ => Vec::new(),
                };
                out.push(Delivery {
                    id: entry.id,
                    payload,
                });
            }
        }
        if self.backlog && out.is_empty() {
            self.backlog = false;
            return self.next(block, max).await;
        }
        Ok(out)
    }

    async fn ack(&mut self, id: &str) -> Result<(), QueueError> {
        let _: i64 = self.con.xack(&self.key, &self.group, &[id]).await?;
        Ok(())
    }

    async fn ack_all(&mut self, ids: &[String]) -> Result<(), QueueError> {
        if !ids.is_empty() {
            let _: i64 = self.con.xack(&self.key, &self.group, ids).await?;
        }
        Ok(())
    }
}

/// The same contract in memory: one log per stream, one cursor per group.
#[derive(Clone, Default)]
pub struct InProcessQueue {
    inner: Arc<Mutex<HashMap<String, Log>>>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct Log {
    next_id: u64,
    messages: VecDeque<(u64, Vec<u8>)>,
    /// Per group: the id of the next message to deliver.
    cursors: HashMap<String, u64>,
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn take(&self, stream: &str, group: &str, max: usize) -> Vec<Delivery> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let log = inner.entry(stream.to_owned()).or_default();
        let first = log.messages.front().map_or(log.next_id, |(id, _)| *id);
        let cursor = *log.cursors.entry(group.to_owned()).or_insert(first);
        let out: Vec<Delivery> = log
            .messages
            .iter()
            .filter(|(id, _)| *id >= cursor)
            .take(max)
            .map(|(id, payload)| Delivery {
                id: id.to_string(),
                payload: payload.clone(),
            })
            .collect();
        if let Some(last) = out.last().and_then(|d| d.id.parse::<u64>().ok()) {
            log.cursors.insert(group.to_owned(), last + 1);
        }
        out
    }
}

#[async_trait::async_trait]
impl Queue for InProcessQueue {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<(), QueueError> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let log = inner.entry(stream.to_owned()).or_default();
            log.messages.push_back((log.next_id, payload.to_vec()));
            log.next_id += 1;
            while log.messages.len() > MAX_STREAM_LEN {
                log.messages.pop_front();
            }
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn reader(
        &self,
        stream: &str,
        group: &str,
        _consumer: &str,
    ) -> Result<Box<dyn Reader>, QueueError> {
        Ok(Box::new(InProcessReader {
            queue: self.clone(),
            stream: stream.to_owned(),
            group: group.to_owned(),
        }))
    }
}

struct InProcessReader {
    queue: InProcessQueue,
    stream: String,
    group: String,
}

#[async_trait::async_trait]
impl Reader for InProcessReader {
    async fn next(&mut self, block: Duration, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            let notified = self.queue.notify.notified();
            let out = self.queue.take(&self.stream, &self.group, max.max(1));
            if !out.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(out);
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    async fn ack(&mut self, _id: &str) -> Result<(), QueueError> {
        Ok(())
    }
}

/// A queue from configuration: Redis when a URL is given, else in process.
pub async fn from_url(url: Option<&str>, prefix: &str) -> Result<Arc<dyn Queue>, QueueError> {
    match url.filter(|u| !u.is_empty()) {
        Some(url) => Ok(Arc::new(RedisQueue::connect(url, prefix).await?)),
        None => Ok(Arc::new(InProcessQueue::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract both implementations keep.
    async fn contract(queue: Arc<dyn Queue>) {
        let mut a = queue
            .reader("jobs", "workers", "a")
            .await
            .expect("reader a");
        let mut b = queue
            .reader("jobs", "workers", "b")
            .await
            .expect("reader b");
        let mut other = queue
            .reader("jobs", "metrics", "m")
            .await
            .expect("reader m");
        for i in 0..4u8 {
            queue.publish("jobs", &[i]).await.expect("publish");
        }
        let mut seen = Vec::new();
        for reader in [&mut a, &mut b] {
            for d in reader
                .next(Duration::from_millis(200), 2)
                .await
                .expect("next")
            {
                seen.push(d.payload[0]);
                reader.ack(&d.id).await.expect("ack");
            }
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            vec![0, 1, 2, 3],
            "each message to one consumer of the group"
        );
        let all: Vec<u8> = other
            .next(Duration::from_millis(200), 10)
            .await
            .expect("next")
            .iter()
            .map(|d| d.payload[0])
            .collect();
        assert_eq!(all, vec![0, 1, 2, 3], "every group sees every message");
        let empty = a.next(Duration::from_millis(50), 10).await.expect("next");
        assert!(empty.is_empty());
        // A blocked reader wakes when a message arrives.
        let waiter = tokio::spawn(async move { a.next(Duration::from_secs(5), 1).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        queue.publish("jobs", b"late").await.expect("publish");
        let got = waiter.await.expect("join").expect("next");
        assert_eq!(got[0].payload, b"late");
    }

    #[tokio::test]
    async fn in_process_queue_keeps_the_contract() {
        contract(Arc::new(InProcessQueue::new())).await;
    }

    #[tokio::test]
    async fn redis_queue_keeps_the_contract() {
        let Ok(url) = std::env::var("CONVEYOR_TEST_REDIS_URL") else {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set CONVEYOR_TEST_REDIS_URL"
            );
            return;
        };
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let queue = RedisQueue::connect(&url, &prefix)
            .await
            .expect("connect to CONVEYOR_TEST_REDIS_URL");
        contract(Arc::new(queue.clone())).await;
        // A consumer that stopped before acknowledging gets its messages
        // again when it comes back under the same name.
        let mut first = queue.reader("work", "g", "c1").await.expect("reader");
        queue.publish("work", b"x").await.expect("publish");
        let got = first.next(Duration::from_secs(1), 10).await.expect("next");
        assert_eq!(got.len(), 1);
        drop(first);
        let mut again = queue.reader("work", "g", "c1").await.expect("reader");
        let redelivered = again.next(Duration::from_secs(1), 10).await.expect("next");
        assert_eq!(redelivered, got, "the pending message comes back first");
        again.ack(&redelivered[0].id).await.expect("ack");
        let mut last = queue.reader("work", "g", "c1").await.expect("reader");
        assert!(
            last.next(Duration::from_millis(100), 10)
                .await
                .expect("next")
                .is_empty()
        );
        let mut con = queue.writer.clone();
        let _: i64 = con.del(queue.key("jobs")).await.expect("cleanup");
        let _: i64 = con.del(queue.key("work")).await.expect("cleanup");
    }
}

/// The stream a worker pool's dispatches go to.
pub fn dispatch_stream(pool: &str) -> String {
    format!("dispatch.{pool}")
}

/// The stream every execution event goes to (`conveyor.events.v1.Event`).
pub const EVENTS_STREAM: &str = "events";

/// A dispatch message: "attempt N of this action run waits for a worker".
/// Tagged with its version so the format can change compatibly.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "v")]
pub enum Dispatch {
    #[serde(rename = "1", rename_all = "camelCase")]
    V1 {
        action_run: String,
        attempt: i32,
        /// W3C trace context of the change that queued the attempt.
        #[serde(default)]
        traceparent: String,
    },
}

impl Dispatch {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}
