//! A mergeable distribution of durations, for percentiles over rollups.
//!
//! Up to [`EXACT_LIMIT`] values it keeps the values themselves, so the
//! percentiles of a team's month are exact (nearest rank). Past that it
//! keeps counts in log-scale buckets (each 2 % wide) and a percentile is
//! the geometric middle of its bucket: within 1 % of the exact answer. The
//! count and the sum, and so the mean, are always exact.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The most values a sketch keeps exactly.
pub const EXACT_LIMIT: usize = 1024;
/// The ratio between successive bucket bounds.
const GAMMA: f64 = 1.02;
/// The bucket of zero (and of anything below a millisecond).
const ZERO: i32 = -1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sketch {
    pub count: i64,
    pub sum_ms: i64,
    /// The values, in milliseconds, while the sketch is exact.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<i64>,
    /// Bucket index → count, once it is not; bucket `i` holds
    /// `(GAMMA^(i-1), GAMMA^i]` milliseconds.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    buckets: BTreeMap<i32, i64>,
}

fn bucket(ms: i64) -> i32 {
    if ms < 1 {
        ZERO
    } else {
        ((ms as f64).ln() / GAMMA.ln()).ceil() as i32
    }
}

fn bucket_value(index: i32) -> i64 {
    if index == ZERO {
        0
    } else {
        (2.0 * GAMMA.powi(index) / (1.0 + GAMMA)).round() as i64
    }
}

impl Sketch {
    pub fn of(values: impl IntoIterator<Item = Duration>) -> Sketch {
        let mut s = Sketch::default();
        for v in values {
            s.add(v);
        }
        s
    }

    pub fn is_exact(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn add(&mut self, value: Duration) {
        let ms = value.num_milliseconds();
        self.count += 1;
        self.sum_ms += ms;
        if self.is_exact() && self.values.len() < EXACT_LIMIT {
            self.values.push(ms);
        } else {
            self.bucketize();
            *self.buckets.entry(bucket(ms)).or_default() += 1;
        }
    }

    /// Takes one occurrence of `value` out (a recovery that, seen from an
    /// earlier window's end, had not happened yet).
    pub fn remove(&mut self, value: Duration) {
        let ms = value.num_milliseconds();
        if self.is_exact() {
            let Some(i) = self.values.iter().position(|v| *v == ms) else {
                return;
            };
            self.values.swap_remove(i);
        } else {
            let Some(n) = self.buckets.get_mut(&bucket(ms)) else {
                return;
            };
            *n -= 1;
            if *n <= 0 {
                self.buckets.remove(&bucket(ms));
            }
        }
        self.count -= 1;
        self.sum_ms -= ms;
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.count += other.count;
        self.sum_ms += other.sum_ms;
        if self.is_exact()
            && other.is_exact()
            && self.values.len() + other.values.len() <= EXACT_LIMIT
        {
            self.values.extend_from_slice(&other.values);
            return;
        }
        self.bucketize();
        for v in &other.values {
            *self.buckets.entry(bucket(*v)).or_default() += 1;
        }
        for (i, n) in &other.buckets {
            *self.buckets.entry(*i).or_default() += n;
        }
    }

    fn bucketize(&mut self) {
        for v in std::mem::take(&mut self.values) {
            *self.buckets.entry(bucket(v)).or_default() += 1;
        }
    }

    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| Duration::milliseconds(self.sum_ms / self.count))
    }

    /// The nearest-rank percentile `p` (0..=100).
    pub fn percentile(&self, p: u32) -> Option<Duration> {
        if self.count <= 0 {
            return None;
        }
        if self.is_exact() {
            let mut sorted = self.values.clone();
            sorted.sort_unstable();
            let sorted: Vec<Duration> = sorted.into_iter().map(Duration::milliseconds).collect();
            return super::percentile(&sorted, p);
        }
        let total: i64 = self.buckets.values().sum();
        let rank = ((p as f64 / 100.0) * total as f64).ceil() as i64;
        let rank = rank.clamp(1, total.max(1));
        let mut seen = 0;
        for (i, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(Duration::milliseconds(bucket_value(*i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: i64) -> Duration {
        Duration::milliseconds(v)
    }

    #[test]
    fn small_sketches_are_exact_and_merge_exactly() {
        let mut a = Sketch::of([ms(10), ms(30)]);
        a.merge(&Sketch::of([ms(20)]));
        assert!(a.is_exact());
        assert_eq!(a.percentile(50), Some(ms(20)));
        assert_eq!(a.percentile(90), Some(ms(30)));
        assert_eq!(a.mean(), Some(ms(20)));
        a.remove(ms(30));
        assert_eq!((a.count, a.sum_ms), (2, 30));
        assert_eq!(a.percentile(100), Some(ms(20)));
        assert_eq!(Sketch::default().percentile(50), None);
    }

    #[test]
    fn large_sketches_stay_within_one_percent_whatever_the_merge_order() {
        // 1..=100,000 seconds in 50 parts merged together.
        let values: Vec<i64> = (1..=100_000).map(|s| s * 1000).collect();
        let mut merged = Sketch::default();
        for part in values.chunks(2000) {
            merged.merge(&Sketch::of(part.iter().copied().map(ms)));
        }
        assert!(!merged.is_exact());
        assert_eq!(merged.count, 100_000);
        assert_eq!(merged.sum_ms, values.iter().sum::<i64>());
        for (p, exact) in [(50, 50_000_000.0), (90, 90_000_000.0), (1, 1_000_000.0)] {
            let got = merged.percentile(p).unwrap().num_milliseconds() as f64;
            assert!((got - exact).abs() / exact < 0.01, "p{p}: {got} vs {exact}");
        }
        let one_by_one = Sketch::of(values.iter().copied().map(ms));
        assert_eq!(one_by_one.percentile(50), merged.percentile(50));
        let mut less = merged.clone();
        less.remove(ms(1000));
        assert_eq!(less.count, 99_999);
    }

    #[test]
    fn serialized_sketches_read_back_the_same() {
        let mut big = Sketch::of((0..2000).map(ms));
        big.add(ms(0));
        for s in [Sketch::of([ms(5)]), big] {
            let text = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<Sketch>(&text).unwrap(), s);
        }
    }
}
