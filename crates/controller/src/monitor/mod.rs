//! The monitor: watches every node of every registered cluster, only observing.
//!
//! Each node has its own probe task (so one slow node never delays another) that sends a
//! [`NodeSnapshot`] every interval to its cluster's task. The cluster task turns snapshots
//! into node and cluster states through the pure functions of `nines_model::health`
//! (hysteresis included), writes an event and the new state to the store on every change,
//! records metrics history, and publishes an immutable [`ClusterObserved`] that the API,
//! the UI and /metrics read without locking the probes.

mod cluster;
pub mod hostmon;
pub mod rates;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::ha::{ProbeStatus, TimedSample};
use nines_model::health::HealthPolicy;
use nines_model::snapshot::{ProbeError, ServerSample};
use nines_model::{ClusterState, ClusterType, Endpoint, NodeState, Role};
use nines_store::{Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history::MetricsHistory;

/// Monitor settings.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// How often each node is probed.
    pub probe_interval: Duration,
    /// Connect and query timeouts of a probe.
    pub timeouts: nines_access::server::Timeouts,
    /// How often host metrics are read where the cluster has host access.
    pub host_interval: Duration,
    pub policy: HealthPolicy,
    /// ssh_config file handed to OpenSSH for host access, if any.
    pub ssh_config: Option<std::path::PathBuf>,
}

/// What the monitor last saw of one node.
#[derive(Debug, Clone)]
pub struct NodeObserved {
    pub node_id: i64,
    pub endpoint: Endpoint,
    pub role: Role,
    /// None until the first probe answered or failed.
    pub state: Option<NodeState>,
    pub reason: String,
    /// The last good sample, shared with `recent` (handed around every second, never
    /// copied).
    pub sample: Option<Arc<ServerSample>>,
    pub error: Option<ProbeError>,
    pub last_seen: Option<DateTime<Utc>>,
    /// When the latest probe (answered or not) started.
    pub probed_at: Option<DateTime<Utc>>,
    pub rates: rates::Rates,
    /// Transactions the replica lacks compared with its source (by GTID).
    pub lag_transactions: Option<u64>,
    pub host: Option<HostView>,
    /// The latest probes' outcome: reachable, or failing since when and how often.
    pub probe: ProbeStatus,
    /// The last few good samples with their times, oldest first: what the failover's
    /// confirmation reads (has a replica's heartbeat or received GTID set moved?).
    pub recent: Arc<Vec<TimedSample>>,
}

/// Good samples kept per node for the HA decisions: enough to span the confirmation
/// window (two 1 s heartbeat periods) plus a probe interval (see `nines_model::ha::view`).
pub const RECENT_SAMPLES: usize = 6;

/// Host metrics of a node's host, as last read.
pub type HostView = nines_model::api::HostStatus;

/// What flows from probe tasks to their cluster's task.
pub(crate) enum Update {
    Probe(usize, Box<nines_model::snapshot::NodeSnapshot>),
    Host(String, HostView),
}

/// What the monitor last saw of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterObserved {
    pub cluster_id: i64,
    pub name: String,
    pub cluster_type: ClusterType,
    pub state: Option<ClusterState>,
    pub reason: String,
    pub nodes: Vec<NodeObserved>,
}

/// Watches clusters; see the module docs.
pub struct Monitor {
    store: Arc<dyn Store>,
    config: MonitorConfig,
    history: Arc<MetricsHistory>,
    views: RwLock<BTreeMap<String, Arc<ClusterObserved>>>,
    watching: tokio::sync::Mutex<BTreeMap<String, CancellationToken>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    attention: tokio::sync::Notify,
}

impl Monitor {
    pub fn new(
        store: Arc<dyn Store>,
        config: MonitorConfig,
        history: Arc<MetricsHistory>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            history,
            views: RwLock::new(BTreeMap::new()),
            watching: tokio::sync::Mutex::new(BTreeMap::new()),
            shutdown,
            tasks: TaskTracker::new(),
            attention: tokio::sync::Notify::new(),
        })
    }

    /// Starts watching every registered cluster (at controller start).
    pub async fn watch_all(self: &Arc<Self>) -> Result<(), StoreError> {
        for c in self.store.list_clusters().await? {
            self.watch(c.name).await?;
        }
        Ok(())
    }

    /// Starts watching one registered cluster; a no-op when already watched.
    pub async fn watch(self: &Arc<Self>, name: String) -> Result<(), StoreError> {
        let mut watching = self.watching.lock().await;
        if watching.contains_key(&name) {
            return Ok(());
        }
        let Some(record) = self.store.get_cluster(&name).await? else {
            return Err(StoreError::NotFound(format!("cluster `{name}`")));
        };
        let nodes = self.store.list_nodes(Some(record.id)).await?;
        let password = self.store.get_secret(record.db_password_secret).await?;
        let token = self.shutdown.child_token();
        watching.insert(name.clone(), token.clone());
        let task = cluster::ClusterTask::new(Arc::clone(self), record, nodes, password, token);
        self.tasks.spawn(task.run());
        Ok(())
    }

    /// Stops watching a cluster and forgets what was seen of it.
    pub async fn unwatch(&self, name: &str) {
        if let Some(token) = self.watching.lock().await.remove(name) {
            token.cancel();
        }
        if let Ok(mut v) = self.views.write()
            && let Some(view) = v.remove(name)
        {
            for n in &view.nodes {
                self.history.forget(&n.endpoint.to_string());
            }
        }
    }

    /// Restarts the watch of a cluster whose nodes changed.
    pub async fn rewatch(self: &Arc<Self>, name: &str) -> Result<(), StoreError> {
        self.unwatch(name).await;
        self.watch(name.to_string()).await
    }

    /// The latest view of every cluster.
    pub fn clusters(&self) -> Vec<Arc<ClusterObserved>> {
        self.views
            .read()
            .map(|v| v.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The latest view of one cluster.
    pub fn cluster(&self, name: &str) -> Option<Arc<ClusterObserved>> {
        self.views.read().ok().and_then(|v| v.get(name).cloned())
    }

    fn publish(&self, view: ClusterObserved) {
        if let Ok(mut v) = self.views.write() {
            v.insert(view.name.clone(), Arc::new(view));
        }
    }

    /// Signalled when something may need the reconciler at once rather than at its next
    /// tick: a replication primary failed a probe, and again after its replicas were
    /// probed afresh. Holds one permit, so a signal is never lost.
    pub fn attention(&self) -> &tokio::sync::Notify {
        &self.attention
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    pub fn history(&self) -> &Arc<MetricsHistory> {
        &self.history
    }

    /// Waits for every probe task to end (after shutdown was signalled), with a deadline.
    pub async fn join(&self, deadline: Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(deadline, self.tasks.wait()).await;
    }
}
