//! The reconciler: compares what the monitor sees with what the operator wants and, where
//! they differ and a decision function says so, queues a job. For now it restarts the
//! server of a deployed node that should run but died (issue 4, item 2); failover and
//! Galera cluster recovery will plug in here the same way.
//!
//! The decisions are the pure functions of `nines_model::ha`; this loop only gathers their
//! inputs (down since when, restart attempts, maintenance windows, the recovery switch),
//! acts on their answers, and records every answer that acts or gives up as an event with
//! its reasons.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::ha::{
    GaleraAction, GaleraNode, GaleraView, HaPolicy, Maintenance, MaintenanceScope, NodeKind,
    NodeRestartState, ProbeStatus, RestartAction, decide_galera_recovery, decide_node_restart,
};
use nines_model::job::{ClusterAction, JobSpec, JobState, NodeAction};
use nines_model::snapshot::ProbeErrorKind;
use nines_model::{ClusterType, Endpoint, NodeState};
use nines_store::{JobFilter, Store};
use tokio_util::sync::CancellationToken;

use crate::jobs::JobRunner;
use crate::monitor::Monitor;

/// Who the reconciler's jobs say asked for them.
pub const REQUESTER: &str = "nines (auto-recovery)";

type NodeKey = (String, Endpoint);

/// What the reconciler remembers between ticks.
#[derive(Default)]
struct Memory {
    down_since: HashMap<NodeKey, DateTime<Utc>>,
    attempts: HashMap<NodeKey, Vec<DateTime<Utc>>>,
    gave_up: HashSet<NodeKey>,
    /// Per Galera cluster: since when no node is in a Primary component.
    no_primary_since: HashMap<String, DateTime<Utc>>,
    /// Per Galera cluster: recovery jobs submitted during the current outage.
    galera_attempts: HashMap<String, Vec<DateTime<Utc>>>,
    /// Per cluster: the last refusal or give-up already raised as an alarm.
    galera_alarmed: HashSet<String>,
}

/// Runs the reconciliation loop until shutdown.
pub async fn run(
    store: Arc<dyn Store>,
    monitor: Arc<Monitor>,
    jobs: Arc<JobRunner>,
    policy: HaPolicy,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut memory = Memory::default();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if let Err(e) = reconcile(&store, &monitor, &jobs, &policy, &mut memory, Utc::now()).await {
            tracing::warn!(error = %e, "reconciliation failed");
        }
    }
}

