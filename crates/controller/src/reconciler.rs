//! The reconciler's runner: every probe interval (and at once when the monitor signals
//! that a replication primary stopped answering) it builds a
//! [`ClusterSnapshot`] of each cluster, asks the pure
//! [`nines_model::ha::reconcile::reconcile`] what to do, and performs the
//! [`Intent`]s it returns: submit jobs with their events and attempts, raise and clear
//! alarms, forget attempts, adopt a primary promoted outside nines.
//!
//! It keeps the [`Observations`] in memory (rebuilt from the monitor after a restart) and
//! its attempts and raised alarms in the store ([`Durable`], loaded at start), so that a
//! restarted controller neither resets a retry budget nor raises an alarm again.
//!
//! A cluster with nothing to decide costs no store read: when every node is online and
//! answering, nothing is remembered or being observed about it, and the last full look
//! found no fenced or stopped node (nor, for a semi-sync cluster, a primary that fell back
//! to asynchronous replication), the pass only notes the replication topology healthy
//! ([`quiet`]). This is what keeps a large fleet cheap (docs/benchmarks.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::alarm::{self, Source};
use nines_model::ha::reconcile::{ClusterSnapshot, Intent, NodeFacts, Observations, reconcile};
use nines_model::ha::{AlarmKind, HaMemory, HaPolicy, Refusal, Repair};
use nines_model::job::JobState;
use nines_model::lanes::Lock;
use nines_model::{ClusterType, NodeState, Role};
use nines_store::{
    ClusterRecord, HaAttempt, JobFilter, JobRecord, NodeRecord, RaisedAlarm, Store, StoreError,
};
use tokio_util::sync::CancellationToken;

use crate::haview;
use crate::jobs::JobRunner;
use crate::monitor::{ClusterObserved, Monitor};

/// Who the reconciler's jobs say asked for them.
pub const REQUESTER: &str = "nines (auto-recovery)";

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
    let mut durable = loop {
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
    let mut obs = Observations::default();
    let mut facts = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = monitor.attention().notified() => {}
        }
        let now = Utc::now();
        let mut state = PassState {
            obs: &mut obs,
            durable: &mut durable,
            facts: &mut facts,
        };
        if let Err(e) = pass(&store, &monitor, &jobs, &policy, &mut state, now).await {
            tracing::warn!(error = %e, "reconciliation failed");
        }
    }
}

/// What the reconciler carries from pass to pass.
struct PassState<'a> {
    obs: &'a mut Observations,
    durable: &'a mut Durable,
    /// Per cluster id, what the last full look at its records found.
    facts: &'a mut HashMap<i64, QuietFacts>,
}

/// What the store said of a cluster at its last full look, for [`quiet`].
#[derive(Debug, Clone, Copy)]
struct QuietFacts {
    /// A node is fenced, or an operator wants it stopped.
    held: bool,
    semi_sync: bool,
}

/// Whether a cluster has nothing to decide (see the module docs).
fn quiet(
    observed: &ClusterObserved,
    obs: &Observations,
    memory: &HaMemory,
    facts: Option<&QuietFacts>,
) -> bool {
    let Some(facts) = facts else {
        return false;
    };
    let id = observed.cluster_id;
    if facts.held
        || memory.knows(id)
        || obs.no_primary_since.contains_key(&id)
        || obs.down_since.keys().any(|(c, _)| *c == id)
    {
        return false;
    }
    let online = observed
        .nodes
        .iter()
        .all(|n| n.state == Some(NodeState::Online) && n.probe.is_reachable());
    if !online {
        return false;
    }
    if observed.cluster_type != ClusterType::Replication {
        return true;
    }
    // The topology this controller vouches for: the same primary, seen online.
    let Some((confirmed, _)) = obs.confirmed.get(&id) else {
        return false;
    };
    let Some(primary) = observed
        .nodes
        .iter()
        .find(|n| &n.endpoint == confirmed && n.role == Role::Primary)
    else {
        return false;
    };
    !facts.semi_sync
        || primary
            .sample
            .as_ref()
            .and_then(|s| s.status.get("Rpl_semi_sync_master_status"))
            .is_some_and(|v| *v == 1)
}

