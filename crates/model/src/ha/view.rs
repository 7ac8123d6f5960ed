//! What the replication decisions see of a cluster: per node the probe's outcome and its
//! last good samples, plus what the controller knew before a failure.
//!
//! The controller fills a [`ReplicationView`] from the monitor: for each node the
//! consecutive probe failures (kind of the latest, count, time of the first) and a short
//! history of good samples, oldest first. The history is how "a replica still receives
//! from the primary" is computed: a replica whose IO thread still says Running confirms
//! the primary's death only when neither its heartbeat counter, nor its received GTIDs,
//! nor its read position moved across samples spanning
//! [`HaPolicy::confirm_heartbeat_periods`](crate::ha::HaPolicy) heartbeat periods. Keep
//! at least that span plus one probe interval of samples per node (five samples at a 1 s
//! interval suffice for the defaults).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::ha::maintenance::Maintenance;
use crate::replication::{Flavor, ReplicaStatus};
use crate::snapshot::{ProbeErrorKind, ServerSample};
use crate::topology::Role;

/// The outcome of a node's latest probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// The latest probe answered.
    Reachable,
    /// The latest `consecutive` probes failed, the first of them at `since`; `kind` is
    /// the latest failure's.
    Failing {
        kind: ProbeErrorKind,
        consecutive: u32,
        since: DateTime<Utc>,
    },
}

impl ProbeStatus {
    pub fn is_reachable(&self) -> bool {
        matches!(self, Self::Reachable)
    }

    /// The kind of the latest failure; None when reachable.
    pub fn error_kind(&self) -> Option<ProbeErrorKind> {
        match self {
            Self::Reachable => None,
            Self::Failing { kind, .. } => Some(*kind),
        }
    }
}

/// A good sample and when it was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedSample {
    pub at: DateTime<Utc>,
    /// Shared with the monitor's view: the samples are kept and handed around every
    /// second, never copied.
    pub sample: std::sync::Arc<ServerSample>,
}

/// One node of a replication cluster as the decisions see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationNode {
    pub endpoint: Endpoint,
    /// The role the monitor last assigned.
    pub role: Role,
    pub probe: ProbeStatus,
    /// The last good samples, oldest first (a few; see the module docs).
    pub samples: Vec<TimedSample>,
    /// Age in seconds of the oldest open transaction (information_schema.innodb_trx),
    /// when the runtime measured it for a switchover preflight.
    pub longest_transaction_secs: Option<u64>,
}

impl ReplicationNode {
    /// The newest good sample.
    pub fn latest(&self) -> Option<&TimedSample> {
        self.samples.last()
    }

    pub fn is_reachable(&self) -> bool {
        self.probe.is_reachable()
    }

    /// The channel of the newest sample that replicates from `primary`.
    pub fn channel_from(
        &self,
        primary: &Endpoint,
        primary_server_id: Option<u32>,
    ) -> Option<&ReplicaStatus> {
        self.latest()
            .and_then(|s| channel_from(&s.sample, primary, primary_server_id))
    }
}

/// The channel of `sample` whose source is `primary`: by address, or by the source's
/// server_id when the address is spelled differently (a host name, report_host).
pub fn channel_from<'a>(
    sample: &'a ServerSample,
    primary: &Endpoint,
    primary_server_id: Option<u32>,
) -> Option<&'a ReplicaStatus> {
    sample.replication.iter().find(|c| {
        (c.source_host == primary.host && c.source_port == primary.port)
            || primary_server_id.is_some_and(|id| id != 0 && c.source_server_id == id)
    })
}

/// The topology as nines knew it while it was healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownTopology {
    pub primary: Endpoint,
    /// When this controller last saw the primary alive with its replicas replicating.
    /// The controller sets [`ReplicationView::topology`] to None until it has seen that
    /// since it started: a cluster whose primary died before nines looked at it is not
    /// failed over automatically (MaxScale and replication-manager refuse the same).
    pub confirmed_at: DateTime<Utc>,
}