async fn reconcile(
    store: &Arc<dyn Store>,
    monitor: &Arc<Monitor>,
    jobs: &Arc<JobRunner>,
    base: &HaPolicy,
    memory: &mut Memory,
    now: DateTime<Utc>,
) -> Result<(), nines_store::StoreError> {
    for cluster in store.list_clusters().await? {
        // Only clusters nines deployed have the layout a restart needs.
        if cluster.deploy_state.as_deref() != Some("deployed") {
            continue;
        }
        let Some(view) = monitor.cluster(&cluster.name) else {
            continue;
        };
        let policy = HaPolicy {
            automatic_recovery: cluster.auto_recovery,
            ..base.clone()
        };
        let maintenance: Vec<Maintenance> = store
            .maintenance(cluster.id, now)
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
            .collect();
        let records = store.list_nodes(Some(cluster.id)).await?;
        let galera_has_primary = view.nodes.iter().any(|n| {
            n.error.is_none()
                && n.sample
                    .as_ref()
                    .and_then(|s| s.wsrep.as_ref())
                    .is_some_and(|w| w.is_primary_component())
        });
        let mut busy = None;
        if cluster.cluster_type == ClusterType::Galera {
            let acted = galera_recovery(
                store,
                jobs,
                &policy,
                memory,
                now,
                &cluster.name,
                &view,
                &records,
                &maintenance,
            )
            .await?;
            if acted {
                continue;
            }
        }
        for rec in records.iter().filter(|r| r.settings.is_some()) {
            let key = (cluster.name.clone(), rec.endpoint.clone());
            let Some(seen) = view.nodes.iter().find(|n| n.endpoint == rec.endpoint) else {
                continue;
            };
            // "Down" is a refused connection: nothing listens, the server died. A timeout may
            // be the network; restarting cannot help there.
            let down = seen.state == Some(NodeState::Offline)
                && seen
                    .error
                    .as_ref()
                    .is_some_and(|e| e.kind == ProbeErrorKind::Refused);
            if !down {
                memory.down_since.remove(&key);
                memory.attempts.remove(&key);
                memory.gave_up.remove(&key);
                continue;
            }
            let since = *memory.down_since.entry(key.clone()).or_insert(now);
            let state = NodeRestartState {
                endpoint: rec.endpoint.clone(),
                kind: match cluster.cluster_type {
                    ClusterType::Galera => NodeKind::Galera {
                        cluster_has_primary: galera_has_primary,
                    },
                    ClusterType::Replication => NodeKind::Replication,
                    ClusterType::Standalone => NodeKind::Standalone,
                },
                desired_running: rec.desired == "running",
                down_since: Some(since),
                attempts: memory.attempts.get(&key).cloned().unwrap_or_default(),
            };
            let decision = decide_node_restart(&state, &maintenance, &policy, now);
            let addr = rec.endpoint.to_string();
            match decision.action {
                RestartAction::Restart { attempt } => {
                    // One job at a time per cluster: an operator's job in flight goes first.
                    let in_flight = match busy {
                        Some(b) => b,
                        None => {
                            let b = cluster_busy(store, &cluster.name).await?;
                            busy = Some(b);
                            b
                        }
                    };
                    if in_flight {
                        continue;
                    }
                    let spec = JobSpec::NodeAction {
                        cluster: cluster.name.clone(),
                        node: rec.endpoint.clone(),
                        action: NodeAction::Start,
                        force: false,
                    };
                    let job = jobs.submit(&spec, REQUESTER).await?;
                    busy = Some(true);
                    memory.attempts.entry(key).or_default().push(now);
                    let msg = format!(
                        "restarting {addr} (attempt {attempt}, job {}): {}",
                        job.id,
                        decision.explain()
                    );
                    tracing::info!(cluster = %cluster.name, "{msg}");
                    store
                        .add_event(&cluster.name, Some(&addr), "auto_restart", &msg)
                        .await?;
                }
                RestartAction::GiveUp => {
                    if memory.gave_up.insert(key) {
                        let msg = format!("alarm: {}", decision.explain());
                        tracing::warn!(cluster = %cluster.name, "{msg}");
                        store
                            .add_event(&cluster.name, Some(&addr), "alarm", &msg)
                            .await?;
                    }
                }
                RestartAction::Wait { .. } | RestartAction::NoAction => {}
            }
        }
    }
    Ok(())
}

