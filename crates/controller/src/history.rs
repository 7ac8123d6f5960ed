//! Metrics history for dashboards: every probe's values at full resolution for a recent
//! window (in memory), and per-minute rollups (avg/min/max) beyond it (in the store),
//! both bounded by settings.
//!
//! Raw points are deliberately not persisted: they are many, cheap to lose, and
//! long-term series belong in Prometheus (GET /metrics). Rollups survive restarts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use nines_store::{Rollup, Store, StoreError};

/// Retention settings.
#[derive(Debug, Clone)]
pub struct HistoryConfig {
    /// How long full-resolution points are kept.
    pub raw_window: Duration,
    /// How long per-minute rollups are kept.
    pub rollup_retention: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Agg {
    sum: f64,
    min: f64,
    max: f64,
    n: i64,
}

type RawSeries = VecDeque<(DateTime<Utc>, f64)>;
/// Per node, per metric: looked up by `&str` on every probe, so that recording a node's
/// values allocates nothing once its series exist.
type PerNode<T> = HashMap<String, HashMap<String, T>>;

/// Raw ring buffers and the minutes being aggregated, per node and metric.
pub struct MetricsHistory {
    config: HistoryConfig,
    raw: Mutex<PerNode<RawSeries>>,
    pending: Mutex<BTreeMap<DateTime<Utc>, PerNode<Agg>>>,
}

/// The series of `node`, created when it is new (the only time its name is copied).
fn node_series<'a, T>(map: &'a mut PerNode<T>, node: &str) -> Option<&'a mut HashMap<String, T>> {
    if !map.contains_key(node) {
        map.insert(node.to_string(), HashMap::new());
    }
    map.get_mut(node)
}

/// Applies `f` to the entry of `key`, creating it with `new` when absent (the only time
/// the key is copied).
fn update<T>(
    map: &mut HashMap<String, T>,
    key: &str,
    new: impl FnOnce() -> T,
    f: impl FnOnce(&mut T),
) {
    match map.get_mut(key) {
        Some(v) => f(v),
        None => {
            let mut v = new();
            f(&mut v);
            map.insert(key.to_string(), v);
        }
    }
}

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

impl MetricsHistory {
    pub fn new(config: HistoryConfig) -> Self {
        Self {
            config,
            raw: Mutex::new(HashMap::new()),
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.config
    }

    /// Records one probe's values of one node.
    pub fn record(&self, node: &str, at: DateTime<Utc>, values: &[(&str, f64)]) {
        if values.is_empty() {
            return;
        }
        let horizon =
            at - TimeDelta::from_std(self.config.raw_window).unwrap_or(TimeDelta::minutes(15));
        if let Ok(mut raw) = self.raw.lock()
            && let Some(series) = node_series(&mut raw, node)
        {
            for (metric, v) in values {
                update(series, metric, RawSeries::new, |q| {
                    q.push_back((at, *v));
                    while q.front().is_some_and(|(t, _)| *t < horizon) {
                        q.pop_front();
                    }
                });
            }
        }
        let minute = minute_of(at);
        if let Ok(mut pending) = self.pending.lock()
            && let Some(series) = node_series(pending.entry(minute).or_default(), node)
        {
            for (metric, v) in values {
                let new = || Agg {
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    n: 0,
                };
                update(series, metric, new, |a| {
                    a.sum += v;
                    a.min = a.min.min(*v);
                    a.max = a.max.max(*v);
                    a.n += 1;
                });
            }
        }
    }

    /// Full-resolution points of one series since `since` (within the raw window).
    pub fn raw(&self, node: &str, metric: &str, since: DateTime<Utc>) -> Vec<(DateTime<Utc>, f64)> {
        self.raw
            .lock()
            .ok()
            .and_then(|raw| {
                raw.get(node)
                    .and_then(|m| m.get(metric))
                    .map(|q| q.iter().filter(|(t, _)| *t >= since).copied().collect())
            })
            .unwrap_or_default()
    }

    /// Names of the metrics recorded for a node.
    pub fn metric_names(&self, node: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .raw
            .lock()
            .map(|raw| {
                raw.get(node)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Forgets a node's raw series (it left the inventory).
    pub fn forget(&self, node: &str) {
        if let Ok(mut raw) = self.raw.lock() {
            raw.remove(node);
        }
    }

    /// Writes the rollups of finished minutes to the store and prunes old ones.
    pub async fn flush(&self, store: &dyn Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let current = minute_of(now);
        let done: Vec<Rollup> = {
            let Ok(mut pending) = self.pending.lock() else {
                return Ok(0);
            };
            let keep = pending.split_off(&current);
            let finished = std::mem::replace(&mut *pending, keep);
            let mut rollups = Vec::new();
            for (minute, nodes) in finished {
                for (node, metrics) in nodes {
                    for (metric, a) in metrics {
                        rollups.push(Rollup {
                            node: node.clone(),
                            metric,
                            minute,
                            avg: a.sum / a.n as f64,
                            min: a.min,
                            max: a.max,
                            samples: a.n,
                        });
                    }
                }
            }
            rollups
        };
        store.insert_rollups(&done).await?;
        let retention =
            TimeDelta::from_std(self.config.rollup_retention).unwrap_or(TimeDelta::days(7));
        store.prune_rollups(now - retention).await?;
        Ok(done.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_window_is_bounded() {
        let h = MetricsHistory::new(HistoryConfig {
            raw_window: Duration::from_secs(60),
            rollup_retention: Duration::from_secs(3600),
        });
        let t0 = Utc::now();
        for i in 0..180 {
            h.record("n", t0 + TimeDelta::seconds(i), &[("q", i as f64)]);
        }
        let pts = h.raw("n", "q", t0);
        assert_eq!(pts.len(), 61, "only the last minute is kept");
        assert_eq!(pts.last().unwrap().1, 179.0);
        assert_eq!(h.metric_names("n"), vec!["q".to_string()]);
    }
}