/// One pass over every cluster the monitor watches.
async fn pass(
    store: &Arc<dyn Store>,
    monitor: &Arc<Monitor>,
    jobs: &Arc<JobRunner>,
    base: &HaPolicy,
    state: &mut PassState<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut active: Option<Vec<JobRecord>> = None;
    for observed in monitor.clusters() {
        let id = observed.cluster_id;
        if quiet(
            &observed,
            state.obs,
            &state.durable.mem,
            state.facts.get(&id),
        ) {
            if let Some((_, at)) = state.obs.confirmed.get_mut(&id) {
                *at = now;
            }
            // Every node online and answering: no monitor condition holds (free when no
            // alarm of the monitor is active).
            jobs.alarms()
                .sync(&observed.name, Source::Monitor, Vec::new())
                .await?;
            continue;
        }
        let Some(cluster) = store.get_cluster(&observed.name).await? else {
            continue;
        };
        // A cluster being deployed (or whose deploy failed) is the deploy job's.
        if cluster
            .deploy_state
            .is_some_and(|s| s != nines_model::DeployState::Deployed)
        {
            continue;
        }
        if active.is_none() {
            active = Some(store.active_jobs().await?);
        }
        let cluster_jobs: Vec<&JobRecord> = active
            .iter()
            .flatten()
            .filter(|j| j.cluster_name == cluster.name)
            .collect();
        let snap = snapshot(store, &cluster, &observed, &cluster_jobs, base, now).await?;
        state.facts.insert(
            id,
            QuietFacts {
                held: snap
                    .nodes
                    .iter()
                    .any(|n| n.fence.is_some() || !n.desired_running),
                semi_sync: snap.semi_sync,
            },
        );
        let intents = reconcile(&snap, state.obs, &state.durable.mem, now);
        for intent in intents {
            perform(store, jobs, state.durable, &cluster, intent, now).await?;
        }
        let monitored = monitored(&cluster, &observed, &snap, now);
        jobs.alarms()
            .sync(
                &cluster.name,
                Source::Monitor,
                alarm::monitor_conditions(&monitored),
            )
            .await?;
    }
    Ok(())
}

/// The alarm engine's kind of a reconciler alarm.
fn engine_kind(k: AlarmKind) -> alarm::AlarmKind {
    match k {
        AlarmKind::NodeRestart => alarm::AlarmKind::NodeRestart,
        AlarmKind::Failover => alarm::AlarmKind::Failover,
        AlarmKind::GaleraRecovery => alarm::AlarmKind::GaleraRecovery,
        AlarmKind::SemiSync => alarm::AlarmKind::SemiSync,
    }
}

