//! Maintenance windows: while one is in force for a cluster or a node, nines takes no
//! automatic action there (orchestrator's downtime; a backup or an operator at work must
//! not be "repaired", outbrain/orchestrator#138).
//!
//! The store keeps the windows (`maintenance` table); the controller hands the ones of a
//! cluster to the decisions, which only ask "is this in force now, and why".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::ha::at;

/// What a maintenance window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceScope {
    /// The whole cluster.
    Cluster,
    /// One node.
    Node(Endpoint),
}

/// A maintenance window of a cluster or of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub scope: MaintenanceScope,
    /// Why, as the operator wrote it.
    pub reason: String,
    pub since: DateTime<Utc>,
    /// None: until switched off.
    pub until: Option<DateTime<Utc>>,
}

impl Maintenance {
    /// True when the window is in force at `now` (`since <= now < until`).
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.since <= now && self.until.is_none_or(|u| now < u)
    }

    /// One sentence for reasons: what, why, until when.
    pub fn describe(&self) -> String {
        let what = match &self.scope {
            MaintenanceScope::Cluster => "the cluster is in maintenance".to_string(),
            MaintenanceScope::Node(e) => format!("{e} is in maintenance"),
        };
        let until = match self.until {
            Some(u) => format!("until {}", at(u)),
            None => "until switched off".to_string(),
        };
        format!(
            "{what} ({}; since {}, {until})",
            self.reason,
            at(self.since)
        )
    }
}

/// The cluster-wide window in force, if any.
pub fn cluster_window(windows: &[Maintenance], now: DateTime<Utc>) -> Option<&Maintenance> {
    windows
        .iter()
        .find(|m| m.scope == MaintenanceScope::Cluster && m.is_active(now))
}

/// The node's own window in force, if any (not the cluster's).
pub fn node_window<'a>(
    windows: &'a [Maintenance],
    node: &Endpoint,
    now: DateTime<Utc>,
) -> Option<&'a Maintenance> {
    windows
        .iter()
        .find(|m| matches!(&m.scope, MaintenanceScope::Node(e) if e == node) && m.is_active(now))
}

/// The window that keeps nines off a node: the cluster's, else the node's own.
pub fn window_for<'a>(
    windows: &'a [Maintenance],
    node: &Endpoint,
    now: DateTime<Utc>,
) -> Option<&'a Maintenance> {
    cluster_window(windows, now).or_else(|| node_window(windows, node, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::{ep, t};

    #[test]
    fn windows_apply_between_since_and_until() {
        let m = Maintenance {
            scope: MaintenanceScope::Node(ep(2)),
            reason: "disk swap".into(),
            since: t(-10),
            until: Some(t(10)),
        };
        assert!(!m.is_active(t(-11)));
        assert!(m.is_active(t(0)));
        assert!(!m.is_active(t(10)));
        let ws = [m];
        assert!(node_window(&ws, &ep(2), t(0)).is_some());
        assert!(node_window(&ws, &ep(3), t(0)).is_none());
        assert!(cluster_window(&ws, t(0)).is_none());
        assert!(
            window_for(&ws, &ep(2), t(0))
                .unwrap()
                .describe()
                .contains("disk swap")
        );
        let open = Maintenance {
            scope: MaintenanceScope::Cluster,
            reason: "upgrade".into(),
            since: t(0),
            until: None,
        };
        assert!(open.is_active(t(100_000)));
        assert!(open.describe().contains("until switched off"));
        let ws = [open];
        assert!(window_for(&ws, &ep(3), t(1)).is_some());
    }
}
