//! Revisions are immutable, so a revision read once can be served from
//! memory forever after: keyed by (pipeline row id, revision number), which a
//! deleted and re-created pipeline never reuses. Bounded, first in, first out;
//! a few lines instead of a cache dependency.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use super::records::RevisionRecord;

pub struct RevisionCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(i64, i64), Arc<RevisionRecord>>,
    order: VecDeque<(i64, i64)>,
}

impl RevisionCache {
    pub fn new(capacity: usize) -> Self {
        RevisionCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, pipeline_id: i64, revision: i64) -> Option<Arc<RevisionRecord>> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.entries.get(&(pipeline_id, revision)).cloned()
    }

    pub fn insert(&self, pipeline_id: i64, record: RevisionRecord) -> Arc<RevisionRecord> {
        let key = (pipeline_id, record.revision);
        let record = Arc::new(record);
        if self.capacity == 0 {
            return record;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if inner.entries.insert(key, record.clone()).is_none() {
            inner.order.push_back(key);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.entries.remove(&old);
                }
            }
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: i64) -> RevisionRecord {
        RevisionRecord {
            pipeline: "p".into(),
            revision,
            spec_sha256: String::new(),
            author: String::new(),
            message: String::new(),
            source: String::new(),
            source_format: super::super::SourceFormat::Yaml,
            canonical_spec: String::new(),
            non_conformance_accepted: false,
            conformance: Default::default(),
            create_time: chrono::Utc::now(),
        }
    }

    #[test]
    fn evicts_the_oldest_beyond_capacity() {
        let cache = RevisionCache::new(2);
        cache.insert(1, record(1));
        cache.insert(1, record(2));
        cache.insert(1, record(2));
        assert!(cache.get(1, 1).is_some());
        cache.insert(2, record(1));
        assert!(cache.get(1, 1).is_none(), "the oldest entry went first");
        assert!(cache.get(1, 2).is_some());
        assert!(cache.get(2, 1).is_some());
    }
}
