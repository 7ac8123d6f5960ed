//! Builds what the HA decisions see ([`ReplicationView`], [`GaleraView`]) from what the
//! monitor observed and what the store knows (designated primary, maintenance windows,
//! past failovers). Shared by the reconciler, which decides automatic failovers and
//! recoveries, and the failover, switchover, rejoin and Galera recovery jobs, which plan
//! again from the freshest view before acting.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use nines_model::Endpoint;
use nines_model::ha::{
    FailoverRecord, GaleraNode, GaleraView, KnownTopology, Maintenance, MaintenanceScope,
    ReplicationNode, ReplicationView, SemiSyncState,
};
use nines_model::replication::Flavor;
use nines_store::{ClusterRecord, Store, StoreError};

use crate::monitor::ClusterObserved;

/// The cluster's active maintenance windows as the decisions take them.
pub async fn maintenance(
    store: &Arc<dyn Store>,
    cluster_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<Maintenance>, StoreError> {
    Ok(store
        .maintenance(cluster_id, now)
        .await?
        .into_iter()
        .map(|m| Maintenance {
            scope: match m.node.as_deref().and_then(|n| n.parse::<Endpoint>().ok()) {
                Some(ep) => MaintenanceScope::Node(ep),
                None => MaintenanceScope::Cluster,
            },
            reason: m.reason,
            since: m.since,
            until: m.until,
        })
        .collect())
}

/// Automatic failovers of the last 24 hours, for the block window and the daily budget.
pub async fn recent_failovers(
    store: &Arc<dyn Store>,
    cluster_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<FailoverRecord>, StoreError> {
    Ok(store
        .failovers(cluster_id, now - Duration::hours(24))
        .await?
        .into_iter()
        .filter(|f| f.automatic && f.kind == nines_model::ha::PromotionKind::Failover)
        .map(|f| FailoverRecord {
            at: f.at,
            acknowledged: f.acknowledged,
        })
        .collect())
}

/// A Galera cluster's deployed nodes as the recovery decisions see them: the probe's
/// status and the wsrep state of a node that answers. Positions of stopped nodes and
/// "confirmed down" are the recovery job's to fill in (they need host access).
pub fn galera_view(
    observed: &ClusterObserved,
    deployed: &[Endpoint],
    no_primary_since: Option<DateTime<Utc>>,
    maintenance: Vec<Maintenance>,
) -> GaleraView {
    let nodes = observed
        .nodes
        .iter()
        .filter(|n| deployed.contains(&n.endpoint))
        .map(|n| GaleraNode {
            endpoint: n.endpoint.clone(),
            probe: n.probe,
            wsrep: if n.probe.is_reachable() {
                n.sample.as_ref().and_then(|s| s.wsrep.clone())
            } else {
                None
            },
            down_confirmed: false,
            grastate: None,
            recovered: None,
        })
        .collect();
    GaleraView {
        nodes,
        no_primary_since,
        maintenance,
    }
}

/// The flavor of the cluster's servers, from any sample (MariaDB when none answered yet).
pub fn flavor(observed: &ClusterObserved) -> Flavor {
    observed
        .nodes
        .iter()
        .find_map(|n| n.sample.as_ref().map(|s| s.version.flavor))
        .unwrap_or(Flavor::MariaDb)
}

/// The view of one replication cluster. `confirmed_at`: when this controller last saw the
/// designated primary healthy with its replicas (None: never, so the topology is
/// unknown to the automatic decisions); jobs that a person asked for pass the job's
/// start time, since a person vouches for the topology.
pub fn replication_view(
    record: &ClusterRecord,
    observed: &ClusterObserved,
    confirmed_at: Option<DateTime<Utc>>,
    failovers: Vec<FailoverRecord>,
    maintenance: Vec<Maintenance>,
) -> ReplicationView {
    let topology = match (&record.primary, confirmed_at) {
        (Some(p), Some(at)) => Some(KnownTopology {
            primary: p.clone(),
            confirmed_at: at,
        }),
        _ => None,
    };
    let nodes: Vec<ReplicationNode> = observed
        .nodes
        .iter()
        .map(|n| ReplicationNode {
            endpoint: n.endpoint.clone(),
            role: n.role,
            probe: n.probe,
            samples: n.recent.as_ref().clone(),
            longest_transaction_secs: None,
        })
        .collect();
    let primary_semi_sync = record.primary.as_ref().and_then(|p| {
        nodes
            .iter()
            .find(|n| &n.endpoint == p)
            .and_then(|n| n.latest())
            .and_then(|s| SemiSyncState::from_status(&s.sample.status, s.at))
    });
    ReplicationView {
        flavor: flavor(observed),
        topology,
        nodes,
        primary_semi_sync,
        failovers,
        maintenance,
    }
}

/// How long a job waits for the monitor's probes it needs.
const PROBES_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// What the monitor sees of the cluster once every node was probed at least once, and,
/// with `newer_than`, once every probe started after that moment (at most
/// [`PROBES_WITHIN`] later; then what it has). Right after a controller start the monitor
/// has probed nothing yet, and a job must not plan on that (a dead primary would look
/// alive).
pub async fn probed_view(
    monitor: &crate::monitor::Monitor,
    cluster: &str,
    newer_than: Option<DateTime<Utc>>,
) -> Result<Arc<ClusterObserved>, String> {
    let deadline = tokio::time::Instant::now() + PROBES_WITHIN;
    loop {
        let observed = monitor.cluster(cluster).ok_or_else(|| {
            format!("cluster `{cluster}` is not watched yet: nothing is known of its nodes")
        })?;
        let ready = observed.nodes.iter().all(|n| {
            n.probed_at
                .is_some_and(|p| newer_than.is_none_or(|since| p >= since))
        });
        if ready || tokio::time::Instant::now() >= deadline {
            return Ok(observed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