async fn cluster_busy(
    store: &Arc<dyn Store>,
    cluster: &str,
) -> Result<bool, nines_store::StoreError> {
    for state in [JobState::Queued, JobState::Running] {
        let jobs = store
            .list_jobs(&JobFilter {
                cluster: Some(cluster.to_string()),
                state: Some(state),
                limit: Some(1),
            })
            .await?;
        if !jobs.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whole-cluster Galera recovery: when no node is in a Primary component (every server
/// down, or none Primary for long enough), asks `decide_galera_recovery` and, when it says
/// to collect positions or bootstrap, queues a cluster start job, which reads grastate.dat
/// and `--wsrep-recover` on every node, refuses two cluster UUIDs, bootstraps the node with
/// the highest seqno and joins the others one by one. Returns true when it acted or is
/// responsible for the cluster (node restarts then wait).
#[allow(clippy::too_many_arguments)]
async fn galera_recovery(
    store: &Arc<dyn Store>,
    jobs: &Arc<JobRunner>,
    policy: &HaPolicy,
    memory: &mut Memory,
    now: DateTime<Utc>,
    cluster: &str,
    view: &crate::monitor::ClusterObserved,
    records: &[nines_store::NodeRecord],
    maintenance: &[Maintenance],
) -> Result<bool, nines_store::StoreError> {
    let nodes: Vec<GaleraNode> = view
        .nodes
        .iter()
        .filter(|n| {
            records
                .iter()
                .any(|r| r.endpoint == n.endpoint && r.settings.is_some())
        })
        .map(|n| {
            let key = (cluster.to_string(), n.endpoint.clone());
            GaleraNode {
                endpoint: n.endpoint.clone(),
                probe: match &n.error {
                    None => ProbeStatus::Reachable,
                    Some(e) => ProbeStatus::Failing {
                        kind: e.kind,
                        consecutive: 2,
                        since: memory.down_since.get(&key).copied().unwrap_or(now),
                    },
                },
                wsrep: if n.error.is_none() {
                    n.sample.as_ref().and_then(|s| s.wsrep.clone())
                } else {
                    None
                },
                down_confirmed: false,
                grastate: None,
                recovered: None,
            }
        })
        .collect();
    if nodes.is_empty() || view.nodes.iter().any(|n| n.state.is_none()) {
        return Ok(false);
    }
    let any_primary = nodes
        .iter()
        .any(|n| n.wsrep.as_ref().is_some_and(|w| w.is_primary_component()));
    if any_primary {
        memory.no_primary_since.remove(cluster);
        memory.galera_attempts.remove(cluster);
        memory.galera_alarmed.remove(cluster);
        return Ok(false);
    }
    let since = *memory
        .no_primary_since
        .entry(cluster.to_string())
        .or_insert(now);
    let galera_view = GaleraView {
        nodes,
        no_primary_since: Some(since),
        maintenance: maintenance.to_vec(),
    };
    let decision = decide_galera_recovery(&galera_view, policy, now);
    match decision.action {
        GaleraAction::CollectPositions { .. } | GaleraAction::Bootstrap { .. } => {
            if cluster_busy(store, cluster).await? {
                return Ok(true);
            }
            let attempts = memory
                .galera_attempts
                .entry(cluster.to_string())
                .or_default();
            let max = policy.max_restart_attempts as usize;
            if attempts.len() >= max {
                if memory.galera_alarmed.insert(cluster.to_string()) {
                    let msg = format!(
                        "alarm: the Galera cluster has no Primary component and {max} recovery attempts failed; {}",
                        decision.explain()
                    );
                    store.add_event(cluster, None, "alarm", &msg).await?;
                }
                return Ok(true);
            }
            let backoff = policy.restart_backoff * i32::try_from(attempts.len()).unwrap_or(1);
            if attempts.last().is_some_and(|last| now < *last + backoff) {
                return Ok(true);
            }
            let spec = JobSpec::ClusterAction {
                cluster: cluster.to_string(),
                action: ClusterAction::Start,
            };
            let job = jobs.submit(&spec, REQUESTER).await?;
            attempts.push(now);
            let msg = format!(
                "recovering the Galera cluster (job {}, attempt {}): {}",
                job.id,
                attempts.len(),
                decision.explain()
            );
            tracing::warn!(cluster = %cluster, "{msg}");
            store
                .add_event(cluster, None, "auto_galera_recovery", &msg)
                .await?;
            Ok(true)
        }
        GaleraAction::Refuse => {
            if memory.galera_alarmed.insert(cluster.to_string()) {
                let msg = format!("alarm: Galera recovery refused: {}", decision.explain());
                store.add_event(cluster, None, "alarm", &msg).await?;
            }
            Ok(true)
        }
        GaleraAction::Wait { .. } | GaleraAction::NoAction => Ok(false),
    }
}