/// The cluster as the monitor's alarm rules see it.
fn monitored(
    cluster: &ClusterRecord,
    observed: &ClusterObserved,
    snap: &ClusterSnapshot,
    now: DateTime<Utc>,
) -> alarm::MonitoredCluster {
    use nines_model::ha::maintenance::{cluster_window, node_window};
    use nines_model::replication::IoThreadState;
    alarm::MonitoredCluster {
        name: cluster.name.clone(),
        cluster_type: cluster.cluster_type,
        state: observed.state,
        reason: observed.reason.clone(),
        in_maintenance: cluster_window(&snap.maintenance, now).is_some(),
        auto_recovery: cluster.auto_recovery,
        deployed: snap.deployed,
        nodes: observed
            .nodes
            .iter()
            .map(|n| {
                let facts = snap.nodes.iter().find(|f| f.endpoint == n.endpoint);
                let stopped_channels = match (&n.sample, n.probe.is_reachable()) {
                    (Some(s), true) => s
                        .replication
                        .iter()
                        .filter(|r| r.io_state == IoThreadState::Stopped || !r.sql_running)
                        .map(|r| {
                            let why = [&r.last_io_error, &r.last_sql_error]
                                .into_iter()
                                .filter(|e| !e.is_empty())
                                .cloned()
                                .collect::<Vec<_>>()
                                .join("; ");
                            let why = if why.is_empty() {
                                format!(
                                    "IO thread {:?}, SQL thread {}",
                                    r.io_state,
                                    if r.sql_running { "running" } else { "stopped" }
                                )
                            } else {
                                why
                            };
                            (r.channel.clone(), why)
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                alarm::MonitoredNode {
                    address: n.endpoint.to_string(),
                    state: n.state,
                    reason: n.reason.clone(),
                    desired_running: facts.is_none_or(|f| f.desired_running),
                    in_maintenance: node_window(&snap.maintenance, &n.endpoint, now).is_some(),
                    // A fenced old primary waits for its rejoin: its replication is off on
                    // purpose.
                    stopped_channels: if facts.is_some_and(|f| f.fence.is_some()) {
                        Vec::new()
                    } else {
                        stopped_channels
                    },
                }
            })
            .collect(),
    }
}

/// What the pure decision needs of one cluster.
async fn snapshot(
    store: &Arc<dyn Store>,
    cluster: &ClusterRecord,
    observed: &ClusterObserved,
    active: &[&JobRecord],
    base: &HaPolicy,
    now: DateTime<Utc>,
) -> Result<ClusterSnapshot, StoreError> {
    // What the monitor saw before the cluster's last job ended may be that job's own
    // doing (a planned restart refuses connections): decide only on probes that started
    // after it.
    let recent = recent_jobs(store, &cluster.name).await?;
    let probes_fresh = match recent.first().and_then(|j| j.finished_at) {
        Some(ended) => observed
            .nodes
            .iter()
            .all(|n| n.probed_at.is_some_and(|p| p > ended)),
        None => true,
    };
    let maintenance = haview::maintenance(store, cluster.id, now).await?;
    let records: Vec<NodeRecord> = store.list_nodes(Some(cluster.id)).await?;
    let nodes: Vec<NodeFacts> = observed
        .nodes
        .iter()
        .map(|n| {
            let rec = records.iter().find(|r| r.endpoint == n.endpoint);
            NodeFacts {
                endpoint: n.endpoint.clone(),
                deployed: rec.is_some_and(|r| r.settings.is_some()),
                desired_running: rec.is_none_or(|r| r.desired == nines_model::Desired::Running),
                fence: rec.and_then(|r| r.fenced.clone()),
                state: n.state,
                probe: n.probe,
                wsrep: if n.probe.is_reachable() {
                    n.sample.as_ref().and_then(|s| s.wsrep.clone())
                } else {
                    None
                },
            }
        })
        .collect();
    let replication = if cluster.cluster_type == ClusterType::Replication {
        // Past failovers only matter to a primary that stopped answering.
        let primary_answers = cluster.primary.as_ref().is_some_and(|p| {
            observed
                .nodes
                .iter()
                .any(|n| &n.endpoint == p && n.probe.is_reachable())
        });
        let failovers = if primary_answers {
            Vec::new()
        } else {
            haview::recent_failovers(store, cluster.id, now).await?
        };
        Some(haview::replication_view(
            cluster,
            observed,
            None,
            failovers,
            maintenance.clone(),
        ))
    } else {
        None
    };
    let locks = |state: JobState| -> Vec<(i64, Vec<Lock>)> {
        active
            .iter()
            .filter(|j| j.state == state)
            .map(|j| (j.id, j.spec.locks()))
            .collect()
    };
    Ok(ClusterSnapshot {
        id: cluster.id,
        name: cluster.name.clone(),
        cluster_type: cluster.cluster_type,
        deployed: cluster.deploy_state == Some(nines_model::DeployState::Deployed),
        policy: crate::jobs::ha::cluster_policy(base, cluster),
        maintenance,
        nodes,
        probes_fresh,
        running: locks(JobState::Running)
            .into_iter()
            .map(|(_, l)| l)
            .collect(),
        queued: locks(JobState::Queued),
        primary: cluster.primary.clone(),
        semi_sync: cluster.settings.as_ref().is_some_and(|s| s.semi_sync),
        replication,
        refusals: refusals(&recent),
    })
}

/// The cluster's recent repair jobs that ended refused or cancelled, the latest per repair
/// and subject (`recent` is newest first).
fn refusals(recent: &[JobRecord]) -> Vec<Refusal> {
    let mut out: Vec<Refusal> = Vec::new();
    for job in recent {
        let Some((repair, subject)) = job.spec.repair() else {
            continue;
        };
        if out
            .iter()
            .any(|r| r.repair == repair && r.subject == subject)
        {
            continue;
        }
        let refused = job.state == JobState::Cancelled
            || (job.state == JobState::Failed && job.failure.is_some_and(|f| !f.retryable()));
        if let (true, Some(at)) = (refused, job.finished_at) {
            out.push(Refusal {
                repair,
                subject,
                job: job.id,
                at,
                message: job.error.clone().unwrap_or_default(),
            });
        }
    }
    out
}

/// Makes one intent's writes.
async fn perform(
    store: &Arc<dyn Store>,
    jobs: &Arc<JobRunner>,
    durable: &mut Durable,
    cluster: &ClusterRecord,
    intent: Intent,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let name = &cluster.name;
    match intent {
        Intent::Submit {
            spec,
            attempt,
            event,
        } => {
            let job = jobs.submit(&spec, REQUESTER).await?;
            if let Some((repair, subject)) = attempt {
                durable.attempt(cluster.id, repair, &subject, now).await?;
            }
            let msg = event.message.replace("{job}", &job.id.to_string());
            tracing::warn!(cluster = %name, "{msg}");
            write_note(store, name, &event, &msg).await?;
        }
        Intent::Raise {
            alarm,
            subject,
            message,
        } => {
            durable
                .raise(cluster.id, name, alarm, &subject, &message)
                .await?;
            let node = (!subject.is_empty()).then_some(subject.as_str());
            jobs.alarms()
                .raise(alarm::Condition::new(
                    name,
                    node,
                    engine_kind(alarm),
                    message,
                ))
                .await?;
        }
        Intent::Clear {
            alarm,
            subject,
            note,
        } => {
            let node = (!subject.is_empty()).then_some(subject.as_str());
            jobs.alarms()
                .clear_kind(name, node, engine_kind(alarm))
                .await?;
            if durable.clear(cluster.id, alarm, &subject).await?
                && let Some(note) = note
            {
                write_note(store, name, &note, &note.message).await?;
            }
        }
        Intent::Event(note) => {
            write_note(store, name, &note, &note.message).await?;
        }
        Intent::ClearAttempts { repair, subject } => {
            durable.clear_attempts(cluster.id, repair, &subject).await?;
        }
        Intent::Adopt {
            primary,
            old,
            fence,
            note,
        } => {
            store
                .set_cluster_primary(cluster.id, Some(&primary))
                .await?;
            for r in store.list_nodes(Some(cluster.id)).await? {
                if r.endpoint == primary {
                    store.set_node_role(r.id, Role::Primary).await?;
                    store.set_node_fenced(r.id, None).await?;
                } else if r.endpoint == old {
                    store.set_node_role(r.id, Role::Replica).await?;
                    store.set_node_fenced(r.id, Some(&fence)).await?;
                }
            }
            tracing::warn!(cluster = %name, "{}", note.message);
            write_note(store, name, &note, &note.message).await?;
        }
    }
    Ok(())
}

/// Writes an intent's event, with `message` (its own, or with the job id filled in).
async fn write_note(
    store: &Arc<dyn Store>,
    cluster: &str,
    note: &nines_model::ha::reconcile::Note,
    message: &str,
) -> Result<(), StoreError> {
    let node = note.node.as_ref().map(ToString::to_string);
    store
        .add_event(cluster, node.as_deref(), note.kind, message)
        .await?;
    Ok(())
}

/// How many of a cluster's latest jobs the reconciler reads: enough to find the latest
/// outcome of each repair.
const RECENT_JOBS: i64 = 20;

/// The cluster's latest jobs, newest first.
async fn recent_jobs(store: &Arc<dyn Store>, cluster: &str) -> Result<Vec<JobRecord>, StoreError> {
    store
        .list_jobs(&JobFilter {
            cluster: Some(cluster.to_string()),
            state: None,
            limit: Some(RECENT_JOBS),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::NodeObserved;
    use nines_model::Endpoint;
    use nines_model::ha::ProbeStatus;
    use nines_model::snapshot::ProbeErrorKind;

    fn node(n: u8, role: Role, state: NodeState) -> NodeObserved {
        NodeObserved {
            node_id: i64::from(n),
            endpoint: Endpoint::new(format!("127.0.0.{n}"), 3306),
            role,
            state: Some(state),
            reason: String::new(),
            sample: None,
            error: None,
            last_seen: None,
            probed_at: None,
            rates: Default::default(),
            lag_transactions: None,
            host: None,
            probe: ProbeStatus::Reachable,
            recent: Arc::default(),
        }
    }

    fn cluster(cluster_type: ClusterType, nodes: Vec<NodeObserved>) -> ClusterObserved {
        ClusterObserved {
            cluster_id: 5,
            name: "c".into(),
            cluster_type,
            state: None,
            reason: String::new(),
            nodes,
        }
    }

    /// (name, view, observations, memory, facts, quiet?)
    type Case<'a> = (
        &'a str,
        ClusterObserved,
        &'a Observations,
        &'a HaMemory,
        Option<&'a QuietFacts>,
        bool,
    );

    #[test]
    fn which_clusters_are_quiet() {
        let calm = QuietFacts {
            held: false,
            semi_sync: false,
        };
        let standalone = || {
            cluster(
                ClusterType::Standalone,
                vec![node(1, Role::Standalone, NodeState::Online)],
            )
        };
        let replication = || {
            cluster(
                ClusterType::Replication,
                vec![
                    node(1, Role::Primary, NodeState::Online),
                    node(2, Role::Replica, NodeState::Online),
                ],
            )
        };
        let confirmed = Observations {
            confirmed: [(5, (Endpoint::new("127.0.0.1", 3306), chrono::Utc::now()))].into(),
            ..Default::default()
        };
        let none = Observations::default();
        let mem = HaMemory::default();
        let mut remembered = HaMemory::default();
        remembered.note_raised(5, AlarmKind::SemiSync, "");
        let mut failing = standalone();
        failing.nodes[0].probe = ProbeStatus::Failing {
            kind: ProbeErrorKind::Timeout,
            consecutive: 1,
            since: chrono::Utc::now(),
        };
        let down = Observations {
            down_since: [((5, Endpoint::new("127.0.0.1", 3306)), chrono::Utc::now())].into(),
            ..Default::default()
        };
        let held = QuietFacts { held: true, ..calm };
        let semi = QuietFacts {
            semi_sync: true,
            ..calm
        };
        let cases: Vec<Case<'_>> = vec![
            (
                "all online, nothing known",
                standalone(),
                &none,
                &mem,
                Some(&calm),
                true,
            ),
            (
                "never looked at in full",
                standalone(),
                &none,
                &mem,
                None,
                false,
            ),
            ("a probe failing", failing, &none, &mem, Some(&calm), false),
            (
                "an alarm raised",
                standalone(),
                &none,
                &remembered,
                Some(&calm),
                false,
            ),
            (
                "a node being watched down",
                standalone(),
                &down,
                &mem,
                Some(&calm),
                false,
            ),
            (
                "a fenced or stopped node",
                standalone(),
                &none,
                &mem,
                Some(&held),
                false,
            ),
            (
                "replication, topology confirmed",
                replication(),
                &confirmed,
                &mem,
                Some(&calm),
                true,
            ),
            (
                "replication, not confirmed yet",
                replication(),
                &none,
                &mem,
                Some(&calm),
                false,
            ),
            (
                "semi-sync primary without its status",
                replication(),
                &confirmed,
                &mem,
                Some(&semi),
                false,
            ),
        ];
        for (name, observed, obs, memory, facts, want) in cases {
            assert_eq!(quiet(&observed, obs, memory, facts), want, "{name}");
        }
    }
}
