//! Per experiment and variant counters of exported (deduped) exposures, read by
//! `/metrics` as `exposures_total{experiment, variant}`.
//!
//! The hot path takes a read lock and bumps an atomic; the write lock is taken
//! only the first time an experiment/variant pair is seen. The set of pairs is
//! bounded by the configs (experiments times variants), and counters are never
//! reset, as Prometheus counters must not go down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

type Variants = HashMap<Box<str>, AtomicU64>;

/// Monotonic exposure counters by experiment and variant.
#[derive(Debug, Default)]
pub struct Counts {
    map: RwLock<HashMap<Box<str>, Variants>>,
}

impl Counts {
    /// Adds one exposure of `variant` of `experiment`.
    pub fn add(&self, experiment: &str, variant: &str) {
        {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = map.get(experiment).and_then(|v| v.get(variant)) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.entry(experiment.into())
            .or_default()
            .entry(variant.into())
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The count for one pair (0 if never seen).
    pub fn get(&self, experiment: &str, variant: &str) -> u64 {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(experiment)
            .and_then(|v| v.get(variant))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every `(experiment, variant, count)`, sorted, for the metrics endpoint.
    pub fn snapshot(&self) -> Vec<(String, String, u64)> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = map
            .iter()
            .flat_map(|(e, vs)| {
                vs.iter()
                    .map(move |(v, c)| (e.to_string(), v.to_string(), c.load(Ordering::Relaxed)))
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_pair_across_threads() {
        let c = std::sync::Arc::new(Counts::default());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        c.add("exp", if (i + t) % 2 == 0 { "a" } else { "b" });
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        c.add("other", "x");
        assert_eq!(c.get("exp", "a"), 2000);
        assert_eq!(c.get("exp", "b"), 2000);
        assert_eq!(c.get("exp", "c"), 0);
        assert_eq!(
            c.snapshot(),
            vec![
                ("exp".into(), "a".into(), 2000),
                ("exp".into(), "b".into(), 2000),
                ("other".into(), "x".into(), 1)
            ]
        );
    }
}
