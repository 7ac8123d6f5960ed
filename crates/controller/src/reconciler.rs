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

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use nines_model::ha::reconcile::{ClusterSnapshot, Intent, NodeFacts, Observations, reconcile};
use nines_model::ha::{AlarmKind, HaMemory, HaPolicy, Repair};
use nines_model::job::JobState;
use nines_model::lanes::Lock;
use nines_model::{ClusterType, Role};
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
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = monitor.attention().notified() => {}
        }
        let now = Utc::now();
        if let Err(e) = pass(
            &store,
            &monitor,
            &jobs,
            &policy,
            &mut obs,
            &mut durable,
            now,
        )
        .await
        {
            tracing::warn!(error = %e, "reconciliation failed");
        }
    }
}

/// One pass over every cluster.
async fn pass(
    store: &Arc<dyn Store>,
    monitor: &Arc<Monitor>,
    jobs: &Arc<JobRunner>,
    base: &HaPolicy,
    obs: &mut Observations,
    durable: &mut Durable,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let active = store.active_jobs().await?;
    for cluster in store.list_clusters().await? {
        // A cluster being deployed (or whose deploy failed) is the deploy job's.
        if cluster
            .deploy_state
            .as_deref()
            .is_some_and(|s| s != "deployed")
        {
            continue;
        }
        let Some(observed) = monitor.cluster(&cluster.name) else {
            continue;
        };
        let cluster_jobs: Vec<&JobRecord> = active
            .iter()
            .filter(|j| j.cluster_name == cluster.name)
            .collect();
        let snap = snapshot(store, &cluster, &observed, &cluster_jobs, base, now).await?;
        let intents = reconcile(&snap, obs, &durable.mem, now);
        for intent in intents {
            perform(store, jobs, durable, &cluster, intent, now).await?;
        }
    }
    Ok(())
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
    let probes_fresh = match last_job_end(store, &cluster.name).await? {
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
                desired_running: rec.is_none_or(|r| r.desired == "running"),
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
        deployed: cluster.deploy_state.as_deref() == Some("deployed"),
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
    })
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
            store
                .add_event(
                    name,
                    event.node.map(|n| n.to_string()).as_deref(),
                    event.kind,
                    &msg,
                )
                .await?;
        }
        Intent::Raise {
            alarm,
            subject,
            message,
        } => {
            durable
                .raise(cluster.id, name, alarm, &subject, &message)
                .await?;
        }
        Intent::Clear {
            alarm,
            subject,
            note,
        } => {
            if durable.clear(cluster.id, alarm, &subject).await?
                && let Some(note) = note
            {
                store
                    .add_event(
                        name,
                        note.node.map(|n| n.to_string()).as_deref(),
                        note.kind,
                        &note.message,
                    )
                    .await?;
            }
        }
        Intent::Event(note) => {
            store
                .add_event(
                    name,
                    note.node.map(|n| n.to_string()).as_deref(),
                    note.kind,
                    &note.message,
                )
                .await?;
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
            store
                .add_event(
                    name,
                    note.node.map(|n| n.to_string()).as_deref(),
                    note.kind,
                    &note.message,
                )
                .await?;
        }
    }
    Ok(())
}

/// When the cluster's most recent job ended; None when it has none or it has not ended.
async fn last_job_end(
    store: &Arc<dyn Store>,
    cluster: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let jobs = store
        .list_jobs(&JobFilter {
            cluster: Some(cluster.to_string()),
            state: None,
            limit: Some(1),
        })
        .await?;
    Ok(jobs.first().and_then(|j| j.finished_at))
}
