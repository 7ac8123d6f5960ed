//! The query monitor's arithmetic: `performance_schema.events_statements_summary_by_digest`
//! holds counters since the server started (or the table was truncated); the monitor reads
//! it every advisor run and keeps what grew in between, so that "top queries in the last
//! hour" is a sum of deltas. The row without a digest is where the server counts
//! statements once the table is full: it is kept as the digest `overflow`, so that what
//! the table could not hold is visible rather than dropped.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The digest under which statements the full table could not hold are counted.
pub const OVERFLOW: &str = "overflow";

/// One row of the digest summary table (times in picoseconds, as the server keeps them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestRow {
    pub schema: String,
    /// None: the overflow row.
    pub digest: Option<String>,
    pub text: String,
    pub count: u64,
    pub sum_timer_ps: u64,
    pub max_timer_ps: u64,
    pub rows_examined: u64,
    pub rows_sent: u64,
}

impl DigestRow {
    pub fn key(&self) -> (String, String) {
        (
            self.schema.clone(),
            self.digest.clone().unwrap_or_else(|| OVERFLOW.to_string()),
        )
    }
}

/// What one digest did between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestDelta {
    pub schema: String,
    pub digest: String,
    pub text: String,
    pub count: u64,
    pub sum_timer_ps: u64,
    /// The largest single execution the server has seen of it (not a delta).
    pub max_timer_ps: u64,
    pub rows_examined: u64,
    pub rows_sent: u64,
}

/// The counters of each digest at the previous read.
pub type Previous = HashMap<(String, String), DigestRow>;

/// What grew since `prev`: digests that ran, with their deltas. A digest whose counters
/// went back (a restart, the table truncated) counts from zero.
pub fn deltas(prev: &Previous, now: &[DigestRow]) -> Vec<DigestDelta> {
    now.iter()
        .filter_map(|r| {
            let key = r.key();
            let (count, sum, ex, sent) = match prev.get(&key) {
                Some(p) if r.count >= p.count => (
                    r.count - p.count,
                    r.sum_timer_ps.saturating_sub(p.sum_timer_ps),
                    r.rows_examined.saturating_sub(p.rows_examined),
                    r.rows_sent.saturating_sub(p.rows_sent),
                ),
                _ => (r.count, r.sum_timer_ps, r.rows_examined, r.rows_sent),
            };
            (count > 0).then(|| DigestDelta {
                schema: key.0,
                digest: key.1,
                text: if r.digest.is_none() {
                    "(statements the full digest table could not count; raise performance_schema_digests_size)".into()
                } else {
                    r.text.clone()
                },
                count,
                sum_timer_ps: sum,
                max_timer_ps: r.max_timer_ps,
                rows_examined: ex,
                rows_sent: sent,
            })
        })
        .collect()
}

/// A top query as the API lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopQuery {
    pub digest: String,
    pub digest_text: String,
    pub schema: String,
    /// The node (host:port); null for a cluster-wide line.
    pub node: Option<String>,
    pub count: u64,
    pub total_time_ms: f64,
    pub avg_time_ms: f64,
    pub max_time_ms: f64,
    pub rows_examined: u64,
    pub rows_sent: u64,
    /// The first and last read in the window that saw it run.
    pub first_seen: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(digest: Option<&str>, count: u64, sum: u64, examined: u64) -> DigestRow {
        DigestRow {
            schema: "app".into(),
            digest: digest.map(str::to_string),
            text: "SELECT * FROM `t` WHERE `id` = ?".into(),
            count,
            sum_timer_ps: sum,
            max_timer_ps: 9,
            rows_examined: examined,
            rows_sent: count,
        }
    }

    #[test]
    fn deltas_count_what_ran_since_the_last_read() {
        let prev: Previous = [row(Some("a"), 10, 1000, 50), row(Some("b"), 5, 500, 5)]
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let now = vec![
            row(Some("a"), 14, 1400, 70), // ran 4 more times
            row(Some("b"), 5, 500, 5),    // idle: left out
            row(Some("c"), 2, 80, 2),     // new since the last read
            row(Some("d"), 0, 0, 0),      // never ran
        ];
        let d = deltas(&prev, &now);
        let got: Vec<(&str, u64, u64, u64)> = d
            .iter()
            .map(|x| (x.digest.as_str(), x.count, x.sum_timer_ps, x.rows_examined))
            .collect();
        assert_eq!(got, vec![("a", 4, 400, 20), ("c", 2, 80, 2)]);
    }

    #[test]
    fn a_reset_counts_from_zero_and_the_overflow_row_is_kept() {
        let prev: Previous = [row(Some("a"), 100, 1000, 50)]
            .into_iter()
            .map(|r| (r.key(), r))
            .collect();
        let now = vec![row(Some("a"), 3, 30, 3), row(None, 7, 70, 7)];
        let d = deltas(&prev, &now);
        assert_eq!((d[0].digest.as_str(), d[0].count), ("a", 3));
        assert_eq!((d[1].digest.as_str(), d[1].count), (OVERFLOW, 7));
        assert!(d[1].text.contains("performance_schema_digests_size"));
    }
}