/// The primary's semi-synchronous replication state in its last good sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemiSyncState {
    pub at: DateTime<Utc>,
    /// Rpl_semi_sync_master_status (Rpl_semi_sync_source_status): ON while commits
    /// wait for a replica's acknowledgement; OFF after a silent fallback to async.
    pub active: bool,
    /// Rpl_semi_sync_master_clients: semi-sync replicas connected.
    pub clients: u32,
}

impl SemiSyncState {
    /// Reads the state from a sample's status counters (ON is 1); None when the server
    /// does not report semi-sync (plugin not loaded, counters not collected).
    pub fn from_status(status: &BTreeMap<String, u64>, at: DateTime<Utc>) -> Option<Self> {
        let get = |names: [&str; 2]| names.iter().find_map(|n| status.get(*n).copied());
        let active = get(["Rpl_semi_sync_master_status", "Rpl_semi_sync_source_status"])?;
        let clients = get([
            "Rpl_semi_sync_master_clients",
            "Rpl_semi_sync_source_clients",
        ])
        .unwrap_or(0);
        Some(Self {
            at,
            active: active != 0,
            clients: u32::try_from(clients).unwrap_or(u32::MAX),
        })
    }
}

/// An automatic failover in the cluster's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    pub at: DateTime<Utc>,
    /// A person acknowledged it: it no longer blocks the next failover (it still counts
    /// against the daily budget).
    pub acknowledged: bool,
}

/// A replication cluster as the failover, switchover and rejoin decisions see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationView {
    pub flavor: Flavor,
    /// None when the topology was not known before the failure.
    pub topology: Option<KnownTopology>,
    pub nodes: Vec<ReplicationNode>,
    /// The primary's semi-sync state at its last good sample, when reported.
    pub primary_semi_sync: Option<SemiSyncState>,
    /// Automatic failovers of the last 24 h at least (older ones are ignored).
    pub failovers: Vec<FailoverRecord>,
    /// Maintenance windows of the cluster and its nodes.
    pub maintenance: Vec<Maintenance>,
}

impl ReplicationView {
    pub fn node(&self, endpoint: &Endpoint) -> Option<&ReplicationNode> {
        self.nodes.iter().find(|n| &n.endpoint == endpoint)
    }

    /// The known primary's node.
    pub fn primary(&self) -> Option<&ReplicationNode> {
        self.topology.as_ref().and_then(|t| self.node(&t.primary))
    }

    /// The server_id of the primary's last good sample.
    pub fn primary_server_id(&self) -> Option<u32> {
        self.primary()
            .and_then(|p| p.latest())
            .map(|s| s.sample.server_id)
    }

    /// The nodes whose newest sample replicates from the known primary, in view order.
    pub fn replicas_of_primary(&self) -> Vec<&ReplicationNode> {
        let Some(topology) = &self.topology else {
            return Vec::new();
        };
        let sid = self.primary_server_id();
        self.nodes
            .iter()
            .filter(|n| n.endpoint != topology.primary)
            .filter(|n| n.channel_from(&topology.primary, sid).is_some())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::testkit::t;

    #[test]
    fn semi_sync_state_reads_both_spellings() {
        let mut status = BTreeMap::new();
        assert_eq!(SemiSyncState::from_status(&status, t(0)), None);
        status.insert("Rpl_semi_sync_source_status".to_string(), 1);
        status.insert("Rpl_semi_sync_source_clients".to_string(), 2);
        let s = SemiSyncState::from_status(&status, t(0)).unwrap();
        assert!(s.active);
        assert_eq!(s.clients, 2);
        let mut status = BTreeMap::new();
        status.insert("Rpl_semi_sync_master_status".to_string(), 0);
        let s = SemiSyncState::from_status(&status, t(0)).unwrap();
        assert!(!s.active);
        assert_eq!(s.clients, 0);
    }
}
