//! Turns cumulative status counters into per-second rates between two samples.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Counters that only grow (until a restart): reported as rates.
pub const COUNTERS: &[(&str, &str)] = &[
    ("Questions", "queries_per_second"),
    ("Com_select", "selects_per_second"),
    ("Com_insert", "inserts_per_second"),
    ("Com_update", "updates_per_second"),
    ("Com_delete", "deletes_per_second"),
    ("Com_commit", "commits_per_second"),
    ("Connections", "connections_per_second"),
    ("Aborted_connects", "aborted_connects_per_second"),
    ("Slow_queries", "slow_queries_per_second"),
    ("Bytes_received", "bytes_received_per_second"),
    ("Bytes_sent", "bytes_sent_per_second"),
    ("Innodb_rows_read", "innodb_rows_read_per_second"),
    ("Innodb_rows_inserted", "innodb_rows_inserted_per_second"),
    ("Innodb_rows_updated", "innodb_rows_updated_per_second"),
    ("Innodb_rows_deleted", "innodb_rows_deleted_per_second"),
    (
        "Innodb_buffer_pool_read_requests",
        "innodb_buffer_pool_read_requests_per_second",
    ),
    (
        "Innodb_buffer_pool_reads",
        "innodb_buffer_pool_disk_reads_per_second",
    ),
    (
        "Innodb_data_written",
        "innodb_data_written_bytes_per_second",
    ),
    (
        "Innodb_os_log_written",
        "innodb_log_written_bytes_per_second",
    ),
];

/// Values reported as they are.
pub const GAUGES: &[(&str, &str)] = &[
    ("Threads_running", "threads_running"),
    ("Threads_connected", "threads_connected"),
    (
        "Innodb_buffer_pool_pages_total",
        "innodb_buffer_pool_pages_total",
    ),
    (
        "Innodb_buffer_pool_pages_free",
        "innodb_buffer_pool_pages_free",
    ),
    (
        "Innodb_buffer_pool_pages_dirty",
        "innodb_buffer_pool_pages_dirty",
    ),
];

/// The previous sample's counters (in [`COUNTERS`] order), to diff against.
#[derive(Debug, Clone, Default)]
pub struct RateState {
    prev: Option<(DateTime<Utc>, u64, Vec<Option<u64>>)>,
}

/// Metric name and value; the names are [`COUNTERS`]' and [`GAUGES`]' (nothing is
/// allocated per probe for them).
pub type Rates = Vec<(&'static str, f64)>;

impl RateState {
    /// Rates and gauges from this sample; rates are absent on the first sample and after
    /// a server restart (uptime went back), when a difference would be meaningless.
    pub fn update(
        &mut self,
        at: DateTime<Utc>,
        uptime: u64,
        status: &BTreeMap<String, u64>,
    ) -> Rates {
        let mut out = Vec::with_capacity(GAUGES.len() + COUNTERS.len());
        for (var, name) in GAUGES {
            if let Some(v) = status.get(*var) {
                out.push((*name, *v as f64));
            }
        }
        let now: Vec<Option<u64>> = COUNTERS
            .iter()
            .map(|(var, _)| status.get(*var).copied())
            .collect();
        if let Some((prev_at, prev_uptime, prev)) = &self.prev {
            let dt = (at - *prev_at).num_milliseconds() as f64 / 1000.0;
            if dt > 0.0 && uptime >= *prev_uptime {
                for (((_, name), cur), old) in COUNTERS.iter().zip(&now).zip(prev) {
                    if let (Some(cur), Some(old)) = (cur, old)
                        && cur >= old
                    {
                        out.push((*name, (cur - old) as f64 / dt));
                    }
                }
            }
        }
        self.prev = Some((at, uptime, now));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_need_two_samples_and_skip_restarts() {
        let t0 = Utc::now();
        let mut r = RateState::default();
        let mut s = BTreeMap::from([
            ("Questions".to_string(), 100),
            ("Threads_running".to_string(), 3),
        ]);
        let get =
            |rates: &Rates, name: &str| rates.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let first = r.update(t0, 10, &s);
        assert_eq!(get(&first, "queries_per_second"), None);
        assert_eq!(get(&first, "threads_running"), Some(3.0));
        s.insert("Questions".into(), 300);
        let second = r.update(t0 + chrono::Duration::seconds(2), 12, &s);
        assert_eq!(get(&second, "queries_per_second"), Some(100.0));
        s.insert("Questions".into(), 5);
        let after_restart = r.update(t0 + chrono::Duration::seconds(3), 1, &s);
        assert_eq!(get(&after_restart, "queries_per_second"), None);
    }
}
