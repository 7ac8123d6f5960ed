//! The reconciler: compares what the monitor sees with what the operator wants and, where
//! they differ and a decision function says so, queues a job: it restarts the server of
//! a deployed node that should run but died, recovers a Galera cluster that lost its
//! Primary component, fails over a replication cluster whose primary is dead, and
//! rejoins a failed-over primary once it answers. It runs every probe interval and at
//! once when the monitor signals that a replication primary stopped answering.
//!
//! The decisions are the pure functions of `nines_model::ha`; this loop only gathers their
//! inputs (down since when, restart attempts, maintenance windows, the recovery switch),
//! acts on their answers, and records every answer that acts or gives up as an event with
//! its reasons.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::ha::{
    AlarmKind, FailoverAction, GaleraAction, GaleraView, HaMemory, HaPolicy, Maintenance, NodeKind,
    NodeRestartState, Repair, RestartAction, RetryBudget, RetryVerdict, decide_failover,
    decide_galera_recovery, decide_node_restart,
};
use nines_model::job::{JobSpec, NodeAction};
use nines_model::snapshot::ProbeErrorKind;
use nines_model::{ClusterType, Endpoint, NodeState, Role};
use nines_store::{HaAttempt, JobFilter, RaisedAlarm, Store, StoreError};
use tokio_util::sync::CancellationToken;

use crate::haview;
use crate::jobs::JobRunner;
use crate::monitor::Monitor;

/// Who the reconciler's jobs say asked for them.
pub const REQUESTER: &str = "nines (auto-recovery)";

type NodeKey = (String, Endpoint);

/// What the reconciler remembers between ticks. Observations (since when a node is
/// down, since when Galera has no Primary component, when the topology was last seen
/// healthy) are rebuilt from the monitor after a restart; its own actions (attempts,
/// raised alarms) are in the store ([`Durable`]).
struct Memory {
    down_since: HashMap<NodeKey, DateTime<Utc>>,
    /// Per Galera cluster: since when no node is in a Primary component.
    no_primary_since: HashMap<String, DateTime<Utc>>,
    /// Per replication cluster: the designated primary and when it was last seen healthy
    /// with its replicas (the topology the failover decision may trust).
    confirmed: HashMap<String, (Endpoint, DateTime<Utc>)>,
    durable: Durable,
}

/// The reconciler's attempts and raised alarms: an in-memory copy ([`HaMemory`]) that
/// every change writes through to the store, loaded from it at start.
struct Durable {
    store: Arc<dyn Store>,
    mem: HaMemory,
}

impl Durable {
    /// Loads the last day's attempts and every raised alarm.
    async fn load(store: Arc<dyn Store>, now: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut mem = HaMemory::default();
        let horizon = now - chrono::Duration::hours(24);
        store.prune_attempts(horizon).await?;
        for a in store.attempts_since(horizon).await? {
            match a.repair.parse::<Repair>() {
                Ok(r) => mem.note_attempt(a.cluster_id, r, &a.subject, a.at),
                Err(e) => tracing::warn!(error = %e, "ignoring a stored attempt"),
            }
        }
        for a in store.raised_alarms().await? {
            match a.alarm.parse::<AlarmKind>() {
                Ok(k) => {
                    mem.note_raised(a.cluster_id, k, &a.subject);
                }
                Err(e) => tracing::warn!(error = %e, "ignoring a stored alarm"),
            }
        }
        Ok(Self { store, mem })
    }

    fn attempts(&self, cluster_id: i64, repair: Repair, subject: &str) -> Vec<DateTime<Utc>> {
        self.mem.attempts(cluster_id, repair, subject).to_vec()
    }

    async fn attempt(
        &mut self,
        cluster_id: i64,
        repair: Repair,
        subject: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .record_attempt(&HaAttempt {
                cluster_id,
                repair: repair.as_str().to_string(),
                subject: subject.to_string(),
                at,
            })
            .await?;
        self.mem.note_attempt(cluster_id, repair, subject, at);
        Ok(())
    }

    /// The outage ended: its attempts no longer count (no store write when none).
    async fn clear_attempts(
        &mut self,
        cluster_id: i64,
        repair: Repair,
        subject: &str,
    ) -> Result<(), StoreError> {
        if self.mem.clear_attempts(cluster_id, repair, subject) {
            self.store
                .clear_attempts(cluster_id, repair.as_str(), subject)
                .await?;
        }
        Ok(())
    }

