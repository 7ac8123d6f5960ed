//! Time series for charts: the metrics the history keeps, how a cluster-wide series is
//! made from its nodes' (sum, max, min or average per metric), and how points are put
//! into the steps a chart asks for.

use chrono::{DateTime, Duration, Utc};

/// How a cluster's value of a metric is made from its nodes' values at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Throughput and counts add up (queries/s, connections).
    Sum,
    /// The worst node speaks for the cluster (lag, flow control, CPU, I/O wait).
    Max,
    /// The scarcest node speaks (free disk, available memory).
    Min,
}

/// A metric a chart can ask for: its name and how nodes combine.
pub struct Metric {
    pub name: &'static str,
    pub combine: Combine,
    pub unit: &'static str,
}

/// Every metric the history keeps (the monitor's rates and gauges, replication and
/// Galera figures, host metrics).
pub const METRICS: &[Metric] = &[
    Metric {
        name: "queries_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "selects_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "inserts_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "updates_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "deletes_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "commits_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "connections_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "aborted_connects_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "slow_queries_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "bytes_received_per_second",
        combine: Combine::Sum,
        unit: "B/s",
    },
    Metric {
        name: "bytes_sent_per_second",
        combine: Combine::Sum,
        unit: "B/s",
    },
    Metric {
        name: "innodb_rows_read_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_rows_inserted_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_rows_updated_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_rows_deleted_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_buffer_pool_read_requests_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_buffer_pool_disk_reads_per_second",
        combine: Combine::Sum,
        unit: "1/s",
    },
    Metric {
        name: "innodb_data_written_bytes_per_second",
        combine: Combine::Sum,
        unit: "B/s",
    },
    Metric {
        name: "innodb_log_written_bytes_per_second",
        combine: Combine::Sum,
        unit: "B/s",
    },
    Metric {
        name: "threads_running",
        combine: Combine::Sum,
        unit: "",
    },
    Metric {
        name: "threads_connected",
        combine: Combine::Sum,
        unit: "",
    },
    Metric {
        name: "innodb_buffer_pool_pages_total",
        combine: Combine::Sum,
        unit: "pages",
    },
    Metric {
        name: "innodb_buffer_pool_pages_free",
        combine: Combine::Sum,
        unit: "pages",
    },
    Metric {
        name: "innodb_buffer_pool_pages_dirty",
        combine: Combine::Sum,
        unit: "pages",
    },
    Metric {
        name: "replication_lag_seconds",
        combine: Combine::Max,
        unit: "s",
    },
    Metric {
        name: "wsrep_flow_control_paused",
        combine: Combine::Max,
        unit: "fraction",
    },
    Metric {
        name: "wsrep_local_recv_queue",
        combine: Combine::Max,
        unit: "",
    },
    Metric {
        name: "cpu_busy",
        combine: Combine::Max,
        unit: "fraction",
    },
    Metric {
        name: "cpu_iowait",
        combine: Combine::Max,
        unit: "fraction",
    },
    Metric {
        name: "load1",
        combine: Combine::Max,
        unit: "",
    },
    Metric {
        name: "memory_available_bytes",
        combine: Combine::Min,
        unit: "B",
    },
    Metric {
        name: "disk_free_bytes",
        combine: Combine::Min,
        unit: "B",
    },
];

pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// The start of each step from `since` (aligned down to the step) to `until`.
pub fn steps(since: DateTime<Utc>, until: DateTime<Utc>, step: Duration) -> Vec<DateTime<Utc>> {
    let ms = step.num_milliseconds().max(1);
    let first = since.timestamp_millis().div_euclid(ms) * ms;
    let mut out = Vec::new();
    let mut t = first;
    while t <= until.timestamp_millis() {
        if let Some(at) = DateTime::from_timestamp_millis(t) {
            out.push(at);
        }
        t += ms;
    }
    out
}

/// The average of the points in each step (None for a step without points).
pub fn bucket(
    points: &[(DateTime<Utc>, f64)],
    starts: &[DateTime<Utc>],
    step: Duration,
) -> Vec<Option<f64>> {
    starts
        .iter()
        .map(|s| {
            let end = *s + step;
            let (sum, n) = points
                .iter()
                .filter(|(t, _)| t >= s && *t < end)
                .fold((0.0, 0usize), |(sum, n), (_, v)| (sum + v, n + 1));
            (n > 0).then(|| sum / n as f64)
        })
        .collect()
}

/// A cluster's value at each step from its nodes' (steps where no node has a value stay
/// empty).
pub fn combine(nodes: &[Vec<Option<f64>>], how: Combine) -> Vec<Option<f64>> {
    let len = nodes.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            let vals = nodes.iter().filter_map(|n| n.get(i).copied().flatten());
            match how {
                Combine::Sum => vals.reduce(|a, b| a + b),
                Combine::Max => vals.reduce(f64::max),
                Combine::Min => vals.reduce(f64::min),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single().unwrap()
    }

    #[test]
    fn steps_are_aligned_and_cover_the_window() {
        let s = steps(t(5), t(65), Duration::seconds(20));
        assert_eq!(s, vec![t(0), t(20), t(40), t(60)]);
        assert_eq!(steps(t(0), t(0), Duration::seconds(60)), vec![t(0)]);
    }

    #[test]
    fn points_are_averaged_per_step_and_gaps_stay_empty() {
        let pts = vec![(t(1), 2.0), (t(9), 4.0), (t(25), 10.0)];
        let starts = steps(t(0), t(39), Duration::seconds(10));
        assert_eq!(
            bucket(&pts, &starts, Duration::seconds(10)),
            vec![Some(3.0), None, Some(10.0), None]
        );
    }

    #[test]
    fn nodes_combine_by_the_metrics_rule() {
        let a = vec![Some(1.0), None, Some(5.0)];
        let b = vec![Some(2.0), None, None];
        assert_eq!(
            combine(&[a.clone(), b.clone()], Combine::Sum),
            vec![Some(3.0), None, Some(5.0)]
        );
        assert_eq!(
            combine(&[a.clone(), b.clone()], Combine::Max),
            vec![Some(2.0), None, Some(5.0)]
        );
        assert_eq!(
            combine(&[a, b], Combine::Min),
            vec![Some(1.0), None, Some(5.0)]
        );
        assert_eq!(
            metric("replication_lag_seconds").map(|m| m.combine),
            Some(Combine::Max)
        );
        assert!(metric("nope").is_none());
    }

    #[test]
    fn every_monitor_rate_and_gauge_is_a_known_metric() {
        // The history records what the monitor computes; charts ask for it by name.
        for name in [
            "queries_per_second",
            "threads_connected",
            "innodb_buffer_pool_disk_reads_per_second",
        ] {
            assert!(metric(name).is_some(), "{name}");
        }
    }
}