    /// Raises the alarm (an `alarm` event with `message`) unless it is raised already.
    async fn raise(
        &mut self,
        cluster_id: i64,
        cluster: &str,
        alarm: AlarmKind,
        subject: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        if self.mem.is_raised(cluster_id, alarm, subject) {
            return Ok(false);
        }
        tracing::warn!(cluster = %cluster, "{message}");
        self.store
            .raise_alarm(&RaisedAlarm {
                cluster_id,
                cluster: cluster.to_string(),
                alarm: alarm.as_str().to_string(),
                subject: subject.to_string(),
                raised_at: Utc::now(),
                message: message.to_string(),
            })
            .await?;
        Ok(self.mem.note_raised(cluster_id, alarm, subject))
    }

    /// Clears the alarm; true when it was raised (no store write when not).
    async fn clear(
        &mut self,
        cluster_id: i64,
        alarm: AlarmKind,
        subject: &str,
    ) -> Result<bool, StoreError> {
        if !self.mem.note_cleared(cluster_id, alarm, subject) {
            return Ok(false);
        }
        self.store
            .clear_alarm(cluster_id, alarm.as_str(), subject)
            .await?;
        Ok(true)
    }
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
    // Without its memory the reconciler could restart past a budget or raise alarms
    // again: it waits for the store rather than act without it.
    let durable = loop {
        match Durable::load(Arc::clone(&store), Utc::now()).await {
            Ok(d) => break d,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the reconciler's memory; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        }
    };
    let mut memory = Memory {
        down_since: HashMap::new(),
        no_primary_since: HashMap::new(),
        confirmed: HashMap::new(),
        durable,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = monitor.attention().notified() => {}
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
        // A cluster being deployed (or whose deploy failed) is the deploy job's.
        if cluster
            .deploy_state
            .as_deref()
            .is_some_and(|s| s != "deployed")
        {
            continue;
        }
        let Some(view) = monitor.cluster(&cluster.name) else {
            continue;
        };
        // What the monitor saw before the cluster's last job ended may be that job's own
        // doing (a planned restart refuses connections): decide only on probes that
        // started after it.
        if let Some(ended) = last_job_end(store, &cluster.name).await?
            && view
                .nodes
                .iter()
                .any(|n| n.probed_at.is_none_or(|p| p <= ended))
        {
            continue;
        }
        let maintenance: Vec<Maintenance> = haview::maintenance(store, cluster.id, now).await?;
        let records = store.list_nodes(Some(cluster.id)).await?;
        if cluster.cluster_type == ClusterType::Replication
            && replication_ha(
                store,
                jobs,
                base,
                memory,
                now,
                &cluster,
                &view,
                &records,
                &maintenance,
            )
            .await?
        {
            continue;
        }
        // Only clusters nines deployed have the layout a restart needs.
        if cluster.deploy_state.as_deref() != Some("deployed") {
            continue;
        }
        let policy = crate::jobs::ha::cluster_policy(base, &cluster);
        let galera_has_primary = cluster.cluster_type == ClusterType::Galera
            && nines_model::ha::joinable_primary(&haview::galera_view(
                &view,
                &records
                    .iter()
                    .map(|r| r.endpoint.clone())
                    .collect::<Vec<_>>(),
                None,
                Vec::new(),
            ));
        let mut busy = None;
        if cluster.cluster_type == ClusterType::Galera {
            let acted = galera_recovery(
                store,
                jobs,
                &policy,
                memory,
                now,
                &cluster,
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
            let addr = rec.endpoint.to_string();
            if !down {
                if memory.down_since.remove(&key).is_some()
                    || !memory
                        .durable
                        .attempts(cluster.id, Repair::NodeRestart, &addr)
                        .is_empty()
                {
                    memory
                        .durable
                        .clear_attempts(cluster.id, Repair::NodeRestart, &addr)
                        .await?;
                    memory
                        .durable
                        .clear(cluster.id, AlarmKind::NodeRestart, &addr)
                        .await?;
                }
                continue;
            }
            let attempts = memory
                .durable
                .attempts(cluster.id, Repair::NodeRestart, &addr);
            // After a controller restart the outage began no later than its first
            // recorded attempt.
            let first = attempts.first().copied().unwrap_or(now);
            let since = *memory
                .down_since
                .entry(key.clone())
                .or_insert(first.min(now));
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
                attempts,
            };
            let decision = decide_node_restart(&state, &maintenance, &policy, now);
            match decision.action {
                RestartAction::Restart { attempt } => {
                    let spec = JobSpec::NodeAction {
                        cluster: cluster.name.clone(),
                        node: rec.endpoint.clone(),
                        action: NodeAction::Start,
                        force: false,
                    };
                    // An operator's job in flight goes first (the lanes decide).
                    let in_flight = match busy {
                        Some(b) => b,
                        None => {
                            let b = jobs.would_wait(&spec).await?;
                            busy = Some(b);
                            b
                        }
                    };
                    if in_flight {
                        continue;
                    }
                    let job = jobs.submit(&spec, REQUESTER).await?;
                    busy = Some(true);
                    memory
                        .durable
                        .attempt(cluster.id, Repair::NodeRestart, &addr, now)
                        .await?;
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
                    let msg = format!("alarm: {}", decision.explain());
                    memory
                        .durable
                        .raise(
                            cluster.id,
                            &cluster.name,
                            AlarmKind::NodeRestart,
                            &addr,
                            &msg,
                        )
                        .await?;
                }
                RestartAction::Wait { .. } | RestartAction::NoAction => {}
            }
        }
    }
    Ok(())
}

/// Failover, semi-sync alarms and rejoins of one replication cluster; true when it
/// submitted a job or a failover is due (node restarts then wait).
#[allow(clippy::too_many_arguments)]
async fn replication_ha(
    store: &Arc<dyn Store>,
    jobs: &Arc<JobRunner>,
    base: &HaPolicy,
    memory: &mut Memory,
    now: DateTime<Utc>,
    cluster: &nines_store::ClusterRecord,
    observed: &crate::monitor::ClusterObserved,
    records: &[nines_store::NodeRecord],
    maintenance: &[Maintenance],
) -> Result<bool, nines_store::StoreError> {
    let Some(primary) = cluster.primary.clone() else {
        return Ok(false);
    };
    if observed.nodes.iter().any(|n| n.state.is_none()) {
        return Ok(false);
    }
    let name = &cluster.name;
    let fenced: Vec<Endpoint> = records
        .iter()
        .filter(|r| r.fenced.is_some())
        .map(|r| r.endpoint.clone())
        .collect();
    if let Some(adopted) = adopt_primary(observed, &primary, &fenced)
        && !cluster_busy(store, name).await?
    {
        // The topology moved without nines (a person promoted a replica, or this
        // controller stopped between a promotion and its recording): follow it.
        store
            .set_cluster_primary(cluster.id, Some(&adopted))
            .await?;
        for r in records {
            if r.endpoint == adopted {
                store.set_node_role(r.id, Role::Primary).await?;
                store.set_node_fenced(r.id, None).await?;
            } else if r.endpoint == primary {
                store.set_node_role(r.id, Role::Replica).await?;
                store
                    .set_node_fenced(
                        r.id,
                        Some(&format!(
                            "{}replaced by {adopted} as the primary while it was down; read-only until its GTIDs are proven to be in {adopted}'s history",
                            crate::jobs::ha::PENDING_REJOIN
                        )),
                    )
                    .await?;
            }
        }
        let msg = format!(
            "{adopted} is the primary now: the designated primary {primary} does not answer, and {adopted} is the only writable node without a source, with every other reachable node replicating from it; {primary} is fenced until its rejoin check"
        );
        tracing::warn!(cluster = %name, "{msg}");
        store
            .add_event(name, Some(&adopted.to_string()), "primary_adopted", &msg)
            .await?;
        memory.confirmed.insert(name.clone(), (adopted, now));
        return Ok(true);
    }
    if haview::topology_healthy(observed, &primary, &fenced) {
        memory
            .confirmed
            .insert(name.clone(), (primary.clone(), now));
        memory
            .durable
            .clear(cluster.id, AlarmKind::Failover, "")
            .await?;
        memory
            .durable
            .clear_attempts(cluster.id, Repair::Failover, "")
            .await?;
    }
    let confirmed_at = memory
        .confirmed
        .get(name)
        .filter(|(p, _)| *p == primary)
        .map(|(_, at)| *at);
    // Past failovers only matter to a primary that stopped answering.
    let primary_answers = observed
        .nodes
        .iter()
        .any(|n| n.endpoint == primary && n.probe.is_reachable());
    let failovers = if primary_answers {
        Vec::new()
    } else {
        haview::recent_failovers(store, cluster.id, now).await?
    };
    let view = haview::replication_view(
        cluster,
        observed,
        confirmed_at,
        failovers,
        maintenance.to_vec(),
    );
    let mut policy = crate::jobs::ha::cluster_policy(base, cluster);
    // A primary an operator stopped (`node stop --force`, `cluster stop`) is not failed
    // over: the operator chose to have no writer; a switchover is how to move it.
    if records
        .iter()
        .any(|r| r.endpoint == primary && r.desired == "stopped")
    {
        policy.automatic_recovery = false;
    }
    semi_sync_alarm(store, memory, cluster, &view).await?;
    let decision = decide_failover(&view, &policy, now);
    match &decision.action {
        FailoverAction::Failover(plan) => {
            let spec = JobSpec::Failover {
                cluster: name.clone(),
                to: Some(plan.candidate.clone()),
                force: false,
                automatic: true,
                reasons: decision.reasons.clone(),
            };
            // A data copy for a new node (hours, maybe) does not hold a failover back:
            // the lanes let it run beside it.
            if jobs.would_wait(&spec).await? {
                return Ok(true);
            }
            let attempts = memory.durable.attempts(cluster.id, Repair::Failover, "");
            let budget = RetryBudget::from_policy(&policy, chrono::Duration::zero());
            let since = attempts.first().copied().unwrap_or(now);
            match budget.next(since, &attempts, now) {
                RetryVerdict::Exhausted { attempts: max } => {
                    let msg = format!(
                        "alarm: {max} failover jobs failed for this outage; nines stops trying, a person must decide (`nines job list --cluster {name}` shows why). {}",
                        decision.explain()
                    );
                    memory
                        .durable
                        .raise(cluster.id, name, AlarmKind::Failover, "", &msg)
                        .await?;
                    return Ok(false);
                }
                RetryVerdict::Wait { .. } => return Ok(true),
                RetryVerdict::Go { .. } => {}
            }
            memory
                .durable
                .attempt(cluster.id, Repair::Failover, "", now)
                .await?;
            let job = jobs.submit(&spec, REQUESTER).await?;
            let msg = format!(
                "failing over from {} to {} (job {}): {}",
                plan.old_primary,
                plan.candidate,
                job.id,
                decision.explain()
            );
            tracing::warn!(cluster = %name, "{msg}");
            store
                .add_event(
                    name,
                    Some(&plan.old_primary.to_string()),
                    "auto_failover",
                    &msg,
                )
                .await?;
            return Ok(true);
        }
        FailoverAction::Refuse => {
            // Not while a job (the failover itself) changes the topology, and not about a
            // topology never confirmed while its designated primary answers (a node
            // restart's business).
            let quiet =
                (confirmed_at.is_none() && primary_answers) || cluster_busy(store, name).await?;
            if !quiet {
                let msg = format!("alarm: automatic failover refused: {}", decision.explain());
                memory
                    .durable
                    .raise(cluster.id, name, AlarmKind::Failover, "", &msg)
                    .await?;
            }
        }
        FailoverAction::NoAction => {
            // The replicas still receive from a primary this controller cannot reach: no
            // failover (rightly), but a person should know the controller is cut off.
            let verdict = nines_model::ha::primary_health(&view, &policy, now);
            if verdict.action == nines_model::ha::PrimaryHealth::Unreachable {
                let msg = format!(
                    "alarm: the primary does not answer nines but its replicas still receive from it, so nines does not fail over: {}",
                    verdict.explain()
                );
                memory
                    .durable
                    .raise(cluster.id, name, AlarmKind::Failover, "", &msg)
                    .await?;
            } else if verdict.action == nines_model::ha::PrimaryHealth::Alive {
                memory
                    .durable
                    .clear(cluster.id, AlarmKind::Failover, "")
                    .await?;
            }
        }
    }
    // Fenced nodes awaiting their rejoin check, once they answer.
    for rec in records.iter() {
        let addr = rec.endpoint.to_string();
        let pending = rec
            .fenced
            .as_deref()
            .is_some_and(|f| f.starts_with(crate::jobs::ha::PENDING_REJOIN));
        if !pending {
            // Rejoined (or fenced for good, with its own alarm): its attempts are over.
            memory
                .durable
                .clear_attempts(cluster.id, Repair::Rejoin, &addr)
                .await?;
            continue;
        }
        let reachable = observed
            .nodes
            .iter()
            .any(|n| n.endpoint == rec.endpoint && n.probe.is_reachable());
        let in_maintenance =
            nines_model::ha::maintenance::window_for(&view.maintenance, &rec.endpoint, now)
                .is_some();
        if !reachable || !policy.automatic_recovery || in_maintenance {
            continue;
        }
        let attempts = memory.durable.attempts(cluster.id, Repair::Rejoin, &addr);
        let budget = RetryBudget::from_policy(&policy, chrono::Duration::zero());
        let since = attempts.first().copied().unwrap_or(now);
        let RetryVerdict::Go { attempt } = budget.next(since, &attempts, now) else {
            continue;
        };
        let spec = JobSpec::Rejoin {
            cluster: name.clone(),
            node: rec.endpoint.clone(),
        };
        if jobs.would_wait(&spec).await? {
            return Ok(false);
        }
        let job = jobs.submit(&spec, REQUESTER).await?;
        memory
            .durable
            .attempt(cluster.id, Repair::Rejoin, &addr, now)
            .await?;
        let msg = format!(
            "{} answers again: checking its GTIDs and rejoining it as a replica (job {}, attempt {attempt})",
            rec.endpoint, job.id,
        );
        store
            .add_event(name, Some(&addr), "auto_rejoin", &msg)
            .await?;
    }
    Ok(false)
}

/// The node to adopt as the primary when the topology moved without nines: the designated
/// primary does not answer, exactly one other reachable node is writable and replicates
/// from nobody, and every other reachable, unfenced node replicates from it.
fn adopt_primary(
    observed: &crate::monitor::ClusterObserved,
    primary: &Endpoint,
    fenced: &[Endpoint],
) -> Option<Endpoint> {
    let designated = observed.nodes.iter().find(|n| &n.endpoint == primary)?;
    if designated.probe.is_reachable() {
        return None;
    }
    let writable: Vec<&crate::monitor::NodeObserved> = observed
        .nodes
        .iter()
        .filter(|n| &n.endpoint != primary && n.probe.is_reachable())
        .filter(|n| {
            n.sample
                .as_ref()
                .is_some_and(|s| !s.read_only && s.replication.is_empty() && s.wsrep.is_none())
        })
        .collect();
    let [only] = writable.as_slice() else {
        return None;
    };
    let mut ignore = fenced.to_vec();
    ignore.push(primary.clone());
    haview::topology_healthy(observed, &only.endpoint, &ignore).then(|| only.endpoint.clone())
}

/// Raises an alarm when a semi-sync primary fell back to asynchronous replication (its
/// commits no longer wait for a replica), and a note when it is back.
async fn semi_sync_alarm(
    store: &Arc<dyn Store>,
    memory: &mut Memory,
    cluster: &nines_store::ClusterRecord,
    view: &nines_model::ha::ReplicationView,
) -> Result<(), nines_store::StoreError> {
    if !cluster.settings.as_ref().is_some_and(|s| s.semi_sync) {
        return Ok(());
    }
    let Some(state) = view.primary_semi_sync else {
        return Ok(());
    };
    let name = &cluster.name;
    if !state.active {
        let msg = format!(
            "alarm: the primary's semi-synchronous replication is off ({} semi-sync replica(s) connected): commits are acknowledged before any replica has them, and an automatic failover will refuse to run unless a replica provably has everything",
            state.clients
        );
        memory
            .durable
            .raise(cluster.id, name, AlarmKind::SemiSync, "", &msg)
            .await?;
    } else if state.clients > 0
        && memory
            .durable
            .clear(cluster.id, AlarmKind::SemiSync, "")
            .await?
    {
        let msg = format!(
            "semi-synchronous replication is on again ({} replica(s) acknowledging)",
            state.clients
        );
        store.add_event(name, None, "semi_sync", &msg).await?;
    }
    Ok(())
}

/// When the cluster's most recent job ended; None when it has none or it has not ended.
async fn last_job_end(
    store: &Arc<dyn Store>,
    cluster: &str,
) -> Result<Option<DateTime<Utc>>, nines_store::StoreError> {
    let jobs = store
        .list_jobs(&JobFilter {
            cluster: Some(cluster.to_string()),
            state: None,
            limit: Some(1),
        })
        .await?;
    Ok(jobs.first().and_then(|j| j.finished_at))
}

/// Whether the cluster has a queued or running job (what the monitor sees may be its
/// doing).
async fn cluster_busy(
    store: &Arc<dyn Store>,
    cluster: &str,
) -> Result<bool, nines_store::StoreError> {
    Ok(store
        .active_jobs()
        .await?
        .iter()
        .any(|j| j.cluster_name == cluster))
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
    record: &nines_store::ClusterRecord,
    view: &crate::monitor::ClusterObserved,
    records: &[nines_store::NodeRecord],
    maintenance: &[Maintenance],
) -> Result<bool, nines_store::StoreError> {
    let (cluster_id, cluster) = (record.id, record.name.as_str());
    if view.nodes.iter().any(|n| n.state.is_none()) {
        return Ok(false);
    }
    // Nodes an operator stopped are not recovered (a stopped cluster stays stopped).
    let wanted: Vec<Endpoint> = records
        .iter()
        .filter(|r| r.settings.is_some() && r.desired == "running")
        .map(|r| r.endpoint.clone())
        .collect();
    let galera_view = haview::galera_view(view, &wanted, None, maintenance.to_vec());
    let nodes = &galera_view.nodes;
    if nodes.is_empty() {
        return Ok(false);
    }
    let any_primary = nodes
        .iter()
        .any(|n| n.wsrep.as_ref().is_some_and(|w| w.is_primary_component()));
    if any_primary {
        if memory.no_primary_since.remove(cluster).is_some() {
            memory
                .durable
                .clear_attempts(cluster_id, Repair::GaleraRecovery, "")
                .await?;
            memory
                .durable
                .clear(cluster_id, AlarmKind::GaleraRecovery, "")
                .await?;
        }
        return Ok(false);
    }
    let since = *memory
        .no_primary_since
        .entry(cluster.to_string())
        .or_insert(now);
    let galera_view = GaleraView {
        no_primary_since: Some(since),
        ..galera_view
    };
    let decision = decide_galera_recovery(&galera_view, policy, now);
    match decision.action {
        GaleraAction::CollectPositions { .. } | GaleraAction::Bootstrap { .. } => {
            let spec = JobSpec::GaleraRecovery {
                cluster: cluster.to_string(),
                bootstrap_from: None,
                force: false,
                automatic: true,
                reasons: decision.reasons.clone(),
            };
            if jobs.would_wait(&spec).await? {
                return Ok(true);
            }
            let attempts = memory
                .durable
                .attempts(cluster_id, Repair::GaleraRecovery, "");
            let budget = RetryBudget::from_policy(policy, chrono::Duration::zero());
            let first = attempts.first().copied().unwrap_or(now);
            let attempt = match budget.next(first, &attempts, now) {
                RetryVerdict::Exhausted { attempts: max } => {
                    let msg = format!(
                        "alarm: the Galera cluster has no Primary component and {max} recovery attempts failed; {}",
                        decision.explain()
                    );
                    memory
                        .durable
                        .raise(cluster_id, cluster, AlarmKind::GaleraRecovery, "", &msg)
                        .await?;
                    return Ok(true);
                }
                RetryVerdict::Wait { .. } => return Ok(true),
                RetryVerdict::Go { attempt } => attempt,
            };
            let job = jobs.submit(&spec, REQUESTER).await?;
            memory
                .durable
                .attempt(cluster_id, Repair::GaleraRecovery, "", now)
                .await?;
            let msg = format!(
                "recovering the Galera cluster (job {}, attempt {attempt}): {}",
                job.id,
                decision.explain()
            );
            tracing::warn!(cluster = %cluster, "{msg}");
            store
                .add_event(cluster, None, "auto_galera_recovery", &msg)
                .await?;
            Ok(true)
        }
        GaleraAction::Refuse => {
            let msg = format!("alarm: Galera recovery refused: {}", decision.explain());
            memory
                .durable
                .raise(cluster_id, cluster, AlarmKind::GaleraRecovery, "", &msg)
                .await?;
            Ok(true)
        }
        GaleraAction::Wait { .. } | GaleraAction::NoAction => Ok(false),
    }
}
